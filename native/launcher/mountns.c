/*
 * mountns.c: the app's own mount namespace, where it gets its own /proc (pidns.c) and,
 * with --dns-override, the daemon's resolv.conf as /etc/resolv.conf, while the host's
 * mounts and file stay untouched.
 *
 * In the launcher, before the app is forked (the app inherits it): a new mount
 * namespace (unshare CLONE_NEWNS); every mount in it made a slave, recursively, so
 * that nothing mounted here propagates back to the host (systemd makes / shared) while
 * the host's later mounts still reach us. Then PATH is bind-mounted, read-only, over
 * /etc/resolv.conf. When /etc/resolv.conf is a symlink (systemd-resolved's
 * stub-resolv.conf, NetworkManager's file under /run), the bind goes over the file it
 * resolves to in the new namespace: a mount cannot sit on a symlink reached by path,
 * and every way the app may read that file then sees PATH.
 *
 * A bind mount holds PATH's inode: whoever updates PATH must rewrite it in place
 * (truncate and write), not replace it by rename, or running apps keep the old one.
 *
 * Man pages: unshare(2), mount_namespaces(7), mount(2), statvfs(3), realpath(3).
 */
#include "launcher.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define RESOLV_CONF "/etc/resolv.conf"

/*
 * The flags a read-only remount of the bind at target must keep: a remount replaces
 * the per-mount flags, and the kernel refuses (EPERM) to clear nosuid/nodev/noexec/
 * atime flags that a less privileged mount namespace inherited locked.
 */
static unsigned long kept_flags(const char *target) {
  struct statvfs sv;
  if (statvfs(target, &sv) < 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

/* A mount namespace of the app's own, a slave of the caller's. resolv_conf names the
 * file --dns-override wants, for the message when the launcher may not make one. */
void mountns_enter(const char *resolv_conf) {
  if (unshare(CLONE_NEWNS) < 0) {
    if (errno == EPERM && resolv_conf)
      fail(EXIT_LAUNCHER,
           "--dns-override needs a mount namespace of the app's own, which needs root or CAP_SYS_ADMIN; use "
           "--dns-override=false (in a container, mount %s at /etc/resolv.conf instead)",
           resolv_conf);
    if (errno == EPERM) fail(EXIT_LAUNCHER, "a mount namespace of the app's own needs root or CAP_SYS_ADMIN");
    fail(EXIT_LAUNCHER, "creating a mount namespace for the app failed: %s", strerror(errno));
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    fail(EXIT_LAUNCHER, "making the app's mounts private failed: %s", strerror(errno));
}

/* PATH over /etc/resolv.conf, read-only; in the app's mount namespace (mountns_enter). */
void mountns_resolv_conf(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) fail(EXIT_LAUNCHER, "cannot use the daemon's resolv.conf %s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    fail(EXIT_LAUNCHER, "cannot use the daemon's resolv.conf %s: it is not a regular file", path);

  /* Resolved in the new namespace, which is the one the app will look in. */
  char target[PATH_MAX];
  if (!realpath(RESOLV_CONF, target)) {
    struct stat lst;
    if (lstat(RESOLV_CONF, &lst) == 0 && S_ISLNK(lst.st_mode))
      fail(EXIT_LAUNCHER,
           "cannot put the daemon's resolv.conf over " RESOLV_CONF ": it is a symlink to a file that does not exist "
           "(%s); create that file or replace the symlink",
           strerror(errno));
    fail(EXIT_LAUNCHER,
         "cannot put the daemon's resolv.conf over " RESOLV_CONF ": %s; create an empty " RESOLV_CONF " to mount over",
         strerror(errno));
  }
  struct stat tst;
  if (stat(target, &tst) < 0 || S_ISDIR(tst.st_mode))
    fail(EXIT_LAUNCHER, "cannot put the daemon's resolv.conf over %s: it is not a file", target);

  if (mount(path, target, NULL, MS_BIND, NULL) < 0)
    fail(EXIT_LAUNCHER, "bind-mounting the daemon's resolv.conf %s over %s failed: %s", path, target, strerror(errno));
  /* Read-only: one app must not rewrite the file that the daemon gives every app. */
  if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(target), NULL) < 0)
    fail(EXIT_LAUNCHER, "making the daemon's resolv.conf read-only at %s failed: %s", target, strerror(errno));
}
