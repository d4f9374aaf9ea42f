/*
 * closer.c: closing descriptors the daemon shares with an app, without waiting on them.
 *
 * Responsible for closeShared. The daemon's duplicate of an app's socket (a pidfd_getfd
 * copy, or a socket it installed in the app) may be the last reference when the daemon
 * closes it: the app closed its own, or exited. For a TCP socket with SO_LINGER on and data
 * or a FIN not yet acknowledged, that last close() sleeps in tcp_close() for up to the
 * linger time (sk_stream_wait_close; up to about 68 years). The wait is interruptible: a
 * signal ends it, and the socket is then orphaned exactly as after a close without
 * SO_LINGER (the kernel still sends what is queued). So:
 *
 * - UDP, UNIX and netlink sockets never wait in close(2): closed at once.
 * - A TCP socket without SO_LINGER (the usual case) is closed at once too, under a watchdog
 *   (the caller's thread, and the socket responder's threads): if the app sets SO_LINGER and
 *   drops its reference between the check and the close, the watchdog interrupts it with a
 *   signal after at most about BOUND_NS. It costs two clock reads per close (vDSO); it polls
 *   every POLL_NS while closes happen and sleeps when they stop.
 * - A TCP socket with SO_LINGER on, and anything that is not a socket (a file the app
 *   passed where a socket belongs: its close may wait on its filesystem's ->flush,
 *   which a signal does not end), go to the closer thread, which closes them in order,
 *   each under a timer (timer_create, SIGEV_THREAD_ID) of GUARD_NS. When QUEUE_MAX wait
 *   there (or a quarter of RLIMIT_NOFILE: they are the daemon's fds), the caller closes
 *   such a socket itself under a timer of its own (an app cannot grow the queue at will).
 *
 * The same watchdog bounds the daemon's connect(2) and accept4(2) on an app's socket
 * (sw_bounded_begin/end, used by fdops.c). The daemon makes the socket non-blocking for the
 * call, but O_NONBLOCK is a flag of the open file, which the app shares: another thread of
 * the app can clear it between the daemon's fcntl and its call, and a connect to a peer
 * that drops SYNs would then hold the event loop for the SYN retries (about 2 min). Such a
 * call is interrupted after at most about BOUND_NS by call_signal, whose handler has no
 * SA_RESTART (a restarted connect waits again): connect then returns EINTR with the
 * handshake going on (as EINPROGRESS), accept4 EINTR (as EAGAIN). call_signal is blocked on
 * the daemon's thread except during such a call, so a late one never lands elsewhere (it
 * stays pending, and at worst interrupts the next such call at once, which is harmless).
 *
 * Waking a thread, or arming a timer, for every close each cost a quarter to a third of the
 * connection rate on a 2-CPU VM (bench crr): hence the checks. The signal's handler does
 * nothing, with SA_RESTART: a stray one (after its close returned) restarts whatever call it
 * lands in. Leans on close(2), socket(7), timer_create(2), sigaction(2), futex(2).
 */
#include "common.h"

#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The watchdog: how often it looks while closes happen, and the longest one may take. */
#define POLL_NS (2000L * 1000)
#define BOUND_NS (2000L * 1000)
/* Polls without a close before the watchdog sleeps until the next one. */
#define IDLE_POLLS 100
/* A lingering close's bound: on the closer thread, or under a caller's timer when its queue is full. */
#define GUARD_NS (200L * 1000)
#define QUEUE_MAX 4096

static int close_signal, call_signal;
static bool signal_ready;

/* ---- the watchdog of the caller's thread ---- */
static pthread_t guarded;          /* the thread that calls closeShared */
static bool watchdog_started, watchdog_failed;
static _Atomic long long closing_since; /* ns (CLOCK_MONOTONIC) of the close in progress, 0: none */
static _Atomic unsigned long closes;    /* closes so far: tells the watchdog closes still happen */
static _Atomic int asleep;              /* the watchdog waits on this word (futex) */
static _Atomic long long calling_since; /* ns of the bounded connect/accept in progress, 0: none */
static sigset_t call_set;               /* {call_signal} */

/* ---- the socket responder's threads (responder.c), under the watchdog too ---- */
static struct {
  pthread_t thread;
  _Atomic long long since; /* ns of its close in progress, 0: none */
} responders[SW_RESPONDERS_MAX];
static _Atomic int nresponders;
static _Thread_local int responder_slot = -1; /* this thread's, -1: not a responder */
static sigset_t close_set;                     /* {close_signal}: unblocked there only during a close */
static _Thread_local timer_t responder_timer;  /* its own, for when the closer's queue is full */
static _Thread_local bool responder_timer_ready, responder_timer_failed;

/* ---- the closer thread ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int *queue;
static size_t queued, cap;
static bool closer_started;
static timer_t guard; /* the caller's own, for when the closer's queue is full */
static bool guard_ready, guard_failed;

static void on_signal(int sig) { (void)sig; /* only interrupts the close in progress */ }

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool install_signal(void) {
  if (signal_ready) return true;
  close_signal = SIGRTMAX - 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(close_signal, &sa, NULL) < 0) return false;
  call_signal = SIGRTMAX - 2;
  sa.sa_flags = 0; /* no SA_RESTART: the interrupted call must return */
  if (sigaction(call_signal, &sa, NULL) < 0) return false;
  sigemptyset(&call_set);
  sigaddset(&call_set, call_signal);
  sigemptyset(&close_set);
  sigaddset(&close_set, close_signal);
  /* Blocked on the caller's thread (and on the watchdog, which inherits the mask) except
   * during a bounded call. */
  if (pthread_sigmask(SIG_BLOCK, &call_set, NULL) != 0) return false;
  signal_ready = true;
  return true;
}

/* Whether a responder thread is closing; signal: interrupts each close past BOUND_NS. */
static bool responders_closing(bool signal) {
  bool any = false;
  for (int i = 0; i < atomic_load(&nresponders) && i < SW_RESPONDERS_MAX; i++) {
    long long t = atomic_load(&responders[i].since);
    if (signal && t != 0 && now_ns() - t > BOUND_NS) pthread_kill(responders[i].thread, close_signal);
    any = any || t != 0;
  }
  return any;
}

static void *watchdog_main(void *arg) {
  (void)arg;
  unsigned long seen = atomic_load(&closes);
  int idle = 0;
  const struct timespec step = {.tv_sec = 0, .tv_nsec = POLL_NS};
  for (;;) {
    long long since = atomic_load(&closing_since);
    if (since != 0 && now_ns() - since > BOUND_NS) pthread_kill(guarded, close_signal);
    long long call = atomic_load(&calling_since);
    if (call != 0 && now_ns() - call > BOUND_NS) pthread_kill(guarded, call_signal);
    bool r = responders_closing(true);
    unsigned long n = atomic_load(&closes);
    idle = n == seen && since == 0 && call == 0 && !r ? idle + 1 : 0;
    seen = n;
    if (idle < IDLE_POLLS) {
      nanosleep(&step, NULL);
      continue;
    }
    /* Nothing for a while: sleep until a close starts (closeShared wakes us). */
    atomic_store(&asleep, 1);
    if (atomic_load(&closing_since) == 0 && atomic_load(&calling_since) == 0 && !responders_closing(false) &&
        atomic_load(&closes) == seen)
      syscall(SYS_futex, &asleep, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
    atomic_store(&asleep, 0);
    idle = 0;
  }
  return NULL;
}

/* Starts a detached thread with a small stack running fn; false if it cannot. */
static bool start_thread(void *(*fn)(void *)) {
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  bool ok = pthread_create(&t, &attr, fn, NULL) == 0;
  pthread_attr_destroy(&attr);
  return ok;
}

/* Starts the watchdog for the calling thread once; false if it cannot run. */
static bool watchdog_ready(void) {
  if (watchdog_started) return pthread_equal(guarded, pthread_self());
  if (watchdog_failed || !install_signal()) return false;
  guarded = pthread_self();
  watchdog_started = start_thread(watchdog_main);
  watchdog_failed = !watchdog_started;
  return watchdog_started;
}

/* Wakes the watchdog if it sleeps, clearing the word first: one about to wait then does not. */
static void wake_watchdog(void) {
  if (atomic_exchange(&asleep, 0)) syscall(SYS_futex, &asleep, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* The watchdog times what starts now (since: closing_since or calling_since); wakes it if asleep. */
static void watch_from_now(_Atomic long long *since) {
  atomic_store(since, now_ns());
  wake_watchdog();
}

/* What watch_from_now started has ended (errno is kept: atomics do not touch it). */
static void watch_done(_Atomic long long *since) {
  atomic_store(since, 0);
  atomic_fetch_add(&closes, 1);
}

/* close(fd) under the watchdog. */
static int watched_close(int fd) {
  watch_from_now(&closing_since);
  int rc = close(fd);
  watch_done(&closing_since);
  return rc;
}

/* Starts a bounded call on the daemon's thread (see the top); false (nothing to end) when the
 * watchdog cannot run here or this is another thread: the call then runs unbounded. */
bool sw_bounded_begin(void) {
  if (!watchdog_ready()) return false;
  pthread_sigmask(SIG_UNBLOCK, &call_set, NULL);
  watch_from_now(&calling_since);
  return true;
}

/* Ends a bounded call begun with sw_bounded_begin; errno is kept. */
void sw_bounded_end(void) {
  watch_done(&calling_since);
  int err = errno;
  pthread_sigmask(SIG_BLOCK, &call_set, NULL);
  errno = err;
}

bool sw_watchdog_start(void) { return watchdog_ready(); } /* the event loop's thread (common.h) */

/* A responder's thread (every signal blocked) under the watchdog too (common.h). */
void sw_responder_guard(void) {
  int slot = responder_slot < 0 ? atomic_fetch_add(&nresponders, 1) : SW_RESPONDERS_MAX;
  if (slot >= SW_RESPONDERS_MAX) return; /* responder.c makes no more threads than that */
  responders[slot].thread = pthread_self(); /* read by the watchdog once since is set */
  responder_slot = slot;
}

/* A one-shot timer that signals the calling thread; false if it cannot be made. */
static bool thread_timer(timer_t *t) {
  if (!install_signal()) return false;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = close_signal;
  ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  return timer_create(CLOCK_MONOTONIC, &ev, t) == 0;
}

/* close(fd) with the thread's timer armed for ns: a lingering close ends after that. */
static int timed_close(timer_t t, long ns, int fd) {
  /* Periodic: a signal that lands before the close begins (the thread was preempted) is
   * followed by another while the close lasts. */
  const struct itimerspec arm = {.it_value = {.tv_sec = 0, .tv_nsec = ns}, .it_interval = {.tv_sec = 0, .tv_nsec = ns}};
  const struct itimerspec disarm = {0};
  timer_settime(t, 0, &arm, NULL);
  int rc = close(fd);
  int err = errno;
  timer_settime(t, 0, &disarm, NULL);
  errno = err;
  return rc;
}

static void *closer_main(void *arg) {
  (void)arg;
  timer_t timer;
  bool timed = thread_timer(&timer);
  int batch[256];
  for (;;) {
    pthread_mutex_lock(&lock);
    while (queued == 0) pthread_cond_wait(&wake, &lock);
    size_t n = queued < 256 ? queued : 256;
    memcpy(batch, queue, n * sizeof *batch);
    memmove(queue, queue + n, (queued - n) * sizeof *queue);
    queued -= n;
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++) (void)(timed ? timed_close(timer, GUARD_NS, batch[i]) : close(batch[i]));
  }
  return NULL;
}

/* Hands fd to the closer thread (started on first use); false if it cannot take it now. */
static bool queue_close(int fd) {
  if (!closer_started && !(install_signal() && (closer_started = start_thread(closer_main)))) return false;
  pthread_mutex_lock(&lock);
  bool taken = false;
  struct rlimit rl;
  size_t max = QUEUE_MAX;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur / 4 < max) max = (size_t)(rl.rlim_cur / 4);
  if (queued < max) {
    if (queued == cap) {
      size_t ncap = cap ? cap * 2 : 256;
      int *q = realloc(queue, ncap * sizeof *q);
      if (q != NULL) {
        queue = q;
        cap = ncap;
      }
    }
    if (queued < cap) {
      queue[queued++] = fd;
      pthread_cond_signal(&wake);
      taken = true;
    }
  }
  pthread_mutex_unlock(&lock);
  return taken;
}

/* What closing fd may wait on: nothing (UDP, UNIX, netlink), a linger (TCP), or anything. */
enum kind { AT_ONCE, TCP, OTHER };
static enum kind kind_of(int fd) {
  int v;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0) return OTHER; /* not a socket */
  if (v == AF_UNIX || v == AF_NETLINK) return AT_ONCE;
  if (v != AF_INET && v != AF_INET6) return OTHER;
  len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0) return OTHER;
  return v == IPPROTO_UDP ? AT_ONCE : v == IPPROTO_TCP ? TCP : OTHER;
}

static bool lingers(int fd) {
  struct linger l;
  socklen_t len = sizeof l;
  return getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) < 0 || (l.l_onoff && l.l_linger > 0);
}

/*
 * closeShared(fd, 1) for a responder's thread, which blocks every signal (an ADDFD with
 * FLAG_SEND must never be interrupted: seccomp_unotify(2), answered 0 and no fd): close_signal
 * is unblocked for the close only, and one that comes late waits for the next close. A
 * lingering socket goes to the closer thread, or under the thread's own timer when its queue
 * is full; else the watchdog signals the close for as long as it lasts past BOUND_NS.
 */
int sw_responder_close_tcp(int fd) {
  if (responder_slot < 0) return queue_close(fd) ? 0 : close(fd); /* not such a thread */
  bool linger = lingers(fd);
  if (linger && queue_close(fd)) return 0;
  if (linger && !responder_timer_ready && !responder_timer_failed) {
    responder_timer_ready = thread_timer(&responder_timer);
    responder_timer_failed = !responder_timer_ready;
  }
  pthread_sigmask(SIG_UNBLOCK, &close_set, NULL);
  int rc;
  if (linger && responder_timer_ready) {
    rc = timed_close(responder_timer, GUARD_NS, fd);
  } else {
    watch_from_now(&responders[responder_slot].since);
    rc = close(fd);
    watch_done(&responders[responder_slot].since);
  }
  int err = errno;
  pthread_sigmask(SIG_BLOCK, &close_set, NULL);
  errno = err;
  return rc;
}

/*
 * closeShared(fd[, tcp]) -> 0 | -errno. Closes a descriptor the daemon shares with an app
 * without waiting on it for more than about BOUND_NS (see above); the descriptor is gone
 * from the caller's point of view at once. tcp = 1: the caller made fd as a TCP socket
 * itself (its domain and protocol are not asked again; SO_LINGER still is).
 */
static napi_value closer_close_shared(napi_env env, napi_callback_info info) {
  static const char usage[] = "closeShared(fd, tcp)";
  sw_args a;
  int32_t fd, tcp = 0;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &fd)) return NULL;
  if (a.argc > 1 && !sw_i32(&a, 1, &tcp)) return NULL;
  if (fd < 0) return sw_num(env, -EBADF);
  enum kind k = tcp ? TCP : kind_of(fd);
  if (k == AT_ONCE) return sw_ret(env, close(fd));
  if (k == TCP && !lingers(fd) && watchdog_ready()) return sw_ret(env, watched_close(fd));
  if (queue_close(fd)) return sw_num(env, 0);
  /* The closer is busy (or cannot run): close here, bounded by a timer of our own. */
  if (!guard_ready && !guard_failed) {
    guard_ready = thread_timer(&guard);
    guard_failed = !guard_ready;
  }
  return sw_ret(env, guard_ready ? timed_close(guard, GUARD_NS, fd) : close(fd));
}

/* closesPending() -> descriptors queued for the closer thread and not yet closed. */
static napi_value closer_pending(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&lock);
  size_t n = queued;
  pthread_mutex_unlock(&lock);
  return sw_num(env, (int64_t)n);
}

const sw_export sw_closer_exports[] = {
    {"closeShared", closer_close_shared},
    {"closesPending", closer_pending},
    {NULL, NULL},
};
