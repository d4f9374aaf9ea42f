/*
 * datapath-caller.h: whose call it is (datapath.bpf.c). A socket carries the app it was made for
 * (its stamp), but a socket handed to another app (SCM_RIGHTS over a UNIX socket) must act with
 * the receiver's identity, as each call trapped by the seccomp datapath does (docs/security.md,
 * promise 5). Every app runs in a cgroup of its own (src/bpf/cgroups.ts; ssw_cgroups: the
 * cgroup's id → the app's index), so the calling task's cgroup names its app: a connect, a send
 * with a destination or (host placement) a bind is judged for that app, on a copy of the
 * socket's record (another app's task using the same socket at the same moment cannot change
 * the decision midway), and the socket is that app's from then on (what it shows, whose cookie
 * it is). A task in no app's cgroup (the daemon, an unmanaged process the socket was handed to,
 * an app process root moved out of its cgroup) is judged by the socket's stamp.
 * bpf-helpers(7): bpf_get_current_cgroup_id (cgroup sock_addr programs: Linux 5.7).
 */
#ifndef SSW_DATAPATH_CALLER_H
#define SSW_DATAPATH_CALLER_H

#include "datapath-sock.h"

/* The app of the calling task, else `stamp` (the socket's own). */
static __always_inline __u32 ssw_caller_or(__u32 stamp) {
  __u64 cg = bpf_get_current_cgroup_id();
  __u32 *app = bpf_map_lookup_elem(&ssw_cgroups, &cg);
  return app && *app ? *app : stamp;
}

/* A copy of st to judge the call on, with the caller's app. */
static __always_inline void ssw_as_caller(const struct ssw_sock *st, struct ssw_sock *cur) {
  __builtin_memcpy(cur, st, sizeof *cur);
  cur->app = ssw_caller_or(st->app);
}

/* After the call: the socket is the caller's, and knows the peer the call gave it. */
static __always_inline void ssw_keep(struct ssw_sock *st, const struct ssw_sock *cur) {
  st->app = cur->app;
  if (cur->flags & SSW_SK_PEER) {
    st->peer = cur->peer;
    st->peer_port = cur->peer_port;
    st->flags |= SSW_SK_PEER;
  }
}

#endif
