/*
 * rtnl.c: see rtnl.h. Requests are synchronous: each waits for the kernel's ACK, which for
 * a namespace of our own is immediate (nothing else holds its locks).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rtnl.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int rtnl_lo_up(int *ifindex) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int err = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) err = errno;
  if (!err) {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) err = errno;
  }
  if (!err && ioctl(s, SIOCGIFINDEX, &ifr) < 0) err = errno;
  if (!err) *ifindex = ifr.ifr_ifindex;
  close(s);
  return err;
}

int rtnl_open(void) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  int one = 1;
  /* Best effort: the kernel's text for a refusal, and ACKs without the request echoed. */
  setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(s, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return s;
}

static int add_attr(struct nlmsghdr *nh, size_t cap, unsigned short type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(nh->nlmsg_len);
  if (at + RTA_SPACE(len) > cap) return EMSGSIZE;
  struct rtattr *rta = (struct rtattr *)((char *)nh + at);
  rta->rta_type = type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  nh->nlmsg_len = (unsigned)(at + RTA_SPACE(len));
  return 0;
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

/* Sends one request and waits for its ACK: 0 or the errno the kernel reported. */
static int call(int s, struct nlmsghdr *req, char *why, size_t whylen) {
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

int rtnl_add_address(int s, int ifindex, int family, const unsigned char *bytes, unsigned seq, char *why,
                     size_t whylen) {
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
  size_t len = family == AF_INET ? 4 : 16;
  ifa->ifa_family = (unsigned char)family;
  ifa->ifa_prefixlen = family == AF_INET ? 32 : 128;
  if (family == AF_INET6) ifa->ifa_flags = IFA_F_NODAD;
  int err = add_attr(nh, sizeof req, IFA_LOCAL, bytes, len);
  if (!err) err = add_attr(nh, sizeof req, IFA_ADDRESS, bytes, len);
  if (err) {
    why[0] = '\0';
    return err;
  }
  return call(s, nh, why, whylen);
}
