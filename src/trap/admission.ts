// Admission by a connection that exists now. The daemon records each managed client
// socket's host address with the socket's cookie (SO_COOKIE, socket(7): unique for as
// long as the host runs) when it connects or sends; a peer later seen at that address is
// that client only if the kernel's exact lookup (sock_diag(7)) finds, at this moment, the
// very socket recorded: for TCP the client end of this connection (in any state: a client
// that closed first is still found, orphaned or in TIME_WAIT, by its cookie), for UDP the
// socket a reply to the sender would reach. When the kernel cannot be asked, nobody is
// admitted (and it is logged).
//
// What a client sent before its socket was gone is still its own, as the kernel delivers
// it: a connection in a listener's accept queue, datagrams in a receive queue, also after
// the client's app exited (its records are then retired, not dropped: table/sockets.ts).
// - TCP needs nothing more: the connection's client end outlives the app (orphaned, then
//   TIME_WAIT) and keeps its cookie, so the lookup finds it; a port rebound by anyone
//   after the client was gone is another socket (another cookie), and is refused.
// - A UDP socket leaves nothing behind. A datagram whose sender is not the recorded socket
//   now is still that socket's if the kernel received it while the socket held the
//   address: no earlier than just before the socket's first send or connect, and no later
//   than its last send through the daemon or the last time the lookup found it there
//   (Source.heldSince/heldUntil). The kernel's receive timestamp says when (SIOCGSTAMPNS,
//   on the clock the daemon reads those times on; managed UDP sockets keep one per
//   receive). Anything received later cannot be from it: the address was free only after
//   the socket's last send, so a socket bound there since is refused however soon it
//   sent, and so is a datagram from whoever held the address before.
// A record that names nothing now is dropped, unless it is retired: a retired record routes
// nothing (table/sockets.ts), and it must still name its client's other queued datagrams.

import { lookupSocket } from "../net/sock-diag.js";
import {
  type Binding,
  DATAGRAM_CANDIDATES,
  type SocketRegistry,
  type Source,
  type VAddr,
} from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import { ipOf } from "./addresses.js";
import { withdrawBinding } from "./binding.js";
import type { TrapHost } from "./host.js";

const SOL_SOCKET = 1;
const SO_COOKIE = 57;
const cookieBuf = new Uint8Array(8);
const cookieView = new DataView(cookieBuf.buffer);

/** A socket's cookie (getsockopt SO_COOKIE, Linux 4.12), 0 if it cannot be read. No allocation. */
export function socketCookie(host: TrapHost, fd: number): number {
  if (host.addon.getsockoptBytes(fd, SOL_SOCKET, SO_COOKIE, cookieBuf) !== 8) return 0;
  return cookieView.getUint32(0, true) + cookieView.getUint32(4, true) * 0x100000000;
}

let lookupFailures = 0;

/**
 * The kernel's socket at `peer` that talks to `local` now (TCP: the connection peer →
 * local; UDP: the socket a datagram from local to peer reaches): null when there is none,
 * undefined when the kernel cannot be asked (logged, rate-limited).
 */
function find(
  host: TrapHost,
  proto: Proto,
  peer: VAddr,
  local: VAddr,
): { inode: number; cookie: number } | null | undefined {
  const p = ipOf(peer.ip);
  let l = ipOf(local.ip);
  if (l.family !== p.family || local.ip === "0.0.0.0" || local.ip === "::") {
    // Our socket on a wildcard (an autobound client; a server on the host's `::`) is reached
    // on the host address of the peer's family, as the peer was sent there (route.ts,
    // binding.ts hostIpFor): the node's address, or `::1` on a node without an IPv6 one.
    l = ipOf(p.family === 4 ? host.config.nodeIp : (host.config.nodeIp6 ?? "::1"));
  }
  const r = lookupSocket(host.addon, proto, p, peer.port, l, local.port);
  if (typeof r === "number") {
    if (lookupFailures++ % 1000 === 0)
      host.log.error(
        { errno: -r, peer: `${peer.ip}:${peer.port}` },
        "cannot ask the kernel whether a managed client's socket exists (sock_diag); the peer is not admitted",
      );
    return undefined;
  }
  return r;
}

/**
 * The cookie of the kernel's socket at `peer` that talks to `local` now (as find says), or 0
 * when there is none or the kernel cannot be asked (cookies are never 0). One sock_diag lookup.
 */
export function liveCookie(host: TrapHost, proto: Proto, peer: VAddr, local: VAddr): number {
  return find(host, proto, peer, local)?.cookie ?? 0;
}

function matches(rec: { cookie: number; inode?: number }, found: { inode: number; cookie: number }): boolean {
  if (rec.cookie !== 0) return rec.cookie === found.cookie;
  return rec.inode !== undefined && rec.inode !== 0 && rec.inode === found.inode;
}

/**
 * The record of the managed client socket that `peer` (a host address) is now, seen from
 * our host address `local`, or undefined: no record, or its socket is gone (the stale
 * record is dropped unless retired). UDP with `stampFd` (the receiving socket, right after
 * it received from peer): also the record whose socket held the address when the kernel
 * received that datagram. One sock_diag lookup when a record exists; none otherwise.
 */
export function liveSource(
  host: TrapHost,
  proto: Proto,
  peer: VAddr,
  local: VAddr,
  stampFd = -1,
): Source | undefined {
  const reg = host.sockets;
  // TCP: the records at the peer's address; UDP: also those of sockets on a wildcard on
  // its port (an autobound client), each candidate with the records behind it.
  const candidates = proto === "tcp" ? 1 : DATAGRAM_CANDIDATES;
  let any = false;
  for (let i = 0; i < candidates && !any; i++) any = candidate(reg, proto, peer, i) !== undefined;
  if (!any) return undefined;
  // At or before the moment the lookup sees the socket (Date.now() rounds down).
  const seenAt = Date.now() * 1000;
  const found = find(host, proto, peer, local);
  if (found === undefined) return undefined;
  for (let i = 0; found && i < candidates; i++) {
    for (let r = candidate(reg, proto, peer, i); r; r = r.previous) {
      if (!matches(r, found)) continue;
      if (proto === "udp" && r.heldSince !== undefined && (r.heldUntil ?? 0) < seenAt) r.heldUntil = seenAt;
      return r;
    }
  }
  if (proto === "udp" && stampFd >= 0) {
    const at = host.addon.recvStampUs(stampFd);
    for (let i = 0; at > 0 && i < candidates; i++) {
      for (let r = candidate(reg, proto, peer, i); r; r = r.previous) {
        if (r.heldSince !== undefined && r.heldUntil !== undefined && r.heldSince <= at && at <= r.heldUntil)
          return r;
      }
    }
  }
  // Nothing there any more, or (UDP: one socket per address) another socket: every
  // record of that address is stale. (A TCP port can be shared by connections to other
  // destinations, whose records stay.)
  if (found === null || proto === "udp")
    for (let i = 0; i < candidates; i++)
      for (let r = candidate(reg, proto, peer, i); r; r = r.previous)
        if (r.retiredAt === undefined) forgetAt(host, proto, peer, r);
  return undefined;
}

/** The records at candidate i for a peer (see liveSource). */
function candidate(reg: SocketRegistry, proto: Proto, peer: VAddr, i: number): Source | undefined {
  return proto === "tcp"
    ? reg.source("tcp", peer.ip, peer.port)
    : reg.datagramCandidate(peer.ip, peer.port, i);
}

/** Drops a source record wherever the registry keeps it (its own address, or the wildcard). */
function forgetAt(host: TrapHost, proto: Proto, peer: VAddr, r: Source): void {
  const reg = host.sockets;
  reg.removeSource(proto, peer.ip, peer.port, r);
  if (proto === "udp") {
    reg.removeSource("udp", "0.0.0.0", peer.port, r);
    reg.removeSource("udp", "::", peer.port, r);
  }
}

/**
 * Whether the managed socket of binding b is still the one at its host address, seen
 * from `local`: true, false (gone: another socket or none is there), or undefined when the
 * kernel cannot be asked.
 */
export function liveBinding(host: TrapHost, b: Binding, local: VAddr): boolean | undefined {
  if (b.inode === 0) return true; // the daemon's own (the resolver)
  const found = find(host, b.proto, { ip: b.hostIp, port: b.hostPort }, local);
  if (found === undefined) return undefined;
  return found !== null && found.inode === b.inode;
}

/**
 * Before a datagram from host address `from`, just received by our socket fd at `local`,
 * is admitted or named: the records that claim `from` for a managed socket must still be
 * that socket's, or (a client's record) have been when the kernel received it (see the
 * top). A stale client record is dropped; a bound socket that is gone is withdrawn (as
 * the reconcile pass would within a second). Returns the client record that names the
 * datagram, or null (a bound socket's, or nobody's). One sock_diag lookup when a record
 * exists.
 */
export function checkSender(host: TrapHost, fd: number, local: VAddr, from: VAddr): Source | null {
  const b = host.sockets.binding("udp", from.ip, from.port);
  if (b) {
    if (liveBinding(host, b, local) === false) {
      host.log.info(
        { app: b.appId, host: `${b.hostIp}:${b.hostPort}` },
        "bound socket gone; its services are withdrawn",
      );
      withdrawBinding(host, b);
    }
    return null;
  }
  return liveSource(host, "udp", from, local, fd) ?? null;
}

/**
 * Makes the kernel keep the receive time of each datagram socket fd (a managed UDP
 * socket) takes from now on, which checkSender reads (recvStampUs: SOCK_TIMESTAMP, no
 * cmsg for the app). One ioctl; a socket that already does is unchanged.
 */
export function keepReceiveTimes(host: TrapHost, fd: number): void {
  host.addon.recvStampUs(fd);
}
