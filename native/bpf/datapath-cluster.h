/*
 * datapath-cluster.h: the bpf datapath across nodes and at its pool ports (datapath.bpf.c):
 * a remote client's virtual address by its node IP and a port of its app's source-port block
 * (ssw_remote), the bind into the block on kernels without IP_LOCAL_PORT_RANGE (Linux 6.3;
 * the daemon sets that option on the sockets it makes where the kernel has it), and the
 * admission of peers at pool ports (cgroup_skb/ingress): a SYN or datagram to an app's socket
 * on a pool port is dropped unless it comes from a managed socket of this host (found as the
 * kernel finds it: bpf_sk_lookup_tcp/udp of the sender, stamped with an app), from a port in
 * another node's published client-port range (ssw_nodes), or (UDP) from a peer the socket
 * sent to itself. The seccomp datapath's rules (src/trap/admission.ts, accept.ts,
 * dgram-recv.ts); every set comes from a map the daemon wrote (src/bpf/cluster-maps.ts).
 * bpf-helpers(7): bpf_bind 4.17, bpf_sk_lookup_* in cgroup_skb 5.x, bpf_sk_storage_get 5.2.
 */
#ifndef SSW_DATAPATH_CLUSTER_H
#define SSW_DATAPATH_CLUSTER_H

#include "datapath-sock.h"

#define SSW_EADDRINUSE 98
#define SSW_MAX_BLOCK 256 /* ports tried by one bind into a block */

/* The virtual address of a client on another node at host ip:port (its block): 1, or 0. */
static __always_inline int ssw_remote_vip(const struct ssw_addr *ip, __u16 port, struct ssw_addr *vip) {
  struct ssw_host_key k = {};
  k.ip = *ip;
  k.port = port;
  struct ssw_app *r = bpf_map_lookup_elem(&ssw_remote, &k);
  if (!r) return 0;
  *vip = (ssw_is4(ip) && (r->flags & SSW_APP_IP4)) || !(r->flags & SSW_APP_IP6) ? r->ip4 : r->ip6;
  return 1;
}

/* An accepted connection from a client on another node learns its virtual address. */
static __always_inline void ssw_remote_peer(struct ssw_sock *st, const struct ssw_addr *ip, __u16 port) {
  struct ssw_addr vip;
  if (!ssw_remote_vip(ip, port, &vip)) return; /* not a known block: the app sees the real address */
  st->peer = vip;
  st->peer_port = port;
  st->flags |= SSW_SK_PEER;
}

struct ssw_sin {
  __u16 family;
  __u16 port;
  __u32 addr;
  __u8 zero[8];
};

struct ssw_sin6 {
  __u16 family;
  __u16 port;
  __u32 flowinfo;
  __u32 addr[4];
  __u32 scope;
};

/*
 * A connect of an unbound socket to another node (dst, not one of this host's addresses) by
 * an app whose block the kernel cannot apply (SSW_APP_BLOCK_BIND): binds the wildcard and a
 * free port of the block, going round it from where the last bind stopped (src/trap/
 * source-block.ts does the same). 0, or -errno: EADDRNOTAVAIL when every port is taken.
 */
static __always_inline int ssw_block_bind(struct bpf_sock_addr *ctx, struct ssw_sock *st, int v6,
                                          const struct ssw_addr *dst) {
  struct ssw_app *app = bpf_map_lookup_elem(&ssw_apps, &st->app);
  if (!app || !(app->flags & SSW_APP_BLOCK_BIND) || !ctx->sk || ctx->sk->src_port != 0) return 0;
  if (ssw_is_loopback(dst) || bpf_map_lookup_elem(&ssw_local, dst)) return 0;
  __u32 first = app->block_first, last = app->block_last;
  if (first == 0 || last < first) return 0;
  __u32 size = last - first + 1;
  for (int i = 0; i < SSW_MAX_BLOCK && i < size; i++) {
    __u16 p = bpf_htons((__u16)(first + __sync_fetch_and_add(&app->cursor, 1) % size));
    int r;
    if (v6) {
      struct ssw_sin6 sa = {.family = SSW_AF_INET6, .port = p};
      r = bpf_bind(ctx, (struct sockaddr *)&sa, sizeof sa);
    } else {
      struct ssw_sin sa = {.family = SSW_AF_INET, .port = p};
      r = bpf_bind(ctx, (struct sockaddr *)&sa, sizeof sa);
    }
    if (r == 0 || r == -SSW_EINVAL) return 0; /* EINVAL: bound meanwhile, it keeps that port */
    if (r != -SSW_EADDRINUSE) return r;
  }
  ssw_denied(SSW_EV_BLOCK_FULL, st->app, dst, 0, 0); /* for the daemon's log (an event, not a denial) */
  return -SSW_EADDRNOTAVAIL;
}

/* A bound UDP socket sent to an unmanaged peer (egress): the peer's replies are admitted. */
static __always_inline void ssw_egress_sent(struct bpf_sock_addr *ctx, struct ssw_sock *st, const struct ssw_addr *dst,
                                            __u16 port) {
  if (!(st->flags & SSW_SK_BOUND)) return;
  struct ssw_egress_key k = {};
  k.cookie = bpf_get_socket_cookie(ctx);
  k.ip = *dst;
  k.port = port;
  __u32 one = 1;
  bpf_map_update_elem(&ssw_egress, &k, &one, BPF_ANY);
}

/*
 * The app of the socket of this host at src:sport that sent to dst:dport, found as the kernel
 * would deliver a reply to it (TCP: the client end, SYN_SENT; UDP: the receiving socket). 0: none.
 */
static __always_inline __u32 ssw_sender_app(struct __sk_buff *skb, __u8 proto, const struct ssw_addr *src, __u16 sport,
                                            const struct ssw_addr *dst, __u16 dport) {
  struct bpf_sock_tuple t = {};
  __u32 len;
  if (ssw_is4(src)) {
    t.ipv4.saddr = dst->w[3];
    t.ipv4.daddr = src->w[3];
    t.ipv4.sport = bpf_htons(dport);
    t.ipv4.dport = bpf_htons(sport);
    len = sizeof t.ipv4;
  } else {
    __builtin_memcpy(t.ipv6.saddr, dst->w, 16);
    __builtin_memcpy(t.ipv6.daddr, src->w, 16);
    t.ipv6.sport = bpf_htons(dport);
    t.ipv6.dport = bpf_htons(sport);
    len = sizeof t.ipv6;
  }
  struct bpf_sock *sk = proto == SSW_PROTO_TCP ? bpf_sk_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0)
                                               : bpf_sk_lookup_udp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
  if (!sk) return 0;
  struct ssw_sock *ps = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
  __u32 app = ps ? ps->app : 0;
  bpf_sk_release(sk);
  return app;
}

/* Whether a peer src:sport may reach the app socket st (bound on pool port dport of dst). */
static __always_inline int ssw_admits(struct __sk_buff *skb, struct ssw_sock *st, __u8 proto,
                                      const struct ssw_addr *src, __u16 sport, const struct ssw_addr *dst,
                                      __u16 dport) {
  if (proto == SSW_PROTO_UDP) {
    struct ssw_egress_key k = {};
    k.cookie = bpf_get_socket_cookie(skb);
    k.ip = *src;
    k.port = sport;
    if (bpf_map_lookup_elem(&ssw_egress, &k)) return 1;
  }
  struct ssw_config *cfg = ssw_cfg();
  if (cfg && cfg->dns_port != 0 && sport == cfg->dns_port && ssw_eq(src, &cfg->dns_host)) return 1; /* the resolver */
  if (!ssw_is_loopback(src) && !bpf_map_lookup_elem(&ssw_local, src)) {
    /* Another node: a port of its published client-port range, or (UDP) one of its services
       (never to a private loopback). */
    if (st->flags & SSW_SK_LOOPBACK) return 0;
    struct ssw_range *r = bpf_map_lookup_elem(&ssw_nodes, src);
    if (r && sport >= r->first && sport <= r->last) return 1;
    struct ssw_host_key hk = {};
    hk.ip = *src;
    hk.port = sport;
    hk.proto = SSW_PROTO_UDP;
    return proto == SSW_PROTO_UDP && bpf_map_lookup_elem(&ssw_bound, &hk) != 0;
  }
  __u32 app = ssw_sender_app(skb, proto, src, sport, dst, dport);
  return app != 0 && (!(st->flags & SSW_SK_LOOPBACK) || app == st->app);
}

static __always_inline void ssw_denied_peer(struct ssw_sock *st, const struct ssw_addr *src, __u16 sport) {
  struct ssw_event *e = ssw_event_new(SSW_EV_DENIED_PEER, st->app);
  if (!e) return;
  e->vip = st->local;
  e->vport = st->local_port;
  e->host = *src;
  e->host_port = sport;
  bpf_ringbuf_submit(e, 0);
}

/*
 * Every packet to a socket of the daemon's cgroup: a SYN (TCP) or datagram (UDP) to an app's
 * socket on a pool port passes only when ssw_admits says so; anything else passes. A dropped
 * SYN leaves the peer's connect to time out, as behind a firewall that drops.
 */
SEC("cgroup_skb/ingress")
int ssw_admit(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 1;
  sk = bpf_sk_fullsock(sk);
  if (!sk) return 1;
  struct ssw_sock *st = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
  if (!st || !st->app || (st->flags & (SSW_SK_TRAPPED | SSW_SK_BOUND | SSW_SK_EXPOSED)) != (SSW_SK_TRAPPED | SSW_SK_BOUND))
    return 1;
  struct ssw_config *cfg = ssw_cfg();
  __u32 lport = sk->src_port;
  if (!cfg || lport < cfg->pool_first || lport > cfg->pool_last) return 1;
  if (sk->type == SSW_SOCK_DGRAM && sk->dst_port != 0) return 1; /* connected: its own peer only */
  struct ssw_addr src, dst;
  __u8 proto, b[40];
  __u32 off;
  if (skb->protocol == bpf_htons(0x0800)) {
    if (bpf_skb_load_bytes(skb, 0, b, 20) < 0) return 1;
    proto = b[9];
    ssw_map4(&src, *(__u32 *)&b[12]);
    ssw_map4(&dst, *(__u32 *)&b[16]);
    off = (b[0] & 0xf) * 4;
  } else if (skb->protocol == bpf_htons(0x86dd)) {
    if (bpf_skb_load_bytes(skb, 0, b, 40) < 0) return 1;
    proto = b[6];
    __builtin_memcpy(src.w, &b[8], 16);
    __builtin_memcpy(dst.w, &b[24], 16);
    off = 40;
  } else {
    return 1;
  }
  if (proto != SSW_PROTO_TCP && proto != SSW_PROTO_UDP) return 1;
  __u8 h[14];
  if (proto == SSW_PROTO_TCP) {
    if (bpf_skb_load_bytes(skb, off, h, 14) < 0) return 1;
    if ((h[13] & 0x12) != 0x02) return 1; /* only a SYN (without ACK) opens */
  } else if (bpf_skb_load_bytes(skb, off, h, 4) < 0) {
    return 1;
  }
  __u16 sport = ((__u16)h[0] << 8) | h[1];
  if (ssw_admits(skb, st, proto, &src, sport, &dst, (__u16)lport)) return 1;
  ssw_denied_peer(st, &src, sport);
  return 0;
}

#endif
