/*
 * proc.c: reaching into another process, and replacing this one.
 *
 * Responsible for pidfdOpen and pidfdGetfd (taking a copy of a target's fd),
 * signalThread (a signal the kernel would have raised in a thread, e.g. SIGPIPE),
 * readMem and writeMem (a target's memory, e.g. syscall arguments that are
 * pointers) and execve (with signal dispositions and mask reset first, since
 * Node ignores SIGPIPE and that would otherwise leak into the new program, and
 * with fds 0-2 made inheritable and blocking again).
 * Leans on pidfd_open(2), pidfd_getfd(2), process_vm_readv(2), execve(2),
 * tgkill(2), sigaction(2), sigprocmask(2) and fcntl(2).
 */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* pidfdOpen(pid, flags) -> pidfd | -errno (pidfds are always close-on-exec). */
static napi_value proc_pidfd_open(napi_env env, napi_callback_info info) {
  static const char usage[] = "pidfdOpen(pid, flags)";
  sw_args a;
  int32_t pid;
  uint32_t flags;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &pid) || !sw_u32(&a, 1, &flags)) return NULL;
  return sw_ret(env, syscall(SYS_pidfd_open, (pid_t)pid, flags));
}

/* pidfdGetfd(pidfd, targetFd) -> fd | -errno (the kernel sets close-on-exec). */
static napi_value proc_pidfd_getfd(napi_env env, napi_callback_info info) {
  static const char usage[] = "pidfdGetfd(pidfd, targetFd)";
  sw_args a;
  int32_t pidfd, target;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &pidfd) || !sw_i32(&a, 1, &target))
    return NULL;
  return sw_ret(env, syscall(SYS_pidfd_getfd, pidfd, target, 0));
}

typedef ssize_t (*vm_fn)(pid_t, const struct iovec *, unsigned long, const struct iovec *, unsigned long,
                         unsigned long);

/* Shared by readMem/writeMem: (pid, addr, buf, len) -> bytes transferred | -errno. */
static napi_value proc_mem(napi_env env, napi_callback_info info, const char *usage, vm_fn fn) {
  sw_args a;
  int32_t pid;
  uint64_t addr;
  uint8_t *buf;
  size_t cap;
  int64_t len;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &pid) || !sw_u53(&a, 1, &addr) ||
      !sw_bytes(&a, 2, &buf, &cap) || !sw_i64(&a, 3, &len) || !sw_len_fits(&a, 3, len, cap))
    return NULL;
  if (len == 0) return sw_num(env, 0);
  struct iovec local = {.iov_base = buf, .iov_len = (size_t)len};
  struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = (size_t)len};
  return sw_ret(env, fn((pid_t)pid, &local, 1, &remote, 1, 0));
}

/* readMem(pid, addr, buf, len) -> bytes read | -errno (may be short at an unmapped page). */
static napi_value proc_read_mem(napi_env env, napi_callback_info info) {
  return proc_mem(env, info, "readMem(pid, addr, buf: Uint8Array, len)", process_vm_readv);
}

/* writeMem(pid, addr, buf, len) -> bytes written | -errno (read-only mappings give -EFAULT). */
static napi_value proc_write_mem(napi_env env, napi_callback_info info) {
  return proc_mem(env, info, "writeMem(pid, addr, buf: Uint8Array, len)", process_vm_writev);
}

/* Copies a JS string into a new malloc'd C string, or NULL (TypeError thrown / out of memory). */
static char *dup_string(sw_args *a, napi_value v, size_t idx, const char *what) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(a->env, v, &t) != napi_ok || t != napi_string) {
    sw_type_error(a, idx, what);
    return NULL;
  }
  if (napi_get_value_string_utf8(a->env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(a->env, NULL, "execve: out of memory");
    return NULL;
  }
  if (napi_get_value_string_utf8(a->env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

static void free_vector(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

/* A JS string[] as a NULL-terminated malloc'd vector, or NULL (exception pending). */
static char **dup_vector(sw_args *a, size_t idx) {
  bool is;
  uint32_t n;
  if (napi_is_array(a->env, a->argv[idx], &is) != napi_ok || !is) {
    sw_type_error(a, idx, "must be an array of strings");
    return NULL;
  }
  if (napi_get_array_length(a->env, a->argv[idx], &n) != napi_ok) return NULL;
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (v == NULL) {
    napi_throw_error(a->env, NULL, "execve: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (napi_get_element(a->env, a->argv[idx], i, &el) != napi_ok ||
        (v[i] = dup_string(a, el, idx, "must be an array of strings")) == NULL) {
      free_vector(v);
      return NULL;
    }
  }
  return v;
}

/*
 * The execve itself: never returns on success. Before the call every catchable
 * signal goes back to SIG_DFL and the mask is emptied (both survive execve),
 * and fds 0-2 lose FD_CLOEXEC and O_NONBLOCK. If execve fails, all of that is
 * put back and an Error naming the path and strerror is thrown (code = errno
 * name).
 */
static void exec_or_throw(napi_env env, const char *path, char *const argv[], char *const envp[]) {
  static struct sigaction saved[NSIG];
  static bool was_saved[NSIG];
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    /* SIGKILL/SIGSTOP cannot change; glibc refuses its two internal RT signals. */
    was_saved[sig] = sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &dfl, &saved[sig]) == 0;
  }
  sigset_t none, oldmask;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, &oldmask);

  /* Node marks stdin/stdout/stderr close-on-exec (and libuv may have made them
   * non-blocking): the program we exec must inherit them as a shell would pass them. */
  int saved_fd[3], saved_fl[3];
  for (int fd = 0; fd < 3; fd++) {
    saved_fd[fd] = fcntl(fd, F_GETFD);
    saved_fl[fd] = fcntl(fd, F_GETFL);
    if (saved_fd[fd] >= 0) fcntl(fd, F_SETFD, saved_fd[fd] & ~FD_CLOEXEC);
    if (saved_fl[fd] >= 0) fcntl(fd, F_SETFL, saved_fl[fd] & ~O_NONBLOCK);
  }

  execve(path, argv, envp);
  int err = errno; /* before the fcntl calls below can change it */

  for (int fd = 0; fd < 3; fd++) {
    if (saved_fd[fd] >= 0) fcntl(fd, F_SETFD, saved_fd[fd]);
    if (saved_fl[fd] >= 0) fcntl(fd, F_SETFL, saved_fl[fd]);
  }
  sigprocmask(SIG_SETMASK, &oldmask, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (was_saved[sig]) sigaction(sig, &saved[sig], NULL);

  char msg[512];
  snprintf(msg, sizeof msg, "execve(%s) failed: %s", path, strerror(err));
  napi_throw_error(env, strerrorname_np(err), msg);
}

/* execve(path, argv, env): returns only by throwing (see exec_or_throw). */
static napi_value proc_execve(napi_env env, napi_callback_info info) {
  static const char usage[] = "execve(path, argv: string[], env: string[])";
  sw_args a;
  char *path = NULL;
  char **argv = NULL, **envp = NULL;
  if (!sw_get_args(env, info, &a, usage, 3)) return NULL;
  path = dup_string(&a, a.argv[0], 0, "must be a string");
  if (path != NULL) argv = dup_vector(&a, 1);
  if (argv != NULL) envp = dup_vector(&a, 2);
  if (envp != NULL) exec_or_throw(env, path, argv, envp);
  free(path);
  free_vector(argv);
  free_vector(envp);
  return NULL;
}

/*
 * signalThread(tid, sig) -> 0 | -errno: sends sig to thread tid (tkill(2)); for a signal the
 * kernel would raise in the thread that made a call the daemon carried out (SIGPIPE).
 */
static napi_value proc_signal_thread(napi_env env, napi_callback_info info) {
  static const char usage[] = "signalThread(tid, sig)";
  sw_args a;
  int32_t tid, sig;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &tid) || !sw_i32(&a, 1, &sig)) return NULL;
  return sw_ret(env, syscall(SYS_tkill, tid, sig));
}

const sw_export sw_proc_exports[] = {
    {"signalThread", proc_signal_thread},
    {"pidfdOpen", proc_pidfd_open},
    {"pidfdGetfd", proc_pidfd_getfd},
    {"readMem", proc_read_mem},
    {"writeMem", proc_write_mem},
    {"execve", proc_execve},
    {NULL, NULL},
};
