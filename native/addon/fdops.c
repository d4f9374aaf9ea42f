/*
 * fdops.c: plain socket and fd syscalls on host fds.
 *
 * Responsible for socket, bind, connect, listen, accept4, getsockname,
 * getpeername, getsockoptInt, setsockoptInt, fcntl, close, fstat and flock. Each
 * is one syscall returning its result or -errno, arranged so none can block the
 * event loop. Leans on socket(2), bind(2), connect(2), listen(2), accept(2),
 * getsockname(2), getpeername(2), getsockopt(2), fcntl(2), close(2), stat(2),
 * flock(2) and poll(2).
 */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* socket(domain, type, protocol) -> fd | -errno; SOCK_CLOEXEC is always added. */
static napi_value fd_socket(napi_env env, napi_callback_info info) {
  static const char usage[] = "socket(domain, type, protocol)";
  sw_args a;
  int32_t domain, type, proto;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &domain) || !sw_i32(&a, 1, &type) ||
      !sw_i32(&a, 2, &proto))
    return NULL;
  return sw_ret(env, socket(domain, type | SOCK_CLOEXEC, proto));
}

/* Shared by bind and connect: (fd, addr: Uint8Array, len). */
static bool fd_addr_args(napi_env env, napi_callback_info info, const char *usage, int32_t *fd,
                         uint8_t **addr, int64_t *len) {
  sw_args a;
  size_t cap;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, fd) || !sw_bytes(&a, 1, addr, &cap) ||
      !sw_i64(&a, 2, len))
    return false;
  return sw_len_fits(&a, 2, *len, cap);
}

/* bind(fd, addr, len) -> 0 | -errno. */
static napi_value fd_bind(napi_env env, napi_callback_info info) {
  int32_t fd;
  uint8_t *addr;
  int64_t len;
  if (!fd_addr_args(env, info, "bind(fd, addr: Uint8Array, len)", &fd, &addr, &len)) return NULL;
  return sw_ret(env, bind(fd, (const struct sockaddr *)addr, (socklen_t)len));
}

/*
 * connect(fd, addr, len) -> 0 | -errno (-EINPROGRESS on a non-blocking TCP
 * socket). The fd should be non-blocking; if it is not, O_NONBLOCK is set for
 * the duration of the call and the old flags are put back, so the connect
 * does not block the event loop (the caller then sees -EINPROGRESS); an app that
 * clears the flag meanwhile gets a connect interrupted after about 2 ms, which
 * also answers -EINPROGRESS (closer.c, sw_bounded_begin).
 */
static napi_value fd_connect(napi_env env, napi_callback_info info) {
  int32_t fd;
  uint8_t *addr;
  int64_t len;
  if (!fd_addr_args(env, info, "connect(fd, addr: Uint8Array, len)", &fd, &addr, &len)) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return sw_num(env, -errno);
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return sw_num(env, -errno);
  /* The app can clear O_NONBLOCK meanwhile (a flag of the file it shares): bounded (closer.c). */
  bool bounded = sw_bounded_begin();
  int rc = connect(fd, (const struct sockaddr *)addr, (socklen_t)len);
  int err = rc < 0 ? errno : 0;
  if (bounded) sw_bounded_end();
  if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl);
  /* Interrupted while waiting for the handshake, which goes on (inet_stream_connect). */
  if (err == EINTR) err = EINPROGRESS;
  return sw_num(env, rc < 0 ? -err : 0);
}

/* listen(fd, backlog) -> 0 | -errno. */
static napi_value fd_listen(napi_env env, napi_callback_info info) {
  static const char usage[] = "listen(fd, backlog)";
  sw_args a;
  int32_t fd, backlog;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &backlog)) return NULL;
  return sw_ret(env, listen(fd, backlog));
}

/*
 * accept4(fd, flags) -> fd | -errno; SOCK_CLOEXEC is always added. A poll(0)
 * first makes an empty queue answer -EAGAIN at once; a blocking listener is made
 * non-blocking for the accept itself and then put back, because whoever else holds
 * the listener (a process the app passed it to) may take the connection between
 * the poll and the accept, and the accept must not then wait for the next one.
 */
static napi_value fd_accept4(napi_env env, napi_callback_info info) {
  static const char usage[] = "accept4(fd, flags)";
  sw_args a;
  int32_t fd, flags;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &flags)) return NULL;
  if (fd < 0) return sw_num(env, -EBADF); /* poll(2) would silently skip it */
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int pr = poll(&pfd, 1, 0);
  if (pr < 0) return sw_num(env, -errno);
  if (pfd.revents & POLLNVAL) return sw_num(env, -EBADF);
  if (pr == 0) return sw_num(env, -EAGAIN);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return sw_num(env, -errno);
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return sw_num(env, -errno);
  bool bounded = sw_bounded_begin(); /* as in connect: the app may clear O_NONBLOCK */
  int rc = accept4(fd, NULL, NULL, flags | SOCK_CLOEXEC);
  int err = rc < 0 ? errno : 0;
  if (bounded) sw_bounded_end();
  if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl);
  /* Interrupted: the queue was emptied by another holder of the listener; nothing taken. */
  if (err == EINTR) err = EAGAIN;
  return sw_num(env, rc < 0 ? -err : rc);
}

typedef int (*name_fn)(int, struct sockaddr *, socklen_t *);

/* Shared by getsockname/getpeername: the full address length, which may exceed out.byteLength. */
static napi_value fd_name(napi_env env, napi_callback_info info, const char *usage, name_fn fn) {
  sw_args a;
  int32_t fd;
  uint8_t *out;
  size_t cap;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &out, &cap))
    return NULL;
  socklen_t len = cap > 0x7fffffff ? 0x7fffffff : (socklen_t)cap;
  if (fn(fd, (struct sockaddr *)out, &len) < 0) return sw_num(env, -errno);
  return sw_num(env, len);
}

/* getsockname(fd, out) -> address length | -errno. */
static napi_value fd_getsockname(napi_env env, napi_callback_info info) {
  return fd_name(env, info, "getsockname(fd, out: Uint8Array)", getsockname);
}

/* getpeername(fd, out) -> address length | -errno. */
static napi_value fd_getpeername(napi_env env, napi_callback_info info) {
  return fd_name(env, info, "getpeername(fd, out: Uint8Array)", getpeername);
}

/* getsockoptInt(fd, level, name) -> value | -errno. */
static napi_value fd_getsockopt_int(napi_env env, napi_callback_info info) {
  static const char usage[] = "getsockoptInt(fd, level, name)";
  sw_args a;
  int32_t fd, level, name;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &level) ||
      !sw_i32(&a, 2, &name))
    return NULL;
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) < 0) return sw_num(env, -errno);
  return sw_num(env, v);
}

/* setsockoptInt(fd, level, name, value) -> 0 | -errno. */
static napi_value fd_setsockopt_int(napi_env env, napi_callback_info info) {
  static const char usage[] = "setsockoptInt(fd, level, name, value)";
  sw_args a;
  int32_t fd, level, name, value;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &level) ||
      !sw_i32(&a, 2, &name) || !sw_i32(&a, 3, &value))
    return NULL;
  int v = value;
  return sw_ret(env, setsockopt(fd, level, name, &v, sizeof v));
}

/*
 * fcntl(fd, cmd, arg) -> result | -errno. Only commands whose third argument
 * is an int are accepted; the rest (locks, F_GETOWN_EX, ...) take a pointer
 * and get -EINVAL rather than having a JS number used as an address. Plain
 * F_DUPFD is refused too: every fd the addon makes is close-on-exec.
 */
static napi_value fd_fcntl(napi_env env, napi_callback_info info) {
  static const char usage[] = "fcntl(fd, cmd, arg)";
  sw_args a;
  int32_t fd, cmd, arg;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &cmd) ||
      !sw_i32(&a, 2, &arg))
    return NULL;
  switch (cmd) {
  case F_GETFL:
  case F_SETFL:
  case F_GETFD:
  case F_SETFD:
  case F_DUPFD_CLOEXEC:
  case F_GETOWN:
  case F_SETOWN:
  case F_GETSIG:
  case F_SETSIG:
  case F_GETPIPE_SZ:
  case F_SETPIPE_SZ:
    return sw_ret(env, fcntl(fd, cmd, arg));
  default:
    return sw_num(env, -EINVAL);
  }
}

/* close(fd) -> 0 | -errno. */
static napi_value fd_close(napi_env env, napi_callback_info info) {
  static const char usage[] = "close(fd)";
  sw_args a;
  int32_t fd;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &fd)) return NULL;
  return sw_ret(env, close(fd));
}

/* fstat(fd, out: Float64Array) -> 0 | -errno; out = [st_dev, st_ino, st_mode]. */
static napi_value fd_fstat(napi_env env, napi_callback_info info) {
  static const char usage[] = "fstat(fd, out: Float64Array)";
  sw_args a;
  int32_t fd;
  double *out;
  size_t n;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) ||
      !sw_typed(&a, 1, napi_float64_array, "Float64Array", (void **)&out, &n))
    return NULL;
  if (n < 3) {
    sw_type_error(&a, 1, "must have length >= 3");
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) return sw_num(env, -errno);
  out[0] = (double)st.st_dev;
  out[1] = (double)st.st_ino;
  out[2] = (double)st.st_mode;
  return sw_num(env, 0);
}

/*
 * flock(fd, exclusive) -> 0 | -errno: LOCK_EX (exclusive = 1) or LOCK_SH, always with
 * LOCK_NB, so a lock held elsewhere is -EWOULDBLOCK at once instead of a wait.
 */
static napi_value fd_flock(napi_env env, napi_callback_info info) {
  static const char usage[] = "flock(fd, exclusive)";
  sw_args a;
  int32_t fd, exclusive;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &exclusive))
    return NULL;
  return sw_ret(env, flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB));
}

const sw_export sw_fdops_exports[] = {
    {"socket", fd_socket},
    {"bind", fd_bind},
    {"connect", fd_connect},
    {"listen", fd_listen},
    {"accept4", fd_accept4},
    {"getsockname", fd_getsockname},
    {"getpeername", fd_getpeername},
    {"getsockoptInt", fd_getsockopt_int},
    {"setsockoptInt", fd_setsockopt_int},
    {"fcntl", fd_fcntl},
    {"close", fd_close},
    {"fstat", fd_fstat},
    {"flock", fd_flock},
    {NULL, NULL},
};
