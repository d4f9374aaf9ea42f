/*
 * netns.c: the app's own network namespace: unshare(CLONE_NEWNET), bring `lo` up,
 * and put each address the daemon granted on `lo` (/32 for IPv4, /128 for IPv6,
 * without duplicate address detection) with rtnetlink RTM_NEWADDR, checking the
 * kernel's ACK of every request.
 *
 * This runs in the launcher before the app is forked and before any seccomp
 * filter exists, so these sockets are never trapped. Skipped with --no-netns.
 *
 * Man pages: unshare(2), network_namespaces(7), netdevice(7), rtnetlink(7),
 * netlink(7).
 */
#include "launcher.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sets IFF_UP on lo (netdevice(7)) and returns its interface index. */
static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail(EXIT_LAUNCHER, "creating a socket to configure lo failed: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    fail(EXIT_LAUNCHER, "reading the flags of lo failed: %s", strerror(errno));
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(EXIT_LAUNCHER, "bringing lo up failed: %s", strerror(errno));
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
    fail(EXIT_LAUNCHER, "reading the index of lo failed: %s", strerror(errno));
  close(s);
  return ifr.ifr_ifindex;
}

static int netlink_open(void) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) fail(EXIT_LAUNCHER, "opening an rtnetlink socket failed: %s", strerror(errno));
  int one = 1;
  /* Best effort: the kernel's text for a refusal (extended ACK), and ACKs that do
   * not echo the whole request back. */
  setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(s, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return s;
}

static void add_attr(struct nlmsghdr *nh, size_t cap, unsigned short type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(nh->nlmsg_len);
  if (at + RTA_SPACE(len) > cap) fail(EXIT_LAUNCHER, "internal error: netlink request too large");
  struct rtattr *rta = (struct rtattr *)((char *)nh + at);
  rta->rta_type = type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  nh->nlmsg_len = (unsigned)(at + RTA_SPACE(len));
}

/* The kernel's message in an extended ACK (NLMSGERR_ATTR_MSG), or "". */
static const char *ack_text(const struct nlmsghdr *nh) {
  if (!(nh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const struct nlmsgerr *e = NLMSG_DATA(nh);
  size_t off = sizeof *e;
  if (!(nh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
  size_t end = nh->nlmsg_len - NLMSG_HDRLEN;
  const char *base = (const char *)e;
  while (off + sizeof(struct nlattr) <= end) {
    const struct nlattr *a = (const struct nlattr *)(base + off);
    if (a->nla_len < sizeof *a || off + a->nla_len > end) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a->nla_len > sizeof *a) {
      const char *text = (const char *)a + NLA_HDRLEN;
      if (memchr(text, '\0', a->nla_len - NLA_HDRLEN)) return text;
    }
    off += NLA_ALIGN(a->nla_len);
  }
  return "";
}

/* Sends one request and waits for its ACK. Returns 0, or the errno the kernel
 * reported, with its text (if any) copied to why. */
static int netlink_call(int s, struct nlmsghdr *req, char *why, size_t whylen) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  why[0] = '\0';
  if (sendto(s, req, req->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return errno;
  for (;;) {
    union {
      char bytes[8192];
      struct nlmsghdr align;
    } buf;
    ssize_t n = recv(s, buf.bytes, sizeof buf.bytes, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EPROTO;
    size_t left = (size_t)n;
    for (struct nlmsghdr *nh = &buf.align; NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
      if (nh->nlmsg_seq != req->nlmsg_seq || nh->nlmsg_type != NLMSG_ERROR) continue;
      const struct nlmsgerr *e = NLMSG_DATA(nh);
      if (e->error == 0) return 0;
      snprintf(why, whylen, "%s", ack_text(nh));
      return -e->error;
    }
  }
}

static void add_address(int s, int ifindex, const struct address *a, unsigned seq) {
  union {
    char bytes[256];
    struct nlmsghdr align;
  } req;
  memset(&req, 0, sizeof req);
  struct nlmsghdr *nh = &req.align;
  nh->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  nh->nlmsg_type = RTM_NEWADDR;
  /* REPLACE, not EXCL: granting the same address twice is harmless. */
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  nh->nlmsg_seq = seq;
  struct ifaddrmsg *ifa = NLMSG_DATA(nh);
  ifa->ifa_index = (unsigned)ifindex;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  size_t len;
  if (a->family == AF_INET) {
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 32;
    len = 4;
  } else {
    ifa->ifa_family = AF_INET6;
    ifa->ifa_prefixlen = 128;
    ifa->ifa_flags = IFA_F_NODAD;
    len = 16;
  }
  add_attr(nh, sizeof req, IFA_LOCAL, a->bytes, len);
  add_attr(nh, sizeof req, IFA_ADDRESS, a->bytes, len);

  char why[256];
  int err = netlink_call(s, nh, why, sizeof why);
  if (err)
    fail(EXIT_LAUNCHER, "adding %s/%d to lo in the app's network namespace failed: %s%s%s", a->text,
         ifa->ifa_prefixlen, strerror(err), why[0] ? ": " : "", why);
}

void netns_setup(const struct grant *g) {
  if (unshare(CLONE_NEWNET) < 0) {
    if (errno == EPERM)
      fail(EXIT_LAUNCHER,
           "creating a network namespace needs root or CAP_SYS_ADMIN; use --new-netns=false to keep the "
           "caller's");
    fail(EXIT_LAUNCHER, "creating a network namespace failed: %s", strerror(errno));
  }
  int ifindex = lo_up();
  if (g->naddrs == 0) return;
  int s = netlink_open();
  for (size_t i = 0; i < g->naddrs; i++) add_address(s, ifindex, &g->addrs[i], (unsigned)i + 1);
  close(s);
}
