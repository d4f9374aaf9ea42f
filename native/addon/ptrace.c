/*
 * ptrace.c: kicking a thread out of a system call it is blocked in, so that the
 * kernel restarts the call. Used once per app when a restarted daemon takes over its
 * seccomp listener: notifications that the previous daemon had received but not
 * answered are never delivered again, and the threads waiting on them would wait
 * forever. Interrupted, each such call is restarted and trapped anew (the call itself
 * never ran: it was stopped at seccomp time).
 *
 * Responsible for interruptSyscall: PTRACE_SEIZE, PTRACE_INTERRUPT, a bounded wait for
 * the stop, PTRACE_DETACH. No signal is delivered to the thread. Leans on ptrace(2)
 * ("PTRACE_INTERRUPT"), waitpid(2) (__WALL) and seccomp_unotify(2).
 */
#include "common.h"

#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

/* At most this long for the thread to stop (it is woken at once; this is a safety bound). */
#define STOP_WAIT_NS (200L * 1000 * 1000)
#define STOP_POLL_NS (100L * 1000)

/* interruptSyscall(tid) -> 0 | -errno (-ETIMEDOUT if the thread did not stop in time). */
static napi_value pt_interrupt_syscall(napi_env env, napi_callback_info info) {
  static const char usage[] = "interruptSyscall(tid)";
  sw_args a;
  int32_t tid;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &tid)) return NULL;
  if (tid <= 0) return sw_num(env, -EINVAL);
  if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) return sw_num(env, -errno);
  if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
    int err = errno;
    ptrace(PTRACE_DETACH, tid, NULL, NULL);
    return sw_num(env, -err);
  }
  struct timespec step = {.tv_sec = 0, .tv_nsec = STOP_POLL_NS};
  for (long waited = 0; waited < STOP_WAIT_NS; waited += STOP_POLL_NS) {
    int status;
    pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
    if (r < 0) return sw_num(env, errno == ECHILD ? -ESRCH : -errno); /* it exited */
    if (r == tid) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) return sw_num(env, -ESRCH);
      /* Stopped (PTRACE_EVENT_STOP, or a signal-delivery stop: pass the signal on). */
      int sig = WIFSTOPPED(status) && (status >> 16) == 0 ? WSTOPSIG(status) : 0;
      if (sig == SIGTRAP || sig == SIGSTOP) sig = 0;
      return sw_ret(env, ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig));
    }
    nanosleep(&step, NULL);
  }
  return sw_num(env, -ETIMEDOUT);
}

const sw_export sw_ptrace_exports[] = {
    {"interruptSyscall", pt_interrupt_syscall},
    {NULL, NULL},
};
