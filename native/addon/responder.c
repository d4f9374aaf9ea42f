/*
 * responder.c: the socket responder, a thread that answers the apps' socket(2) calls on the
 * bpf datapath away from the event loop.
 *
 * Responsible for responderStart, responderAdd and responderRemove. On the bpf datapath an
 * app's socket() is the one call trapped per connection. Answered on the event loop it cost
 * about 46 us a call on a 2-CPU VM (epoll, poll, RECV, a return to JavaScript, socket, the
 * stamp, a signal-masked ADDFD, close: eleven system calls), against about 27 us for the
 * kernel's round trip alone (bench/tools/notif-rtt.c), and the event loop's CPU time per
 * call was what the connection rate paid for.
 *
 * The thread waits on an epoll set of its own holding the listeners TypeScript gave it. For
 * each listener with a call pending (EPOLLIN of this set: SECCOMP_IOCTL_NOTIF_RECV then does
 * not block, as only this thread receives on it), it receives one call per turn (fairness,
 * as the event loop's supervisor). A socket() with arguments the daemon serves by making a
 * socket (AF_INET or AF_INET6; SOCK_STREAM with protocol 0 or IPPROTO_TCP, SOCK_DGRAM with
 * 0 or IPPROTO_UDP) is answered here as src/trap/socket.ts answers it: the same socket(2) in
 * the daemon's network namespace, stamped with the bytes TypeScript gave for the app (an
 * update of the socket storage map it named, keyed by the fd), installed with ADDFD and
 * FLAG_SEND, and the daemon's copy closed (a TCP one bounded in time: closer.c). Every other
 * call, and such a socket() when any step fails, goes to JavaScript as it was received
 * (kind CALL), where the handler of the call answers it (socket.ts makes the socket again
 * and answers with the errno, or logs why it refused). A listener that hangs up (the app's
 * last task is gone) or fails is reported once (kind GONE) and left out of the set. Which
 * apps the thread serves, and what their sockets are stamped with, TypeScript decides
 * (src/trap/responder.ts): nothing here is policy.
 *
 * The thread blocks every signal (closer.c unblocks its own around a close), so nothing
 * interrupts an ADDFD with FLAG_SEND (seccomp_unotify(2): once interrupted, the call would be
 * answered with 0). responderRemove waits for the call being served, never longer.
 * Leans on seccomp_unotify(2), epoll(7), bpf(2) (BPF_MAP_UPDATE_ELEM on a
 * BPF_MAP_TYPE_SK_STORAGE map), socket(2), eventfd(2) and the Node-API threadsafe functions.
 */
#include "common.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VALUE_MAX 64
#define KIND_CALL 1
#define KIND_GONE 2
#define STOP_KEY UINT64_MAX

struct entry {
  bool used;
  bool gone;      /* reported GONE and out of the epoll set */
  uint32_t gen;   /* bumped at each use of the slot: a stale epoll event is ignored */
  uint32_t token; /* TypeScript's name for the app */
  int fd;         /* the app's seccomp listener */
  int map_fd;     /* the socket storage map the stamp goes to */
  uint32_t value_len;
  uint8_t value[VALUE_MAX];
};

struct message {
  int kind;
  uint32_t token;
  int32_t err;
  uint32_t words[SW_NOTIF_WORDS];
};

/* The entries, held only to look one up or change one: a call is served on a copy, and
 * responderRemove waits (idle) until the thread no longer serves the entry it removes. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static struct entry *entries;
static size_t nentries;
static ssize_t busy = -1; /* the slot being served */
static int epfd = -1, stopfd = -1;
static bool started;
static pthread_t thread;
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

static void gone(struct entry *e, int err) {
  e->gone = true;
  epoll_ctl(epfd, EPOLL_CTL_DEL, e->fd, NULL);
  post(KIND_GONE, e->token, err, NULL);
}

/* Answers a socket() of e's app as socket.ts would; false: JavaScript answers it. */
static bool answer_socket(const struct entry *e, const struct seccomp_notif *n) {
  if (n->data.nr != SYS_socket) return false;
  int domain = (int)(uint32_t)n->data.args[0];
  int type = (int)(uint32_t)n->data.args[1];
  int protocol = (int)(uint32_t)n->data.args[2];
  int kind = type & 0xf;
  if (domain != AF_INET && domain != AF_INET6) return false;
  bool tcp = kind == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
  bool udp = kind == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
  if (!tcp && !udp) return false;
  int fd = socket(domain, type, protocol);
  if (fd < 0) return false;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)e->map_fd;
  attr.key = (uint64_t)(uintptr_t)&fd;
  attr.value = (uint64_t)(uintptr_t)e->value;
  attr.flags = BPF_ANY;
  if (syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, &attr, sizeof attr) != 0) {
    close(fd);
    return false;
  }
  struct seccomp_notif_addfd add;
  memset(&add, 0, sizeof add);
  add.id = n->id;
  add.flags = SECCOMP_ADDFD_FLAG_SEND;
  add.srcfd = (uint32_t)fd;
  add.newfd_flags = (type & SOCK_CLOEXEC) ? O_CLOEXEC : 0;
  int r = ioctl(e->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
  int err = errno;
  if (tcp)
    sw_responder_close_tcp(fd);
  else
    close(fd);
  if (r < 0 && err != ENOENT) {
    /* Not installed (e.g. EMFILE in the app): the call is the daemon's to answer still. */
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = n->id;
    resp.error = -err;
    ioctl(e->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  return true;
}

/* One call of e's app (a copy): answered here, or handed to JavaScript; -1, or the errno
 * with which the listener failed. */
static int serve_one(const struct entry *e) {
  static union {
    struct seccomp_notif n;
    unsigned char raw[512];
  } buf;
  size_t sz = sw_notif_size();
  if (sz > sizeof buf.raw) return EOVERFLOW;
  memset(buf.raw, 0, sz);
  if (ioctl(e->fd, SECCOMP_IOCTL_NOTIF_RECV, &buf.n) != 0)
    return errno == ENOENT || errno == EINTR ? -1 : errno; /* ENOENT: its thread went meanwhile */
  if (answer_socket(e, &buf.n)) return -1;
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

static void *responder_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "ssw-responder"); /* as ps -L and /proc/PID/task/TID/comm show it */
  sw_responder_guard();
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL; /* EBADF etc.: only at the end */
    }
    for (int i = 0; i < n; i++) {
      uint64_t key = evs[i].data.u64;
      if (key == STOP_KEY) return NULL;
      size_t slot = (size_t)(key & 0xffffffffu);
      uint32_t gen = (uint32_t)(key >> 32);
      struct entry job;
      pthread_mutex_lock(&mu);
      bool live = slot < nentries && entries[slot].used && !entries[slot].gone && entries[slot].gen == gen;
      if (live) {
        job = entries[slot];
        busy = (ssize_t)slot;
      }
      pthread_mutex_unlock(&mu);
      if (!live) continue;
      int err = -1; /* -1: served; else the listener is gone (0: hung up) */
      if (evs[i].events & EPOLLIN)
        err = serve_one(&job);
      else if (evs[i].events & (EPOLLHUP | EPOLLERR))
        err = 0;
      pthread_mutex_lock(&mu);
      busy = -1;
      pthread_cond_broadcast(&idle);
      struct entry *e = &entries[slot];
      if (err >= 0 && e->used && !e->gone && e->gen == gen) gone(e, err);
      pthread_mutex_unlock(&mu);
    }
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
  uint64_t one = 1;
  if (write(stopfd, &one, sizeof one) == sizeof one) pthread_join(thread, NULL);
  napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  started = false;
}

/*
 * responderStart(callback) -> 0 | -errno. Starts the thread (once per process: -EALREADY
 * after). callback(kind, token, errno, words): kind 1 (CALL): a call of app token as received,
 * words as notifRecv gives them; kind 2 (GONE): the app's listener hung up (errno 0) or failed
 * (errno), and the thread no longer watches it. -EPERM: the close watchdog cannot run here.
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
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return sw_num(env, -errno);
  stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_KEY};
  if (stopfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, stopfd, &ev) < 0) goto fail;
  napi_value name;
  napi_create_string_utf8(env, "sockswitch socket responder", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, a.argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &tsfn) !=
      napi_ok) {
    errno = ENOMEM;
    goto fail;
  }
  napi_unref_threadsafe_function(env, tsfn); /* the daemon's servers keep it alive, not this */
  /* Every signal blocked on the thread (closer.c unblocks its own for a close). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int rc = pthread_create(&thread, &attr, responder_main, NULL);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
    errno = rc;
    goto fail;
  }
  started = true;
  napi_add_env_cleanup_hook(env, on_env_cleanup, NULL);
  return sw_num(env, 0);
fail: {
  int err = errno;
  if (stopfd >= 0) close(stopfd);
  close(epfd);
  epfd = stopfd = -1;
  return sw_num(env, -err);
}
}

/*
 * responderAdd(listenerFd, mapFd, value: Uint8Array, token) -> 0 | -errno. The thread serves
 * the listener's calls from now on (nothing else may receive on it): socket()s it answers
 * are stamped with value (at most 64 bytes, the map's value size) in map mapFd. -ENOTCONN:
 * not started; -EEXIST: token is taken.
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
  int err = 0;
  size_t slot = nentries;
  for (size_t i = 0; i < nentries; i++) {
    if (entries[i].used && entries[i].token == token) err = EEXIST;
    if (!entries[i].used && slot == nentries) slot = i;
  }
  if (!err && slot == nentries) {
    struct entry *grown = realloc(entries, (nentries + 16) * sizeof *grown);
    if (grown == NULL) {
      err = ENOMEM;
    } else {
      memset(grown + nentries, 0, 16 * sizeof *grown);
      entries = grown;
      nentries += 16;
    }
  }
  if (!err) {
    struct entry *e = &entries[slot];
    e->gen++;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)e->gen << 32) | slot};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      err = errno;
    } else {
      e->used = true;
      e->gone = false;
      e->token = token;
      e->fd = fd;
      e->map_fd = map_fd;
      e->value_len = (uint32_t)len;
      memcpy(e->value, value, len);
    }
  }
  pthread_mutex_unlock(&mu);
  return sw_num(env, -err);
}

/*
 * responderRemove(token) -> 0 | -ENOENT. Once it returns the thread no longer uses the app's
 * listener (it may be closed); a call it handed over before may still be queued for the
 * callback.
 */
static napi_value responder_remove(napi_env env, napi_callback_info info) {
  static const char usage[] = "responderRemove(token)";
  sw_args a;
  uint32_t token;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_u32(&a, 0, &token)) return NULL;
  int r = -ENOENT;
  pthread_mutex_lock(&mu);
  for (size_t i = 0; i < nentries; i++) {
    struct entry *e = &entries[i];
    if (!e->used || e->token != token) continue;
    if (!e->gone) epoll_ctl(epfd, EPOLL_CTL_DEL, e->fd, NULL);
    e->used = false;
    while (busy == (ssize_t)i) pthread_cond_wait(&idle, &mu);
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
