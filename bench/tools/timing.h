/*
 * timing.h: what the bench's C tools share to time calls and report them: a monotonic
 * clock in nanoseconds, a comparator for qsort, and the nearest-rank quantile of sorted
 * samples in microseconds. Man page: clock_gettime(2).
 */
#ifndef SSW_BENCH_TIMING_H
#define SSW_BENCH_TIMING_H

#include <time.h>

static inline long long ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of n sorted values, in microseconds. */
static inline double quantile(const long long *v, long n, double q) {
  long i = (long)(q * (double)n + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return (double)v[i] / 1000.0;
}

#endif
