/*
 * handshake.c: the launcher's side of the daemon protocol (SSW1) on a UNIX stream
 * socket. Lines end with "\n"; a reply is at most REPLY_CAP bytes.
 *
 *   launcher: SSW1 HELLO <registration>   (the run options as JSON, see options.c)
 *   daemon:   OK | ERR <message>          (after ERR the daemon closes)
 *             | USAGE <message>           (a bad option value: exit 2; the daemon closes)
 *             IP <address>                (zero or more; IPv4 dotted or IPv6 text)
 *             FILTER <hex>                (exactly one: struct sock_filter[] as laid
 *                                          out in memory, host byte order, 8 bytes each)
 *             END
 *   launcher: SSW1 FD                     (attached, SCM_RIGHTS: the seccomp listener,
 *                                          then a pidfd of the app)
 *   daemon:   APP <id>                    (the app's id, for a later REATTACH)
 *             GO | ERR <message>
 *
 * When the daemon connection ends while the app runs (the daemon restarted), the
 * launcher reconnects and hands the listener it kept to the new daemon:
 *
 *   launcher: SSW1 REATTACH <id>          (the listener and the app's pidfd attached)
 *   daemon:   GO | ERR <message>
 *
 * When the app has ended and been reaped, the launcher reports its exit status (as
 * its own exit code: 128+N for signal N) on the connection, if it is still open:
 *
 *   launcher: SSW1 EXIT <status>
 *
 * No pid travels as a number: the launcher may run in another PID namespace than the
 * daemon (a container), where its pids mean nothing to the daemon. The pidfd names the
 * app's process to the kernel, which tells the daemon its pid in the daemon's namespace.
 *
 * Lines of a kind this launcher does not know are ignored, so the daemon can add
 * kinds without breaking older launchers. The connection stays open afterwards for
 * the launcher's whole life; its end tells the daemon the app is gone.
 *
 * Man pages: unix(7), seccomp(2) (struct sock_fprog), poll(2), pidfd_open(2).
 */
#include "launcher.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

enum { LINE, LINE_EOF, LINE_WATCH };

/*
 * Returns the next line (without "\n", NUL-terminated, valid until the next call).
 * When watch_fd >= 0, waiting for the daemon also watches watch_fd and returns
 * LINE_WATCH as soon as it is readable or hung up.
 */
static int read_line(struct daemon_conn *dc, int watch_fd, char **line) {
  memmove(dc->buf, dc->buf + dc->consumed, dc->len - dc->consumed);
  dc->len -= dc->consumed;
  dc->consumed = 0;
  for (;;) {
    char *nl = memchr(dc->buf, '\n', dc->len);
    if (nl) {
      *nl = '\0';
      dc->consumed = (size_t)(nl - dc->buf) + 1;
      *line = dc->buf;
      return LINE;
    }
    if (dc->len >= REPLY_CAP)
      fail(EXIT_LAUNCHER, "a line from the daemon at %s is longer than %d KiB; giving up", dc->path,
           REPLY_CAP / 1024);
    if (watch_fd >= 0) {
      struct pollfd p[2] = {{.fd = dc->fd, .events = POLLIN}, {.fd = watch_fd, .events = POLLIN}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        fail(EXIT_LAUNCHER, "waiting for the daemon failed: %s", strerror(errno));
      }
      if (p[1].revents) return LINE_WATCH;
      if (!p[0].revents) continue;
    }
    ssize_t n = read(dc->fd, dc->buf + dc->len, REPLY_CAP - dc->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return LINE_EOF; /* closed with our request unread */
      fail(EXIT_LAUNCHER, "reading from the daemon at %s failed: %s", dc->path, strerror(errno));
    }
    if (n == 0) return LINE_EOF;
    dc->len += (size_t)n;
    dc->total += (size_t)n;
    if (dc->total > REPLY_CAP)
      fail(EXIT_LAUNCHER, "the daemon's reply is larger than %d KiB; giving up", REPLY_CAP / 1024);
  }
}

static char *expect_line(struct daemon_conn *dc, const char *during) {
  char *line;
  if (read_line(dc, -1, &line) == LINE_EOF)
    fail(EXIT_LAUNCHER, "the daemon closed the connection %s", during);
  return line;
}

static bool is_kind(const char *line, const char *kind) {
  size_t n = strlen(kind);
  return strncmp(line, kind, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* ERR <sentence> (exit 125) or USAGE <sentence> (a bad option value, exit 2). */
static void refused(const char *line) {
  bool usage = is_kind(line, "USAGE");
  const char *msg = line + (usage ? 5 : 3);
  msg = *msg == ' ' ? msg + 1 : "";
  if (*msg == '\0') fail(EXIT_LAUNCHER, "the daemon refused without giving a reason");
  fail(usage ? EXIT_USAGE : EXIT_LAUNCHER, "%s", msg);
}

static void add_address(struct grant *g, const char *text) {
  struct address a = {0};
  if (inet_pton(AF_INET, text, a.bytes) == 1)
    a.family = AF_INET;
  else if (inet_pton(AF_INET6, text, a.bytes) == 1)
    a.family = AF_INET6;
  else
    fail(EXIT_LAUNCHER, "the daemon sent an invalid address \"%.64s\"", text);
  inet_ntop(a.family, a.bytes, a.text, sizeof a.text);
  struct address *grown = realloc(g->addrs, (g->naddrs + 1) * sizeof *grown);
  if (!grown) fail(EXIT_LAUNCHER, "out of memory");
  g->addrs = grown;
  g->addrs[g->naddrs++] = a;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void set_filter(struct grant *g, const char *hex) {
  size_t digits = strlen(hex);
  size_t insn_digits = 2 * sizeof(struct sock_filter);
  if (digits == 0 || digits % insn_digits != 0)
    fail(EXIT_LAUNCHER, "the daemon sent a FILTER of %zu hex digits, not a whole number of %zu-byte instructions",
         digits, sizeof(struct sock_filter));
  size_t count = digits / insn_digits;
  if (count > BPF_MAXINSNS)
    fail(EXIT_LAUNCHER, "the daemon sent a FILTER of %zu instructions; the kernel takes at most %d", count,
         BPF_MAXINSNS);
  struct sock_filter *insns = calloc(count, sizeof *insns);
  if (!insns) fail(EXIT_LAUNCHER, "out of memory");
  unsigned char *out = (unsigned char *)insns;
  for (size_t i = 0; i < digits; i += 2) {
    int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0) fail(EXIT_LAUNCHER, "the daemon sent a FILTER with a non-hex character at %zu", i);
    out[i / 2] = (unsigned char)(hi << 4 | lo);
  }
  g->filter = insns;
  g->filter_len = (unsigned short)count;
}

/* A connected socket to the daemon at path, or -errno. */
static int dial(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(EXIT_LAUNCHER, "creating a UNIX socket failed: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

struct daemon_conn *handshake_connect(const char *path) {
  struct daemon_conn *dc = calloc(1, sizeof *dc);
  if (!dc) fail(EXIT_LAUNCHER, "out of memory");
  dc->path = path;
  dc->listener = -1;
  dc->app_pidfd = -1;
  dc->fd = dial(path);
  int err = dc->fd < 0 ? -dc->fd : 0;
  if (err)
    fail(EXIT_LAUNCHER, "cannot reach the daemon at %s: %s; is `sockswitch daemon` running?", path,
         strerror(err));
  return dc;
}

void handshake_hello(struct daemon_conn *dc, const char *hello, struct grant *g) {
  if (strchr(hello, '\n')) fail(EXIT_LAUNCHER, "internal error: the registration spans lines");
  size_t len = strlen("SSW1 HELLO ") + strlen(hello) + 1;
  if (len > REPLY_CAP)
    fail(EXIT_USAGE, "the command line is too long for the daemon (%zu bytes of options and command; at most %d KiB)",
         len, REPLY_CAP / 1024);
  char *msg = malloc(len + 1);
  if (!msg) fail(EXIT_LAUNCHER, "out of memory");
  snprintf(msg, len + 1, "SSW1 HELLO %s\n", hello);
  if (send_all(dc->fd, msg, len) < 0) {
    if (errno == EPIPE || errno == ECONNRESET)
      fail(EXIT_LAUNCHER, "the daemon at %s closed the connection before HELLO", dc->path);
    fail(EXIT_LAUNCHER, "sending to the daemon at %s failed: %s", dc->path, strerror(errno));
  }
  free(msg);

  dc->total = 0;
  char *line = expect_line(dc, "without answering HELLO");
  if (is_kind(line, "ERR") || is_kind(line, "USAGE")) refused(line);
  if (strcmp(line, "OK") != 0)
    fail(EXIT_LAUNCHER, "unexpected reply from the daemon: \"%.100s\" (wanted OK or ERR)", line);

  bool have_filter = false;
  for (;;) {
    line = expect_line(dc, "in the middle of its reply to HELLO (no END)");
    if (strcmp(line, "END") == 0) break;
    if (is_kind(line, "ERR")) refused(line);
    if (strncmp(line, "IP ", 3) == 0) {
      add_address(g, line + 3);
    } else if (strncmp(line, "FILTER ", 7) == 0) {
      if (have_filter) fail(EXIT_LAUNCHER, "the daemon sent two FILTER lines");
      set_filter(g, line + 7);
      have_filter = true;
    }
    /* Any other kind of line: ignored (forward compatibility). */
  }
  if (!have_filter) fail(EXIT_LAUNCHER, "the daemon's reply to HELLO has no FILTER line");
}

/*
 * Sends `SSW1 FD` with the listener and a pidfd of the app attached and waits for GO.
 * Returns true on GO; false when app_ctl became readable first (the app died before
 * starting). ERR, a closed connection or a broken reply fail (and so kill the app).
 */
bool handshake_hand_over(struct daemon_conn *dc, pid_t app, int listener, int app_ctl) {
  int pidfd = (int)syscall(SYS_pidfd_open, app, 0);
  if (pidfd < 0) fail(EXIT_LAUNCHER, "pidfd_open of the app failed: %s", strerror(errno));
  static const char msg[] = "SSW1 FD\n";
  int fds[2] = {listener, pidfd};
  if (send_with_fds(dc->fd, msg, sizeof msg - 1, fds, 2) < 0) {
    if (errno == EPIPE || errno == ECONNRESET)
      fail(EXIT_LAUNCHER, "the daemon closed the connection before the listener hand-over");
    fail(EXIT_LAUNCHER, "handing the seccomp listener to the daemon failed: %s", strerror(errno));
  }
  dc->app = app;
  dc->listener = listener;
  dc->app_pidfd = pidfd;
  dc->total = 0;
  for (;;) {
    char *line;
    int got = read_line(dc, app_ctl, &line);
    if (got == LINE_WATCH) return false;
    if (got == LINE_EOF)
      fail(EXIT_LAUNCHER, "the daemon closed the connection before answering the listener hand-over");
    if (strcmp(line, "GO") == 0) return true;
    if (is_kind(line, "ERR")) refused(line);
    if (strncmp(line, "APP ", 4) == 0 && strlen(line + 4) < sizeof dc->app_id && !strchr(line + 4, ' '))
      strcpy(dc->app_id, line + 4);
    /* Any other kind of line: ignored (forward compatibility). */
  }
}

/*
 * Called while the app runs, when the daemon connection is readable. Nothing is
 * expected from the daemon now, so whatever it sends is read and dropped.
 * Returns false once the connection has ended.
 */
bool handshake_poll_daemon(struct daemon_conn *dc) {
  ssize_t n = read(dc->fd, dc->buf, REPLY_CAP);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  dc->len = dc->consumed = 0;
  return n > 0;
}

/*
 * Tells the daemon the app's exit status (best effort: a daemon that is gone or
 * restarting misses it, and the app is then listed without one). Never blocks.
 */
void handshake_report_exit(struct daemon_conn *dc, int code) {
  char msg[32];
  int len = snprintf(msg, sizeof msg, "SSW1 EXIT %d\n", code);
  (void)send(dc->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * The daemon connection ended while the app runs (the daemon stopped or restarted).
 * The app's trapped calls wait on the seccomp listener, which this launcher still
 * holds, so the kernel keeps them pending instead of failing them. Tries once to hand
 * the listener to a daemon on the same path: true on GO (dc->fd is the new
 * connection), false when no daemon answers yet (the caller tries again later). A
 * daemon that refuses the app (restarted with --clean, say) ends the launcher and the
 * app: its calls would otherwise wait forever.
 */
bool handshake_reattach(struct daemon_conn *dc) {
  if (dc->app_id[0] == '\0') return false;
  int fd = dial(dc->path);
  if (fd < 0) return false;
  char msg[128];
  int len = snprintf(msg, sizeof msg, "SSW1 REATTACH %s\n", dc->app_id);
  int fds[2] = {dc->listener, dc->app_pidfd};
  if (send_with_fds(fd, msg, (size_t)len, fds, 2) < 0) {
    close(fd);
    return false;
  }
  /* The answer: one line within a bounded time (the daemon answers at once). */
  char reply[512];
  size_t got = 0;
  while (got < sizeof reply - 1) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 5000);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
    reply[got] = '\0';
    char *nl = strchr(reply, '\n');
    if (!nl) continue;
    *nl = '\0';
    if (strcmp(reply, "GO") == 0) {
      close(dc->fd);
      dc->fd = fd;
      dc->len = dc->consumed = dc->total = 0;
      return true;
    }
    if (is_kind(reply, "ERR"))
      fail(EXIT_LAUNCHER, "the restarted daemon at %s refused this app: %s", dc->path,
           reply[3] == ' ' ? reply + 4 : "no reason given");
    break;
  }
  close(fd);
  return false;
}
