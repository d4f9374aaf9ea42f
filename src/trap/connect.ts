// connect(2). For AF_INET/AF_INET6 the destination is looked up: a virtual ip:port goes
// through label policy and load balancing to a backend's host ip:port; 127.0.0.1/::1 reach
// only the app's own listeners; anything else is egress (allowed or refused by --egress,
// and never to this host's pool ports). The daemon connects its duplicate of the app's
// socket with its own copy of the address. A blocking socket is answered when the
// connection completes, without blocking the daemon: it is switched to non-blocking for the
// connect() alone and then watched for writability. UNIX sockets are left to the kernel.

import { isLoopback, isUnspecified } from "../net/ip.js";
import { AF_INET, decodeSockaddr, SOCKADDR_MAX, type SockAddr } from "../net/sockaddr.js";
import { sharesLabel } from "../table/policy.js";
import type { Binding, VAddr } from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import {
  appIp,
  domainOf,
  E,
  encodeFor,
  F_GETFL,
  F_SETFL,
  hostName,
  ipOf,
  isInet,
  isLoopbackOrAny,
  O_NONBLOCK,
  protoOf,
  SO_ERROR,
  SO_TYPE,
  SOL_SOCKET,
} from "./addresses.js";
import { hostIpFor, publish, rerouteServed, servesFamily, unpublish } from "./binding.js";
import type { Notification } from "./notification.js";
import { type AppSession, WRITABLE } from "./session.js";

/**
 * Where a connect goes on the host, or the errno that refuses it. remote: the backend runs
 * on another node (the connection then leaves from the app's source-port block).
 */
export type Route = { host: VAddr; loopback: boolean; remote?: boolean; dialed: SockAddr } | number;

const SOL_IP = 0;
const IP_LOCAL_PORT_RANGE = 51; // Linux 6.3: u32, low port in the low 16 bits
/** The option's value, reused by every connect (no allocation on the trapped path). */
const RANGE = new Uint8Array(4);
const RANGE_VIEW = new DataView(RANGE.buffer);

/**
 * Makes the kernel pick the socket's local port from the app's source-port block, so that
 * the server's node can tell this app from the peer's (node IP, port). Ignored by the
 * kernel for a socket that is already bound.
 */
export function useSourceBlock(s: AppSession, fd: number): void {
  const b = s.app.srcPorts;
  if (!b) return;
  RANGE_VIEW.setUint32(0, ((b.last & 0xffff) << 16) | (b.first & 0xffff), true);
  const r = s.host.addon.setsockoptBytes(fd, SOL_IP, IP_LOCAL_PORT_RANGE, RANGE);
  if (r < 0) s.host.log.warn({ app: s.app.id, errno: -r }, "IP_LOCAL_PORT_RANGE failed (Linux 6.3 or later)");
}

export function handleConnect(s: AppSession, n: Notification): void {
  const len = n.uint(2);
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  let owned = true;
  try {
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    if (!isInet(domain)) return s.cont(n);
    if (len > SOCKADDR_MAX) return s.fail(n, E.EINVAL);
    const r = s.read(n, n.ptr(1), s.addrBuf, len);
    if (r < 0) return s.fail(n, -r);
    if (!s.idValid(n)) return;
    const proto = protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE));
    // An AF_INET6 UDP socket may connect to a sockaddr_in (ip6_datagram_connect); TCP may not.
    const d = decodeSockaddr(domain, s.addrBuf, len, proto === "udp");
    if (d === "unspec") return s.settle(n, disconnectUdp(s, dup, proto, a.connect(dup, s.addrBuf, len)));
    if (typeof d === "number") return s.fail(n, d);
    const local = hostName(s, dup, false);
    const bound = local ? s.host.sockets.binding(proto, local.ip, local.port) : undefined;
    const route = routeOf(s, proto, domain, d, clientAddress(s, bound, local, dialedOf(d, bound)), bound);
    if (typeof route === "number") return s.fail(n, route);
    if (bound?.loopback && !route.loopback && boundLoopbackRefuses(s, bound, route.dialed))
      return s.fail(n, E.EINVAL);
    if (route.remote) useSourceBlock(s, dup);
    const hostLen = encodeFor(s, domain, route.host);
    const flags = a.fcntl(dup, F_GETFL, 0);
    const blocking = proto === "tcp" && flags >= 0 && (flags & O_NONBLOCK) === 0;
    if (blocking) a.fcntl(dup, F_SETFL, flags | O_NONBLOCK);
    const c = a.connect(dup, s.outBuf, hostLen);
    if (blocking) a.fcntl(dup, F_SETFL, flags);
    if (c === 0 || c === -E.EINPROGRESS) connected(s, dup, domain, proto, route, bound);
    if (blocking && (c === -E.EINPROGRESS || c === -E.EALREADY)) {
      // On this host (loopback, the node's own address) the handshake is usually done by
      // the time connect() returns: answer at once, without a trip through the event loop.
      if (a.getpeername(dup, s.outBuf) >= 0) return s.respond(n, 0);
      owned = false;
      s.wait(n, dup, WRITABLE, () => {
        const err = a.getsockoptInt(dup, SOL_SOCKET, SO_ERROR);
        // A blocking connect that fails leaves the socket disconnected (its address reset),
        // as the kernel's own wait does (__inet_stream_connect → tcp_disconnect).
        if (err > 0) disconnect(s, dup);
        s.settle(n, err > 0 ? -err : Math.min(err, 0));
        return true;
      });
      return;
    }
    if (blocking && c < 0) disconnect(s, dup);
    s.settle(n, c);
  } finally {
    if (owned) a.close(dup);
  }
}

/**
 * A socket bound to 127.0.0.0/8 cannot reach beyond the host (ip_route_connect: EINVAL); its
 * own virtual IPs are this host. (A socket bound to ::1 sends its SYN away and waits: see
 * docs/errors.md.)
 */
export function boundLoopbackRefuses(s: AppSession, bound: Binding, dialed: SockAddr): boolean {
  const ip = dialed.ip.text;
  return ipOf(bound.vip).family === 4 && dialed.ip.family === 4 && !isLoopback(ip) && !s.app.ips.includes(ip);
}

const UNSPEC = new Uint8Array(16);

/** connect(AF_UNSPEC): dissolves the association, as connect(2) documents. */
function disconnect(s: AppSession, fd: number): number {
  return s.host.addon.connect(fd, UNSPEC, UNSPEC.length);
}

/** After connect(AF_UNSPEC) on a UDP socket: a server socket serves every peer again. */
function disconnectUdp(s: AppSession, fd: number, proto: Proto, result: number): number {
  if (result < 0 || proto !== "udp") return result;
  const local = hostName(s, fd, false);
  const b = local ? s.host.sockets.binding(proto, local.ip, local.port) : undefined;
  if (b?.connectedTo) {
    s.host.sockets.setConnected(b, null);
    publish(s, b);
    rerouteServed(s.host, b);
  }
  return result;
}

/**
 * The virtual destination a connect (or send) to d really dials: the unspecified address
 * means this host (ip_route_connect: the address the socket is bound to, else 127.0.0.1;
 * for `::`, ::1, or 127.0.0.1 for a socket bound to an IPv4-mapped address).
 */
export function dialedOf(d: SockAddr, bound: Binding | undefined): SockAddr {
  const text = d.ip.text;
  if (text !== "0.0.0.0" && text !== "::") return d;
  const boundV4 = bound !== undefined && !isUnspecified(bound.vip) && ipOf(bound.vip).family === 4;
  if (text === "0.0.0.0") return { ip: ipOf(boundV4 ? (bound as Binding).vip : "127.0.0.1"), port: d.port };
  return { ip: ipOf(boundV4 ? "127.0.0.1" : "::1"), port: d.port };
}

/**
 * The virtual address a client socket connects (or sends) from when it dials `to`: the
 * address it was bound to, else the source the kernel's routing would pick (the loopback
 * address for a loopback destination, else the app's virtual IP of the family); its port is
 * the virtual port it was bound to, else its host port (an ephemeral port).
 */
export function clientAddress(
  s: AppSession,
  bound: Binding | undefined,
  local: VAddr | null,
  to: SockAddr,
): VAddr {
  const port = bound ? bound.vport : (local?.port ?? 0);
  if (bound && !isUnspecified(bound.vip)) return { ip: bound.vip, port };
  const family = to.ip.family;
  if (isLoopback(to.ip.text)) return { ip: family === 4 ? "127.0.0.1" : "::1", port };
  return { ip: appIp(s.app, family), port };
}

/**
 * Where a connect (or a datagram) to virtual address d goes on the host, or the errno that
 * refuses it. from: the client's own virtual address (a UDP server socket connected to it
 * gets its datagrams first, as in the kernel's socket lookup); bound: the client socket's
 * own binding, if it has one.
 */
export function routeOf(
  s: AppSession,
  proto: Proto,
  domain: number,
  d: SockAddr,
  from?: VAddr,
  bound?: Binding,
): Route {
  const { host, app } = s;
  const dialed = dialedOf(d, bound);
  const ip = dialed.ip.text;
  if (isLoopback(ip)) return loopbackRoute(s, proto, dialed);
  // The resolver's well-known address: open to every app, whatever its labels.
  const dns = host.resolver;
  if (dns !== null && d.port === 53 && ip === dns.ip) {
    if (domain === AF_INET && ipOf(dns.hostIp).family === 6) return E.ECONNREFUSED;
    return { host: { ip: dns.hostIp, port: dns.hostPort }, loopback: false, dialed };
  }
  if (proto === "udp" && from && from.port !== 0) {
    const b = host.sockets.connectedTo(ip, d.port, from);
    if (b)
      return {
        host: { ip: hostIpFor(host, b, dialed.ip.family), port: b.hostPort },
        loopback: false,
        dialed,
      };
  }
  const look = host.table.resolve(proto, ip, d.port, app.labels);
  if (proto === "udp" && (look.kind === "no-backend" || look.kind === "not-virtual")) {
    const reply = replyRoute(s, ip, d.port, dialed);
    if (reply !== null) return reply;
  }
  switch (look.kind) {
    case "backend": {
      const svc = look.service;
      const remote = svc.node !== host.config.nodeName;
      // An --expose on 0.0.0.0 is bound to the wildcard: reach it on its node's IP.
      const hostIp = isLoopbackOrAny(svc.hostIp) && remote ? host.nodeIpOf(svc.node) : svc.hostIp;
      if (hostIp === null) return refusal(s, dialed);
      if (remote && isLoopback(hostIp)) return E.ENETUNREACH; // served on its node only (see binding.ts)
      return { host: { ip: hostIp, port: svc.hostPort }, loopback: false, remote, dialed };
    }
    case "no-backend":
      return refusal(s, dialed);
    case "denied":
      host.log.warn(
        { app: app.id, name: app.name, dst: `${ip}:${d.port}`, proto, backends: look.candidates },
        "connection denied by label policy",
      );
      return E.EACCES;
    case "not-virtual":
      if ((host.isLocalAddress(ip) || host.table.isNodeIp(ip)) && host.pool.contains(d.port)) {
        host.log.warn({ app: app.id, dst: `${ip}:${d.port}` }, "connection to a host pool port refused");
        return E.EACCES;
      }
      if (host.config.egress === "deny") {
        host.log.warn({ app: app.id, dst: `${ip}:${d.port}`, proto }, "egress denied (--egress deny)");
        return E.EACCES;
      }
      return { host: { ip, port: d.port }, loopback: false, dialed };
  }
}

/**
 * Nothing listens at d: the connect goes to the daemon's refusal port on the host's
 * loopback, where nothing ever listens either, so that the kernel refuses it exactly as it
 * would (RST: ECONNREFUSED now or through SO_ERROR; for UDP, ICMP port unreachable).
 */
function refusal(s: AppSession, dialed: SockAddr): Route {
  const ip = dialed.ip.family === 4 ? "127.0.0.1" : "::1";
  return { host: { ip, port: s.host.refusePort }, loopback: false, dialed };
}

/**
 * A datagram to a client's virtual ip:port (a UDP server answering whoever wrote to it):
 * the client socket's host address, if the two apps share a label. null: not a client.
 */
function replyRoute(s: AppSession, ip: string, port: number, dialed: SockAddr): Route | null {
  const found = s.host.sockets.hostOfSource("udp", ip, port);
  if (!found) return remoteReplyRoute(s, ip, port, dialed);
  const peer = s.host.table.getApp(found.source.appId);
  if (peer && peer.id !== s.app.id && !sharesLabel(s.app.labels, peer.labels)) {
    s.host.log.warn(
      { app: s.app.id, dst: `${ip}:${port}`, proto: "udp" },
      "datagram to a client denied by label policy",
    );
    return E.EACCES;
  }
  let host = found.host;
  // An autobound client socket listens on the wildcard: reach it on the node address of
  // the datagram's family.
  if (host.ip === "0.0.0.0" || host.ip === "::") {
    const v6 = host.ip === "::" && dialed.ip.family === 6;
    host = { ip: v6 ? (s.host.config.nodeIp6 ?? "::1") : s.host.config.nodeIp, port: host.port };
  }
  return { host, loopback: false, dialed };
}

/**
 * A datagram to a client on another node, by its virtual ip:port: the app with that IP
 * whose published source-port block holds the port, at its node's IP. null: none.
 */
function remoteReplyRoute(s: AppSession, ip: string, port: number, dialed: SockAddr): Route | null {
  const { host } = s;
  for (const peer of host.table.appsWithIp(ip)) {
    const b = peer.srcPorts;
    if (peer.node === host.config.nodeName || !b || port < b.first || port > b.last) continue;
    const nodeIp = host.nodeIpOf(peer.node);
    if (nodeIp === null) continue;
    if (!sharesLabel(s.app.labels, peer.labels)) {
      host.log.warn(
        { app: s.app.id, dst: `${ip}:${port}`, proto: "udp" },
        "datagram to a client denied by label policy",
      );
      return E.EACCES;
    }
    return { host: { ip: nodeIp, port }, loopback: false, remote: true, dialed };
  }
  return null;
}

/**
 * 127.0.0.0/8 and ::1 inside an app reach only the app's own sockets, picked as the
 * kernel's socket lookup picks them: one bound to exactly that address before one bound to
 * a wildcard that serves the family, an AF_INET socket before a dual-stack one for IPv4
 * (TCP: listening ones only). Nothing there: refused.
 */
function loopbackRoute(s: AppSession, proto: Proto, dialed: SockAddr): Route {
  const family = dialed.ip.family;
  let best: Binding | undefined;
  let bestScore = -1;
  for (const b of s.host.sockets.bindingsOn(s.app.id, proto, dialed.port)) {
    if (proto === "tcp" && !b.listening) continue;
    if (proto === "udp" && b.connectedTo !== null) continue;
    const exact = b.vip === dialed.ip.text;
    if (!exact && !(isUnspecified(b.vip) && servesFamily(b, family))) continue;
    const score = (exact ? 2 : 0) + (family === 4 && b.domain === AF_INET ? 1 : 0);
    if (score > bestScore) {
      best = b;
      bestScore = score;
    }
  }
  if (best)
    return { host: { ip: hostIpFor(s.host, best, family), port: best.hostPort }, loopback: true, dialed };
  // UDP: one of the app's own client sockets, answered where it sent from.
  const client =
    proto === "udp" ? s.host.sockets.hostOfSource("udp", dialed.ip.text, dialed.port) : undefined;
  if (client && client.source.appId === s.app.id) {
    const v6 = client.host.ip === "::" || ipOf(client.host.ip).family === 6;
    const ip = isUnspecified(client.host.ip) ? (family === 6 && v6 ? "::1" : "127.0.0.1") : client.host.ip;
    return { host: { ip, port: client.host.port }, loopback: true, dialed };
  }
  return refusal(s, dialed);
}

/**
 * Remembers what a connected socket stands for: which app (and virtual destination) this
 * host connection belongs to; a UDP server socket connected to a client serves only it.
 */
function connected(
  s: AppSession,
  fd: number,
  domain: number,
  proto: Proto,
  route: Exclude<Route, number>,
  bound: Binding | undefined,
): void {
  const source = recordSource(s, fd, proto, route.dialed, bound);
  if (proto !== "udp") return;
  if (bound && bound.appId === s.app.id && bound.connectedTo === null) {
    unpublish(s.host, bound);
    s.host.sockets.setConnected(bound, { ip: route.dialed.ip.text, port: route.dialed.port });
    rerouteServed(s.host, bound);
  }
  if (source && s.host.addon.fstat(fd, fstatBuf) === 0) {
    s.host.sockets.udpClients.add({
      appId: s.app.id,
      inode: fstatBuf[1] as number,
      domain,
      host: source.host,
      local: source.local,
      dialed: { ip: route.dialed.ip.text, port: route.dialed.port },
      target: route.host,
    });
  }
}

const fstatBuf = new Float64Array(3);

/** Records the client socket at fd's host address: its virtual local address and what it dialed. */
export function recordSource(
  s: AppSession,
  fd: number,
  proto: Proto,
  dialed: SockAddr,
  bound?: Binding,
): { host: VAddr; local: VAddr } | null {
  const host = hostName(s, fd, false);
  if (!host) return null;
  const local = clientAddress(s, bound, host, dialed);
  s.host.sockets.addSource(proto, host.ip, host.port, {
    appId: s.app.id,
    local,
    peer: { ip: dialed.ip.text, port: dialed.port },
  });
  return { host, local };
}
