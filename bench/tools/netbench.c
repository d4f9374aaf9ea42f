/*
 * netbench: the purpose-built TCP server and clients of the benchmark harness, for the two
 * measures no Debian tool fits (netperf's TCP_RR/TCP_CRR are not in Debian main):
 *
 *   netbench server PORT             echo server: one thread, epoll; answers every byte it
 *                                    reads and closes on EOF. Prints "listening PORT".
 *   netbench rr HOST PORT SECS       one connection, 1-byte request and 1-byte reply, in a loop
 *   netbench crr HOST PORT SECS MAX  per round: socket, connect, 1-byte request and reply,
 *                                    close; stops after SECS seconds or MAX rounds
 *   netbench pace HOST PORT SECS RATE  the soak's client (scripts/soak.ts): crr rounds at
 *                                    RATE per second for SECS seconds; an error is counted
 *                                    and the loop goes on; a progress line every 10 s
 *
 * rr and crr print one JSON line: {"count":N,"seconds":S,"rate":R,"errors":E}. They stop at
 * the first error (errors is then 1, with the errno's name) so that a broken path cannot
 * pass for a fast one. Blocking sockets and plain read/write: what simple apps do.
 * Man pages: socket(2), connect(2), accept4(2), epoll(7), tcp(7), clock_gettime(2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "netbench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct sockaddr_in addr_of(const char *host, const char *port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(port));
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "netbench: %s is not an IPv4 address\n", host);
    exit(2);
  }
  return sa;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int report(long count, double seconds, int err) {
  printf("{\"count\":%ld,\"seconds\":%.6f,\"rate\":%.3f,\"errors\":%d", count, seconds,
         seconds > 0 ? (double)count / seconds : 0.0, err ? 1 : 0);
  if (err) printf(",\"errno\":\"%s\"", strerrorname_np(err) ? strerrorname_np(err) : "?");
  printf("}\n");
  return err ? 3 : 0;
}

/* One request and its reply on fd; 0 or an errno (EPIPE for a peer that closed). */
static int exchange(int fd) {
  char b = 'x';
  if (write(fd, &b, 1) != 1) return errno ? errno : EPIPE;
  ssize_t n = read(fd, &b, 1);
  if (n == 1) return 0;
  return n == 0 ? EPIPE : errno;
}

static int cmd_rr(const char *host, const char *port, double secs) {
  struct sockaddr_in sa = addr_of(host, port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return report(0, 0, errno);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return report(0, 0, errno);
  nodelay(fd);
  for (int i = 0; i < 100; i++) /* warm-up */
    if (exchange(fd)) return report(0, 0, errno ? errno : EPIPE);
  long count = 0;
  int err = 0;
  double start = now(), end = start + secs, t = start;
  while (t < end) {
    for (int i = 0; i < 256; i++) {
      if ((err = exchange(fd)) != 0) break;
      count++;
    }
    t = now();
    if (err) break;
  }
  close(fd);
  return report(count, t - start, err);
}

static int cmd_crr(const char *host, const char *port, double secs, long max) {
  struct sockaddr_in sa = addr_of(host, port);
  long count = 0;
  int err = 0;
  double start = now(), end = start + secs, t = start;
  while (t < end && count < max) {
    for (int i = 0; i < 16 && count < max; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) {
        err = errno;
        break;
      }
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        err = errno;
        close(fd);
        break;
      }
      nodelay(fd);
      err = exchange(fd);
      close(fd);
      if (err) break;
      count++;
    }
    t = now();
    if (err) break;
  }
  return report(count, t - start, err);
}

/* One crr round: 0 or the errno of the step that failed. */
static int crr_round(const struct sockaddr_in *sa) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return errno;
  /* A round that hangs is an error too (the soak must notice it, and end in time). */
  struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int err = 0;
  if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
    err = errno;
  } else {
    nodelay(fd);
    err = exchange(fd);
  }
  close(fd);
  return err;
}

/*
 * Paced rounds: round i is due at start + i/rate; a late loop catches up without sleeping
 * (so the rate achieved says what the path can do). Progress lines
 * {"progress":true,"seconds":S,"count":N,"errors":E} every 10 s; the last line is the
 * report, with the first error's errno name. Exit 3 when any round failed.
 */
static int cmd_pace(const char *host, const char *port, double secs, double rate) {
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in sa = addr_of(host, port);
  long count = 0, errors = 0;
  int first_err = 0;
  double start = now(), end = start + secs, next_progress = start + 10, t = start;
  for (long i = 0; t < end; i++) {
    double due = start + (double)i / rate;
    if (due > t) {
      double wait = due - t;
      struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
    int err = crr_round(&sa);
    if (err) {
      errors++;
      if (!first_err) first_err = err;
    } else {
      count++;
    }
    t = now();
    if (t >= next_progress) {
      printf("{\"progress\":true,\"seconds\":%.3f,\"count\":%ld,\"errors\":%ld}\n", t - start, count,
             errors);
      fflush(stdout);
      next_progress += 10;
    }
  }
  printf("{\"count\":%ld,\"seconds\":%.6f,\"rate\":%.3f,\"errors\":%ld", count, t - start,
         (double)count / (t - start), errors);
  if (first_err)
    printf(",\"errno\":\"%s\"", strerrorname_np(first_err) ? strerrorname_np(first_err) : "?");
  printf("}\n");
  return errors ? 3 : 0;
}

static int cmd_server(const char *port) {
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = addr_of("0.0.0.0", port);
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  if (listen(ls, 4096) < 0) die("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0) die("epoll_ctl");
  printf("listening %s\n", port);
  fflush(stdout);
  struct epoll_event evs[64];
  char buf[4096];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        for (;;) {
          int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
          if (c < 0) break; /* EAGAIN, or an aborted connection: wait for the next */
          nodelay(c);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0) close(c);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0 || write(fd, buf, (size_t)r) != r) close(fd); /* also leaves the epoll set */
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "server") == 0) return cmd_server(argv[2]);
  if (argc == 5 && strcmp(argv[1], "rr") == 0) return cmd_rr(argv[2], argv[3], atof(argv[4]));
  if (argc == 6 && strcmp(argv[1], "crr") == 0)
    return cmd_crr(argv[2], argv[3], atof(argv[4]), atol(argv[5]));
  if (argc == 6 && strcmp(argv[1], "pace") == 0 && atof(argv[5]) > 0)
    return cmd_pace(argv[2], argv[3], atof(argv[4]), atof(argv[5]));
  fprintf(stderr, "usage: netbench server PORT | rr HOST PORT SECS | crr HOST PORT SECS MAX"
                  " | pace HOST PORT SECS RATE\n");
  return 2;
}
