/*
 * The bpf datapath's getsockname and getpeername hooks (datapath.bpf.c includes this file): the
 * addresses an app sees for its own socket and its peer are the virtual ones its socket
 * storage records (a client's local address, a server's client as sock_ops learned it).
 */
#ifndef SSW_DATAPATH_NAMES_H
#define SSW_DATAPATH_NAMES_H

#include "datapath-sock.h"

/* getsockname: the virtual local address (a client's: the address it connects from). */
static __always_inline int ssw_getsockname(struct bpf_sock_addr *ctx, int v6) {
  struct ssw_sock *st = ssw_sock_of(ctx->sk);
  if (!st || ((st->flags & SSW_SK_TRAPPED) && ssw_is_daemon())) return 1; /* the daemon sees the host's */
  struct ssw_addr a;
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  /* A peer only while connected (a connect the kernel refused after the hook left none). */
  int peer = (st->flags & SSW_SK_PEER) && ctx->sk->dst_port != 0;
  if (st->flags & (SSW_SK_BOUND | SSW_SK_LOCAL)) {
    a = st->local;
    if (st->local_port) port = st->local_port;
    if (ssw_is_any(&a) && peer) ssw_client_addr(st, &st->peer, &a);
  } else if (peer) {
    ssw_client_addr(st, &st->peer, &a);
  } else {
    return 1;
  }
  if (!v6 && !ssw_is4(&a)) return 1;
  ssw_set_user(ctx, v6, &a);
  ctx->user_port = bpf_htons(port);
  return 1;
}

SEC("cgroup/getsockname4")
int ssw_getsockname4(struct bpf_sock_addr *ctx) { return ssw_getsockname(ctx, 0); }

SEC("cgroup/getsockname6")
int ssw_getsockname6(struct bpf_sock_addr *ctx) { return ssw_getsockname(ctx, 1); }

/* getpeername (and the address accept() writes): the virtual peer. */
static __always_inline int ssw_getpeername(struct bpf_sock_addr *ctx, int v6) {
  struct ssw_sock *st = ssw_sock_of(ctx->sk);
  if (!st || !(st->flags & SSW_SK_PEER) || ((st->flags & SSW_SK_TRAPPED) && ssw_is_daemon())) return 1;
  if (!v6 && !ssw_is4(&st->peer)) return 1;
  ssw_set_user(ctx, v6, &st->peer);
  if (st->peer_port) ctx->user_port = bpf_htons(st->peer_port);
  return 1;
}

SEC("cgroup/getpeername4")
int ssw_getpeername4(struct bpf_sock_addr *ctx) { return ssw_getpeername(ctx, 0); }

SEC("cgroup/getpeername6")
int ssw_getpeername6(struct bpf_sock_addr *ctx) { return ssw_getpeername(ctx, 1); }

#endif
