/*
 * fdpass.c: sending file descriptors with a few bytes of payload over a UNIX stream
 * socket (SCM_RIGHTS), and writing a whole buffer to a socket.
 *
 * The launcher hands the app's seccomp listener fd and a pidfd of the app on to the
 * daemon. (The app itself cannot send its listener this way: its filter traps
 * sendmsg(2), so the launcher takes it with pidfd_getfd(2) instead; see child.c.) Sends
 * use MSG_NOSIGNAL so a peer that went away is an error return, never a SIGPIPE.
 *
 * Man pages: unix(7), cmsg(3), sendmsg(2).
 */
#include "launcher.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int send_all(int sock, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(sock, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Sends buf with fds attached to its first byte. Returns 0, or -1 with errno. */
int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds) {
  union {
    char space[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } ctl;
  if (nfds == 0 || nfds > 2) {
    errno = EINVAL;
    return -1;
  }
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr msg = {
      .msg_iov = &iov,
      .msg_iovlen = 1,
      .msg_control = ctl.space,
      .msg_controllen = CMSG_SPACE(nfds * sizeof(int)),
  };
  memset(&ctl, 0, sizeof ctl);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
  memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));

  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  /* The fds went with the first chunk; a short write only leaves payload to send. */
  return send_all(sock, (const char *)buf + n, len - (size_t)n);
}
