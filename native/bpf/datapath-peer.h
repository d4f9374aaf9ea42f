/*
 * datapath-peer.h: UDP peers of the bpf datapath (datapath.bpf.c, datapath-route.h): the
 * virtual address a client socket shows, and the app socket that receives at a host address
 * (bpf_sk_lookup_udp): the sender of a datagram no hook saw send (a connected client), and
 * whether a sender an app received from still holds its host address when the app replies.
 * bpf-helpers(7): bpf_sk_lookup_udp 4.20, usable in cgroup sock_addr programs.
 */
#ifndef SSW_DATAPATH_PEER_H
#define SSW_DATAPATH_PEER_H

#include "datapath.h"

/*
 * Context and socket fields are read one by one: the verifier refuses a load through a
 * computed ctx or sock pointer.
 */
#define SSW_READ(dst, src)                \
  do {                                    \
    (dst) = (src);                        \
    asm volatile("" : "+r"(dst)::"memory"); \
  } while (0)

static __always_inline void ssw_loopback(struct ssw_addr *a, int v4) {
  if (v4) {
    ssw_map4(a, bpf_htonl(0x7f000001));
  } else {
    a->w[0] = a->w[1] = a->w[2] = 0;
    a->w[3] = bpf_htonl(1);
  }
}

static __always_inline void ssw_any(struct ssw_addr *a, int v4) {
  if (v4)
    ssw_map4(a, 0);
  else
    a->w[0] = a->w[1] = a->w[2] = a->w[3] = 0;
}

/* The virtual address a client socket of app shows for a destination dst (bound, else its IP). */
static __always_inline void ssw_client_addr(struct ssw_sock *st, const struct ssw_addr *dst, struct ssw_addr *out) {
  if ((st->flags & SSW_SK_BOUND) && !ssw_is_any(&st->local)) {
    *out = st->local;
    return;
  }
  int v4 = ssw_is4(dst);
  if (ssw_is_loopback(dst)) {
    ssw_loopback(out, v4);
    return;
  }
  struct ssw_app *app = bpf_map_lookup_elem(&ssw_apps, &st->app);
  if (!app) {
    ssw_any(out, v4);
    return;
  }
  *out = (v4 && (app->flags & 1)) || !(app->flags & 2) ? app->ip4 : app->ip6;
}

/* The socket's own host address (an IPv4 one mapped). */
static __always_inline void ssw_sk_local(struct bpf_sock *sk, struct ssw_addr *a) {
  if (sk->family == SSW_AF_INET6) {
    SSW_READ(a->w[0], sk->src_ip6[0]);
    SSW_READ(a->w[1], sk->src_ip6[1]);
    SSW_READ(a->w[2], sk->src_ip6[2]);
    SSW_READ(a->w[3], sk->src_ip6[3]);
  } else {
    __u32 ip;
    SSW_READ(ip, sk->src_ip4);
    ssw_map4(a, ip);
  }
}

/* bpf_sk_lookup_udp of the socket that would receive a datagram from local:lport to from:fport. */
static __always_inline struct bpf_sock *ssw_lookup_udp(struct bpf_sock_addr *ctx, const struct ssw_addr *local,
                                                       __u16 lport, const struct ssw_addr *from, __u16 fport) {
  struct bpf_sock_tuple t = {};
  if (ssw_is4(from)) {
    if (!ssw_is4(local)) return 0;
    t.ipv4.saddr = local->w[3];
    t.ipv4.daddr = from->w[3];
    t.ipv4.sport = bpf_htons(lport);
    t.ipv4.dport = bpf_htons(fport);
    return bpf_sk_lookup_udp(ctx, &t, sizeof t.ipv4, BPF_F_CURRENT_NETNS, 0);
  }
  __builtin_memcpy(t.ipv6.saddr, local->w, 16);
  __builtin_memcpy(t.ipv6.daddr, from->w, 16);
  t.ipv6.sport = bpf_htons(lport);
  t.ipv6.dport = bpf_htons(fport);
  return bpf_sk_lookup_udp(ctx, &t, sizeof t.ipv6, BPF_F_CURRENT_NETNS, 0);
}

/*
 * The app socket that would receive a datagram from the socket of ctx to to:tport, found as
 * the kernel finds a receiver (bpf_sk_lookup_udp, from the sending socket's own host address;
 * a wildcard one: the node's address of to's family, then loopback). Returns its app's index
 * (0: none, or not an app's socket) and in *vip the virtual address it dialed when it is
 * connected (else the unspecified address).
 */
static __always_inline __u32 ssw_udp_owner(struct bpf_sock_addr *ctx, struct ssw_config *cfg,
                                           const struct ssw_addr *to, __u16 tport, struct ssw_addr *vip) {
  ssw_any(vip, 1);
  struct bpf_sock *me = ctx->sk;
  if (!me) return 0;
  struct ssw_addr local;
  ssw_sk_local(me, &local);
  __u16 lport = (__u16)me->src_port;
  int v4 = ssw_is4(to);
  int wild = ssw_is_any(&local);
  for (int i = 0; i < 2; i++) {
    struct ssw_addr cand;
    if (i == 0 && !wild)
      cand = local;
    else if (i == 0)
      cand = v4 ? cfg->node4 : cfg->node6;
    else if (wild)
      ssw_loopback(&cand, v4);
    else
      break;
    struct bpf_sock *sk = ssw_lookup_udp(ctx, &cand, lport, to, tport);
    if (!sk) continue;
    struct ssw_sock *cs = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
    __u32 app = cs ? cs->app : 0;
    if (app && (cs->flags & SSW_SK_PEER)) ssw_client_addr(cs, &cs->peer, vip);
    bpf_sk_release(sk);
    return app;
  }
  return 0;
}

#endif
