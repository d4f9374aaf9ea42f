// Admission by a connection that exists now. The daemon records each managed client
// socket's host address with the socket's cookie (SO_COOKIE, socket(7): unique for as
// long as the host runs) when it connects or sends; a peer later seen at that address is
// that client only if the kernel's exact lookup (sock_diag(7)) finds, at this moment, the
// very socket recorded: for TCP the client end of this connection (in any state: a client
// that closed first is still found, orphaned or in TIME_WAIT, by its cookie), for UDP the
// socket a reply to the sender would reach. A record whose socket is gone is dropped, so
// that a host port freed by a managed client and bound again by anyone else names nobody.
// When the kernel cannot be asked, nobody is admitted (and it is logged).

import { lookupSocket } from "../net/sock-diag.js";
import type { Binding, Source, VAddr } from "../table/sockets.js";
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
    // A socket on a wildcard (an autobound UDP client) is reached on the node's address of
    // the peer's family, as replies to clients are sent (connect.ts, replyRoute).
    const node = p.family === 4 ? host.config.nodeIp : host.config.nodeIp6;
    if (node === null) return undefined;
    l = ipOf(node);
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

function matches(rec: { cookie: number; inode?: number }, found: { inode: number; cookie: number }): boolean {
  if (rec.cookie !== 0) return rec.cookie === found.cookie;
  return rec.inode !== undefined && rec.inode !== 0 && rec.inode === found.inode;
}

/**
 * The record of the managed client socket that `peer` (a host address) is now, seen from
 * our host address `local`, or undefined: no record, or its socket is gone (the stale
 * record is dropped). One sock_diag lookup when a record exists; none otherwise.
 */
export function liveSource(host: TrapHost, proto: Proto, peer: VAddr, local: VAddr): Source | undefined {
  const reg = host.sockets;
  const first =
    proto === "tcp" ? reg.source("tcp", peer.ip, peer.port) : reg.sourceOfDatagram(peer.ip, peer.port);
  if (!first) return undefined;
  const found = find(host, proto, peer, local);
  if (found === undefined) return undefined;
  for (let r: Source | undefined = first; r; r = r.previous) {
    if (found && matches(r, found)) return r;
  }
  // Nothing there any more, or (UDP: one socket per address) another socket: every
  // record of that address is stale. (A TCP port can be shared by connections to other
  // destinations, whose records stay.)
  if (found === null || proto === "udp")
    for (let r: Source | undefined = first; r; r = r.previous) forgetAt(host, proto, peer, r);
  return undefined;
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
 * Before a datagram from host address `from` to our socket at `local` is admitted or
 * named: the records that claim `from` for a managed socket must still be that socket's.
 * A stale client record is dropped; a bound socket that is gone is withdrawn (as the
 * reconcile pass would within a second). One sock_diag lookup when a record exists.
 */
export function checkSender(host: TrapHost, local: VAddr, from: VAddr): void {
  const b = host.sockets.binding("udp", from.ip, from.port);
  if (b) {
    if (liveBinding(host, b, local) === false) {
      host.log.info(
        { app: b.appId, host: `${b.hostIp}:${b.hostPort}` },
        "bound socket gone; its services are withdrawn",
      );
      withdrawBinding(host, b);
    }
    return;
  }
  liveSource(host, "udp", from, local);
}
