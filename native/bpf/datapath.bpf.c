/*
 * datapath.bpf.c: the bpf datapath, cgroup socket hooks that do in the kernel what the seccomp
 * datapath's trap handlers do in the daemon, for the sockets of managed apps (those carrying an
 * app index in ssw_socks: stamped by the daemon at socket() time, or at creation in an app's
 * cgroup). Every other socket is left alone.
 *
 *   connect4/6, sendmsg4/6   route a virtual destination: the app's private loopback, the
 *                            resolver's address, a service (label policy: EACCES; round-robin or
 *                            random among the backends it may reach), a virtual IP with nothing
 *                            there (the refusal port: the kernel refuses as it would), a UDP
 *                            sender the app received from (ssw_peers, while its app holds its
 *                            host address), egress (--egress deny, never a pool port of this
 *                            host: EACCES); a bound UDP socket that connects stops serving (event)
 *   bind4/6, post_bind4/6    a socket the daemon made (SSW_SK_TRAPPED: the app's binds and
 *                            listens are trapped and carried out by the daemon, src/trap/bind.ts):
 *                            only the daemon's own bind passes, as it is; the bound UDP socket
 *                            becomes known for replies (ssw_bound). A socket not trapped: the
 *                            app's virtual address onto a host address (the port is the
 *                            kernel's), its UDP bind and its listen an event for the daemon
 *   getsockname4/6,          what the app sees: virtual addresses, never host ones (the
 *   getpeername4/6, recvmsg4/6  daemon sees the host's); a datagram's sender that no hook saw
 *                            send is found by its socket (datapath-peer.h)
 *   sockops                  a client's host address → its virtual address (at connect, before
 *                            the SYN); an accepted connection learns its client; listen (event)
 *   sock_create              a socket made in an app's cgroup (the host placement, where no
 *                            call is trapped) is stamped with the app's index
 *   cgroup_skb/ingress       a SYN or datagram to an app's socket on a pool port from an
 *                            unmanaged peer is dropped; other nodes' clients are known by their
 *                            apps' source-port blocks (datapath-cluster.h)
 *
 * Each call is judged for the app of the calling task, by its cgroup (a socket handed to another
 * app acts with the receiver's identity: datapath-caller.h).
 * No decision is made here that the daemon did not put into a map: services, backends and their
 * labels, apps' addresses and labels, --egress, the refusal port (src/bpf/datapath.ts).
 * Kernel: get*name hooks 5.8, bpf_set_retval 5.18; bpf-helpers(7).
 */
#include "datapath-caller.h"
#include "datapath-cluster.h"
#include "datapath-lifetime.h"
#include "datapath-names.h"

static __always_inline int ssw_fail(int err) {
  bpf_set_retval(-err);
  return 0;
}

/* Judged for the calling task's app (datapath-caller.h), on a copy of the socket's record. */
static __always_inline int ssw_connect(struct bpf_sock_addr *ctx, int v6) {
  struct ssw_sock *sk_st = ssw_sock_of(ctx->sk), cur, *st = &cur;
  if (!sk_st) return 1;
  ssw_as_caller(sk_st, st);
  __u8 proto = ctx->type == SSW_SOCK_DGRAM ? SSW_PROTO_UDP : SSW_PROTO_TCP;
  struct ssw_addr dst, dialed;
  ssw_get_user(ctx, v6, &dst);
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  ssw_dialed(st, &dst);
  dialed = dst;
  __u16 dialed_port = port;
  int e = ssw_loopback_error(st, proto, &dialed);
  if (e) return ssw_fail(e);
  int r = ssw_route(ctx, st, proto, &dst, &port);
  if (r < 0) return ssw_fail(-r);
  if (r > 0) {
    if (!v6 && !ssw_is4(&dst)) return ssw_fail(SSW_ECONNREFUSED); /* an IPv6-only backend */
    ssw_set_user(ctx, v6, &dst);
    ctx->user_port = bpf_htons(port);
    int b = ssw_block_bind(ctx, st, v6, &dst); /* to another node: from the app's block */
    if (b < 0) return ssw_fail(-b);
  }
  st->peer = dialed;
  st->peer_port = dialed_port;
  st->flags |= SSW_SK_PEER;
  ssw_keep(sk_st, st);
  __u64 cookie = bpf_get_socket_cookie(ctx);
  ssw_known(cookie, st);
  if (proto == SSW_PROTO_UDP && (st->flags & SSW_SK_TRAPPED) && (st->flags & SSW_SK_BOUND))
    ssw_udp_connected(ctx->sk, st, v6, cookie);
  return 1;
}

/* A datagram with a destination: routed like a connect; the sender becomes known for replies. */
static __always_inline int ssw_sendmsg(struct bpf_sock_addr *ctx, int v6) {
  struct ssw_sock *sk_st = ssw_sock_of(ctx->sk), cur, *st = &cur;
  if (!sk_st) return 1;
  if (ssw_to_peer(ctx, v6)) return 1; /* already routed at connect */
  ssw_as_caller(sk_st, st);
  struct ssw_addr dst, dialed;
  ssw_get_user(ctx, v6, &dst);
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  ssw_dialed(st, &dst);
  dialed = dst;
  int e = ssw_loopback_error(st, SSW_PROTO_UDP, &dialed);
  if (e) return ssw_fail(e);
  int r = ssw_route(ctx, st, SSW_PROTO_UDP, &dst, &port);
  if (r < 0) return ssw_fail(-r);
  if (r > 0) {
    if (!v6 && !ssw_is4(&dst)) return ssw_fail(SSW_ECONNREFUSED);
    ssw_set_user(ctx, v6, &dst);
    ctx->user_port = bpf_htons(port);
  } else {
    ssw_egress_sent(ctx, st, &dst, port);
  }
  sk_st->app = st->app;
  ssw_known(bpf_get_socket_cookie(ctx), st);
  /* Autobind happened before this hook (inet_send_prepare): the source port is known. */
  struct bpf_sock *sk = ctx->sk;
  if (sk && !(st->flags & SSW_SK_BOUND)) {
    struct ssw_host_key hk = {};
    ssw_any(&hk.ip, !v6);
    hk.port = (__u16)sk->src_port;
    hk.proto = SSW_PROTO_UDP;
    struct ssw_client c = {};
    ssw_client_addr(st, &dialed, &c.vip);
    c.vport = hk.port;
    c.app = st->app;
    bpf_map_update_elem(&ssw_clients, &hk, &c, BPF_ANY);
  }
  return 1;
}

SEC("cgroup/connect4")
int ssw_connect4(struct bpf_sock_addr *ctx) { return ssw_connect(ctx, 0); }

SEC("cgroup/connect6")
int ssw_connect6(struct bpf_sock_addr *ctx) { return ssw_connect(ctx, 1); }

SEC("cgroup/sendmsg4")
int ssw_sendmsg4(struct bpf_sock_addr *ctx) { return ssw_sendmsg(ctx, 0); }

SEC("cgroup/sendmsg6")
int ssw_sendmsg6(struct bpf_sock_addr *ctx) { return ssw_sendmsg(ctx, 1); }

/*
 * bind of a socket not trapped: the app's own virtual IP or a wildcard → the node's address of the family (a dual-stack
 * wildcard → the host's ::), its loopback → the host's loopback; any other address is not the
 * app's: EADDRNOTAVAIL. The port is the kernel's (0): the virtual port is kept in the socket.
 */
static __always_inline int ssw_bind(struct bpf_sock_addr *ctx, int v6) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 1;
  struct ssw_sock *st = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
  if (!st) return 1;
  struct ssw_config *cfg = ssw_cfg();
  if (st->flags & SSW_SK_REGISTER) {
    if (cfg) cfg->daemon_tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
    return 1;
  }
  if (!st->app) return 1;
  if (st->flags & SSW_SK_TRAPPED) return ssw_is_daemon() ? 1 : ssw_fail(SSW_EPERM);
  __u32 idx = ssw_caller_or(st->app);
  struct ssw_app *app = bpf_map_lookup_elem(&ssw_apps, &idx);
  if (!cfg || !app) return ssw_fail(SSW_EPERM);
  struct ssw_addr v, host;
  ssw_get_user(ctx, v6, &v);
  __u16 vport = bpf_ntohs((__u16)ctx->user_port);
  int v4 = ssw_is4(&v);
  __u32 flags = SSW_SK_BOUND;
  if (ssw_is_any(&v)) {
    if (v4)
      host = cfg->node4;
    else
      ssw_any(&host, 0); /* the host's :: serves both families, as the app's :: does */
  } else if (ssw_is_loopback(&v)) {
    ssw_loopback(&host, v4);
    flags |= SSW_SK_LOOPBACK;
  } else if (((app->flags & 1) && ssw_eq(&v, &app->ip4)) || ((app->flags & 2) && ssw_eq(&v, &app->ip6))) {
    host = v4 ? cfg->node4 : cfg->node6;
    if (!v4 && ssw_is_any(&host)) ssw_loopback(&host, 0); /* no IPv6 node address: this node only */
  } else {
    return ssw_fail(SSW_EADDRNOTAVAIL);
  }
  if (!v6 && !ssw_is4(&host)) return ssw_fail(SSW_EADDRNOTAVAIL);
  ssw_set_user(ctx, v6, &host);
  ctx->user_port = 0;
  st->app = idx;
  st->local = v;
  st->local_port = vport;
  st->flags = (st->flags & ~(SSW_SK_LOOPBACK | SSW_SK_LOCAL)) | flags;
  return 1;
}

SEC("cgroup/bind4")
int ssw_bind4(struct bpf_sock_addr *ctx) { return ssw_bind(ctx, 0); }

SEC("cgroup/bind6")
int ssw_bind6(struct bpf_sock_addr *ctx) { return ssw_bind(ctx, 1); }

/* After bind: a port-0 bind learns its port; a UDP socket is a service from now on (event). */
static __always_inline int ssw_post_bind(struct bpf_sock *sk, int v6) {
  struct ssw_sock *st = ssw_sock_of(sk);
  if (!st || !(st->flags & SSW_SK_BOUND)) return 1;
  if (st->local_port == 0) st->local_port = (__u16)sk->src_port;
  if (sk->type != SSW_SOCK_DGRAM) return 1;
  struct ssw_host_key hk = {};
  if (v6) {
    hk.ip.w[0] = sk->src_ip6[0];
    hk.ip.w[1] = sk->src_ip6[1];
    hk.ip.w[2] = sk->src_ip6[2];
    hk.ip.w[3] = sk->src_ip6[3];
  } else {
    ssw_map4(&hk.ip, sk->src_ip4);
  }
  hk.port = (__u16)sk->src_port;
  hk.proto = SSW_PROTO_UDP;
  struct ssw_client c = {};
  c.vip = st->local;
  c.vport = st->local_port;
  c.app = st->app;
  ssw_bound_put(sk, &hk, &c);
  if (st->flags & SSW_SK_TRAPPED) return 1; /* the daemon registered it already */
  ssw_emit(SSW_EV_BIND, st, &hk.ip, hk.port, v6 ? SSW_AF_INET6 : SSW_AF_INET, bpf_get_socket_cookie(sk));
  return 1;
}

SEC("cgroup/post_bind4")
int ssw_post_bind4(struct bpf_sock *sk) { return ssw_post_bind(sk, 0); }

SEC("cgroup/post_bind6")
int ssw_post_bind6(struct bpf_sock *sk) { return ssw_post_bind(sk, 1); }

/* recvfrom/recvmsg of a datagram: its sender as the app must see it. */
static __always_inline int ssw_recvmsg(struct bpf_sock_addr *ctx, int v6) {
  struct ssw_sock *st = ssw_sock_of(ctx->sk);
  if (!st) return 1;
  struct ssw_config *cfg = ssw_cfg();
  struct ssw_host_key hk = {};
  ssw_get_user(ctx, v6, &hk.ip);
  hk.port = bpf_ntohs((__u16)ctx->user_port);
  hk.proto = SSW_PROTO_UDP;
  if (cfg && cfg->dns_port != 0 && hk.port == cfg->dns_port && ssw_eq(&hk.ip, &cfg->dns_host)) {
    if (!v6 && !ssw_is4(&cfg->dns_vip)) return 1;
    ssw_set_user(ctx, v6, &cfg->dns_vip);
    ctx->user_port = bpf_htons(53);
    return 1;
  }
  struct ssw_client *c = bpf_map_lookup_elem(&ssw_bound, &hk);
  if (!c) c = bpf_map_lookup_elem(&ssw_clients, &hk);
  struct ssw_addr from = hk.ip;
  if (!c) {
    ssw_any(&hk.ip, ssw_is4(&hk.ip));
    c = bpf_map_lookup_elem(&ssw_bound, &hk);
    if (!c) c = bpf_map_lookup_elem(&ssw_clients, &hk);
  }
  if (!c && ssw_is4(&from)) { /* an IPv4 sender bound to the host's dual-stack :: */
    ssw_any(&hk.ip, 0);
    c = bpf_map_lookup_elem(&ssw_bound, &hk);
  }
  struct ssw_addr vip;
  __u16 vport = hk.port;
  __u32 owner_app = 0;
  if (c) {
    vip = c->vip;
    vport = c->vport;
    owner_app = c->app;
  } else if (!ssw_remote_vip(&from, hk.port, &vip)) { /* else a client on another node? */
    ssw_any(&vip, 1);
  }
  /* Not known, or bound to a wildcard: the sender's socket says what it dialed, if connected. */
  if (ssw_is_any(&vip) && cfg) {
    struct ssw_addr sv;
    __u32 sender = ssw_udp_owner(ctx, cfg, &from, hk.port, &sv);
    if (sender && !ssw_is_any(&sv)) {
      vip = sv;
      owner_app = sender;
    }
  }
  if (ssw_is_any(&vip) && owner_app) {
    /* A wildcard-bound sender: its app's address of the family it sent from. */
    struct ssw_app *owner = bpf_map_lookup_elem(&ssw_apps, &owner_app);
    if (!owner) return 1;
    vip = !ssw_is4(&from) && (owner->flags & 2) ? owner->ip6 : owner->ip4;
  }
  if (ssw_is_any(&vip)) return 1;
  if (!v6 && !ssw_is4(&vip)) return 1;
  /* A reply to what the app saw goes to the sender's host address. */
  struct ssw_svc_key pk = {};
  pk.ip = vip;
  pk.port = vport;
  pk.proto = SSW_PROTO_UDP;
  pk.scope = ssw_is_loopback(&vip) ? st->app : 0;
  struct ssw_peer *known = bpf_map_lookup_elem(&ssw_peers, &pk);
  if (owner_app && (!known || !ssw_eq(&known->ip, &from) || known->port != hk.port || known->app != owner_app)) {
    struct ssw_peer pv = {};
    pv.ip = from;
    pv.port = hk.port;
    pv.app = owner_app;
    bpf_map_update_elem(&ssw_peers, &pk, &pv, BPF_ANY);
  }
  ssw_set_user(ctx, v6, &vip);
  ctx->user_port = bpf_htons(vport);
  return 1;
}

SEC("cgroup/recvmsg4")
int ssw_recvmsg4(struct bpf_sock_addr *ctx) { return ssw_recvmsg(ctx, 0); }

SEC("cgroup/recvmsg6")
int ssw_recvmsg6(struct bpf_sock_addr *ctx) { return ssw_recvmsg(ctx, 1); }

#define SSW_TCP_CLOSE 7

SEC("sockops")
int ssw_sockops(struct bpf_sock_ops *o) {
  struct bpf_sock *sk = o->sk;
  if (!sk) return 1;
  struct ssw_sock *st = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
  if (!st || !st->app) return 1;
  struct ssw_host_key hk = {};
  hk.proto = SSW_PROTO_TCP;
  switch (o->op) {
  case BPF_SOCK_OPS_TCP_CONNECT_CB: {
    /* The source port is known and no SYN has left: the server can know this client. */
    ssw_ops_local(o, &hk.ip);
    hk.port = (__u16)o->local_port;
    struct ssw_client c = {};
    ssw_client_addr(st, &st->peer, &c.vip);
    c.vport = (st->flags & SSW_SK_BOUND) && st->local_port ? st->local_port : hk.port; /* its virtual port */
    c.dialed = st->peer;
    c.dialed_port = st->peer_port;
    c.app = st->app;
    bpf_map_update_elem(&ssw_clients, &hk, &c, BPF_ANY);
    bpf_sock_ops_cb_flags_set(o, o->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
    break;
  }
  case BPF_SOCK_OPS_STATE_CB:
    if (o->args[1] == SSW_TCP_CLOSE && (st->flags & SSW_SK_PEER) && !(st->flags & SSW_SK_LOCAL)) {
      ssw_ops_local(o, &hk.ip);
      hk.port = (__u16)o->local_port;
      bpf_map_delete_elem(&ssw_clients, &hk);
    }
    break;
  case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
    ssw_ops_remote(o, &hk.ip);
    hk.port = (__u16)bpf_ntohl(o->remote_port);
    struct ssw_client *c = bpf_map_lookup_elem(&ssw_clients, &hk);
    if (!c) { /* not a managed client of this node: one on another node, else its real address */
      ssw_remote_peer(st, &hk.ip, hk.port);
      break;
    }
    st->peer = c->vip;
    st->peer_port = c->vport;
    st->flags |= SSW_SK_PEER;
    if (ssw_is_any(&st->local)) {
      st->local = c->dialed;
      st->flags |= SSW_SK_LOCAL;
    }
    break;
  }
  case BPF_SOCK_OPS_TCP_LISTEN_CB: {
    if (st->flags & SSW_SK_TRAPPED) break; /* the daemon listened and registered it */
    ssw_ops_local(o, &hk.ip);
    if (!(st->flags & SSW_SK_BOUND)) { /* listen() without bind: the wildcard, the kernel's port */
      ssw_any(&st->local, o->family != SSW_AF_INET6);
      st->local_port = (__u16)o->local_port;
      st->flags |= SSW_SK_BOUND;
    }
    ssw_emit(SSW_EV_LISTEN, st, &hk.ip, (__u16)o->local_port, o->family, bpf_get_socket_cookie(o));
    break;
  }
  }
  return 1;
}

/* The project's license; the helpers used here are not GPL-only. */
char LICENSE[] SEC("license") = "Apache-2.0";
