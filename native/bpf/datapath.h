/*
 * datapath.h: the maps and records the bpf datapath's programs share with the daemon
 * (src/bpf/layout.ts describes the same bytes for TypeScript: change both together).
 *
 * Addresses are 16 bytes in network order; an IPv4 address is IPv4-mapped (::ffff:a.b.c.d),
 * so that AF_INET and AF_INET6 sockets (dual-stack ones dialing IPv4-mapped addresses) meet
 * in one table. Ports in the records are in host order.
 */
#ifndef SSW_DATAPATH_H
#define SSW_DATAPATH_H

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define SSW_AF_INET 2
#define SSW_AF_INET6 10
#define SSW_SOCK_STREAM 1
#define SSW_SOCK_DGRAM 2
#define SSW_EPERM 1
#define SSW_EINVAL 22
#define SSW_ENETUNREACH 101
#define SSW_EACCES 13
#define SSW_EADDRNOTAVAIL 99
#define SSW_ECONNREFUSED 111

#define SSW_PROTO_TCP 6
#define SSW_PROTO_UDP 17

#define SSW_MAX_BACKENDS 32
#define SSW_LABEL_WORDS 4 /* 256 distinct key=value labels */

struct ssw_addr {
  __u32 w[4];
};

/* Per socket (BPF socket storage, cloned to accepted sockets): whose it is, what it shows. */
struct ssw_sock {
  __u32 app;   /* the app's index in ssw_apps; 0: not an app's socket */
  __u32 flags; /* SSW_SK_* */
  struct ssw_addr local; /* the virtual local address (bound, or what an accepted socket was dialed at) */
  struct ssw_addr peer;  /* the virtual peer (what a client dialed, an accepted socket's client) */
  __u16 local_port;
  __u16 peer_port;
  __u32 pad;
};

#define SSW_SK_BOUND 1u    /* local holds the virtual address the app bound */
#define SSW_SK_LOOPBACK 2u /* bound to the app's private loopback */
#define SSW_SK_PEER 4u     /* peer holds the virtual peer */
#define SSW_SK_LOCAL 8u    /* local holds the virtual local address of a connection */
/*
 * The app's bind and listen calls are trapped: the daemon carries them out (its shadow
 * namespace judges them, it picks the pool port, it writes local, local_port and the flags
 * before its own bind). The bind hooks let the daemon's bind through as it is and refuse any
 * other task's (a UNIX-socket bind continued while another thread swapped this socket in);
 * no event is sent; the get*name hooks show the daemon its host addresses.
 */
#define SSW_SK_TRAPPED 16u
#define SSW_SK_REGISTER 32u /* the daemon's registration socket: its bind records the daemon's tgid */
#define SSW_SK_EXPOSED 64u  /* bound to an --expose host port: admits anyone (datapath-cluster.h) */

/* ssw_apps[index]: an app of this node. */
struct ssw_app {
  struct ssw_addr ip4; /* IPv4-mapped */
  struct ssw_addr ip6;
  __u32 flags; /* SSW_APP_* */
  __u32 cursor; /* SSW_APP_BLOCK_BIND: where the next bind in the block starts (datapath-cluster.h) */
  __u64 labels[SSW_LABEL_WORDS];
  __u16 block_first; /* the app's source-port block (docs/cluster.md); 0: none */
  __u16 block_last;
  __u32 pad;
};

#define SSW_APP_IP4 1u
#define SSW_APP_IP6 2u
/* Connections to other nodes bind a port of the block (kernels without IP_LOCAL_PORT_RANGE). */
#define SSW_APP_BLOCK_BIND 4u

/* A virtual ip:port (scope 0), or one of an app's private ones (scope = its index: loopback). */
struct ssw_svc_key {
  struct ssw_addr ip;
  __u16 port;
  __u8 proto;
  __u8 pad;
  __u32 scope;
};

struct ssw_svc {
  __u32 count; /* backends, slots 0 .. count-1 */
  __u32 lb;    /* 0 round-robin, 1 random */
  __u32 rr;    /* round-robin counter */
  __u32 prefer_local; /* --prefer-local: among the allowed backends, this node's while there are any */
};

struct ssw_be_key {
  struct ssw_svc_key svc;
  __u32 slot;
  __u32 pad;
};

struct ssw_be {
  struct ssw_addr host; /* where it really listens */
  __u16 port;
  __u16 local; /* 1: on this node */
  __u32 pad2;
  __u64 labels[SSW_LABEL_WORDS];
};

/* A host address (and port) → what it stands for: a client socket's virtual address. */
struct ssw_host_key {
  struct ssw_addr ip;
  __u16 port;
  __u8 proto;
  __u8 pad;
};

struct ssw_client {
  struct ssw_addr vip; /* the client's virtual address */
  struct ssw_addr dialed;
  __u16 vport;
  __u16 dialed_port;
  __u32 app;
};

/* A UDP sender's host address, and its app (a reply goes there only while that app's socket holds it). */
struct ssw_peer {
  struct ssw_addr ip;
  __u16 port;
  __u16 pad;
  __u32 app;
};

struct ssw_config {
  __u32 egress_deny;
  __u32 refuse_port;
  __u32 pool_first;
  __u32 pool_last;
  struct ssw_addr node4; /* IPv4-mapped */
  struct ssw_addr node6; /* :: when the node has no IPv6 address */
  struct ssw_addr dns_vip;
  struct ssw_addr dns_host;
  __u32 dns_port;
  __u32 vip_net4; /* --vip-cidr, network order */
  __u32 vip_mask4;
  __u32 daemon_tgid; /* the daemon's thread group id (initial PID namespace), set by its registration bind */
};

/* Events for the daemon (ring buffer). */
#define SSW_EV_BIND 1   /* a UDP socket was bound */
#define SSW_EV_LISTEN 2 /* a TCP socket listens */
#define SSW_EV_DENIED_POLICY 3 /* a connect or send refused: no label shared (vip: the destination) */
#define SSW_EV_DENIED_EGRESS 4 /* refused by --egress deny */
#define SSW_EV_DENIED_POOL 5   /* refused: a pool port of this host as an egress destination */
#define SSW_EV_UDP_CONNECTED 6 /* a trapped, bound UDP socket connected: it serves that peer only
                                  (host: its own host address; vip, vport: the peer it dialed) */
#define SSW_EV_DENIED_PEER 7   /* a SYN or datagram to a pool port from an unmanaged peer dropped
                                  (host, host_port: the peer; vip, vport: the app socket's) */
#define SSW_EV_BLOCK_FULL 8    /* a connect to another node found every port of the app's block taken */

struct ssw_event {
  __u32 kind;
  __u32 app;
  struct ssw_addr vip; /* the virtual address bound (:: / 0.0.0.0 mapped for the wildcard) */
  struct ssw_addr host;
  __u16 vport;
  __u16 host_port;
  __u32 flags; /* ssw_sock.flags */
  __u32 family;
  __u64 cookie; /* the socket's cookie */
};

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
  __type(key, int);
  __type(value, struct ssw_sock);
} ssw_socks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct ssw_app);
} ssw_apps SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssw_svc_key);
  __type(value, struct ssw_svc);
} ssw_svcs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 262144);
  __type(key, struct ssw_be_key);
  __type(value, struct ssw_be);
} ssw_backends SEC(".maps");

/* Every virtual IP (apps', the resolver's): a connect there that finds no service is refused. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssw_addr);
  __type(value, __u32);
} ssw_vips SEC(".maps");

/* This host's own addresses: never reached on a pool port as egress. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, struct ssw_addr);
  __type(value, __u32);
} ssw_local SEC(".maps");

/* Client sockets by host address (TCP: set at connect time by sockops; UDP: at send). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 262144);
  __type(key, struct ssw_host_key);
  __type(value, struct ssw_client);
} ssw_clients SEC(".maps");

/* Bound UDP sockets by host address: the virtual address a datagram from there comes from. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssw_host_key);
  __type(value, struct ssw_client);
} ssw_bound SEC(".maps");

/*
 * UDP senders an app received from, by the virtual address it saw (scope: the app's index for
 * its private loopback, else 0) → their host address: where a reply (or a connect to the
 * sender, as a forking UDP server does) goes, while the sender's app still holds it
 * (checked at each use: datapath-peer.h). Learned at recvmsg.
 */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssw_svc_key);
  __type(value, struct ssw_peer);
} ssw_peers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ssw_config);
} ssw_config SEC(".maps");

/*
 * The app of each socket that connected or sent through the programs, by socket cookie: the
 * daemon's DNS server finds the cookie of the socket a query came from (sock_diag) and asks here
 * whose it is. Cookies are never reused while the host runs: an old entry names a gone socket.
 */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 262144);
  __type(key, __u64);
  __type(value, __u32);
} ssw_cookies SEC(".maps");

/* The host placement (run --new-netns=false): an app's cgroup (its id) → the app's index. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u32);
} ssw_cgroups SEC(".maps");

/*
 * Other nodes' apps (datapath-cluster.h), from the table's records (src/bpf/cluster-maps.ts):
 * ssw_remote: (node IP, port of an app's source-port block, proto 0) → that app (addresses);
 * ssw_nodes: a node IP → its published client-port range (pool ports admit peers there);
 * ssw_rclients: a remote client's virtual UDP ip:port → its node IP and port, with its labels.
 */
struct ssw_range {
  __u32 first;
  __u32 last;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 262144);
  __type(key, struct ssw_host_key);
  __type(value, struct ssw_app);
} ssw_remote SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct ssw_addr);
  __type(value, struct ssw_range);
} ssw_nodes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 262144);
  __type(key, struct ssw_svc_key);
  __type(value, struct ssw_be);
} ssw_rclients SEC(".maps");

/* Unmanaged peers a bound UDP socket sent to (egress): their replies are admitted. */
struct ssw_egress_key {
  __u64 cookie;
  struct ssw_addr ip;
  __u16 port;
  __u16 pad;
  __u32 pad2;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssw_egress_key);
  __type(value, __u32);
} ssw_egress SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} ssw_events SEC(".maps");

/* Events ssw_event_new could not reserve (the ring was full): the daemon warns when it grows. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} ssw_events_lost SEC(".maps");

/* An event of this kind for the app, zeroed and reserved in ssw_events (the caller fills it in
 * and submits it), or 0 when the ring is full: the event is lost, and counted in ssw_events_lost. */
static __always_inline struct ssw_event *ssw_event_new(__u32 kind, __u32 app) {
  struct ssw_event *e = bpf_ringbuf_reserve(&ssw_events, sizeof *e, 0);
  if (!e) {
    __u32 zero = 0;
    __u64 *lost = bpf_map_lookup_elem(&ssw_events_lost, &zero);
    if (lost) __sync_fetch_and_add(lost, 1);
    return 0;
  }
  __builtin_memset(e, 0, sizeof *e);
  e->kind = kind;
  e->app = app;
  return e;
}

static __always_inline void ssw_map4(struct ssw_addr *a, __u32 ip4) {
  a->w[0] = 0;
  a->w[1] = 0;
  a->w[2] = bpf_htonl(0xffff);
  a->w[3] = ip4;
}

static __always_inline int ssw_is4(const struct ssw_addr *a) {
  return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0xffff);
}

static __always_inline int ssw_eq(const struct ssw_addr *a, const struct ssw_addr *b) {
  return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline int ssw_is_any(const struct ssw_addr *a) {
  if (ssw_is4(a)) return a->w[3] == 0;
  return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

static __always_inline int ssw_is_loopback(const struct ssw_addr *a) {
  if (ssw_is4(a)) return (bpf_ntohl(a->w[3]) >> 24) == 127;
  return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == 0 && a->w[3] == bpf_htonl(1);
}

static __always_inline struct ssw_config *ssw_cfg(void) {
  __u32 k = 0;
  return bpf_map_lookup_elem(&ssw_config, &k);
}

/* True when the calling task is the daemon (registered; 0: nobody is). */
static __always_inline int ssw_is_daemon(void) {
  struct ssw_config *cfg = ssw_cfg();
  return cfg && cfg->daemon_tgid != 0 && cfg->daemon_tgid == (__u32)(bpf_get_current_pid_tgid() >> 32);
}

#endif
