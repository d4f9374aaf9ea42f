/*
 * netns.c: the app's own network namespace: unshare(CLONE_NEWNET), bring `lo` up,
 * and put each address the daemon granted on `lo` (/32 for IPv4, /128 for IPv6,
 * without duplicate address detection) with rtnetlink RTM_NEWADDR, checking the
 * kernel's ACK of every request (native/shared/rtnl.c, shared with the daemon's shadow
 * namespaces).
 *
 * This runs in the launcher before the app is forked and before any seccomp
 * filter exists, so these sockets are never trapped. Skipped with --no-netns.
 *
 * Man pages: unshare(2), network_namespaces(7), netdevice(7), rtnetlink(7),
 * netlink(7).
 */
#include "launcher.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../shared/rtnl.h"

void netns_setup(const struct grant *g) {
  if (unshare(CLONE_NEWNET) < 0) {
    if (errno == EPERM)
      fail(EXIT_LAUNCHER,
           "creating a network namespace needs root or CAP_SYS_ADMIN; use --new-netns=false to keep the "
           "caller's");
    fail(EXIT_LAUNCHER, "creating a network namespace failed: %s", strerror(errno));
  }
  int ifindex = 0;
  int err = rtnl_lo_up(&ifindex);
  if (err) fail(EXIT_LAUNCHER, "bringing lo up in the app's network namespace failed: %s", strerror(err));
  if (g->naddrs == 0) return;
  int s = rtnl_open();
  if (s < 0) fail(EXIT_LAUNCHER, "opening an rtnetlink socket failed: %s", strerror(-s));
  for (size_t i = 0; i < g->naddrs; i++) {
    const struct address *a = &g->addrs[i];
    /* REPLACE, not EXCL, in rtnl_add_address: granting the same address twice is harmless. */
    char why[256];
    err = rtnl_add_address(s, ifindex, a->family, a->bytes, (unsigned)i + 1, why, sizeof why);
    if (err)
      fail(EXIT_LAUNCHER, "adding %s/%d to lo in the app's network namespace failed: %s%s%s", a->text,
           a->family == AF_INET ? 32 : 128, strerror(err), why[0] ? ": " : "", why);
  }
  close(s);
}
