/*
 * pidns.c: the app's own PID namespace, with the launcher as its first process (pid 1,
 * the app's init), and a /proc that shows only that namespace.
 *
 * Why: apps of one uid could otherwise reach each other's processes: write memory
 * through /proc/PID/mem, read /proc/PID/environ, send signals. Those all name a process
 * by a pid of the caller's PID namespace, or by a procfs that shows it; an app that has
 * a PID namespace of its own and only that namespace's procfs can name no other app's
 * process. The daemon checks that every app's launcher is the first process of a PID
 * namespace that is not the daemon's (src/daemon/identity.ts).
 *
 * A launcher that starts as pid 1 already is a container's entrypoint: the runtime made
 * the namespace and mounted its /proc. Otherwise (`sockswitch run` on a host) this
 * process makes the namespace (unshare(CLONE_NEWPID), root or CAP_SYS_ADMIN) and forks
 * the init, which goes on with the launch; this one stays outside, forwards signals to
 * it and exits with its status. The init dies with it (PR_SET_PDEATHSIG), and when the
 * init exits the kernel kills every process left in the namespace.
 *
 * Man pages: pid_namespaces(7), unshare(2), prctl(2), proc(5), umount(2), mount(2).
 */
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROC_MOUNTS 64

void pidns_become_init(void) {
  if (getpid() == 1) return;
  if (unshare(CLONE_NEWPID) < 0) {
    if (errno == EPERM)
      fail(EXIT_LAUNCHER,
           "the app needs a PID namespace of its own, which needs root or CAP_SYS_ADMIN; in a container, "
           "make sockswitch-launch the container's first process (its entrypoint, without --init)");
    fail(EXIT_LAUNCHER, "creating a PID namespace failed: %s", strerror(errno));
  }
  /* The init's test that this process still lives: the write end stays open here until
   * exit, so the init sees a hang-up once we are gone. */
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) < 0) fail(EXIT_LAUNCHER, "creating a pipe failed: %s", strerror(errno));
  signals_block();
  pid_t init = fork();
  if (init < 0) fail(EXIT_LAUNCHER, "fork failed: %s", strerror(errno));
  if (init == 0) {
    close(alive[1]);
    /* No one would forward signals or report the exit: die with the outer launcher. Its
     * pid is not in this namespace (getppid() is 0 here), hence the pipe. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(EXIT_LAUNCHER);
    struct pollfd p = {.fd = alive[0], .events = POLLIN};
    if (poll(&p, 1, 0) != 0) _exit(EXIT_LAUNCHER);
    close(alive[0]);
    return;
  }
  close(alive[0]);
  signals_forward_to(init);
  int status;
  while (waitpid(init, &status, 0) < 0)
    if (errno != EINTR) fail(EXIT_LAUNCHER, "waiting for the app's init failed: %s", strerror(errno));
  /* The init exits with the app's code (or 125/126/127); a signal that killed it counts as
   * the app's. */
  _exit(exit_code_of(status));
}

/* Undoes mountinfo's octal escapes (\040 for a space …) in place. */
static void unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
      p += 3;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
}

/*
 * In the app's own mount namespace (mountns_enter), by the init of its PID namespace:
 * detaches every procfs mount inherited from the host (each shows the host's processes),
 * then mounts a procfs of this namespace on /proc.
 */
void pidns_mount_proc(void) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) fail(EXIT_LAUNCHER, "reading /proc/self/mountinfo failed: %s", strerror(errno));
  char *points[MAX_PROC_MOUNTS];
  size_t n = 0;
  char line[8192];
  while (fgets(line, sizeof line, f)) {
    /* id parent major:minor root mount-point options [optional…] - fstype source super */
    char *sep = strstr(line, " - ");
    if (!sep || strncmp(sep + 3, "proc ", 5) != 0) continue;
    char *field = line;
    for (int k = 0; k < 4 && field; k++) {
      field = strchr(field, ' ');
      if (field) field++;
    }
    char *end = field ? strchr(field, ' ') : NULL;
    if (!end) continue;
    *end = '\0';
    unescape(field);
    if (n == MAX_PROC_MOUNTS)
      fail(EXIT_LAUNCHER, "more than %d procfs mounts; cannot hide them from the app", MAX_PROC_MOUNTS);
    points[n] = strdup(field);
    if (!points[n++]) fail(EXIT_LAUNCHER, "out of memory");
  }
  fclose(f);
  /* Children after parents in mountinfo: detach from the last. One already gone with a
   * detached parent gives EINVAL or ENOENT. */
  while (n > 0) {
    char *mp = points[--n];
    if (umount2(mp, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
      fail(EXIT_LAUNCHER, "detaching the host's procfs at %s from the app failed: %s", mp, strerror(errno));
    free(mp);
  }
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    fail(EXIT_LAUNCHER, "mounting the app's /proc failed: %s", strerror(errno));
}
