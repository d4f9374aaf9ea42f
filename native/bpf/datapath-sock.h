/*
 * datapath-sock.h: the bpf datapath's events for the daemon (ring buffer ssw_events: a bound
 * or listening socket not trapped, a trapped bound UDP socket that connected), the addresses
 * of a sock_ops context, and whose socket is whose: the stamp of a socket made in an app's
 * cgroup (sock_create, the host placement) and the app of each socket cookie (ssw_cookies)
 * (datapath.bpf.c).
 */
#ifndef SSW_DATAPATH_SOCK_H
#define SSW_DATAPATH_SOCK_H

#include "datapath-route.h"

static __always_inline void ssw_emit(__u32 kind, struct ssw_sock *st, struct ssw_addr *host, __u16 host_port,
                                     __u32 family, __u64 cookie) {
  struct ssw_event *e = ssw_event_new(kind, st->app);
  if (!e) return;
  e->vip = st->local;
  e->vport = st->local_port;
  e->host = *host;
  e->host_port = host_port;
  e->flags = st->flags;
  e->family = family;
  e->cookie = cookie;
  bpf_ringbuf_submit(e, 0);
}

/*
 * A bound UDP socket of the app connected: it serves only its peer from now on (the kernel
 * delivers it nothing else), so the daemon withdraws its services (event; the daemon reads
 * pending events before it carries out the app's next bind, so a socket bound after this
 * connect is the one that serves).
 */
static __always_inline void ssw_udp_connected(struct bpf_sock *sk, struct ssw_sock *st, int v6,
                                              __u64 cookie) {
  if (!sk) return;
  struct ssw_event *e = ssw_event_new(SSW_EV_UDP_CONNECTED, st->app);
  if (!e) return;
  e->vip = st->peer;
  e->vport = st->peer_port;
  ssw_sk_local(sk, &e->host);
  e->host_port = (__u16)sk->src_port;
  e->flags = st->flags;
  e->family = v6 ? SSW_AF_INET6 : SSW_AF_INET;
  e->cookie = cookie; /* which of the sockets that share a host port connected */
  bpf_ringbuf_submit(e, 0);
}

static __always_inline void ssw_ops_local(struct bpf_sock_ops *o, struct ssw_addr *a) {
  if (o->family == SSW_AF_INET6) {
    SSW_READ(a->w[0], o->local_ip6[0]);
    SSW_READ(a->w[1], o->local_ip6[1]);
    SSW_READ(a->w[2], o->local_ip6[2]);
    SSW_READ(a->w[3], o->local_ip6[3]);
  } else {
    __u32 ip;
    SSW_READ(ip, o->local_ip4);
    ssw_map4(a, ip);
  }
}

static __always_inline void ssw_ops_remote(struct bpf_sock_ops *o, struct ssw_addr *a) {
  if (o->family == SSW_AF_INET6) {
    SSW_READ(a->w[0], o->remote_ip6[0]);
    SSW_READ(a->w[1], o->remote_ip6[1]);
    SSW_READ(a->w[2], o->remote_ip6[2]);
    SSW_READ(a->w[3], o->remote_ip6[3]);
  } else {
    __u32 ip;
    SSW_READ(ip, o->remote_ip4);
    ssw_map4(a, ip);
  }
}

/* Records whose socket this is (ssw_cookies), for the daemon's checks of who sent what. */
static __always_inline void ssw_known(__u64 cookie, struct ssw_sock *st) {
  __u32 app = st->app;
  bpf_map_update_elem(&ssw_cookies, &cookie, &app, BPF_ANY);
}

/*
 * socket() in an app's cgroup (run --new-netns=false): stamped as the daemon stamps the sockets
 * it makes for the apps it traps. Sockets made anywhere else are left alone. Kernel: 4.10
 * (sock_create), socket storage from it 5.x.
 */
SEC("cgroup/sock_create")
int ssw_sock_create(struct bpf_sock *sk) {
  if (sk->family != SSW_AF_INET && sk->family != SSW_AF_INET6) return 1;
  __u64 cg = bpf_get_current_cgroup_id();
  __u32 *app = bpf_map_lookup_elem(&ssw_cgroups, &cg);
  if (!app) return 1;
  struct ssw_sock *st = bpf_sk_storage_get(&ssw_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (st) st->app = *app;
  return 1;
}

#endif
