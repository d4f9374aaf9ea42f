/*
 * kernel.c: asking the running kernel what it offers, and comparing tasks' resources.
 *
 * Responsible for kcmp (do two tasks share a file table; is a thread's fd the same open
 * file as ours), and for the probes the daemon runs once at start: which seccomp filter
 * flags the kernel knows, a throwaway seccomp notification listener to try the listener
 * ioctls on, and whether a BPF program of a given type and attach type loads. Every
 * function is one system call or a fixed sequence of them; what the answers mean is
 * TypeScript's business (src/daemon/kernel-probe.ts).
 * Leans on kcmp(2), seccomp(2), seccomp_unotify(2), bpf(2), fork(2), unix(7) (SCM_RIGHTS).
 */
#include "common.h"

#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* kcmp(pid1, pid2, type, idx1, idx2) -> 0 (same), 1/2 (ordered), 3 (different) | -errno. */
static napi_value kernel_kcmp(napi_env env, napi_callback_info info) {
  static const char usage[] = "kcmp(pid1, pid2, type, idx1, idx2)";
  sw_args a;
  int32_t pid1, pid2, type;
  uint32_t idx1, idx2;
  if (!sw_get_args(env, info, &a, usage, 5) || !sw_i32(&a, 0, &pid1) || !sw_i32(&a, 1, &pid2) ||
      !sw_i32(&a, 2, &type) || !sw_u32(&a, 3, &idx1) || !sw_u32(&a, 4, &idx2))
    return NULL;
  return sw_ret(env, syscall(SYS_kcmp, (pid_t)pid1, (pid_t)pid2, type, (unsigned long)idx1, (unsigned long)idx2));
}

/*
 * seccompFlagsProbe(flags) -> -errno of seccomp(SECCOMP_SET_MODE_FILTER, flags, NULL).
 * The kernel checks the flags before it reads the filter: -EFAULT means it knows every
 * flag asked (and installs nothing, since there is no filter); -EINVAL means it does not.
 */
static napi_value kernel_seccomp_flags_probe(napi_env env, napi_callback_info info) {
  static const char usage[] = "seccompFlagsProbe(flags)";
  sw_args a;
  uint32_t flags;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_u32(&a, 0, &flags)) return NULL;
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
  return sw_num(env, r < 0 ? -(int64_t)errno : -EPROTO); /* success with NULL is impossible */
}

/* The child of seccompListenerProbe: an allow-everything filter with a listener, sent back. */
static void listener_child(int sock) {
  struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {.len = 1, .filter = &allow};
  int32_t err = 0;
  int fd = -1;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) err = errno;
  if (err == 0) {
    fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0) err = errno;
  }
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  sendmsg(sock, &msg, MSG_NOSIGNAL);
  _exit(0);
}

/*
 * seccompListenerProbe() -> a close-on-exec seccomp notification listener | -errno.
 * A forked child installs a filter that allows everything, with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER, passes the listener back over a socketpair and exits
 * (the child only makes raw system calls: safe after fork in a threaded process). The
 * listener has no notifications, ever: ioctls on it with any id answer ENOENT where the
 * kernel knows them, which is what the probe asks. Blocks only for the child's few calls.
 */
static napi_value kernel_seccomp_listener_probe(napi_env env, napi_callback_info info) {
  static const char usage[] = "seccompListenerProbe()";
  sw_args a;
  if (!sw_get_args(env, info, &a, usage, 0)) return NULL;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return sw_num(env, -errno);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return sw_num(env, -e);
  }
  if (pid == 0) {
    close(sv[0]);
    listener_child(sv[1]);
  }
  close(sv[1]);
  int32_t err = EPROTO;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n;
  do n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  int fd = -1;
  struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  close(sv[0]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  if (fd >= 0) return sw_num(env, fd);
  return sw_num(env, -(n > 0 && err != 0 ? err : EPROTO));
}

/*
 * bpfProgLoadProbe(progType, expectedAttachType) -> 0 | -errno: loads the smallest program
 * ("r0 = 1; exit": allow) of that type for that attach type with bpf(BPF_PROG_LOAD), and
 * closes it at once. Nothing is attached anywhere.
 */
static napi_value kernel_bpf_prog_load_probe(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfProgLoadProbe(progType, expectedAttachType)";
  sw_args a;
  uint32_t type, attach;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_u32(&a, 0, &type) || !sw_u32(&a, 1, &attach)) return NULL;
  struct bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1},
      {.code = BPF_JMP | BPF_EXIT},
  };
  static const char license[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = type;
  attr.expected_attach_type = attach;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = sizeof insns / sizeof insns[0];
  attr.license = (uint64_t)(uintptr_t)license;
  long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (fd < 0) return sw_num(env, -errno);
  close((int)fd);
  return sw_num(env, 0);
}

const sw_export sw_kernel_exports[] = {
    {"kcmp", kernel_kcmp},
    {"seccompFlagsProbe", kernel_seccomp_flags_probe},
    {"seccompListenerProbe", kernel_seccomp_listener_probe},
    {"bpfProgLoadProbe", kernel_bpf_prog_load_probe},
    {NULL, NULL},
};
