/*
 * dgram.c: datagram I/O on host sockets, for the UDP calls the daemon carries out
 * for apps (sendto/sendmsg/recvfrom/recvmsg with addresses to translate), and
 * getsockopt of options that are not ints (SO_RCVTIMEO).
 *
 * Responsible for sendmsg, recvmsg, getsockoptBytes and setsockoptBytes (SO_LINGER). Each is one syscall that
 * never blocks (MSG_DONTWAIT is always added; sends also get MSG_NOSIGNAL) and
 * returns its result or -errno. Leans on sendmsg(2), recvmsg(2), getsockopt(2).
 * Also the receive timestamp of a socket's last datagram (SIOCGSTAMPNS, socket(7)) and
 * the clock it is read on (CLOCK_REALTIME), which admission compares.
 */
#include "common.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

/* A Uint8Array argument that may be empty: NULL when byteLength is 0. */
static bool opt_bytes(sw_args *a, size_t idx, uint8_t **data, size_t *len) {
  if (!sw_bytes(a, idx, data, len)) return false;
  if (*len == 0) *data = NULL;
  return true;
}

/*
 * sendmsg(fd, data, len, addr, addrLen, control, controlLen, flags) -> bytes | -errno.
 * addr may be empty (a connected socket); control may be empty.
 */
static napi_value dg_sendmsg(napi_env env, napi_callback_info info) {
  static const char usage[] =
      "sendmsg(fd, data: Uint8Array, len, addr: Uint8Array, addrLen, control: Uint8Array, controlLen, flags)";
  sw_args a;
  int32_t fd, flags;
  uint8_t *data, *addr, *control;
  size_t dcap, acap, ccap;
  int64_t len, alen, clen;
  if (!sw_get_args(env, info, &a, usage, 8) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &data, &dcap) ||
      !sw_i64(&a, 2, &len) || !opt_bytes(&a, 3, &addr, &acap) || !sw_i64(&a, 4, &alen) ||
      !opt_bytes(&a, 5, &control, &ccap) || !sw_i64(&a, 6, &clen) || !sw_i32(&a, 7, &flags))
    return NULL;
  if (!sw_len_fits(&a, 2, len, dcap) || !sw_len_fits(&a, 4, alen, acap) || !sw_len_fits(&a, 6, clen, ccap))
    return NULL;
  struct iovec iov = {.iov_base = data, .iov_len = (size_t)len};
  struct msghdr m = {
      .msg_name = alen > 0 ? addr : NULL,
      .msg_namelen = (socklen_t)alen,
      .msg_iov = &iov,
      .msg_iovlen = 1,
      .msg_control = clen > 0 ? control : NULL,
      .msg_controllen = (size_t)clen,
  };
  return sw_ret(env, sendmsg(fd, &m, flags | MSG_DONTWAIT | MSG_NOSIGNAL));
}

/*
 * recvmsg(fd, data, name, control, flags, out: Int32Array) -> bytes | -errno.
 * Receives into all of data; out = [namelen, controllen, msg_flags] (length >= 3).
 */
static napi_value dg_recvmsg(napi_env env, napi_callback_info info) {
  static const char usage[] =
      "recvmsg(fd, data: Uint8Array, name: Uint8Array, control: Uint8Array, flags, out: Int32Array)";
  sw_args a;
  int32_t fd, flags;
  uint8_t *data, *name, *control;
  size_t dcap, ncap, ccap, n;
  int32_t *out;
  if (!sw_get_args(env, info, &a, usage, 6) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &data, &dcap) ||
      !opt_bytes(&a, 2, &name, &ncap) || !opt_bytes(&a, 3, &control, &ccap) || !sw_i32(&a, 4, &flags) ||
      !sw_typed(&a, 5, napi_int32_array, "Int32Array", (void **)&out, &n))
    return NULL;
  if (n < 3) {
    sw_type_error(&a, 5, "must have length >= 3");
    return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = dcap};
  struct msghdr m = {
      .msg_name = name,
      .msg_namelen = (socklen_t)ncap,
      .msg_iov = &iov,
      .msg_iovlen = 1,
      .msg_control = control,
      .msg_controllen = ccap,
  };
  ssize_t r = recvmsg(fd, &m, flags | MSG_DONTWAIT);
  if (r < 0) return sw_num(env, -errno);
  out[0] = (int32_t)m.msg_namelen;
  out[1] = (int32_t)m.msg_controllen;
  out[2] = m.msg_flags;
  return sw_num(env, r);
}

/* getsockoptBytes(fd, level, name, out) -> option length | -errno. */
static napi_value dg_getsockopt_bytes(napi_env env, napi_callback_info info) {
  static const char usage[] = "getsockoptBytes(fd, level, name, out: Uint8Array)";
  sw_args a;
  int32_t fd, level, name;
  uint8_t *out;
  size_t cap;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &level) ||
      !sw_i32(&a, 2, &name) || !sw_bytes(&a, 3, &out, &cap))
    return NULL;
  socklen_t len = cap > 0x7fffffff ? 0x7fffffff : (socklen_t)cap;
  if (getsockopt(fd, level, name, out, &len) < 0) return sw_num(env, -errno);
  return sw_num(env, len);
}

/* setsockoptBytes(fd, level, name, value) -> 0 | -errno. */
static napi_value dg_setsockopt_bytes(napi_env env, napi_callback_info info) {
  static const char usage[] = "setsockoptBytes(fd, level, name, value: Uint8Array)";
  sw_args a;
  int32_t fd, level, name;
  uint8_t *value;
  size_t len;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &fd) || !sw_i32(&a, 1, &level) ||
      !sw_i32(&a, 2, &name) || !sw_bytes(&a, 3, &value, &len))
    return NULL;
  return sw_ret(env, setsockopt(fd, level, name, value, (socklen_t)len));
}

/*
 * recvStampUs(fd) -> µs since the epoch | -errno: when the kernel received the datagram
 * the socket passed last (SIOCGSTAMPNS). The call also sets SOCK_TIMESTAMP on the socket,
 * from which on each receive keeps its datagram's time; before that (and for a datagram
 * that arrived while no socket on the host wanted timestamps) the kernel answers the
 * current time. ENOENT: nothing received yet. No cmsg is added to anyone's receives.
 */
static napi_value dg_recv_stamp_us(napi_env env, napi_callback_info info) {
  static const char usage[] = "recvStampUs(fd)";
  sw_args a;
  int32_t fd;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &fd)) return NULL;
  struct timespec ts;
  if (ioctl(fd, SIOCGSTAMPNS, &ts) < 0) return sw_num(env, -errno);
  return sw_num(env, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* realtimeUs() -> µs since the epoch (clock_gettime(CLOCK_REALTIME), the receive timestamps' clock). */
static napi_value dg_realtime_us(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return sw_num(env, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

const sw_export sw_dgram_exports[] = {
    {"sendmsg", dg_sendmsg},
    {"recvmsg", dg_recvmsg},
    {"getsockoptBytes", dg_getsockopt_bytes},
    {"setsockoptBytes", dg_setsockopt_bytes},
    {"recvStampUs", dg_recv_stamp_us},
    {"realtimeUs", dg_realtime_us},
    {NULL, NULL},
};
