/*
 * addon.c: module initialisation and registration.
 *
 * Responsible for checking at load time that the kernel's seccomp
 * notification structs fit ours (notify.c throws if not), registering every
 * file's functions on `exports`, and building `exports.constants`: the numbers
 * a caller needs to write a seccomp filter and to call the other functions
 * (syscall numbers, audit arch, SECCOMP_RET_*, socket flags). Leans on
 * seccomp(2), seccomp_unotify(2), syscall(2) and socket(7).
 */
#include "common.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define SW_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SW_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "sockswitch: only x86_64 and aarch64 are supported (AUDIT_ARCH and syscall numbers)"
#endif

typedef struct {
  const char *name;
  double value;
} sw_const;

#define C(x) {#x, (double)(x)}
#define NR(x) {"__NR_" #x, (double)(__NR_##x)}

static const sw_const constants[] = {
    C(SECCOMP_USER_NOTIF_FLAG_CONTINUE),
    C(SECCOMP_ADDFD_FLAG_SEND),
    C(SECCOMP_RET_KILL_PROCESS),
    C(SECCOMP_RET_KILL_THREAD),
    C(SECCOMP_RET_TRAP),
    C(SECCOMP_RET_ERRNO),
    C(SECCOMP_RET_USER_NOTIF),
    C(SECCOMP_RET_TRACE),
    C(SECCOMP_RET_LOG),
    C(SECCOMP_RET_ALLOW),
    C(SECCOMP_RET_ACTION_FULL),
    C(SECCOMP_RET_DATA),
    {"AUDIT_ARCH", (double)SW_AUDIT_ARCH},
#if defined(__x86_64__)
    C(AUDIT_ARCH_X86_64),
    /* x32 syscalls arrive with AUDIT_ARCH_X86_64 and nr | this bit: filters must reject them. */
    {"X32_SYSCALL_BIT", (double)0x40000000},
#else
    C(AUDIT_ARCH_AARCH64),
#endif
    NR(socket),
    NR(bind),
    NR(listen),
    NR(connect),
    NR(accept),
    NR(accept4),
    NR(getsockname),
    NR(getpeername),
    NR(sendto),
    NR(sendmsg),
    NR(sendmmsg),
    NR(recvfrom),
    NR(recvmsg),
    NR(recvmmsg),
    NR(io_uring_setup),
    NR(io_uring_enter),
    NR(io_uring_register),
    NR(socketpair),
    NR(setns),
    NR(ptrace),
    NR(process_vm_readv),
    NR(process_vm_writev),
    NR(pidfd_getfd),
    NR(userfaultfd),
    NR(unshare),
    NR(clone),
    NR(clone3),
    NR(ioctl),
    {"SIZEOF_SECCOMP_NOTIF", (double)sizeof(struct seccomp_notif)},
    {"SIZEOF_SECCOMP_NOTIF_RESP", (double)sizeof(struct seccomp_notif_resp)},
    C(AF_UNIX),
    C(AF_INET),
    C(AF_INET6),
    C(SOCK_STREAM),
    C(SOCK_DGRAM),
    C(SOCK_NONBLOCK),
    C(SOCK_CLOEXEC),
    C(O_NONBLOCK),
    C(O_CLOEXEC),
    C(F_GETFL),
    C(F_SETFL),
    C(SOL_SOCKET),
    C(SO_DOMAIN),
    C(SO_TYPE),
    C(SO_PROTOCOL),
    C(SO_ACCEPTCONN),
    C(SO_ERROR),
    C(MSG_FASTOPEN),
    C(IPPROTO_IPV6),
    C(IPV6_V6ONLY),
};

#undef C
#undef NR

static bool set_number(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_named_property(env, obj, name, n) == napi_ok;
}

static bool register_table(napi_env env, napi_value exports, const sw_export *t, void *data) {
  for (; t->name != NULL; t++) {
    napi_value f;
    if (napi_create_function(env, t->name, NAPI_AUTO_LENGTH, t->fn, data, &f) != napi_ok ||
        napi_set_named_property(env, exports, t->name, f) != napi_ok)
      return false;
  }
  return true;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  if (!sw_notify_init(env)) return NULL;

  void *poll_state = sw_poll_state_new(env);
  if (poll_state == NULL) {
    napi_throw_error(env, NULL, "sockswitch addon: cannot set up the watcher table");
    return NULL;
  }
  if (!register_table(env, exports, sw_notify_exports, NULL) ||
      !register_table(env, exports, sw_fdops_exports, NULL) ||
      !register_table(env, exports, sw_unix_exports, NULL) ||
      !register_table(env, exports, sw_proc_exports, NULL) ||
      !register_table(env, exports, sw_dgram_exports, NULL) ||
      !register_table(env, exports, sw_ptrace_exports, NULL) ||
      !register_table(env, exports, sw_diag_exports, NULL) ||
      !register_table(env, exports, sw_closer_exports, NULL) ||
      !register_table(env, exports, sw_netns_exports, NULL) ||
      !register_table(env, exports, sw_bpf_exports, NULL) ||
      !register_table(env, exports, sw_bpf_ring_exports, NULL) ||
      !register_table(env, exports, sw_kernel_exports, NULL) ||
      !register_table(env, exports, sw_responder_exports, NULL) ||
      !register_table(env, exports, sw_poll_exports, poll_state))
    return NULL;

  napi_value consts;
  if (napi_create_object(env, &consts) != napi_ok) return NULL;
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
    if (!set_number(env, consts, constants[i].name, constants[i].value)) return NULL;
  if (napi_object_freeze(env, consts) != napi_ok ||
      napi_set_named_property(env, exports, "constants", consts) != napi_ok)
    return NULL;
  return exports;
}
