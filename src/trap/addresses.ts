// Host ↔ virtual address helpers shared by the handlers: which host address a socket binds
// to, the app's own virtual IP for a family, and what an app sees for a host address
// (getsockname, getpeername, accept). Lookups only; the records come from the registry.

import { constants } from "node:os";
import { type IpAddr, isLoopback, isUnspecified, parseIp } from "../net/ip.js";
import { AF_INET, AF_INET6, encodeSockaddr, readKernelSockaddr } from "../net/sockaddr.js";
import type { Source, VAddr } from "../table/sockets.js";
import type { App, Proto } from "../table/types.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

const E = constants.errno;
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_REUSEADDR = 2;
export const SO_REUSEPORT = 15;
export const SO_DOMAIN = 39;
export const SO_ACCEPTCONN = 30;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;

const ipCache = new Map<string, IpAddr>();

/** Parsed form of an address the daemon already knows to be valid (cached). */
export function ipOf(text: string): IpAddr {
  let ip = ipCache.get(text);
  if (!ip) {
    ip = parseIp(text) as IpAddr;
    if (ipCache.size > 4096) ipCache.clear();
    ipCache.set(text, ip);
  }
  return ip;
}

/** The app's virtual IP of the family (falling back to its other one). */
export function appIp(app: App, family: 4 | 6): string {
  for (const ip of app.ips) if (ipOf(ip).family === family) return ip;
  return app.ips[0] ?? (family === 4 ? "0.0.0.0" : "::");
}

export function protoOf(type: number): Proto {
  return (type & 0xf) === SOCK_DGRAM ? "udp" : "tcp";
}

/** A socket's domain, or -errno. */
const timeval = new Uint8Array(16);
const timevalView = new DataView(timeval.buffer);

/**
 * SO_RCVTIMEO or SO_SNDTIMEO of socket fd in milliseconds, rounded up; 0: none (socket(7):
 * how long a blocking call waits before it gives up). No allocation.
 */
export function socketTimeoutMs(
  s: AppSession,
  fd: number,
  opt: typeof SO_RCVTIMEO | typeof SO_SNDTIMEO,
): number {
  if (s.host.addon.getsockoptBytes(fd, SOL_SOCKET, opt, timeval) < 16) return 0;
  const sec = Number(timevalView.getBigInt64(0, true));
  return sec * 1000 + Math.ceil(Number(timevalView.getBigInt64(8, true)) / 1000);
}

export function domainOf(s: AppSession, fd: number): number {
  return s.host.addon.getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN);
}

export function isInet(domain: number): boolean {
  return domain === AF_INET || domain === AF_INET6;
}

/** The kernel's local (or peer) address of a host socket, or null. */
export function hostName(s: AppSession, fd: number, peer: boolean): VAddr | null {
  const a = s.host.addon;
  const len = peer ? a.getpeername(fd, s.outBuf) : a.getsockname(fd, s.outBuf);
  if (len < 0) return null;
  return readKernelSockaddr(s.outBuf, len);
}

/**
 * What the app sees as the local address of its socket (getsockname): the host address
 * `host` translated. A connected client shows the virtual address it connects from; a
 * connection accepted by a listener, the virtual address its client dialed; a bound socket,
 * the virtual address it was bound to; anything unbound or only autobound (an unconnected UDP
 * socket after a send) the kernel's own wildcard and port.
 */
export function virtualLocal(s: AppSession, fd: number, proto: Proto, host: VAddr): VAddr {
  if (host.port === 0) return host;
  const reg = s.host.sockets;
  const peer = hostName(s, fd, true);
  const src = reg.source(proto, host.ip, host.port);
  const b = reg.bindingAt(proto, host.ip, host.port);
  if (peer === null) {
    // A TCP client whose connection failed keeps the address it had (a refused non-blocking
    // connect); one that was disconnected is back on the wildcard. (A UDP socket's source
    // records are per datagram: its bound address is what it shows.)
    if (src && proto === "tcp" && !isUnspecified(host.ip)) return src.local;
    return b ? { ip: b.vip, port: b.vport } : host;
  }
  if (src) return src.local;
  if (!b) return host;
  if (!isUnspecified(b.vip)) return { ip: b.vip, port: b.vport };
  if (b.connectedTo !== null) return { ip: appIp(s.app, ipOf(b.connectedTo.ip).family), port: b.vport };
  // Accepted on a wildcard listener: the address the client dialed.
  const theirs = reg.source(proto, peer.ip, peer.port);
  if (theirs && theirs.peer.port === b.vport) return theirs.peer;
  return { ip: appIp(s.app, ipOf(peer.ip).family), port: b.vport };
}

/** What the app sees as the peer of its connected socket (host local and peer given). */
export function virtualPeer(s: AppSession, proto: Proto, local: VAddr | null, peer: VAddr): VAddr {
  const reg = s.host.sockets;
  if (local) {
    const mine = reg.source(proto, local.ip, local.port);
    if (mine) return mine.peer; // a client: what it dialed
  }
  const theirs =
    proto === "udp" ? reg.sourceOfDatagram(peer.ip, peer.port) : reg.source(proto, peer.ip, peer.port);
  if (theirs) return theirs.local;
  const b = local ? reg.bindingAt(proto, local.ip, local.port) : undefined;
  if (b?.connectedTo) return b.connectedTo;
  // A client on another node, known by its app's published source-port block.
  const remote =
    proto === "tcp" && !s.host.isLocalAddress(peer.ip)
      ? s.host.table.remoteClient(peer.ip, peer.port)
      : undefined;
  if (remote) return { ip: appIp(remote, ipOf(peer.ip).family), port: peer.port };
  return peer;
}

/**
 * What an app sees as the sender of a datagram from host address `from`: the virtual
 * address of the managed client socket that sent it (src, as admission.ts's checkSender
 * found it; null: none), of a managed socket bound there (a server), or `from` itself for
 * an unmanaged sender.
 */
export function virtualSource(s: AppSession, from: VAddr, src: Source | null): VAddr {
  const reg = s.host.sockets;
  if (src) return src.local;
  const b = reg.bindingAt("udp", from.ip, from.port);
  if (b) {
    if (!isUnspecified(b.vip)) return { ip: b.vip, port: b.vport };
    const owner = s.host.table.getApp(b.appId);
    return { ip: owner ? appIp(owner, ipOf(from.ip).family) : from.ip, port: b.vport };
  }
  if (s.host.isLocalAddress(from.ip)) return from;
  // Another node's: a server's service, or a client by its app's source-port block.
  const svc = s.host.table.serviceAtHost("udp", from.ip, from.port);
  if (svc) return { ip: svc.vip, port: svc.vport };
  const remote = s.host.table.remoteClient(from.ip, from.port);
  return remote ? { ip: appIp(remote, ipOf(from.ip).family), port: from.port } : from;
}

/**
 * True when a datagram from host address `from` comes from a socket sockswitch made: a
 * bound one, or the client socket of record src (admission.ts's checkSender; null: none).
 */
export function isManagedSender(s: AppSession, from: VAddr, src: Source | null): boolean {
  const reg = s.host.sockets;
  if (reg.bindingAt("udp", from.ip, from.port) !== undefined) return true;
  if (src !== null) return true;
  if (s.host.isLocalAddress(from.ip)) return false;
  const t = s.host.table;
  return t.isRemoteManaged(from.ip, from.port) || t.serviceAtHost("udp", from.ip, from.port) !== undefined;
}

/**
 * Writes the kernel's own local (or peer) address of fd into the app's addr/addrlen, as
 * getsockname(2)/getpeername(2) would: for sockets with nothing to translate (UNIX,
 * netlink). 0 or -errno.
 */
export function writeKernelName(s: AppSession, n: Notification, fd: number, peer: boolean): number {
  const a = s.host.addon;
  const len = peer ? a.getpeername(fd, s.outBuf) : a.getsockname(fd, s.outBuf);
  if (len < 0) return len;
  return s.writeSockaddr(n, n.ptr(1), n.ptr(2), s.outBuf, Math.min(len, s.outBuf.length));
}

/** Encodes vaddr for a socket of domain into s.outBuf; returns the length. */
export function encodeFor(s: AppSession, domain: number, v: VAddr): number {
  return encodeSockaddr(domain, ipOf(v.ip), v.port, s.outBuf);
}

export function isLoopbackOrAny(ip: string): boolean {
  return isLoopback(ip) || ip === "0.0.0.0" || ip === "::";
}

export { E };
