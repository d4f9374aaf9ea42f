/*
 * options.c: the command line of `sockswitch-launch run`, which takes the options of
 * `sockswitch run` and reads them the way commander reads them there (src/cli/main.ts):
 * `--opt VALUE` and `--opt=VALUE`; a boolean option takes `=true`/`=false`, or the next
 * word unless it starts with '-'; the command starts after `--` or at the first word that
 * is not an option, and everything after it is the command's. Mistakes in the command
 * line's shape get commander's words and exit 2.
 *
 * The values are not judged here: they travel to the daemon as the registration (JSON,
 * `SSW1 HELLO {"ip":[…],"name":…,"command":[…]}`), which validates them with the same
 * code as `sockswitch run` and answers a bad one with its sentence (USAGE, exit 2). Only
 * what must happen where the app runs is done here: --user is resolved from this
 * filesystem's /etc/passwd (users.c), the daemon's socket is found (--socket, then
 * SOCKSWITCH_SOCKET, then the default), and --dns-override looks for the daemon's
 * resolv.conf beside its socket.
 */
#include "launcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                                          \
  "usage: sockswitch-launch run [--socket PATH] [--ip IP]... [--name NAME] [--labels K=V,...]\n"       \
  "         [-p|--publish [HOST_IP:]HOST_PORT:APP_PORT]... [--expose APP_PORT:[HOST_IP:]HOST_PORT]...\n" \
  "         [--user USER[:GROUP]] [--lb round-robin|random] [--new-netns[=BOOL]]\n"                    \
  "         [--dns-override[=BOOL]] [--rm] -- CMD [ARG...]\n"                                                 \
  "The options of `sockswitch run` (docs/cli.md); the daemon's socket is --socket, else\n"             \
  "$SOCKSWITCH_SOCKET, else " DEFAULT_SOCKET ".\n"

enum kind { VALUE, LIST, BOOL };

/* The options, with the names commander shows in its messages. */
static const struct spec {
  const char *name;  /* "--ip" */
  const char *flags; /* "--ip <ip>", as in commander's "argument missing" */
  const char *key;   /* the registration's field; NULL: used here only */
  enum kind kind;
} specs[] = {
    {"--ip", "--ip <ip>", "ip", LIST},
    {"--name", "--name <name>", "name", VALUE},
    {"--labels", "--labels <k=v,...>", "labels", VALUE},
    {"--expose", "--expose <app:host>", "expose", LIST},
    {"--publish", "--publish <[host_ip:]host_port:app_port>", "publish", LIST},
    {"--user", "--user <user[:group]>", "user", VALUE},
    {"--lb", "--lb <mode>", "lb", VALUE},
    {"--socket", "--socket <path>", NULL, VALUE},
    {"--new-netns", "--new-netns [bool]", NULL, BOOL},
    {"--dns-override", "--dns-override [bool]", NULL, BOOL},
    {"--rm", "--rm", "rm", BOOL},
};
#define NSPECS (sizeof specs / sizeof specs[0])

/* A growing string, for the JSON registration. */
struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) fail(EXIT_LAUNCHER, "out of memory");
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_raw(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string (RFC 8259): quotes, backslashes and control bytes escaped; other bytes as they are. */
static void put_json(struct buf *b, const char *s) {
  put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      put(b, esc, 2);
    } else if (*p < 0x20 || *p == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      put(b, esc, 6);
    } else {
      put(b, (const char *)p, 1);
    }
  }
  put(b, "\"", 1);
}

static void __attribute__((noreturn)) usage_error(const char *fmt, const char *arg) {
  fail(EXIT_USAGE, fmt, arg);
}

/* commander's reading of a boolean option's value. */
static bool parse_bool(const char *name, const char *v) {
  if (v == NULL || strcmp(v, "true") == 0) return true;
  if (strcmp(v, "false") == 0) return false;
  char msg[512];
  snprintf(msg, sizeof msg, "%s=\"%.400s\" must be true or false", name, v);
  fail(EXIT_USAGE, "%s", msg);
}

/* The daemon's resolv.conf: its socket path without ".sock", then ".resolv.conf". */
static char *resolv_conf_of(const char *socket_path) {
  size_t n = strlen(socket_path);
  if (n >= 5 && strcmp(socket_path + n - 5, ".sock") == 0) n -= 5;
  char *p = malloc(n + sizeof ".resolv.conf");
  if (!p) fail(EXIT_LAUNCHER, "out of memory");
  memcpy(p, socket_path, n);
  strcpy(p + n, ".resolv.conf");
  return p;
}

void options_parse(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  o->netns = true;
  int dns_override = -1; /* -1: when the daemon serves DNS */
  bool rm = false;       /* --rm: the daemon forgets the app when it ends */
  const char *user = NULL;
  int i = 1;
  /* `sockswitch-launch --socket PATH run …`, like `sockswitch --socket PATH run …`. */
  if (i + 1 < argc && strcmp(argv[i], "--socket") == 0) {
    o->socket_path = argv[i + 1];
    i += 2;
  } else if (i < argc && strncmp(argv[i], "--socket=", 9) == 0) {
    o->socket_path = argv[i++] + 9;
  }
  if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
    fputs(USAGE, stdout);
    exit(0);
  }
  if (i >= argc || strcmp(argv[i], "run") != 0) fail(EXIT_USAGE, "sockswitch-launch needs a verb\n%s", USAGE);
  i++;

  struct buf json = {0};
  puts_raw(&json, "{");
  /* Values of LIST options, gathered per option so that each becomes one JSON array. */
  const char **values[NSPECS] = {0};
  size_t counts[NSPECS] = {0};
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-p") == 0) a = "--publish"; /* the short flag of `sockswitch run` */
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == '\0') break; /* the command */
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(USAGE, stdout);
      exit(0);
    }
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t namelen = eq ? (size_t)(eq - a) : strlen(a);
    size_t s = 0;
    while (s < NSPECS && !(strlen(specs[s].name) == namelen && strncmp(specs[s].name, a, namelen) == 0)) s++;
    if (s == NSPECS) usage_error("unknown option '%s'", a);
    const struct spec *sp = &specs[s];
    const char *v;
    if (sp->kind == BOOL) {
      /* --rm is a plain flag, as in commander: the next word is not its value. */
      bool flag_only = strcmp(sp->name, "--rm") == 0;
      v = eq ? eq + 1 : (!flag_only && i + 1 < argc && argv[i + 1][0] != '-') ? argv[++i] : NULL;
      bool on = parse_bool(sp->name, v);
      if (strcmp(sp->name, "--new-netns") == 0)
        o->netns = on;
      else if (strcmp(sp->name, "--rm") == 0)
        rm = on;
      else
        dns_override = on;
      continue;
    }
    if (eq)
      v = eq + 1;
    else if (i + 1 < argc)
      v = argv[++i];
    else
      usage_error("option '%s' argument missing", sp->flags);
    if (strcmp(sp->name, "--socket") == 0) {
      o->socket_path = v;
    } else if (strcmp(sp->name, "--user") == 0) {
      user = v;
    }
    if (!sp->key) continue;
    if (sp->kind == VALUE) counts[s] = 0; /* the last one counts, as in commander */
    const char **grown = realloc(values[s], (counts[s] + 1) * sizeof *grown);
    if (!grown) fail(EXIT_LAUNCHER, "out of memory");
    values[s] = grown;
    values[s][counts[s]++] = v;
  }
  if (i >= argc) usage_error("missing required argument '%s'", "command");
  o->cmd = argv + i;

  bool first = true;
  for (size_t s = 0; s < NSPECS; s++) {
    if (!specs[s].key || counts[s] == 0) continue;
    if (!first) puts_raw(&json, ",");
    first = false;
    put_json(&json, specs[s].key);
    puts_raw(&json, ":");
    if (specs[s].kind == LIST) puts_raw(&json, "[");
    for (size_t k = 0; k < counts[s]; k++) {
      if (k) puts_raw(&json, ",");
      put_json(&json, values[s][k]);
    }
    if (specs[s].kind == LIST) puts_raw(&json, "]");
    free(values[s]);
  }
  if (rm) {
    puts_raw(&json, first ? "\"rm\":true" : ",\"rm\":true");
    first = false;
  }
  if (!o->netns) { /* the daemon's datapath may place such an app differently */
    puts_raw(&json, first ? "\"newNetns\":false" : ",\"newNetns\":false");
    first = false;
  }
  puts_raw(&json, first ? "\"command\":[" : ",\"command\":[");
  for (char **c = o->cmd; *c; c++) {
    if (c != o->cmd) puts_raw(&json, ",");
    put_json(&json, *c);
  }
  puts_raw(&json, "]}");
  o->hello = json.p;

  if (!o->socket_path) o->socket_path = getenv("SOCKSWITCH_SOCKET");
  if (!o->socket_path || o->socket_path[0] == '\0') o->socket_path = DEFAULT_SOCKET;
  if (user) users_resolve(user, o);
  if (dns_override != 0) {
    char *resolv = resolv_conf_of(o->socket_path);
    if (access(resolv, F_OK) == 0)
      o->resolv_conf = resolv;
    else if (dns_override == 1)
      fail(EXIT_LAUNCHER,
           "--dns-override: the daemon at %s serves no DNS (%s is missing); start it without --dns=false",
           o->socket_path, resolv);
  }
}
