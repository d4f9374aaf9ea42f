/*
 * flood: one app that keeps the daemon busy, for the fairness measure.
 *
 *   flood SECONDS
 *
 * Calls socket(AF_INET, SOCK_STREAM) and close() in a loop, as fast as it can, for SECONDS
 * or until SIGTERM: under `sockswitch run` every socket() is a trapped call the daemon
 * answers with an fd. Prints "flooding" once it has made its first call, and at the end
 * one JSON line with the number of calls and their rate per second. Man pages: socket(2),
 * clock_gettime(2), sigaction(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "timing.h"

static volatile sig_atomic_t stop;

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: flood SECONDS\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  long long end = ns() + (long long)(atof(argv[1]) * 1e9);
  long long t0 = ns();
  long calls = 0, errors = 0;
  while (!stop && ns() < end) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      if (errno != EINTR) errors++;
    } else {
      close(fd);
    }
    if (++calls == 1) {
      printf("flooding\n");
      fflush(stdout);
    }
  }
  double secs = (double)(ns() - t0) / 1e9;
  printf("{\"calls\":%ld,\"errors\":%ld,\"rate\":%.0f}\n", calls, errors, secs > 0 ? (double)calls / secs : 0);
  return 0;
}
