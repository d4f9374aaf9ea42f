/*
 * main.c: sockswitch-launch's arguments and the order of its steps.
 *
 *   sockswitch-launch --socket PATH --meta JSON [--no-netns]
 *                     [--user UID:GID[:G1,G2,...]] [--resolv-conf FILE] -- CMD [ARG...]
 *
 * The TypeScript CLI builds this argv (`sockswitch run` execs the launcher, so it
 * keeps that pid). Steps: connect and HELLO to the daemon; unless --no-netns, a
 * new network namespace with lo up and the granted addresses; with --resolv-conf, a
 * new mount namespace where FILE is /etc/resolv.conf; fork the app, which
 * installs the filter and hands its listener back; hand the listener to the
 * daemon; on GO let the app exec; then forward signals and exit with its status.
 * Exit 125 when the launcher fails, 126/127 when CMD cannot run.
 *
 * Man pages: seccomp(2), seccomp_unotify(2), unix(7), rtnetlink(7),
 * netdevice(7), mount_namespaces(7) (through the files named in launcher.h).
 */
#include "launcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                                   \
  "usage: sockswitch-launch --socket PATH --meta JSON [--no-netns] [--user UID:GID[:G1,G2,...]] " \
  "[--resolv-conf FILE] -- CMD [ARG...]"

static void __attribute__((noreturn)) usage_error(const char *what, const char *arg) {
  fail(EXIT_LAUNCHER, "launcher usage: %s%s\n" USAGE, what, arg ? arg : "");
}

/* A decimal uid or gid; (uid_t)-1 is refused because setuid(2) gives it a meaning. */
static unsigned parse_id(const char *s, size_t len, const char *spec) {
  if (len == 0 || len > 10) usage_error("bad --user ", spec);
  unsigned long long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') usage_error("bad --user (numeric ids only) ", spec);
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v >= 0xffffffffULL) usage_error("bad --user (id out of range) ", spec);
  return (unsigned)v;
}

/* UID:GID[:G1,G2,...]; without the third part the app gets no supplementary groups. */
static void parse_user(const char *spec, struct options *o) {
  const char *c1 = strchr(spec, ':');
  if (!c1) usage_error("bad --user (want UID:GID[:G1,G2,...]) ", spec);
  const char *c2 = strchr(c1 + 1, ':');
  o->uid = parse_id(spec, (size_t)(c1 - spec), spec);
  o->gid = parse_id(c1 + 1, c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1), spec);
  o->set_user = true;
  o->ngroups = 0;
  if (!c2 || c2[1] == '\0') return;
  size_t max = 1;
  for (const char *p = c2 + 1; *p; p++) max += *p == ',';
  o->groups = calloc(max, sizeof *o->groups);
  if (!o->groups) fail(EXIT_LAUNCHER, "out of memory");
  for (const char *p = c2 + 1;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    o->groups[o->ngroups++] = parse_id(p, len, spec);
    if (!end) break;
    p = end + 1;
  }
}

static void parse_args(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  o->netns = true;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) break;
    if (strcmp(a, "--no-netns") == 0) {
      o->netns = false;
      continue;
    }
    if (strcmp(a, "--socket") != 0 && strcmp(a, "--meta") != 0 && strcmp(a, "--user") != 0 &&
        strcmp(a, "--resolv-conf") != 0)
      usage_error("unknown argument ", a);
    if (i + 1 >= argc) usage_error("missing value after ", a);
    const char *v = argv[++i];
    if (strcmp(a, "--socket") == 0)
      o->socket_path = v;
    else if (strcmp(a, "--meta") == 0)
      o->meta = v;
    else if (strcmp(a, "--resolv-conf") == 0)
      o->resolv_conf = v;
    else
      parse_user(v, o);
  }
  if (i >= argc) usage_error("missing -- before the command", NULL);
  if (i + 1 >= argc) usage_error("missing command after --", NULL);
  if (!o->socket_path) usage_error("missing --socket", NULL);
  if (!o->meta) usage_error("missing --meta", NULL);
  if (o->socket_path[0] == '\0') usage_error("empty --socket", NULL);
  if (o->resolv_conf && o->resolv_conf[0] == '\0') usage_error("empty --resolv-conf", NULL);
  o->cmd = argv + i + 1;
}

int main(int argc, char **argv) {
  struct options o;
  parse_args(argc, argv, &o);

  struct daemon_conn *dc = handshake_connect(o.socket_path);
  struct grant g = {0};
  handshake_hello(dc, o.meta, &g);

  /* Before the fork and before any filter exists: these sockets are not trapped. */
  if (o.netns) netns_setup(&g);
  /* Also before the fork: the app inherits the mount namespace, and the app's side of
   * the fork stays as short as it is (no failure path there to report through). */
  if (o.resolv_conf) mountns_resolv_conf(o.resolv_conf);

  signals_block();
  struct app app;
  app_spawn(&app, &o, &g, dc->fd);
  signals_forward_to(app.pid);

  int listener = app_await_listener(&app);
  if (listener < 0) return app_reap_now(&app);
  /* The listener and the daemon connection stay open for the launcher's life. */
  if (!handshake_hand_over(dc, app.pid, listener, app.ctl)) return app_reap_now(&app);
  app_release(&app);
  return signals_supervise(app.pid, dc);
}
