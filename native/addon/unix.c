/*
 * unix.c: the daemon's unix-socket control channel and non-blocking byte I/O.
 *
 * Responsible for unixListen (a listening AF_UNIX stream socket at a path),
 * recvFds (bytes plus SCM_RIGHTS fds), send, recvPeek and peerCred
 * (SO_PEERCRED). Every receive and send uses MSG_DONTWAIT, so nothing here
 * blocks. Leans on unix(7), cmsg(3), recvmsg(2), send(2), socket(7)
 * (SO_PEERCRED), unlink(2) and chmod(2).
 */
#include "common.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SW_MAX_RECV_FDS 8

/*
 * unixListen(path, backlog, mode) -> fd | -errno. A stale socket file at path
 * is unlinked first; any other kind of file is left alone (bind then fails
 * with -EADDRINUSE). On failure after bind the new socket file is removed.
 */
static napi_value unix_listen(napi_env env, napi_callback_info info) {
  static const char usage[] = "unixListen(path, backlog, mode)";
  sw_args a;
  int32_t backlog;
  uint32_t mode;
  napi_valuetype t;
  struct sockaddr_un sun;
  size_t plen = 0;
  if (!sw_get_args(env, info, &a, usage, 3)) return NULL;
  if (napi_typeof(env, a.argv[0], &t) != napi_ok || t != napi_string) {
    sw_type_error(&a, 0, "must be a string");
    return NULL;
  }
  if (!sw_i32(&a, 1, &backlog) || !sw_u32(&a, 2, &mode)) return NULL;

  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  /* Measure first: copying into a short buffer would silently truncate the path. */
  char path[sizeof sun.sun_path];
  if (napi_get_value_string_utf8(env, a.argv[0], NULL, 0, &plen) != napi_ok) return NULL;
  if (plen == 0) return sw_num(env, -ENOENT);
  if (plen >= sizeof sun.sun_path) return sw_num(env, -ENAMETOOLONG);
  if (napi_get_value_string_utf8(env, a.argv[0], path, sizeof path, &plen) != napi_ok) return NULL;
  if (strlen(path) != plen) return sw_num(env, -EINVAL); /* embedded NUL */
  memcpy(sun.sun_path, path, plen);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sw_num(env, -errno);

  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0 && errno != ENOENT) {
    int err = errno;
    close(fd);
    return sw_num(env, -err);
  }
  if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
    int err = errno;
    close(fd);
    return sw_num(env, -err);
  }
  if (chmod(path, (mode_t)mode) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    unlink(path);
    close(fd);
    return sw_num(env, -err);
  }
  return sw_num(env, fd);
}

/*
 * recvFds(fd, buf, fdsOut) -> bytes (0 = EOF) | -errno. fdsOut[0] is set to
 * the number of fds stored in fdsOut[1..]; fds that do not fit are closed.
 * Room is made for SW_MAX_RECV_FDS fds per message; the kernel discards any
 * beyond that (and sets MSG_CTRUNC).
 */
static napi_value unix_recv_fds(napi_env env, napi_callback_info info) {
  static const char usage[] = "recvFds(fd, buf: Uint8Array, fdsOut: Int32Array)";
  sw_args a;
  int32_t fd;
  uint8_t *buf;
  size_t cap;
  int32_t *fds;
  size_t nfds;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &buf, &cap) ||
      !sw_typed(&a, 2, napi_int32_array, "Int32Array", (void **)&fds, &nfds))
    return NULL;
  if (cap == 0) {
    sw_type_error(&a, 1, "must not be empty");
    return NULL;
  }
  if (nfds < 1) {
    sw_type_error(&a, 2, "must have length >= 1");
    return NULL;
  }
  fds[0] = 0;

  union {
    char buf[CMSG_SPACE(SW_MAX_RECV_FDS * sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return sw_num(env, -errno);

  size_t stored = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char *p = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, p + i * sizeof(int), sizeof got);
      if (stored + 1 < nfds)
        fds[1 + stored++] = got;
      else
        close(got);
    }
  }
  fds[0] = (int32_t)stored;
  return sw_num(env, n);
}

/* send(fd, buf, len) -> bytes | -errno (MSG_NOSIGNAL | MSG_DONTWAIT). */
static napi_value unix_send(napi_env env, napi_callback_info info) {
  static const char usage[] = "send(fd, buf: Uint8Array, len)";
  sw_args a;
  int32_t fd;
  uint8_t *buf;
  size_t cap;
  int64_t len;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &buf, &cap) ||
      !sw_i64(&a, 2, &len) || !sw_len_fits(&a, 2, len, cap))
    return NULL;
  return sw_ret(env, send(fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT));
}

/* recvPeek(fd, buf) -> bytes | -errno (MSG_PEEK | MSG_DONTWAIT; nothing is consumed). */
static napi_value unix_recv_peek(napi_env env, napi_callback_info info) {
  static const char usage[] = "recvPeek(fd, buf: Uint8Array)";
  sw_args a;
  int32_t fd;
  uint8_t *buf;
  size_t cap;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &buf, &cap))
    return NULL;
  if (cap == 0) {
    sw_type_error(&a, 1, "must not be empty");
    return NULL;
  }
  return sw_ret(env, recv(fd, buf, cap, MSG_PEEK | MSG_DONTWAIT));
}

/* peerCred(fd, out: Int32Array) -> 0 | -errno; out = [pid, uid, gid]. */
static napi_value unix_peer_cred(napi_env env, napi_callback_info info) {
  static const char usage[] = "peerCred(fd, out: Int32Array)";
  sw_args a;
  int32_t fd;
  int32_t *out;
  size_t n;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) ||
      !sw_typed(&a, 1, napi_int32_array, "Int32Array", (void **)&out, &n))
    return NULL;
  if (n < 3) {
    sw_type_error(&a, 1, "must have length >= 3");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return sw_num(env, -errno);
  out[0] = cred.pid;
  out[1] = (int32_t)cred.uid;
  out[2] = (int32_t)cred.gid;
  return sw_num(env, 0);
}

const sw_export sw_unix_exports[] = {
    {"unixListen", unix_listen},
    {"recvFds", unix_recv_fds},
    {"send", unix_send},
    {"recvPeek", unix_recv_peek},
    {"peerCred", unix_peer_cred},
    {NULL, NULL},
};
