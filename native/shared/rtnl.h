/*
 * rtnl.h: the few rtnetlink and netdevice requests sockswitch makes to set up a network
 * namespace of its own (bring `lo` up, put addresses on it). Shared by the launcher (the
 * app's namespace) and the addon (the daemon's shadow namespaces). Every function returns 0
 * or a positive errno; none exits or prints. Man pages: rtnetlink(7), netlink(7),
 * netdevice(7).
 */
#ifndef SOCKSWITCH_RTNL_H
#define SOCKSWITCH_RTNL_H

#include <stddef.h>

/* Sets IFF_UP on lo of the calling thread's network namespace; *ifindex gets its index. */
int rtnl_lo_up(int *ifindex);

/* A close-on-exec NETLINK_ROUTE socket (extended ACKs asked for), or -errno. */
int rtnl_open(void);

/*
 * Adds one address to interface ifindex: /32 for AF_INET (4 bytes), /128 without duplicate
 * address detection for AF_INET6 (16 bytes), replacing an equal one. On failure the
 * kernel's text for it (extended ACK), if any, is copied to why.
 */
int rtnl_add_address(int s, int ifindex, int family, const unsigned char *bytes, unsigned seq, char *why,
                     size_t whylen);

#endif
