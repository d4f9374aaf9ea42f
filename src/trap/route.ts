// Where a connect or a datagram to a virtual address goes on the host (routeOf), as the
// kernel's routing and socket lookup would on a host where the virtual addresses were real:
// a virtual ip:port goes through label policy and load balancing to a backend's host
// ip:port; loopback reaches only the app's own sockets (the most specific first); a UDP
// datagram to a client's virtual address goes back to that client; nothing there is refused
// by the kernel itself (the refusal port); anything else is egress (allowed or refused by
// --egress, and never to this host's pool ports). Pure lookups on the table and registry.

import { isLoopback, isUnspecified } from "../net/ip.js";
import { AF_INET, type SockAddr } from "../net/sockaddr.js";
import { sharesLabel } from "../table/policy.js";
import type { Binding, VAddr } from "../table/sockets.js";
import { flowHash } from "../table/table.js";
import type { Proto } from "../table/types.js";
import { appIp, E, ipOf, isLoopbackOrAny } from "./addresses.js";
import { hostIpFor, servesFamily } from "./binding.js";
import type { AppSession } from "./session.js";

/**
 * Where a connect goes on the host, or the errno that refuses it. remote: the backend runs
 * on another node (the connection then leaves from the app's source-port block).
 */
export type Route =
  | {
      host: VAddr;
      loopback: boolean;
      remote?: boolean;
      dialed: SockAddr;
      /**
       * A datagram the kernel would deliver to no socket: the client it is for is connected
       * to another peer. It is dropped (the send still succeeds, as in the kernel).
       */
      drop?: boolean;
    }
  | number;

/**
 * A socket bound to loopback cannot reach beyond the host (its own virtual IPs are the
 * host): bound to 127.0.0.0/8, EINVAL (ip_route_connect). Bound to ::1, the kernel sends a
 * TCP SYN from ::1 that no peer answers, and the connect waits until it times out: sockswitch
 * says ENETUNREACH at once (docs/errors.md, documented differences); UDP goes. 0: it may.
 */
export function boundLoopbackError(s: AppSession, proto: Proto, bound: Binding, dialed: SockAddr): number {
  const ip = dialed.ip.text;
  const family = ipOf(bound.vip).family;
  if (family !== dialed.ip.family || isLoopback(ip) || s.app.ips.includes(ip)) return 0;
  if (family === 4) return E.EINVAL;
  return proto === "tcp" ? E.ENETUNREACH : 0;
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
  if (isLoopback(ip)) return loopbackRoute(s, proto, dialed, from);
  // The resolver's well-known address: open to every app, whatever its labels.
  const dns = host.resolver;
  if (dns !== null && d.port === 53 && ip === dns.ip) {
    if (domain === AF_INET && ipOf(dns.hostIp).family === 6) return E.ECONNREFUSED;
    return { host: { ip: dns.hostIp, port: dns.hostPort }, loopback: false, dialed };
  }
  // An app with no virtual IP of the destination's family has no route to it (on a host
  // where the virtual addresses were real). Egress and the resolver are not held to this:
  // docs/errors.md.
  if (host.table.isVirtual(ip) && !app.ips.some((a) => ipOf(a).family === dialed.ip.family))
    return E.ENETUNREACH;
  if (proto === "udp" && from && from.port !== 0) {
    const b = host.sockets.connectedTo(ip, d.port, from);
    if (b)
      return {
        host: { ip: hostIpFor(host, b, dialed.ip.family), port: b.hostPort },
        loopback: false,
        dialed,
      };
  }
  const look = host.table.resolve(proto, ip, d.port, app.labels, from ? `${from.ip}|${from.port}` : "");
  if (proto === "udp" && (look.kind === "no-backend" || look.kind === "not-virtual")) {
    const reply = replyRoute(s, ip, d.port, dialed, from);
    if (reply !== null) return reply;
  }
  switch (look.kind) {
    case "backend": {
      const svc = look.service;
      const remote = svc.node !== host.config.nodeName;
      // An --expose on 0.0.0.0 is bound to the wildcard: reach it on its node's IP.
      const hostIp = isLoopbackOrAny(svc.hostIp) && remote ? host.nodeIpOf(svc.node) : svc.hostIp;
      if (hostIp === null) return refusal(s, dialed);
      if (remote && isLoopback(hostIp)) return unreachable(s, svc.id, `${ip}:${d.port}`, svc.node);
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

const warned = new Set<string>();

/**
 * A service that only its own node can reach: an IPv6 virtual address served by a node
 * without an IPv6 node address (--node-ip) is bound to that node's ::1. The kernel's answer
 * for an address with no route: ENETUNREACH; logged once per service.
 */
function unreachable(s: AppSession, serviceId: string, dst: string, node: string): number {
  if (!warned.has(serviceId)) {
    if (warned.size >= 1024) warned.clear();
    warned.add(serviceId);
    s.host.log.warn(
      { app: s.app.id, dst, node },
      "the service's node has no IPv6 node address (--node-ip), so only apps on that node reach it; answered ENETUNREACH",
    );
  }
  return E.ENETUNREACH;
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
function replyRoute(s: AppSession, ip: string, port: number, dialed: SockAddr, from?: VAddr): Route | null {
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
  return { host, loopback: false, dialed, drop: notItsPeer(s, found.host, from) };
}

/**
 * True when the client socket at host address `client` is connected to a virtual peer other
 * than `from`: a connected UDP socket receives from its peer only (udp(7)).
 */
function notItsPeer(s: AppSession, client: VAddr, from?: VAddr): boolean {
  const c = s.host.sockets.udpClients.at(client);
  return c !== undefined && from !== undefined && (c.dialed.ip !== from.ip || c.dialed.port !== from.port);
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
function loopbackRoute(s: AppSession, proto: Proto, dialed: SockAddr, from?: VAddr): Route {
  const family = dialed.ip.family;
  let best: Binding[] = [];
  let bestScore = -1;
  for (const b of s.host.sockets.bindingsOn(s.app.id, proto, dialed.port)) {
    if (proto === "tcp" && !b.listening) continue;
    if (proto === "udp" && b.connectedTo !== null) continue;
    const exact = b.vip === dialed.ip.text;
    if (!exact && !(isUnspecified(b.vip) && servesFamily(b, family))) continue;
    const score = (exact ? 2 : 0) + (family === 4 && b.domain === AF_INET ? 1 : 0);
    if (score > bestScore) {
      best = [b];
      bestScore = score;
    } else if (score === bestScore) best.push(b);
  }
  const pick = best.length > 1 && proto === "udp" ? chooseSocket(best, from) : best[0];
  if (pick)
    return { host: { ip: hostIpFor(s.host, pick, family), port: pick.hostPort }, loopback: true, dialed };
  // UDP: one of the app's own client sockets, answered where it sent from.
  const client =
    proto === "udp" ? s.host.sockets.hostOfSource("udp", dialed.ip.text, dialed.port) : undefined;
  if (client && client.source.appId === s.app.id) {
    const v6 = client.host.ip === "::" || ipOf(client.host.ip).family === 6;
    const ip = isUnspecified(client.host.ip) ? (family === 6 && v6 ? "::1" : "127.0.0.1") : client.host.ip;
    return {
      host: { ip, port: client.host.port },
      loopback: true,
      dialed,
      drop: notItsPeer(s, client.host, from),
    };
  }
  return refusal(s, dialed);
}

/** Among equally good UDP sockets, the one the kernel's lookup delivers to (see table.ts). */
function chooseSocket(bs: Binding[], from?: VAddr): Binding | undefined {
  const group = bs.filter((b) => b.reusePort);
  if (group.length > 1) return group[flowHash(from ? `${from.ip}|${from.port}` : "") % group.length];
  return bs[bs.length - 1];
}
