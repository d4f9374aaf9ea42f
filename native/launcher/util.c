/*
 * util.c: how the launcher fails and what exit code a finished app maps to.
 *
 * Every error message goes to stderr as one line starting with "sockswitch: ",
 * because the user ran `sockswitch run` and never sees the launcher's name. Once
 * the app has been forked, a failure of the launcher kills and reaps the app
 * first, so no half-started app is left behind.
 *
 * Man pages: wait(2), kill(2), _exit(2).
 */
#include "launcher.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Set in the launcher (never in the app) once the app exists. */
static pid_t doomed_app;

void fail_kills_app(pid_t pid) { doomed_app = pid; }

void fail(int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (doomed_app > 0) {
    kill(doomed_app, SIGKILL);
    while (waitpid(doomed_app, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  /* The message may quote the daemon's words (an ERR line): never echo control bytes
   * (terminal escapes) to the user's terminal; every byte outside printable ASCII is
   * written as \xNN. */
  char safe[sizeof msg * 4];
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
    if (*p >= 0x20 && *p < 0x7f) {
      safe[o++] = (char)*p;
    } else {
      snprintf(safe + o, 5, "\\x%02x", *p);
      o += 4;
    }
  }
  safe[o] = '\0';
  fprintf(stderr, "sockswitch: %s\n", safe);
  /* _exit: the same path serves the forked app, which must not run atexit work. */
  _exit(code);
}

/* The app's exit status, or 128 + the signal that killed it (as docker run does). */
int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return EXIT_LAUNCHER;
}
