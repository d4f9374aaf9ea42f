/*
 * diag.c: the kernel's list of inet sockets through NETLINK_SOCK_DIAG.
 *
 * Responsible for sockDiag: one dump of the TCP or UDP sockets of one family in
 * the daemon's network namespace, filtered by state in the kernel (so that a
 * host with a few hundred thousand TIME_WAIT sockets costs the reconcile pass
 * nothing), written into the caller's buffer as fixed-size records; and for
 * sockLookup: the one socket with a given address pair, if it exists now (the
 * kernel's exact lookup, as for a packet, not a dump), in the same record shape.
 * Parsing and deciding are the caller's business. Leans on sock_diag(7),
 * netlink(7) and <linux/inet_diag.h>.
 */
#include "common.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * One record per socket, SW_DIAG_RECORD bytes:
 *   [0] family  [1] state  [2..3] local port  [4..5] remote port (network order)
 *   [8..11] inode (little-endian)  [16..31] local address  [32..47] remote address
 *   [48..55] socket cookie (SO_COOKIE, little-endian; never reused while the host runs)
 * (an IPv4 address takes the first 4 bytes of its 16).
 */
#define SW_DIAG_RECORD 56

static void put_record(uint8_t *rec, const struct inet_diag_msg *m) {
  memset(rec, 0, SW_DIAG_RECORD);
  rec[0] = m->idiag_family;
  rec[1] = m->idiag_state;
  memcpy(rec + 2, &m->id.idiag_sport, 2);
  memcpy(rec + 4, &m->id.idiag_dport, 2);
  uint32_t ino = m->idiag_inode;
  rec[8] = ino & 0xff;
  rec[9] = (ino >> 8) & 0xff;
  rec[10] = (ino >> 16) & 0xff;
  rec[11] = (ino >> 24) & 0xff;
  memcpy(rec + 16, m->id.idiag_src, 16);
  memcpy(rec + 32, m->id.idiag_dst, 16);
  uint64_t cookie = (uint64_t)m->id.idiag_cookie[0] | ((uint64_t)m->id.idiag_cookie[1] << 32);
  for (int i = 0; i < 8; i++) rec[48 + i] = (uint8_t)(cookie >> (8 * i));
}

/* Reads the dump's replies into buf; the record count, or -errno (-ENOBUFS: buf too small). */
static int64_t read_dump(int nl, uint8_t *buf, size_t cap) {
  uint8_t rx[32768] __attribute__((aligned(8)));
  size_t count = 0;
  bool full = false;
  for (;;) {
    ssize_t n = recv(nl, rx, sizeof rx, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EPROTO;
    for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return full ? -ENOBUFS : (int64_t)count;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error < 0 ? e->error : -EPROTO;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      if ((count + 1) * SW_DIAG_RECORD > cap) {
        full = true; /* keep reading to the end of the dump, then say so */
        continue;
      }
      put_record(buf + count * SW_DIAG_RECORD, NLMSG_DATA(h));
      count++;
    }
  }
}

/* A sock_diag request for one family and protocol (inet_diag_req_v2), flags as given. */
struct diag_req {
  struct nlmsghdr h;
  struct inet_diag_req_v2 r;
};

static void diag_req_init(struct diag_req *req, int32_t family, int32_t protocol, uint16_t flags) {
  memset(req, 0, sizeof *req);
  req->h.nlmsg_len = sizeof *req;
  req->h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req->h.nlmsg_flags = flags;
  req->r.sdiag_family = (uint8_t)family;
  req->r.sdiag_protocol = (uint8_t)protocol;
}

/* sockDiag(family, protocol, states, buf) -> records written | -errno. */
static napi_value diag_sock_diag(napi_env env, napi_callback_info info) {
  static const char usage[] = "sockDiag(family, protocol, states, buf)";
  sw_args a;
  int32_t family, protocol;
  uint32_t states;
  uint8_t *buf;
  size_t cap;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &family) || !sw_i32(&a, 1, &protocol) ||
      !sw_u32(&a, 2, &states) || !sw_bytes(&a, 3, &buf, &cap))
    return NULL;
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return sw_num(env, -errno);
  struct diag_req req;
  diag_req_init(&req, family, protocol, NLM_F_REQUEST | NLM_F_DUMP);
  req.r.idiag_states = states;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  int64_t r;
  if (sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
    r = -errno;
  else
    r = read_dump(nl, buf, cap);
  close(nl);
  return sw_num(env, r);
}

/*
 * The daemon's own netlink socket for exact lookups, opened on first use and kept: a
 * lookup is on the accept path. Requests carry a sequence number; replies to an
 * earlier request that was given up on are skipped.
 */
static int lookup_nl = -1;
static uint32_t lookup_seq;

/*
 * sockLookup(family, protocol, src: Uint8Array(16), srcPort, dst: Uint8Array(16), dstPort,
 * out: Uint8Array(56)) -> 1 (found, record in out) | 0 (no such socket) | -errno.
 *
 * TCP: the socket whose local address is src:srcPort and whose peer is dst:dstPort
 * (established, closing or TIME_WAIT). UDP: the socket that a datagram from dst:dstPort to
 * src:srcPort would reach (a connected socket, or one bound to src or a wildcard).
 * Addresses in network order, IPv4 in the first 4 bytes. The kernel answers within the
 * sendto(), so the reply is read without waiting.
 */
static napi_value diag_sock_lookup(napi_env env, napi_callback_info info) {
  static const char usage[] =
      "sockLookup(family, protocol, src: Uint8Array, srcPort, dst: Uint8Array, dstPort, out: Uint8Array)";
  sw_args a;
  int32_t family, protocol;
  uint32_t sport, dport;
  uint8_t *src, *dst, *out;
  size_t srclen, dstlen, outlen;
  if (!sw_get_args(env, info, &a, usage, 7) || !sw_i32(&a, 0, &family) || !sw_i32(&a, 1, &protocol) ||
      !sw_bytes(&a, 2, &src, &srclen) || !sw_u32(&a, 3, &sport) || !sw_bytes(&a, 4, &dst, &dstlen) ||
      !sw_u32(&a, 5, &dport) || !sw_bytes(&a, 6, &out, &outlen))
    return NULL;
  if (srclen < 16 || dstlen < 16 || outlen < SW_DIAG_RECORD) {
    sw_type_error(&a, srclen < 16 ? 2 : dstlen < 16 ? 4 : 6, "is too short (16, 16 and 56 bytes)");
    return NULL;
  }
  if (lookup_nl < 0) {
    lookup_nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (lookup_nl < 0) return sw_num(env, -errno);
  }
  struct diag_req req;
  diag_req_init(&req, family, protocol, NLM_F_REQUEST);
  req.h.nlmsg_seq = ++lookup_seq;
  req.r.idiag_states = 0xffffffff;
  req.r.id.idiag_sport = htons((uint16_t)sport);
  req.r.id.idiag_dport = htons((uint16_t)dport);
  memcpy(req.r.id.idiag_src, src, 16);
  memcpy(req.r.id.idiag_dst, dst, 16);
  req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(lookup_nl, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
    return sw_num(env, -errno);
  uint8_t rx[4096] __attribute__((aligned(8)));
  for (;;) {
    ssize_t n = recv(lookup_nl, rx, sizeof rx, MSG_DONTWAIT);
    if (n < 0) return sw_num(env, errno == EAGAIN ? -ETIMEDOUT : -errno);
    for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != lookup_seq) continue; /* an answer to an older request */
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return sw_num(env, e->error == -ENOENT ? 0 : (e->error < 0 ? e->error : -EPROTO));
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      put_record(out, NLMSG_DATA(h));
      return sw_num(env, 1);
    }
  }
}

const sw_export sw_diag_exports[] = {
    {"sockDiag", diag_sock_diag},
    {"sockLookup", diag_sock_lookup},
    {NULL, NULL},
};
