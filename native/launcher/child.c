/*
 * child.c: the app process, from fork to execvp, and the launcher's control of it
 * until the daemon says GO.
 *
 * In the app (after fork): default signal dispositions and an empty signal mask;
 * PR_SET_NO_NEW_PRIVS; the daemon's filter installed with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER; the listener fd sent to the launcher over a
 * socketpair (SCM_RIGHTS) and closed; a wait for the launcher's 'G'; then the
 * optional drop to --user (setgroups, setgid, setuid) and execvp.
 *
 * Once the filter is installed the app only does AF_UNIX socketpair I/O, read,
 * credential calls and execve. It must never create or connect a network socket
 * there: the filter would trap it, and nobody would answer before GO.
 *
 * Messages on the socketpair, app to launcher: 'F' with the listener fd attached,
 * or 'E' followed by an int errno when the filter could not be installed.
 * Launcher to app: 'G' (go). Anything else, or EOF, and the app exits 125
 * silently.
 *
 * Man pages: seccomp(2), seccomp_unotify(2), prctl(2), unix(7), setgroups(2),
 * setuid(2), execvp(3).
 */
#include "launcher.h"

#include <errno.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void __attribute__((noreturn)) report_errno(int ctl, int err) {
  char msg[1 + sizeof(int)];
  msg[0] = 'E';
  memcpy(msg + 1, &err, sizeof err);
  send_all(ctl, msg, sizeof msg);
  _exit(EXIT_LAUNCHER);
}

static void drop_user(const struct options *o) {
  if (setgroups(o->ngroups, o->groups) < 0)
    fail(EXIT_LAUNCHER, "setting the supplementary groups for --user failed: %s", strerror(errno));
  if (setgid(o->gid) < 0) fail(EXIT_LAUNCHER, "setgid(%u) for --user failed: %s", o->gid, strerror(errno));
  if (setuid(o->uid) < 0) fail(EXIT_LAUNCHER, "setuid(%u) for --user failed: %s", o->uid, strerror(errno));
}

static void __attribute__((noreturn)) app_main(int ctl, pid_t launcher, const struct options *o,
                                               const struct grant *g) {
  signals_reset_for_exec();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) report_errno(ctl, errno);
  struct sock_fprog prog = {.len = g->filter_len, .filter = g->filter};
  long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) report_errno(ctl, errno);

  /*
   * The daemon's filter is in force from here on, and it traps sendmsg(2): SCM_RIGHTS
   * would wait on a daemon that has no listener yet. So only the fd's number travels, by
   * write(2); the launcher takes the fd itself with pidfd_getfd(2) while this process
   * keeps it open, waiting for 'G'.
   */
  int lfd = (int)listener;
  char msg[1 + sizeof lfd];
  msg[0] = 'F';
  memcpy(msg + 1, &lfd, sizeof lfd);
  if (write(ctl, msg, sizeof msg) != (ssize_t)sizeof msg) _exit(EXIT_LAUNCHER);
  char go = 0;
  ssize_t n;
  do n = read(ctl, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1 || go != 'G') _exit(EXIT_LAUNCHER);
  close(lfd);
  close(ctl);

  if (o->set_user) drop_user(o);
  /*
   * The app does not outlive its launcher. The launcher is the init of the app's PID
   * namespace, whose end the kernel makes the end of every process in it; this says the
   * same for the app itself, should the launcher ever not be that init. Set after the
   * credential change, which clears it; the getppid check closes the race with a
   * launcher that died before this line.
   */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(EXIT_LAUNCHER);
  if (getppid() != launcher) _exit(EXIT_LAUNCHER);
  execvp(o->cmd[0], o->cmd);
  int err = errno;
  fail(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC, "cannot run %s: %s", o->cmd[0], strerror(err));
}

/* Forks the app. Returns in the launcher only; from now on fail() kills the app. */
void app_spawn(struct app *a, const struct options *o, const struct grant *g, int daemon_fd) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    fail(EXIT_LAUNCHER, "creating a socketpair failed: %s", strerror(errno));
  pid_t self = getpid();
  pid_t pid = fork();
  if (pid < 0) fail(EXIT_LAUNCHER, "fork failed: %s", strerror(errno));
  if (pid == 0) {
    close(sv[0]);
    close(daemon_fd);
    app_main(sv[1], self, o, g);
  }
  close(sv[1]);
  a->pid = pid;
  a->ctl = sv[0];
  fail_kills_app(pid);
}

/*
 * Receives the app's seccomp listener fd (close-on-exec here). Returns -1 when
 * the app died before sending it (say, killed by a forwarded signal); fails when
 * the app could not install the filter.
 */
/* Reads exactly len bytes; the count read (short at EOF) or -1 with errno. */
static ssize_t read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* Copies the app's listener fd (number lfd in the app) with pidfd_getfd(2); close-on-exec. */
static int take_listener(pid_t pid, int lfd) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) fail(EXIT_LAUNCHER, "pidfd_open of the app failed: %s", strerror(errno));
  int fd = (int)syscall(SYS_pidfd_getfd, pidfd, lfd, 0);
  int err = errno;
  close(pidfd);
  if (fd < 0) fail(EXIT_LAUNCHER, "taking the seccomp listener from the app failed: %s", strerror(err));
  return fd;
}

int app_await_listener(struct app *a) {
  char kind = 0;
  ssize_t n = read_full(a->ctl, &kind, 1);
  if (n < 0) fail(EXIT_LAUNCHER, "receiving the seccomp listener from the app failed: %s", strerror(errno));
  if (n == 0) return -1;
  if (kind == 'F') {
    int lfd = -1;
    if (read_full(a->ctl, &lfd, sizeof lfd) != (ssize_t)sizeof lfd) return -1;
    return take_listener(a->pid, lfd);
  }
  if (kind == 'E') {
    int err = 0;
    size_t got = 0;
    while (got < sizeof err) {
      n = read(a->ctl, (char *)&err + got, sizeof err - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += (size_t)n;
    }
    fail(EXIT_LAUNCHER, "installing the seccomp filter failed: %s",
         got == sizeof err ? strerror(err) : "the app process died while reporting why");
  }
  fail(EXIT_LAUNCHER, "internal error: unexpected message '%c' from the app process", kind);
}

/* Lets the app go on to execvp. If it died meanwhile, waiting will tell. */
void app_release(struct app *a) {
  send_all(a->ctl, "G", 1);
  close(a->ctl);
  a->ctl = -1;
}

/* For an app that ended before it was released: reaps it and returns its exit code. */
int app_reap_now(struct app *a) {
  fail_kills_app(0);
  kill(a->pid, SIGKILL);
  int status;
  while (waitpid(a->pid, &status, 0) < 0)
    if (errno != EINTR) fail(EXIT_LAUNCHER, "waiting for the app process failed: %s", strerror(errno));
  return exit_code_of(status);
}
