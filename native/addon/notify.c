/*
 * notify.c: the seccomp user-notification ioctls on a listener fd.
 *
 * Responsible for notifRecv, notifRespond, notifIdValid and notifAddFd, and for
 * checking at load time that the kernel's notification structs are no larger
 * than ours. Each function is one ioctl; deciding what to answer is the
 * caller's business. Leans on seccomp_unotify(2), seccomp(2) (for
 * SECCOMP_GET_NOTIF_SIZES) and poll(2).
 */
#include "common.h"

#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Sizes the running kernel uses; filled by sw_notify_init. */
static struct seccomp_notif_sizes kernel_sizes;

bool sw_notify_init(napi_env env) {
  char msg[256];
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &kernel_sizes) != 0) {
    snprintf(msg, sizeof msg,
             "sockswitch addon: seccomp(SECCOMP_GET_NOTIF_SIZES) failed: %s; this kernel does not "
             "offer seccomp user notification (Linux >= 5.0 needed)",
             strerror(errno));
    napi_throw_error(env, NULL, msg);
    return false;
  }
  if (kernel_sizes.seccomp_notif < sizeof(struct seccomp_notif) ||
      kernel_sizes.seccomp_notif_resp < sizeof(struct seccomp_notif_resp)) {
    snprintf(msg, sizeof msg,
             "sockswitch addon: kernel seccomp notification structs are smaller than the addon was "
             "built for: expected seccomp_notif >= %zu and seccomp_notif_resp >= %zu bytes, kernel "
             "says %u and %u; rebuild the addon against this kernel's headers",
             sizeof(struct seccomp_notif), sizeof(struct seccomp_notif_resp),
             (unsigned)kernel_sizes.seccomp_notif, (unsigned)kernel_sizes.seccomp_notif_resp);
    napi_throw_error(env, NULL, msg);
    return false;
  }
  return true;
}

static uint64_t make_id(uint32_t lo, uint32_t hi) {
  return (uint64_t)lo | ((uint64_t)hi << 32);
}

/*
 * notifRecv(listenerFd, out) -> 1 | 0 | -errno.
 * The kernel may write up to kernel_sizes.seccomp_notif bytes (a newer kernel
 * may have grown the struct), so receive into a buffer at least that large.
 */
static napi_value notif_recv(napi_env env, napi_callback_info info) {
  static const char usage[] = "notifRecv(listenerFd, out: Uint32Array)";
  static union {
    struct seccomp_notif n;
    unsigned char raw[512];
  } buf;
  sw_args a;
  int32_t fd;
  uint32_t *out;
  size_t outlen;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd)) return NULL;
  if (!sw_typed(&a, 1, napi_uint32_array, "Uint32Array", (void **)&out, &outlen)) return NULL;
  if (outlen < SW_NOTIF_WORDS) {
    sw_type_error(&a, 1, "must have length >= 18");
    return NULL;
  }

  if (fd < 0) return sw_num(env, -EBADF); /* poll(2) would silently skip it */
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int pr = poll(&pfd, 1, 0);
  if (pr < 0) return sw_num(env, -errno);
  if (pr == 0) return sw_num(env, 0);
  if (pfd.revents & POLLNVAL) return sw_num(env, -EBADF);
  if (!(pfd.revents & POLLIN)) return sw_num(env, (pfd.revents & (POLLHUP | POLLERR)) ? -EPIPE : 0);

  size_t sz = sw_notif_size();
  if (sz > sizeof buf.raw) return sw_num(env, -EOVERFLOW); /* kernel struct grew past 512 bytes */
  memset(buf.raw, 0, sz);
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &buf.n) != 0) return sw_num(env, -errno);
  sw_notif_words(&buf.n, out);
  return sw_num(env, 1);
}

size_t sw_notif_size(void) {
  size_t sz = kernel_sizes.seccomp_notif;
  return sz < sizeof(struct seccomp_notif) ? sizeof(struct seccomp_notif) : sz;
}

void sw_notif_words(const struct seccomp_notif *n, uint32_t out[SW_NOTIF_WORDS]) {
  out[0] = (uint32_t)n->id;
  out[1] = (uint32_t)(n->id >> 32);
  out[2] = n->pid;
  out[3] = (uint32_t)n->data.nr;
  out[4] = n->data.arch;
  out[5] = 0;
  for (int i = 0; i < 6; i++) {
    out[6 + 2 * i] = (uint32_t)n->data.args[i];
    out[7 + 2 * i] = (uint32_t)(n->data.args[i] >> 32);
  }
}

/* notifRespond(fd, idLo, idHi, val, error, flags) -> 0 | -errno. */
static napi_value notif_respond(napi_env env, napi_callback_info info) {
  static const char usage[] = "notifRespond(fd, idLo, idHi, val, error, flags)";
  sw_args a;
  int32_t fd, error;
  uint32_t lo, hi, flags;
  int64_t val;
  if (!sw_get_args(env, info, &a, usage, 6) || !sw_i32(&a, 0, &fd) || !sw_u32(&a, 1, &lo) ||
      !sw_u32(&a, 2, &hi) || !sw_i64(&a, 3, &val) || !sw_i32(&a, 4, &error) || !sw_u32(&a, 5, &flags))
    return NULL;
  struct seccomp_notif_resp resp;
  memset(&resp, 0, sizeof resp);
  resp.id = make_id(lo, hi);
  resp.val = val;
  resp.error = -error;
  resp.flags = flags;
  return sw_ret(env, ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp));
}

/* notifIdValid(fd, idLo, idHi) -> 1 | 0 | -errno (other than ENOENT). */
static napi_value notif_id_valid(napi_env env, napi_callback_info info) {
  static const char usage[] = "notifIdValid(fd, idLo, idHi)";
  sw_args a;
  int32_t fd;
  uint32_t lo, hi;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_u32(&a, 1, &lo) ||
      !sw_u32(&a, 2, &hi))
    return NULL;
  uint64_t id = make_id(lo, hi);
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0) return sw_num(env, 1);
  return sw_num(env, errno == ENOENT ? 0 : -errno);
}

/* notifAddFd(fd, idLo, idHi, srcFd, newFdFlags, send) -> target fd / syscall value | -errno. */
static napi_value notif_add_fd(napi_env env, napi_callback_info info) {
  static const char usage[] = "notifAddFd(fd, idLo, idHi, srcFd, newFdFlags, send)";
  sw_args a;
  int32_t fd, src, send;
  uint32_t lo, hi, newflags;
  if (!sw_get_args(env, info, &a, usage, 6) || !sw_i32(&a, 0, &fd) || !sw_u32(&a, 1, &lo) ||
      !sw_u32(&a, 2, &hi) || !sw_i32(&a, 3, &src) || !sw_u32(&a, 4, &newflags) || !sw_i32(&a, 5, &send))
    return NULL;
  struct seccomp_notif_addfd add;
  memset(&add, 0, sizeof add);
  add.id = make_id(lo, hi);
  add.flags = send ? SECCOMP_ADDFD_FLAG_SEND : 0;
  add.srcfd = (uint32_t)src;
  add.newfd = 0;
  add.newfd_flags = newflags;
  /*
   * ADDFD waits until the app's thread has taken the fd. A signal (a profiler's SIGPROF)
   * must not interrupt that wait: with FLAG_SEND the kernel has already marked the call
   * as answered, so an interrupted ADDFD leaves the app's thread with no answer (a retry,
   * or the answer after it, gets EINPROGRESS). Signals are held for the ioctl's length and
   * delivered after it; the wait still ends if the thread dies (ESRCH) or the app is killed.
   */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int r = ioctl(fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
  int saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return sw_ret(env, r);
}

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/*
 * notifSyncWakeUp(fd) -> 0 | -errno: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6):
 * the app's thread and the daemon wake each other on the current CPU, for the ping-pong
 * of a trapped call. -EINVAL on older kernels (harmless: only slower).
 */
static napi_value notif_sync_wake_up(napi_env env, napi_callback_info info) {
  static const char usage[] = "notifSyncWakeUp(fd)";
  sw_args a;
  int32_t fd;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &fd)) return NULL;
  __u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
  return sw_ret(env, ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags));
}

const sw_export sw_notify_exports[] = {
    {"notifSyncWakeUp", notif_sync_wake_up},
    {"notifRecv", notif_recv},
    {"notifRespond", notif_respond},
    {"notifIdValid", notif_id_valid},
    {"notifAddFd", notif_add_fd},
    {NULL, NULL},
};
