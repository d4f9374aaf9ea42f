/*
 * notif-rtt: what a trapped call costs in the kernel alone, answered by a minimal
 * supervisor in C, so that the trap measure can be read against a floor.
 *
 *   notif-rtt COUNT
 *
 * A child process installs a seccomp filter that traps its own socket() calls
 * (SECCOMP_RET_USER_NOTIF) and hands the listener to this process, which waits on it with
 * epoll (as the daemon's event loop does) with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP set,
 * receives each call and answers it at once:
 *   send   socket(AF_INET, SOCK_DGRAM): answered with an error (SECCOMP_IOCTL_NOTIF_SEND),
 *          as the daemon answers connect();
 *   addfd  socket(AF_INET, SOCK_STREAM): answered with a socket of this process
 *          (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND), as the daemon answers
 *          socket() and accept().
 * The child times COUNT calls of each kind (after a warm-up of 200) with
 * clock_gettime(CLOCK_MONOTONIC) and prints one JSON line: p50 and p99 in microseconds,
 * and whether the kernel took the sync wake-up flag. Nothing touches the network.
 * Man pages: seccomp_unotify(2), seccomp(2), epoll(7), unix(7) (SCM_RIGHTS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define WARMUP 200

static void die(const char *what) {
  fprintf(stderr, "notif-rtt: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void send_fd(int sock, int fd) {
  char data = 'L';
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) != 1) die("sendmsg");
}

static int recv_fd(int sock) {
  char data;
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &m, 0) != 1) die("recvmsg");
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (c == NULL || c->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "notif-rtt: no listener received\n");
    exit(1);
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* The trapped side: times COUNT socket() calls of each kind; -1 on an unexpected answer. */
static void child(int sock, long count) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS");
  int listener = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) die("seccomp");
  send_fd(sock, listener);
  close(listener);
  char go;
  if (read(sock, &go, 1) != 1) die("read");
  long long *v = malloc(sizeof *v * (size_t)count);
  if (v == NULL) die("malloc");
  double p[2][2];
  for (int kind = 0; kind < 2; kind++) {
    int type = kind == 0 ? SOCK_DGRAM : SOCK_STREAM;
    for (long i = 0; i < count + WARMUP; i++) {
      long long t = ns();
      int fd = socket(AF_INET, type, 0);
      long long d = ns() - t;
      if ((kind == 0) != (fd < 0)) {
        fprintf(stderr, "notif-rtt: unexpected answer %d (errno %d)\n", fd, errno);
        exit(1);
      }
      if (fd >= 0) close(fd);
      if (i >= WARMUP) v[i - WARMUP] = d;
    }
    qsort(v, (size_t)count, sizeof *v, cmp);
    p[kind][0] = quantile(v, count, 0.5);
    p[kind][1] = quantile(v, count, 0.99);
  }
  char sync;
  if (read(sock, &sync, 1) != 1) die("read");
  printf("{\"count\":%ld,\"sync_wake_up\":%d,\"send_p50_us\":%.3f,\"send_p99_us\":%.3f,"
         "\"addfd_p50_us\":%.3f,\"addfd_p99_us\":%.3f}\n",
         count, sync == '1', p[0][0], p[0][1], p[1][0], p[1][1]);
  exit(0);
}

int main(int argc, char **argv) {
  long count = argc == 2 ? atol(argv[1]) : 0;
  if (count <= 0) {
    fprintf(stderr, "usage: notif-rtt COUNT\n");
    return 2;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[1]);
    child(sv[0], count);
  }
  close(sv[0]);
  int listener = recv_fd(sv[1]);
  char sync = ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0) == 0 ? '1' : '0';
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) die("epoll");
  if (write(sv[1], "g", 1) != 1) die("write");
  long answered = 0, expected = 2 * (count + WARMUP);
  while (answered < expected) {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("epoll_wait (no trapped call for 10 s)");
    if (out.events & EPOLLHUP) break;
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      die("NOTIF_RECV");
    }
    if (req.data.args[1] == SOCK_STREAM) {
      int s = socket(AF_INET, SOCK_STREAM, 0);
      if (s < 0) die("socket");
      struct seccomp_notif_addfd add = {.id = req.id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (__u32)s};
      if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0 && errno != ENOENT) die("NOTIF_ADDFD");
      close(s);
    } else {
      struct seccomp_notif_resp resp = {.id = req.id, .error = -EPERM};
      if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT) die("NOTIF_SEND");
    }
    answered++;
  }
  if (write(sv[1], &sync, 1) != 1) die("write");
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
