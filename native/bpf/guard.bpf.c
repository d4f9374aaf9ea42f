/*
 * guard.bpf.c: the CONTINUE guard (cgroup connect4/6, bind4/6, sendmsg4/6).
 *
 * The seccomp datapath answers some calls on non-INET (UNIX) sockets with
 * SECCOMP_USER_NOTIF_FLAG_CONTINUE. Between the daemon's check and the kernel
 * running the call, another thread of the app can dup2() an INET socket (one the
 * daemon made for it in the host network namespace) onto that fd number; the
 * kernel would then bind, connect or send on a host socket with the app's own
 * address. These programs refuse exactly that: a bind, connect or addressed UDP
 * send on a socket the daemon marked as an app's (socket storage, written by
 * the daemon at socket() time with the socket's fd as key; BPF_F_CLONE carries
 * the mark to accepted sockets), made by any task but the daemon itself, gets
 * EPERM. Sockets without the mark (every other process's) are never touched.
 * A send to the socket's connected peer is not a new destination and passes:
 * udpv6_sendmsg (net/ipv6/udp.c) hands a send without a destination on an IPv6
 * socket connected to an IPv4-mapped peer to udp_sendmsg with that peer as its
 * address, which runs sendmsg4 as if the app had named it.
 *
 * The daemon is known by its thread group id as the kernel sees it
 * (bpf_get_current_pid_tgid, the initial PID namespace): the daemon does not
 * write it, it registers: it marks one socket of its own GUARD_REGISTER and
 * binds it, and the bind program records the caller's tgid. No app socket can
 * carry that mark: only the daemon writes marks. Attached to the daemon's cgroup
 * (where its sockets are created) with BPF_F_ALLOW_MULTI semantics (links).
 * No policy here: the daemon decides; this only closes the window.
 *
 * Kernel: cgroup sock_addr programs 4.17/4.18, socket storage 5.2.
 * bpf-helpers(7): bpf_sk_storage_get, bpf_get_current_pid_tgid.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define GUARD_APP 1u      /* a socket the daemon made for an app */
#define GUARD_REGISTER 2u /* the daemon's registration socket */

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
  __type(key, int);
  __type(value, __u32);
} guard_socks SEC(".maps");

/* [0]: the daemon's tgid (0: none registered, every marked call is refused). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} guard_daemon SEC(".maps");

static __always_inline int judge(struct bpf_sock *sk) {
  if (!sk) return 1;
  __u32 *mark = bpf_sk_storage_get(&guard_socks, sk, 0, 0);
  if (!mark) return 1;
  __u32 key = 0;
  __u32 *daemon = bpf_map_lookup_elem(&guard_daemon, &key);
  if (!daemon) return 0;
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (*mark & GUARD_REGISTER) {
    *daemon = tgid;
    return 1;
  }
  return *daemon != 0 && *daemon == tgid;
}

SEC("cgroup/connect4")
int guard_connect4(struct bpf_sock_addr *ctx) { return judge(ctx->sk); }

SEC("cgroup/connect6")
int guard_connect6(struct bpf_sock_addr *ctx) { return judge(ctx->sk); }

SEC("cgroup/bind4")
int guard_bind4(struct bpf_sock_addr *ctx) { return judge(ctx->sk); }

SEC("cgroup/bind6")
int guard_bind6(struct bpf_sock_addr *ctx) { return judge(ctx->sk); }

/* True when a send goes to the peer the socket is connected to (the daemon connected it). */
static __always_inline int to_peer(struct bpf_sock_addr *ctx, int v6) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk || sk->state != BPF_TCP_ESTABLISHED || sk->dst_port != (__u16)ctx->user_port) return 0;
  if (!v6) return sk->dst_ip4 == ctx->user_ip4;
  return sk->dst_ip6[0] == ctx->user_ip6[0] && sk->dst_ip6[1] == ctx->user_ip6[1] &&
         sk->dst_ip6[2] == ctx->user_ip6[2] && sk->dst_ip6[3] == ctx->user_ip6[3];
}

SEC("cgroup/sendmsg4")
int guard_sendmsg4(struct bpf_sock_addr *ctx) { return to_peer(ctx, 0) || judge(ctx->sk); }

SEC("cgroup/sendmsg6")
int guard_sendmsg6(struct bpf_sock_addr *ctx) { return to_peer(ctx, 1) || judge(ctx->sk); }

/* The project's license; the helpers used here are not GPL-only. */
char LICENSE[] SEC("license") = "Apache-2.0";
