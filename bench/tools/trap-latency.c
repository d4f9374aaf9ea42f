/*
 * trap-latency: how long socket() and a blocking connect() take, one call at a time.
 *
 *   trap-latency HOST PORT COUNT
 *
 * Each round: socket(AF_INET, SOCK_STREAM), connect() to HOST:PORT (a listening server),
 * close() with SO_LINGER 0 (a reset: no TIME_WAIT, so that the rounds do not fill the
 * namespace's ephemeral ports and slow down each other's port search). socket() and
 * connect() are timed with clock_gettime(CLOCK_MONOTONIC). Run once as a plain process
 * and once under `sockswitch run`: the difference is what trapping adds (the
 * seccomp notification, the daemon's handler, its answer). Prints one JSON line with p50,
 * p99 and the mean of each call in microseconds, and p50 and p99 of the two together
 * (pair_*: one socket() plus its connect(), what the fairness measure compares), after a
 * warm-up of 200 rounds.
 * Stops at the first error. Man pages: clock_gettime(2), socket(2), connect(2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

#define WARMUP 200

static double mean(const long long *v, long n) {
  double s = 0;
  for (long i = 0; i < n; i++) s += (double)v[i];
  return n > 0 ? s / (double)n / 1000.0 : 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: trap-latency HOST PORT COUNT\n");
    return 2;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    fprintf(stderr, "trap-latency: %s is not an IPv4 address\n", argv[1]);
    return 2;
  }
  long count = atol(argv[3]);
  if (count < 1) count = 1;
  long long *sock = calloc((size_t)count, sizeof *sock);
  long long *conn = calloc((size_t)count, sizeof *conn);
  long long *pair = calloc((size_t)count, sizeof *pair);
  if (!sock || !conn || !pair) return 1;
  int err = 0;
  long done = 0;
  for (long i = -WARMUP; i < count; i++) {
    long long t0 = ns();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    long long t1 = ns();
    if (fd < 0) {
      err = errno;
      break;
    }
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    long long t2 = ns();
    if (r < 0) err = errno;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    if (err) break;
    if (i >= 0) {
      sock[done] = t1 - t0;
      conn[done] = t2 - t1;
      pair[done] = t2 - t0;
      done++;
    }
  }
  qsort(sock, (size_t)done, sizeof *sock, cmp);
  qsort(conn, (size_t)done, sizeof *conn, cmp);
  qsort(pair, (size_t)done, sizeof *pair, cmp);
  printf("{\"count\":%ld,\"errors\":%d,\"socket_p50_us\":%.3f,\"socket_p99_us\":%.3f,"
         "\"socket_mean_us\":%.3f,\"connect_p50_us\":%.3f,\"connect_p99_us\":%.3f,"
         "\"connect_mean_us\":%.3f",
         done, err ? 1 : 0, quantile(sock, done, 0.5), quantile(sock, done, 0.99), mean(sock, done),
         quantile(conn, done, 0.5), quantile(conn, done, 0.99), mean(conn, done));
  printf(",\"pair_p50_us\":%.3f,\"pair_p99_us\":%.3f", quantile(pair, done, 0.5), quantile(pair, done, 0.99));
  if (err) printf(",\"errno\":\"%s\"", strerrorname_np(err) ? strerrorname_np(err) : "?");
  printf("}\n");
  return err ? 3 : 0;
}
