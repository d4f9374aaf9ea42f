/*
 * responder.c: the socket responder, threads that answer the apps' socket(2) calls on the
 * bpf datapath away from the event loop.
 *
 * Responsible for responderStart, responderAdd and responderRemove. On the bpf datapath an
 * app's socket() is the one call trapped per connection. Answered on the event loop it cost
 * about 46 us a call on a 2-CPU VM (epoll, poll, RECV, a return to JavaScript, socket, the
 * stamp, a signal-masked ADDFD, close: eleven system calls), against about 27 us for the
 * kernel's round trip alone (bench/tools/notif-rtt.c), and the event loop's CPU time per
 * call was what the connection rate paid for.
 *
 * Each thread serves up to GROUP_MAX listeners TypeScript gave it, and waits on them with
 * poll(2), not epoll: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (set on every listener) wakes a
 * poll waiter on the trapping thread's CPU, and the ADDFD that answers wakes that thread on
 * the same CPU, where epoll's wake-up of its own waiter drops the flag and lets the scheduler
 * move the thread to the other CPU (an inter-processor interrupt each way, costly on a VM).
 * Measured (bench crr, bpf, 2-CPU VM): 9,700-10,000 connections/s against 7,100-9,000 with
 * epoll. Threads start as apps come (SW_RESPONDERS_MAX at most; past that TypeScript serves
 * an app on the event loop). For each listener with a call pending (POLLIN: RECV then does
 * not block, as only this thread receives on it), a thread receives one call per turn
 * (fairness, as the event loop's supervisor). A socket() it can answer itself it answers
 * (answer.c); every other call, and such a socket() when a step fails, goes to JavaScript as
 * it was received (kind CALL), where the handler of the call answers it. A listener that
 * hangs up (the app's last task is gone) or fails is reported once (kind GONE) and left out
 * of the set. Which apps the threads serve, and what their sockets are stamped with,
 * TypeScript decides (src/trap/responder.ts): nothing here is policy.
 *
 * The threads block every signal (closer.c unblocks its own around a close), so nothing
 * interrupts an ADDFD with FLAG_SEND (seccomp_unotify(2): once interrupted, the call would be
 * answered with 0). responderRemove waits for the call being served, never longer; a poll
 * that still names a removed listener's fd (closed meanwhile, or its number reused) finds
 * the slot no longer live and polls again. Leans on seccomp_unotify(2), poll(2), eventfd(2)
 * and the Node-API threadsafe functions.
 */
#include "common.h"

#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define VALUE_MAX 64
#define KIND_CALL 1
#define KIND_GONE 2
/* Listeners per thread: poll(2) registers on each at every wait, so the wait's cost grows
 * with them; SW_RESPONDERS_MAX threads (common.h) serve at most that many times this. */
#define GROUP_MAX 16

struct entry {
  bool used;
  bool gone;      /* reported GONE and out of the poll set */
  uint32_t gen;   /* bumped at each use of the slot: a stale poll result is ignored */
  uint32_t token; /* TypeScript's name for the app */
  int fd;         /* the app's seccomp listener */
  int map_fd;     /* the socket storage map the stamp goes to */
  uint8_t value[VALUE_MAX];
};

/* A thread and the listeners it serves. */
struct group {
  pthread_t thread;
  int pokefd;   /* eventfd: its set changed, or the daemon ends */
  ssize_t busy; /* the slot being served, -1: none */
  struct entry entries[GROUP_MAX];
};

struct message {
  int kind;
  uint32_t token;
  int32_t err;
  uint32_t words[SW_NOTIF_WORDS];
};

/* The groups, held only to look an entry up or change one: a call is served on a copy, and
 * responderRemove waits (idle) until the thread no longer serves the entry it removes. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static struct group *groups[SW_RESPONDERS_MAX];
static size_t ngroups;
static bool started, stopping;
static napi_threadsafe_function tsfn;

/* Hands a message to JavaScript; false if it could not be queued (the daemon is ending). */
static bool post(int kind, uint32_t token, int err, const struct seccomp_notif *n) {
  struct message *m = calloc(1, sizeof *m);
  if (m == NULL) return false;
  m->kind = kind;
  m->token = token;
  m->err = err;
  if (n != NULL) sw_notif_words(n, m->words);
  if (napi_call_threadsafe_function(tsfn, m, napi_tsfn_nonblocking) != napi_ok) {
    free(m);
    return false;
  }
  return true;
}

/* Wakes g's thread out of its wait: it then reads its set again. */
static void poke(struct group *g) {
  uint64_t one = 1;
  (void)!write(g->pokefd, &one, sizeof one);
}

/* One call of e's app (a copy): answered here, or handed to JavaScript; -1, or the errno
 * with which the listener failed. */
static int serve_one(const struct entry *e) {
  union {
    struct seccomp_notif n;
    unsigned char raw[512];
  } buf;
  size_t sz = sw_notif_size();
  if (sz > sizeof buf.raw) return EOVERFLOW;
  memset(buf.raw, 0, sz);
  if (ioctl(e->fd, SECCOMP_IOCTL_NOTIF_RECV, &buf.n) != 0)
    return errno == ENOENT || errno == EINTR ? -1 : errno; /* ENOENT: its thread went meanwhile */
  if (sw_answer_socket(e->fd, e->map_fd, e->value, &buf.n)) return -1;
  if (!post(KIND_CALL, e->token, 0, &buf.n)) {
    /* The daemon is ending: the call fails as the kernel fails it once nobody listens. */
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = buf.n.id;
    resp.error = -ENOSYS;
    ioctl(e->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  return -1;
}

/* Serves what poll found on slot (as of generation gen) of g. */
static void serve_slot(struct group *g, size_t slot, uint32_t gen, short revents) {
  struct entry job;
  pthread_mutex_lock(&mu);
  struct entry *e = &g->entries[slot];
  bool live = e->used && !e->gone && e->gen == gen;
  if (live) {
    job = *e;
    g->busy = (ssize_t)slot;
  }
  pthread_mutex_unlock(&mu);
  if (!live) return;
  int err = -1; /* -1: served; else the listener is gone (0: hung up) */
  if (revents & POLLIN)
    err = serve_one(&job);
  else if (revents & (POLLHUP | POLLERR | POLLNVAL))
    err = 0;
  pthread_mutex_lock(&mu);
  g->busy = -1;
  pthread_cond_broadcast(&idle);
  if (err >= 0 && e->used && !e->gone && e->gen == gen) {
    e->gone = true;
    post(KIND_GONE, e->token, err, NULL);
  }
  pthread_mutex_unlock(&mu);
}

static void *responder_main(void *arg) {
  struct group *g = arg;
  pthread_setname_np(pthread_self(), "ssw-responder"); /* as ps -L and /proc/PID/task/TID/comm show it */
  sw_responder_guard();
  struct pollfd fds[GROUP_MAX + 1];
  uint64_t keys[GROUP_MAX + 1];
  for (;;) {
    int n = 1;
    fds[0] = (struct pollfd){.fd = g->pokefd, .events = POLLIN};
    pthread_mutex_lock(&mu);
    bool stop = stopping;
    for (size_t i = 0; i < GROUP_MAX; i++) {
      const struct entry *e = &g->entries[i];
      if (!e->used || e->gone) continue;
      fds[n] = (struct pollfd){.fd = e->fd, .events = POLLIN};
      keys[n++] = ((uint64_t)e->gen << 32) | i;
    }
    pthread_mutex_unlock(&mu);
    if (stop) return NULL;
    if (poll(fds, (nfds_t)n, -1) < 0) {
      /* ENOMEM (the kernel's poll table): again after a millisecond, never given up. */
      const struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
      if (errno != EINTR) nanosleep(&ms, NULL);
      continue;
    }
    uint64_t pokes;
    if (fds[0].revents & POLLIN) (void)!read(g->pokefd, &pokes, sizeof pokes);
    for (int i = 1; i < n; i++)
      if (fds[i].revents != 0) serve_slot(g, (size_t)(keys[i] & 0xffffffffu), (uint32_t)(keys[i] >> 32), fds[i].revents);
  }
}

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  struct message *m = data;
  if (env == NULL || cb == NULL) {
    free(m);
    return;
  }
  napi_value argv[4], undefined, ab;
  void *bytes;
  napi_get_undefined(env, &undefined);
  napi_create_int32(env, m->kind, &argv[0]);
  napi_create_uint32(env, m->token, &argv[1]);
  napi_create_int32(env, m->err, &argv[2]);
  argv[3] = undefined;
  if (m->kind == KIND_CALL && napi_create_arraybuffer(env, sizeof m->words, &bytes, &ab) == napi_ok) {
    memcpy(bytes, m->words, sizeof m->words);
    napi_create_typedarray(env, napi_uint32_array, SW_NOTIF_WORDS, ab, 0, &argv[3]);
  }
  free(m);
  napi_call_function(env, undefined, cb, 4, argv, NULL);
}

static void on_env_cleanup(void *arg) {
  (void)arg;
  if (!started) return;
  pthread_mutex_lock(&mu);
  stopping = true;
  size_t n = ngroups;
  pthread_mutex_unlock(&mu);
  for (size_t i = 0; i < n; i++) {
    poke(groups[i]);
    pthread_join(groups[i]->thread, NULL);
  }
  napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  started = false;
}

/*
 * responderStart(callback) -> 0 | -errno. Readies the responder (once per process: -EALREADY
 * after); its threads start as apps are added. callback(kind, token, errno, words): kind 1
 * (CALL): a call of app token as received, words as notifRecv gives them; kind 2 (GONE): the
 * app's listener hung up (errno 0) or failed (errno), and no thread watches it any more.
 * -EPERM: the close watchdog cannot run here.
 */
static napi_value responder_start(napi_env env, napi_callback_info info) {
  static const char usage[] = "responderStart(callback)";
  sw_args a;
  if (!sw_get_args(env, info, &a, usage, 1)) return NULL;
  napi_valuetype t;
  napi_typeof(env, a.argv[0], &t);
  if (t != napi_function) {
    sw_type_error(&a, 0, "must be a function");
    return NULL;
  }
  if (started) return sw_num(env, -EALREADY);
  if (!sw_watchdog_start()) return sw_num(env, -EPERM);
  napi_value name;
  napi_create_string_utf8(env, "sockswitch socket responder", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, a.argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &tsfn) !=
      napi_ok)
    return sw_num(env, -ENOMEM);
  napi_unref_threadsafe_function(env, tsfn); /* the daemon's servers keep it alive, not this */
  started = true;
  napi_add_env_cleanup_hook(env, on_env_cleanup, NULL);
  return sw_num(env, 0);
}

/* A new group and its thread, every signal blocked on it (closer.c unblocks its own for a
 * close); NULL and errno if either cannot be made. Called with mu held. */
static struct group *group_new(void) {
  struct group *g = calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->busy = -1;
  g->pokefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g->pokefd < 0) {
    free(g);
    return NULL;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  int rc = pthread_create(&g->thread, &attr, responder_main, g);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    close(g->pokefd);
    free(g);
    errno = rc;
    return NULL;
  }
  return g;
}

/*
 * responderAdd(listenerFd, mapFd, value: Uint8Array, token) -> 0 | -errno. A thread serves
 * the listener's calls from now on (nothing else may receive on it): socket()s it answers
 * are stamped with value (at most 64 bytes, the map's value size) in map mapFd. -ENOTCONN:
 * not started; -EEXIST: token is taken; -EAGAIN: every thread there may be serves its most
 * listeners already (SW_RESPONDERS_MAX x GROUP_MAX); -ENOMEM, -EMFILE: a thread could not be
 * made.
 */
static napi_value responder_add(napi_env env, napi_callback_info info) {
  static const char usage[] = "responderAdd(listenerFd, mapFd, value, token)";
  sw_args a;
  int32_t fd, map_fd;
  uint8_t *value;
  size_t len;
  uint32_t token;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &map_fd) ||
      !sw_bytes(&a, 2, &value, &len) || !sw_u32(&a, 3, &token))
    return NULL;
  if (len == 0 || len > VALUE_MAX) {
    sw_type_error(&a, 2, "must be 1 to 64 bytes");
    return NULL;
  }
  if (!started) return sw_num(env, -ENOTCONN);
  pthread_mutex_lock(&mu);
  struct entry *e = NULL;
  struct group *g = NULL;
  for (size_t i = 0; i < ngroups; i++)
    for (size_t j = 0; j < GROUP_MAX; j++) {
      struct entry *x = &groups[i]->entries[j];
      if (x->used && x->token == token) {
        pthread_mutex_unlock(&mu);
        return sw_num(env, -EEXIST);
      }
      if (!x->used && e == NULL) {
        e = x;
        g = groups[i];
      }
    }
  int err = 0;
  if (e == NULL && ngroups == SW_RESPONDERS_MAX) {
    err = EAGAIN;
  } else if (e == NULL) {
    g = group_new();
    if (g == NULL) {
      err = errno == EAGAIN ? ENOMEM : errno;
    } else {
      groups[ngroups++] = g;
      e = &g->entries[0];
    }
  }
  if (e != NULL) {
    e->gen++;
    e->used = true;
    e->gone = false;
    e->token = token;
    e->fd = fd;
    e->map_fd = map_fd;
    memcpy(e->value, value, len);
    poke(g);
  }
  pthread_mutex_unlock(&mu);
  return sw_num(env, -err);
}

/*
 * responderRemove(token) -> 0 | -ENOENT. Once it returns no thread uses the app's listener
 * (it may be closed); a call handed over before may still be queued for the callback.
 */
static napi_value responder_remove(napi_env env, napi_callback_info info) {
  static const char usage[] = "responderRemove(token)";
  sw_args a;
  uint32_t token;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_u32(&a, 0, &token)) return NULL;
  int r = -ENOENT;
  pthread_mutex_lock(&mu);
  for (size_t i = 0; i < ngroups; i++)
    for (size_t j = 0; j < GROUP_MAX; j++) {
      struct entry *e = &groups[i]->entries[j];
      if (!e->used || e->token != token) continue;
      e->used = false;
      poke(groups[i]); /* its thread polls again without the listener */
      while (groups[i]->busy == (ssize_t)j) pthread_cond_wait(&idle, &mu);
      r = 0;
    }
  pthread_mutex_unlock(&mu);
  return sw_num(env, r);
}

const sw_export sw_responder_exports[] = {
    {"responderStart", responder_start},
    {"responderAdd", responder_add},
    {"responderRemove", responder_remove},
    {NULL, NULL},
};
