/*
 * signals.c: the launcher as the app's parent and the init of its PID namespace:
 * forwarding signals to the app, reaping every process orphaned into the namespace,
 * waiting for the app, and (while waiting) noticing that the daemon connection ended.
 *
 * Forwarded: INT, TERM, HUP, QUIT, USR1, USR2, WINCH, CONT, unless the kernel sent
 * them (si_code == SI_KERNEL): a terminal's Ctrl-C, hangup or resize already
 * reaches the app, which is in the launcher's process group. The handler only
 * calls kill(2), which is async-signal-safe. As pid 1 of its namespace the launcher
 * gets only the signals it has a handler for (pid_namespaces(7)): exactly these, and
 * SIGKILL from outside.
 *
 * The forwarded signals are blocked from just before fork until the app's pid is
 * known, so none is lost or sent to pid 0; SIGCHLD stays blocked and is read from a
 * signalfd. The app resets every disposition to SIG_DFL and unblocks everything before
 * it execs.
 *
 * Man pages: sigaction(2), signal(7), signalfd(2), pid_namespaces(7), poll(2), waitpid(2).
 */
#include "launcher.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

static volatile sig_atomic_t target;

static void forward(int sig, siginfo_t *info, void *ucontext) {
  (void)ucontext;
  if (info->si_code == SI_KERNEL) return;
  int saved = errno;
  pid_t pid = (pid_t)target;
  if (pid > 0) kill(pid, sig);
  errno = saved;
}

static void forwarded_set(sigset_t *set) {
  sigemptyset(set);
  for (size_t i = 0; i < NFORWARDED; i++) sigaddset(set, forwarded[i]);
}

/* Before fork: block what will be forwarded, and SIGCHLD (read from a signalfd later),
 * and make sure the app can be waited for (a SIGCHLD ignored by the caller would reap it
 * behind our back). */
void signals_block(void) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigaction(SIGCHLD, &dfl, NULL);
  sigset_t set;
  forwarded_set(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
}

/* In the launcher after fork: install the forwarding handlers, then unblock. */
void signals_forward_to(pid_t pid) {
  target = pid;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < NFORWARDED; i++) sigaction(forwarded[i], &sa, NULL);
  sigset_t set;
  forwarded_set(&set);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* In the app: every catchable signal to SIG_DFL, nothing blocked. */
void signals_reset_for_exec(void) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, NULL); /* EINVAL for the C library's reserved signals: fine */
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Reaps every child that has ended; returns true (and the app's status) once the app has. */
static bool reap(pid_t app, int *status) {
  bool done = false;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p < 0 && errno == EINTR) continue;
    if (p <= 0) return done;
    if (p == app) {
      *status = st;
      done = true;
    }
  }
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Waits for the app to end and returns the launcher's exit code, reaping on the way every
 * process that ends orphaned in the app's PID namespace. While the app runs, the daemon
 * connection is watched too: when it ends (the daemon restarted), the launcher tries to
 * hand the app's listener to a daemon on the same socket, every RETRY_MIN_MS doubling
 * to RETRY_MAX_MS, for as long as the app runs. When the launcher exits, the kernel ends
 * whatever is left in the namespace.
 */
int signals_supervise(pid_t pid, struct daemon_conn *dc) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) fail(EXIT_LAUNCHER, "signalfd failed: %s", strerror(errno));
  int status = 0;
  struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = dc->fd, .events = POLLIN}};
  int retry_ms = RETRY_MIN_MS;
  long long next_retry = -1; /* when to try to reattach (monotonic ms); -1: connected */
  /* A child that ended before the signalfd existed left SIGCHLD pending: it shows. */
  while (!reap(pid, &status)) {
    long long left = next_retry < 0 ? 0 : next_retry - now_ms();
    int r = poll(p, 2, next_retry < 0 ? -1 : left > 0 ? (int)left : 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(EXIT_LAUNCHER, "waiting for the app failed: %s", strerror(errno));
    }
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
      }
    }
    if (p[1].fd >= 0 && p[1].revents && !handshake_poll_daemon(dc)) {
      p[1].fd = -1; /* poll ignores it until a new daemon takes the app */
      retry_ms = RETRY_MIN_MS;
      if (dc->app_id[0]) next_retry = now_ms() + retry_ms;
    }
    /* Checked on every wake-up, so that an app that forks often cannot starve it. */
    if (next_retry >= 0 && now_ms() >= next_retry) {
      if (handshake_reattach(dc)) {
        p[1].fd = dc->fd;
        next_retry = -1;
      } else {
        retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
        next_retry = now_ms() + retry_ms;
      }
    }
  }
  close(sfd);
  int code = exit_code_of(status);
  handshake_report_exit(dc, code);
  return code;
}
