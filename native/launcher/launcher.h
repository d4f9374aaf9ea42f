/*
 * launcher.h: what the parts of sockswitch-launch share: the parsed options, what
 * the daemon grants in the handshake, the daemon connection, and each file's entry
 * points.
 *
 * sockswitch-launch is the static binary that runs an app: `sockswitch run` execs it, and
 * a container image uses it as its entrypoint (`sockswitch-launch run … -- CMD`; it needs
 * nothing from the image). It makes sure the app has a PID namespace of its own and is
 * that namespace's first process (pid 1, the app's init), asks the per-host daemon for
 * the app's addresses and seccomp filter, optionally moves into a new network namespace,
 * forks the app with the filter installed, hands the seccomp listener and a pidfd of the
 * app to the daemon, and then stays as the app's init: it forwards signals, reaps orphans
 * and exits with the app's status. Only syscalls here; every policy choice (the meaning of
 * --ip, --labels, --publish …) belongs to the daemon, which validates the options with
 * the same code as `sockswitch run`.
 *
 * Man pages: seccomp(2), seccomp_unotify(2), unix(7), rtnetlink(7), netdevice(7),
 * mount_namespaces(7), pid_namespaces(7), pidfd_open(2).
 */
#ifndef SOCKSWITCH_LAUNCHER_H
#define SOCKSWITCH_LAUNCHER_H

/* unshare(2), MSG_CMSG_CLOEXEC and friends; every .c includes this header first. */
#define _GNU_SOURCE

#include <linux/filter.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes of the launcher itself, as docker run and shells use them. */
#define EXIT_USAGE 2        /* a bad option (found here, or by the daemon's validation) */
#define EXIT_LAUNCHER 125   /* the launcher failed before the app ran */
#define EXIT_CANNOT_EXEC 126 /* CMD found but could not be executed */
#define EXIT_NOT_FOUND 127  /* CMD not found */

/* Largest reply the daemon may send to one request, and so the longest line. */
#define REPLY_CAP (64 * 1024)

/* The daemon's socket when neither --socket nor SOCKSWITCH_SOCKET says otherwise. */
#define DEFAULT_SOCKET "/run/sockswitch/sockswitch.sock"

struct options {
  const char *socket_path;
  char *hello;       /* the registration for the daemon: the run options as JSON */
  bool netns;        /* --new-netns (default true) */
  bool set_user;     /* --user given */
  uid_t uid;
  gid_t gid;
  gid_t *groups;     /* supplementary groups; none when ngroups == 0 */
  size_t ngroups;
  const char *resolv_conf; /* shown to the app as /etc/resolv.conf; or NULL */
  char **cmd;        /* CMD and its ARGs, NULL-terminated */
};

struct address {
  int family;              /* AF_INET or AF_INET6 */
  unsigned char bytes[16]; /* network byte order; 4 bytes used for AF_INET */
  char text[INET6_ADDRSTRLEN];
};

/* What the daemon's HELLO reply grants the app. */
struct grant {
  struct address *addrs;
  size_t naddrs;
  struct sock_filter *filter;
  unsigned short filter_len; /* number of instructions */
};

/* The connection to the daemon, kept open for the launcher's whole life. */
struct daemon_conn {
  int fd;
  const char *path;
  pid_t app;        /* set once the listener has been handed over */
  int listener;     /* the app's seccomp listener fd, kept open; -1 before */
  int app_pidfd;    /* a pidfd of the app, sent with the listener; -1 before */
  char app_id[64];  /* the daemon's id of the app (its APP line); "" if it sent none */
  size_t len;       /* bytes buffered in buf */
  size_t consumed;  /* bytes of buf taken by the last line returned */
  size_t total;     /* bytes read for the current reply, checked against REPLY_CAP */
  char buf[REPLY_CAP + 1];
};

/* util.c */
void fail(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void fail_kills_app(pid_t pid);
int exit_code_of(int wait_status);

/* options.c */
void options_parse(int argc, char **argv, struct options *o);

/* users.c */
void users_resolve(const char *spec, struct options *o);

/* fdpass.c */
int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
int send_all(int sock, const void *buf, size_t len);

/* handshake.c */
struct daemon_conn *handshake_connect(const char *path);
void handshake_hello(struct daemon_conn *dc, const char *hello, struct grant *g);
bool handshake_hand_over(struct daemon_conn *dc, pid_t app, int listener, int app_ctl);
bool handshake_poll_daemon(struct daemon_conn *dc);
bool handshake_reattach(struct daemon_conn *dc);
void handshake_report_exit(struct daemon_conn *dc, int code);

/* pidns.c */
void pidns_become_init(void);
void pidns_mount_proc(void);

/* netns.c */
void netns_setup(const struct grant *g);

/* mountns.c */
void mountns_enter(const char *resolv_conf);
void mountns_resolv_conf(const char *path);

/* child.c */
struct app {
  pid_t pid;
  int ctl; /* the launcher's end of the socketpair to the app before exec */
};
void app_spawn(struct app *a, const struct options *o, const struct grant *g, int daemon_fd);
int app_await_listener(struct app *a);
void app_release(struct app *a);
int app_reap_now(struct app *a);

/* signals.c */
void signals_block(void);
void signals_forward_to(pid_t pid);
void signals_reset_for_exec(void);
int signals_supervise(pid_t pid, struct daemon_conn *dc);

#endif
