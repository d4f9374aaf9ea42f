/*
 * datapath-lifetime.h: what keeps the bpf datapath's pinned maps consistent over the lives of
 * sockets and daemons (datapath.bpf.c includes it).
 *
 *   ssw_app_ids    each app index in use → its app id (the daemon writes it when it gives an
 *                  index; pinned): a restarted daemon reads it back, so the indexes stamped
 *                  on sockets made before it (ssw_socks) keep naming the same apps, and no
 *                  new app is given an index that one of them still carries. Key 0 (never an
 *                  app's index) holds the next index to give.
 *   sock_release   a bound UDP socket's last close forgets its host address (ssw_bound, its
 *                  key kept in ssw_bound_keys at post_bind), so a datagram from whatever binds
 *                  that host port next is not taken for it.
 *
 * Kernel: cgroup/sock_release 5.9; bpf-helpers(7).
 */
#ifndef SSW_DATAPATH_LIFETIME_H
#define SSW_DATAPATH_LIFETIME_H

#include "datapath-sock.h"

#define SSW_APP_ID_LEN 16

struct ssw_app_id {
  char id[SSW_APP_ID_LEN]; /* the app's id, NUL-padded; key 0: the next index, decimal */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16385);
  __type(key, __u32);
  __type(value, struct ssw_app_id);
} ssw_app_ids SEC(".maps");

/*
 * The ssw_bound key of each bound UDP socket (the sock_release hook cannot read a socket's
 * bound address: the kernel gives src_* to post_bind programs only).
 */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct ssw_host_key);
} ssw_bound_keys SEC(".maps");

/* post_bind of a UDP socket: it is known for replies at hk (ssw_bound) until its release. */
static __always_inline void ssw_bound_put(struct bpf_sock *sk, struct ssw_host_key *hk, struct ssw_client *c) {
  bpf_map_update_elem(&ssw_bound, hk, c, BPF_ANY);
  struct ssw_host_key *k = bpf_sk_storage_get(&ssw_bound_keys, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (k) *k = *hk;
}

SEC("cgroup/sock_release")
int ssw_sock_release(struct bpf_sock *sk) {
  struct ssw_host_key *hk = bpf_sk_storage_get(&ssw_bound_keys, sk, 0, 0);
  struct ssw_sock *st = bpf_sk_storage_get(&ssw_socks, sk, 0, 0);
  if (!hk || !st) return 1;
  struct ssw_host_key key = *hk;
  struct ssw_client *c = bpf_map_lookup_elem(&ssw_bound, &key);
  /* Only this socket's entry (post_bind wrote it from the same storage). */
  if (c && c->app == st->app && c->vport == st->local_port && ssw_eq(&c->vip, &st->local))
    bpf_map_delete_elem(&ssw_bound, &key);
  return 1;
}

#endif
