/*
 * closer.c: closing descriptors the daemon shares with an app, off the event loop.
 *
 * Responsible for closeShared. The daemon's duplicate of an app's socket (a
 * pidfd_getfd copy, or a socket it installed in the app) may be the last reference
 * when the daemon closes it: the app closed its own, or exited. For a TCP socket with
 * SO_LINGER on and data or a FIN not yet acknowledged, that last close() sleeps in
 * tcp_close() for up to the linger time (sk_stream_wait_close; up to about 68 years),
 * and a file's close can wait on its filesystem (->flush). The app sets all of that,
 * so such closes never run on Node's thread: they go to one thread of their own (the
 * pattern of node-pty's exit watcher), which closes them in order. Waking that thread for
 * every close would cost each trapped call a cross-CPU wake-up, so it is woken once per
 * batch: by a timer on the event loop FLUSH_MS after the first close queued, or at once
 * when FLUSH_COUNT are queued (a descriptor stays open that much longer). Each close there is
 * bounded: a per-thread timer (timer_create with SIGEV_THREAD_ID) sends the thread a
 * signal after CLOSE_BOUND_NS, which ends the linger wait (it sleeps interruptibly and
 * stops on a pending signal); the socket is then orphaned exactly as after a close
 * without SO_LINGER, and the kernel still sends what is queued. UDP, UNIX and netlink
 * sockets never wait in close(2) and are closed at once, on the caller's thread.
 * Leans on close(2), socket(7) (SO_LINGER), timer_create(2), sigaction(2),
 * pthread_cond_wait(3).
 */
#include "common.h"

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* The longest the closer thread lets one close wait before interrupting it. */
#define CLOSE_BOUND_NS (2L * 1000 * 1000)
/* How long a queued close may wait for its batch, and how many make a batch at once. */
#define FLUSH_MS 1
#define FLUSH_COUNT 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int *queue;
static size_t queued, cap;
static bool started;
static int close_signal;
static uv_timer_t flush_timer; /* on the main thread's loop */
static bool flush_armed;

static void on_signal(int sig) { (void)sig; /* only interrupts the close in progress */ }

static void *closer_main(void *arg) {
  (void)arg;
  timer_t timer;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = close_signal;
  ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  bool timed = timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, close_signal);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  const struct itimerspec arm = {.it_value = {.tv_sec = 0, .tv_nsec = CLOSE_BOUND_NS}};
  const struct itimerspec disarm = {0};
  int batch[256];
  for (;;) {
    pthread_mutex_lock(&lock);
    while (queued == 0) pthread_cond_wait(&wake, &lock);
    size_t n = queued < 256 ? queued : 256;
    memcpy(batch, queue, n * sizeof *batch);
    memmove(queue, queue + n, (queued - n) * sizeof *queue);
    queued -= n;
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++) {
      if (timed) timer_settime(timer, 0, &arm, NULL);
      close(batch[i]);
      if (timed) timer_settime(timer, 0, &disarm, NULL);
    }
  }
  return NULL;
}

static void wake_closer(void) {
  pthread_mutex_lock(&lock);
  if (queued > 0) pthread_cond_signal(&wake);
  pthread_mutex_unlock(&lock);
}

static void on_flush(uv_timer_t *t) {
  (void)t;
  flush_armed = false;
  wake_closer();
}

/*
 * Starts the closer thread once; false if it cannot run (the caller then closes inline).
 * Only the main thread's environment uses it (the daemon loads the addon once).
 */
static bool ensure_started(napi_env env) {
  static bool failed;
  if (started) return true;
  if (failed) return false;
  failed = true; /* until everything below has worked */
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_timer_init(loop, &flush_timer) != 0) return false;
  uv_unref((uv_handle_t *)&flush_timer);
  close_signal = SIGRTMAX - 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART; /* other threads' calls restart; the linger wait ends regardless */
  sigemptyset(&sa.sa_mask);
  if (sigaction(close_signal, &sa, NULL) < 0) return false;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  started = pthread_create(&t, &attr, closer_main, NULL) == 0;
  pthread_attr_destroy(&attr);
  failed = !started;
  return started;
}

/* True for sockets whose close(2) never waits: UDP, UNIX, netlink. */
static bool closes_at_once(int fd) {
  int v;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0) return false; /* not a socket */
  if (v == AF_UNIX || v == AF_NETLINK) return true;
  if (v != AF_INET && v != AF_INET6) return false;
  len = sizeof v;
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 && v == IPPROTO_UDP;
}

/*
 * closeShared(fd) -> 0 | -errno. Closes a descriptor the daemon shares with an app
 * without ever waiting on it: at once when its close cannot wait, else on the closer
 * thread (the descriptor is gone from the caller's point of view either way).
 */
static napi_value closer_close_shared(napi_env env, napi_callback_info info) {
  static const char usage[] = "closeShared(fd)";
  sw_args a;
  int32_t fd;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &fd)) return NULL;
  if (fd < 0) return sw_num(env, -EBADF);
  if (closes_at_once(fd) || !ensure_started(env)) return sw_ret(env, close(fd));
  pthread_mutex_lock(&lock);
  if (queued == cap) {
    size_t ncap = cap ? cap * 2 : 256;
    int *q = realloc(queue, ncap * sizeof *q);
    if (q == NULL) {
      pthread_mutex_unlock(&lock);
      return sw_ret(env, close(fd)); /* out of memory: better a wait than a leak */
    }
    queue = q;
    cap = ncap;
  }
  queue[queued++] = fd;
  bool now = queued >= FLUSH_COUNT;
  if (now) pthread_cond_signal(&wake);
  pthread_mutex_unlock(&lock);
  if (!now && !flush_armed) {
    flush_armed = true;
    uv_timer_start(&flush_timer, on_flush, FLUSH_MS, 0);
  }
  return sw_num(env, 0);
}

/* closesPending() -> descriptors queued and not yet closed (for tests and the log). */
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
