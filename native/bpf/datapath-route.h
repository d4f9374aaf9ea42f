/*
 * datapath-route.h: where a managed socket's connect or datagram goes in the bpf datapath
 * (datapath.bpf.c): the app's private loopback, the resolver's address, a service's backend
 * that the app's labels reach (round-robin or random), the refusal port for a virtual IP with
 * nothing there, or egress (--egress deny and pool ports of this host refused, each refusal an
 * event for the daemon's log); the virtual address a client shows; the sockaddr of a hook's
 * context. Every decision comes from a map the daemon wrote (src/bpf/datapath.ts): the same
 * rules as the seccomp datapath's src/trap/route.ts. bpf-helpers(7): bpf_loop 5.17.
 */
#ifndef SSW_DATAPATH_ROUTE_H
#define SSW_DATAPATH_ROUTE_H

#include "datapath-peer.h"

/* True when two label sets share a key=value (each label is one bit: LabelBits, src/bpf/layout.ts). */
static __always_inline int ssw_shares(const __u64 *a, const __u64 *b) {
  return ((a[0] & b[0]) | (a[1] & b[1]) | (a[2] & b[2]) | (a[3] & b[3])) != 0;
}

static __always_inline struct ssw_sock *ssw_sock_of(struct bpf_sock *sk) {
  if (!sk) return 0;
  struct ssw_sock *st = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
  return st && st->app ? st : 0;
}



/* Nothing listens there: the refusal port on the host's loopback, as the seccomp datapath does. */
static __always_inline int ssw_refuse(struct ssw_config *cfg, struct ssw_addr *dst, __u16 *port) {
  ssw_loopback(dst, ssw_is4(dst));
  *port = (__u16)cfg->refuse_port;
  return 1;
}

struct ssw_pick_ctx {
  struct ssw_be_key bk;
  __u64 labels[SSW_LABEL_WORDS];
  __u32 count;
  __u32 allowed;
  __u32 want;
  __u32 found;
  __u32 locals;     /* allowed backends on this node */
  __u32 local_only; /* --prefer-local and there are some: choose among those */
  struct ssw_addr host;
  __u32 port;
};

static long ssw_count_cb(__u32 i, struct ssw_pick_ctx *c) {
  if (i >= c->count) return 1;
  c->bk.slot = i;
  struct ssw_be *b = bpf_map_lookup_elem(&ssw_backends, &c->bk);
  if (b && ssw_shares(c->labels, b->labels)) {
    c->allowed++;
    c->locals += b->local ? 1 : 0;
  }
  return 0;
}

static long ssw_choose_cb(__u32 i, struct ssw_pick_ctx *c) {
  if (i >= c->count) return 1;
  c->bk.slot = i;
  struct ssw_be *b = bpf_map_lookup_elem(&ssw_backends, &c->bk);
  if (!b || !ssw_shares(c->labels, b->labels) || (c->local_only && !b->local)) return 0;
  if (c->want > 0) {
    c->want--;
    return 0;
  }
  c->host = b->host;
  c->port = b->port;
  c->found = 1;
  return 1;
}

/* Picks a backend of service s (key k) that the app's labels reach: 1 (dst, port set) or -EACCES. */
static __always_inline int ssw_pick(struct ssw_svc *s, struct ssw_svc_key *k, const __u64 *labels,
                                    struct ssw_addr *dst, __u16 *port) {
  struct ssw_pick_ctx c = {};
  c.bk.svc = *k;
  c.count = s->count;
  c.labels[0] = labels[0];
  c.labels[1] = labels[1];
  c.labels[2] = labels[2];
  c.labels[3] = labels[3];
  bpf_loop(SSW_MAX_BACKENDS, ssw_count_cb, &c, 0);
  if (c.allowed == 0) return -SSW_EACCES;
  if (s->prefer_local && c.locals > 0) {
    c.local_only = 1;
    c.allowed = c.locals;
  }
  c.want = s->lb == 1 ? bpf_get_prandom_u32() % c.allowed : __sync_fetch_and_add(&s->rr, 1) % c.allowed;
  bpf_loop(SSW_MAX_BACKENDS, ssw_choose_cb, &c, 0);
  if (!c.found) return -SSW_EACCES;
  *dst = c.host;
  *port = (__u16)c.port;
  return 1;
}

/* A refusal, for the daemon's log (the decision was the daemon's; the log line is too). */
static __always_inline int ssw_denied(__u32 kind, __u32 app, const struct ssw_addr *dst, __u16 port, __u8 proto) {
  struct ssw_event *e = ssw_event_new(kind, app);
  if (e) {
    e->vip = *dst;
    e->vport = port;
    e->flags = proto;
    bpf_ringbuf_submit(e, 0);
  }
  return -SSW_EACCES;
}

/*
 * Where a connect or datagram of app `app` to dst:port goes: 1 rewritten (dst, port), 0 egress
 * as it is, or -errno. dst:port is host order for the port, addresses IPv4-mapped.
 */
/* A UDP sender the app received from at virtual k, if it still holds its host address: 1 (dst, port set). */
static __always_inline int ssw_peer_route(struct bpf_sock_addr *ctx, struct ssw_config *cfg, struct ssw_svc_key *k,
                                          struct ssw_addr *dst, __u16 *port) {
  struct ssw_peer *p = bpf_map_lookup_elem(&ssw_peers, k);
  if (!p) return 0;
  struct ssw_addr ip = p->ip, dialed;
  __u16 hp = p->port;
  __u32 app = p->app;
  if (ssw_udp_owner(ctx, cfg, &ip, hp, &dialed) != app) return 0; /* gone: its port is not its */
  *dst = ip;
  *port = hp;
  return 1;
}

static __always_inline int ssw_route(struct bpf_sock_addr *ctx, struct ssw_sock *st, __u8 proto, struct ssw_addr *dst,
                                     __u16 *port) {
  struct ssw_config *cfg = ssw_cfg();
  struct ssw_app *app = bpf_map_lookup_elem(&ssw_apps, &st->app);
  if (!cfg || !app) return -SSW_EPERM; /* fail closed: the daemon has not set up this app */
  int v4 = ssw_is4(dst);
  if (ssw_is_any(dst)) ssw_loopback(dst, v4); /* connect(0.0.0.0) means this host */
  struct ssw_svc_key k = {};
  k.ip = *dst;
  k.port = *port;
  k.proto = proto;
  if (ssw_is_loopback(dst)) {
    /* The app's own loopback: its sockets bound exactly there, then its wildcard ones. */
    k.scope = st->app;
    struct ssw_svc *s = bpf_map_lookup_elem(&ssw_svcs, &k);
    if (!s && proto == SSW_PROTO_UDP && ssw_peer_route(ctx, cfg, &k, dst, port)) return 1; /* a sender it received from */
    if (!s) {
      ssw_any(&k.ip, v4);
      s = bpf_map_lookup_elem(&ssw_svcs, &k);
    }
    if (!s) return ssw_refuse(cfg, dst, port);
    struct ssw_be_key bk = {};
    bk.svc = k;
    struct ssw_be *b = bpf_map_lookup_elem(&ssw_backends, &bk);
    if (!b) return ssw_refuse(cfg, dst, port);
    *dst = b->host;
    *port = b->port;
    return 1;
  }
  if (cfg->dns_port != 0 && *port == 53 && ssw_eq(dst, &cfg->dns_vip)) {
    *dst = cfg->dns_host;
    *port = (__u16)cfg->dns_port;
    return 1;
  }
  int virt = bpf_map_lookup_elem(&ssw_vips, dst) != 0 ||
             (v4 && cfg->vip_mask4 != 0 && (dst->w[3] & cfg->vip_mask4) == cfg->vip_net4);
  /* No virtual IP of the destination's family: no route there, as on a host (route.ts). */
  if (virt && !(app->flags & (v4 ? 1 : 2))) return -SSW_ENETUNREACH;
  struct ssw_svc *s = bpf_map_lookup_elem(&ssw_svcs, &k);
  if (s) {
    int r = ssw_pick(s, &k, app->labels, dst, port);
    return r < 0 ? ssw_denied(SSW_EV_DENIED_POLICY, st->app, &k.ip, k.port, proto) : r;
  }
  if (proto == SSW_PROTO_UDP && ssw_peer_route(ctx, cfg, &k, dst, port)) return 1; /* a sender it received from */
  struct ssw_be *rc = proto == SSW_PROTO_UDP ? bpf_map_lookup_elem(&ssw_rclients, &k) : 0;
  if (rc) { /* a client on another node, by its virtual ip:port (its source-port block) */
    if (!ssw_shares(app->labels, rc->labels)) return ssw_denied(SSW_EV_DENIED_POLICY, st->app, &k.ip, k.port, proto);
    *dst = rc->host;
    *port = rc->port;
    return 1;
  }
  if (virt) return ssw_refuse(cfg, dst, port);
  if (bpf_map_lookup_elem(&ssw_local, dst) && *port >= cfg->pool_first && *port <= cfg->pool_last)
    return ssw_denied(SSW_EV_DENIED_POOL, st->app, dst, *port, proto);
  if (cfg->egress_deny) return ssw_denied(SSW_EV_DENIED_EGRESS, st->app, dst, *port, proto);
  return 0;
}


/*
 * A socket bound to loopback reaches only this host (the app's own virtual IPs are the host):
 * bound to 127.0.0.0/8, EINVAL (ip_route_connect); bound to ::1, ENETUNREACH for TCP (the
 * seccomp datapath's answer, docs/errors.md), UDP goes. 0: it may (src/trap/route.ts,
 * boundLoopbackError).
 */
static __always_inline int ssw_loopback_error(struct ssw_sock *st, __u8 proto, const struct ssw_addr *dialed) {
  if (!(st->flags & SSW_SK_LOOPBACK)) return 0;
  int v4 = ssw_is4(&st->local);
  if (v4 != ssw_is4(dialed) || ssw_is_loopback(dialed)) return 0;
  struct ssw_app *app = bpf_map_lookup_elem(&ssw_apps, &st->app);
  if (app && (((app->flags & 1) && ssw_eq(dialed, &app->ip4)) || ((app->flags & 2) && ssw_eq(dialed, &app->ip6))))
    return 0;
  if (v4) return SSW_EINVAL;
  return proto == SSW_PROTO_TCP ? SSW_ENETUNREACH : 0;
}

/*
 * The destination a connect or send to the unspecified address dials (ip_route_connect; the
 * seccomp datapath's dialedOf, route.ts): 0.0.0.0 is the IPv4 address the socket is bound
 * to, else 127.0.0.1; :: is ::1, or 127.0.0.1 for a socket bound to an IPv4(-mapped) address.
 */
static __always_inline void ssw_dialed(struct ssw_sock *st, struct ssw_addr *a) {
  if (!ssw_is_any(a)) return;
  int bound4 = (st->flags & SSW_SK_BOUND) && !ssw_is_any(&st->local) && ssw_is4(&st->local);
  if (ssw_is4(a) && bound4)
    *a = st->local;
  else
    ssw_loopback(a, ssw_is4(a) || bound4);
}

static __always_inline void ssw_get_user(struct bpf_sock_addr *ctx, int v6, struct ssw_addr *a) {
  if (v6) {
    a->w[0] = ctx->user_ip6[0];
    a->w[1] = ctx->user_ip6[1];
    a->w[2] = ctx->user_ip6[2];
    a->w[3] = ctx->user_ip6[3];
  } else {
    ssw_map4(a, ctx->user_ip4);
  }
}

/*
 * True when a datagram goes to the peer the socket is already connected to (its connect was
 * routed): udpv6_sendmsg hands a send without a destination on an IPv6 socket connected to
 * an IPv4-mapped peer to udp_sendmsg with that peer as its address, which runs sendmsg4.
 */
static __always_inline int ssw_to_peer(struct bpf_sock_addr *ctx, int v6) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk || sk->state != BPF_TCP_ESTABLISHED || sk->dst_port != (__u16)ctx->user_port) return 0;
  if (!v6) return sk->dst_ip4 == ctx->user_ip4;
  return sk->dst_ip6[0] == ctx->user_ip6[0] && sk->dst_ip6[1] == ctx->user_ip6[1] &&
         sk->dst_ip6[2] == ctx->user_ip6[2] && sk->dst_ip6[3] == ctx->user_ip6[3];
}

static __always_inline void ssw_set_user(struct bpf_sock_addr *ctx, int v6, const struct ssw_addr *a) {
  if (v6) {
    ctx->user_ip6[0] = a->w[0];
    ctx->user_ip6[1] = a->w[1];
    ctx->user_ip6[2] = a->w[2];
    ctx->user_ip6[3] = a->w[3];
  } else {
    ctx->user_ip4 = a->w[3];
  }
}

#endif
