/*
 * netbench: the purpose-built TCP server and clients of the benchmark harness, for the two
 * measures no Debian tool fits (netperf's TCP_RR/TCP_CRR are not in Debian main):
 *
 *   netbench server PORT             echo server: one thread, epoll; answers every byte it
 *                                    reads and closes on EOF. Prints "listening PORT".
 *   netbench rr HOST PORT SECS       one connection, 1-byte request and 1-byte reply, in a loop
 *   netbench crr HOST PORT SECS MAX  per round: socket, connect, 1-byte request and reply,
 *                                    close; stops after SECS seconds or MAX rounds
 *
 * Clients print one JSON line: {"count":N,"seconds":S,"rate":R,"errors":E}. They stop at
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
  fprintf(stderr,
          "usage: netbench server PORT | rr HOST PORT SECS | crr HOST PORT SECS MAX\n");
  return 2;
}
