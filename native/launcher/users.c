/*
 * users.c: --user NAME|UID[:GROUP|GID] resolved to numeric ids from the /etc/passwd and
 * /etc/group of the filesystem the launcher runs in (a container image's own), by the
 * rules of `sockswitch run` (src/cli/users.ts), with its sentences. A static binary has no
 * NSS, so the files are read directly: `name:x:uid:gid:…` and `group:x:gid:member,…`.
 *
 *   - a name must exist in /etc/passwd; a numeric uid need not, and then its primary group
 *     is its passwd entry's, or the same number as the uid;
 *   - :GROUP is a gid, or a name that must exist in /etc/group;
 *   - the supplementary groups are the primary group and every group listing the user's
 *     name.
 *
 * Man pages: passwd(5), group(5).
 */
#include "launcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 8

/* Whether s is all decimal digits (and not empty), as /^\d+$/. */
static bool numeric(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* A decimal id; ids of 2^32-1 and above are refused (setuid(2) gives -1 a meaning). */
static unsigned id_of(const char *s, const char *spec) {
  unsigned long long v = 0;
  for (; *s; s++) {
    v = v * 10 + (unsigned)(*s - '0');
    if (v >= 0xffffffffULL) fail(EXIT_USAGE, "--user \"%s\": the id is out of range", spec);
  }
  return (unsigned)v;
}

/* Splits line at ':' into at most MAX_FIELDS fields (in place); returns how many. */
static size_t fields(char *line, char **f) {
  size_t n = 0;
  f[n++] = line;
  for (char *p = line; *p && n < MAX_FIELDS; p++)
    if (*p == ':') {
      *p = '\0';
      f[n++] = p + 1;
    }
  return n;
}

/* Calls row() for each entry line of path (comments and empty lines skipped); a missing
 * file has no entries. row returns true to stop. */
static void each_row(const char *path, bool (*row)(char **f, size_t n, void *ctx), void *ctx) {
  FILE *fp = fopen(path, "re");
  if (!fp) return;
  char line[4096];
  while (fgets(line, sizeof line, fp)) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '\0' || line[0] == '#') continue;
    char *f[MAX_FIELDS];
    if (row(f, fields(line, f), ctx)) break;
  }
  fclose(fp);
}

struct passwd_q {
  const char *name; /* look up by name, or */
  const char *uid;  /* by uid text */
  bool found;
  char found_name[256];
  char found_uid[16];
  char found_gid[16];
};

static bool passwd_row(char **f, size_t n, void *ctx) {
  struct passwd_q *q = ctx;
  if (n < 4) return false;
  if ((q->name && strcmp(f[0], q->name) == 0) || (q->uid && strcmp(f[2], q->uid) == 0)) {
    q->found = true;
    snprintf(q->found_name, sizeof q->found_name, "%s", f[0]);
    snprintf(q->found_uid, sizeof q->found_uid, "%s", f[2]);
    snprintf(q->found_gid, sizeof q->found_gid, "%s", f[3]);
    return true;
  }
  return false;
}

struct group_q {
  const char *name; /* the group asked for by name, or NULL */
  bool found;
  char found_gid[16];
  const char *member; /* collect groups listing this user, or NULL */
  struct options *o;
};

static void add_group(struct options *o, gid_t g) {
  for (size_t i = 0; i < o->ngroups; i++)
    if (o->groups[i] == g) return;
  gid_t *grown = realloc(o->groups, (o->ngroups + 1) * sizeof *grown);
  if (!grown) fail(EXIT_LAUNCHER, "out of memory");
  o->groups = grown;
  o->groups[o->ngroups++] = g;
}

static bool group_row(char **f, size_t n, void *ctx) {
  struct group_q *q = ctx;
  if (n < 3) return false;
  if (q->name && !q->found && strcmp(f[0], q->name) == 0) {
    q->found = true;
    snprintf(q->found_gid, sizeof q->found_gid, "%s", f[2]);
  }
  if (q->member && n >= 4 && numeric(f[2])) {
    for (char *m = strtok(f[3], ","); m; m = strtok(NULL, ","))
      if (strcmp(m, q->member) == 0) add_group(q->o, (gid_t)id_of(f[2], q->member));
  }
  return false;
}

void users_resolve(const char *spec, struct options *o) {
  /* USER[:GROUP]; like JavaScript's split(":", 2), anything after a second ':' is ignored. */
  char user[256], group[256];
  const char *c1 = strchr(spec, ':');
  size_t ulen = c1 ? (size_t)(c1 - spec) : strlen(spec);
  if (ulen >= sizeof user) fail(EXIT_USAGE, "--user \"%.64s…\" is too long", spec);
  memcpy(user, spec, ulen);
  user[ulen] = '\0';
  bool has_group = c1 != NULL;
  if (has_group) {
    const char *c2 = strchr(c1 + 1, ':');
    size_t glen = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
    if (glen >= sizeof group) fail(EXIT_USAGE, "--user \"%.64s…\" is too long", spec);
    memcpy(group, c1 + 1, glen);
    group[glen] = '\0';
  }

  struct passwd_q pq = {0};
  bool have_gid = false;
  if (numeric(user)) {
    o->uid = id_of(user, spec);
    pq.uid = user;
    each_row("/etc/passwd", passwd_row, &pq);
    if (pq.found && numeric(pq.found_gid)) {
      o->gid = id_of(pq.found_gid, spec);
      have_gid = true;
    }
  } else {
    pq.name = user;
    each_row("/etc/passwd", passwd_row, &pq);
    if (!pq.found || !numeric(pq.found_uid) || !numeric(pq.found_gid))
      fail(EXIT_USAGE, "--user \"%s\": no such user in /etc/passwd; give a name or a numeric uid", user);
    o->uid = id_of(pq.found_uid, spec);
    o->gid = id_of(pq.found_gid, spec);
    have_gid = true;
  }
  if (has_group) {
    if (numeric(group)) {
      o->gid = id_of(group, spec);
    } else {
      struct group_q gq = {.name = group};
      each_row("/etc/group", group_row, &gq);
      if (!gq.found || !numeric(gq.found_gid))
        fail(EXIT_USAGE, "--user \"%s\": no such group \"%s\" in /etc/group", spec, group);
      o->gid = id_of(gq.found_gid, spec);
    }
    have_gid = true;
  }
  if (!have_gid) o->gid = o->uid;
  o->ngroups = 0;
  add_group(o, o->gid);
  if (pq.found) {
    struct group_q mq = {.member = pq.found_name, .o = o};
    each_row("/etc/group", group_row, &mq);
  }
  o->set_user = true;
}
