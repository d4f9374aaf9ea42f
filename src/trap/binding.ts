// Virtual binds: an app binds a virtual address (its virtual IP, a wildcard, its private
// loopback); the daemon binds the app's host socket to a host address and a port from the
// pool (or an --expose host port) and records what it stands for. Shared by bind and listen
// (an unbound listener is bound first, as the kernel would autobind it).
//
// The kernel decides what the app's bind gives: the daemon binds a shadow socket of the
// same family, type and bind options to the app's own address in the app's shadow network
// namespace (shadow.ts), where the app's virtual addresses are real. Its result is the
// app's answer (EADDRINUSE across families and IPV6_V6ONLY, EADDRNOTAVAIL, EACCES for a
// privileged port, the port that port 0 gets), and the shadow socket is kept, bound, for as
// long as the app's socket is, so that later binds conflict with it as they would. bind(2),
// ip(7), ipv6(7), socket(7) (SO_REUSEADDR, SO_REUSEPORT).

import { type IpAddr, isLoopback, isUnspecified } from "../net/ip.js";
import { openSocketInodes } from "../net/proc-net.js";
import { AF_INET6 } from "../net/sockaddr.js";
import type { Binding } from "../table/sockets.js";
import { type Proto, type Service, serviceId } from "../table/types.js";
import {
  E,
  encodeFor,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  ipOf,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOL_SOCKET,
} from "./addresses.js";
import { keepReceiveTimes, socketCookie } from "./admission.js";
import type { TrapHost } from "./host.js";
import { mayTakePort } from "./limits.js";
import { rerouteUdpClients } from "./reroute.js";
import type { AppSession } from "./session.js";
import { closeShadow, shadowBind, shadowListen } from "./shadow.js";

const POOL_TRIES = 32;

/**
 * Binds host socket fd for the app's bind of `addr` (its own copy of the app's sockaddr,
 * addrLen bytes, already decoded as vip:vport); returns 0 or -errno as bind(2) would.
 */
export function bindVirtual(
  s: AppSession,
  tid: number,
  fd: number,
  domain: number,
  proto: Proto,
  inode: number,
  addr: Uint8Array,
  addrLen: number,
  vip: IpAddr,
): number {
  const { app, host } = s;
  const a = host.addon;
  const current = a.getsockname(fd, s.outBuf);
  const bound = current >= 4 && ((s.outBuf[2] as number) !== 0 || (s.outBuf[3] as number) !== 0);
  const shadow = shadowBind(s, tid, fd, domain, proto, addr, addrLen, bound, (port) =>
    pruneStale(s, proto, port),
  );
  if (shadow.error !== 0) return -shadow.error;
  if (bound) return -E.EINVAL; // (shadowBind checked the address only, as the kernel does first)
  const vport = shadow.port;
  const wildcard = isUnspecified(vip.text);
  const loopback = !wildcard && isLoopback(vip.text);
  const v6only = domain === AF_INET6 && a.getsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY) === 1;
  if (!mayTakePort(s)) {
    closeShadow(s.host, shadow.fd);
    return -E.EADDRINUSE;
  }
  const rule = loopback ? undefined : app.expose.find((e) => e.appPort === vport);
  // An --expose on another node's IP: this node serves it on its own node IP, and the
  // ingress gateway of that node forwards to it.
  const ruleIp =
    rule?.hostIp && !isUnspecified(rule.hostIp) && !host.isLocalAddress(rule.hostIp) ? null : rule?.hostIp;
  const hostIp = rule ? (ruleIp ?? host.config.nodeIp) : hostAddress(s, domain, v6only, vip);
  // The bpf datapath's hooks learn what the socket stands for before it is bound.
  const m = host.bpf?.binding(fd, app, vip.text, vport, loopback) ?? 0;
  if (m < 0) {
    closeShadow(s.host, shadow.fd);
    return m;
  }
  // bpf: the app's closed sockets on this virtual port give their host port back first
  // (its connected UDP clients' kernel connections go to it: preferredPort).
  if (host.bpf && host.sockets.bindingsOn(app.id, proto, vport).length > 0) pruneStale(s, proto, vport);
  const sharing = shareable(s, proto, vport, vip.text, domain, v6only, hostIp, rule !== undefined);
  let hostPort = 0;
  if (rule) {
    host.releaseProxyPort(rule.hostPort);
    hostPort = a.bind(fd, s.outBuf, encodeFor(s, domain, { ip: hostIp, port: rule.hostPort }));
    if (hostPort === 0) hostPort = rule.hostPort;
  } else {
    const joined =
      sharing && a.bind(fd, s.outBuf, encodeFor(s, domain, { ip: hostIp, port: sharing.hostPort })) === 0;
    const prefer = host.bpf?.preferredPort(app.id, proto, vport, hostIp) ?? null;
    hostPort = joined ? sharing.hostPort : bindPoolPort(s, fd, domain, hostIp, prefer);
  }
  if (hostPort < 0) {
    closeShadow(s.host, shadow.fd);
    host.bpf?.unbound(fd, app);
    return hostPort;
  }
  const binding: Binding = {
    appId: app.id,
    proto,
    inode,
    vip: vip.text,
    vport,
    hostIp,
    hostPort,
    domain,
    reusePort: a.getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT) === 1,
    reuseAddr: a.getsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR) === 1,
    loopback,
    v6only,
    exposed: rule !== undefined,
    listening: false,
    serviceIds: [],
    shadowFd: shadow.fd,
    connectedTo: null,
    cookie: host.bpf ? socketCookie(host, fd) : 0,
  };
  host.sockets.addBinding(binding, sharing !== undefined && sharing.hostPort === hostPort);
  if (proto === "udp") {
    keepReceiveTimes(host, fd); // for admission of datagrams whose sender is gone (admission.ts)
    publish(s, binding);
    rerouteServed(host, binding);
  }
  return 0;
}

/**
 * bpf datapath, UDP: a live socket of the app bound to the same virtual address (same
 * family, IPV6_V6ONLY and --expose rule) whose host port this socket joins, so that the
 * host's kernel chooses among them as it would among the virtual sockets (the last bound
 * under SO_REUSEADDR, a connected one for its peer, its hash in an SO_REUSEPORT group);
 * the shadow's bind already judged that the app may bind it. undefined: none.
 */
function shareable(
  s: AppSession,
  proto: Proto,
  vport: number,
  vip: string,
  domain: number,
  v6only: boolean,
  hostIp: string,
  exposed: boolean,
): Binding | undefined {
  if (!s.host.bpf || proto !== "udp") return undefined;
  return s.host.sockets
    .bindingsOn(s.app.id, proto, vport)
    .find(
      (b) =>
        b.vip === vip &&
        b.domain === domain &&
        b.v6only === v6only &&
        b.hostIp === hostIp &&
        b.exposed === exposed,
    );
}

/** Binds fd to hostIp and a free pool port (prefer first, when free); the port, or -errno. */
function bindPoolPort(
  s: AppSession,
  fd: number,
  domain: number,
  hostIp: string,
  prefer: number | null,
): number {
  const { host } = s;
  if (prefer !== null && host.pool.tryClaim(prefer)) {
    if (host.addon.bind(fd, s.outBuf, encodeFor(s, domain, { ip: hostIp, port: prefer })) === 0)
      return prefer;
    host.pool.release(prefer);
  }
  for (let i = 0; i < POOL_TRIES; i++) {
    const port = host.pool.tryTake();
    if (port === null) {
      host.log.warn({ app: s.app.id }, "the host port pool is exhausted; widen --ports");
      return -E.EADDRINUSE;
    }
    const r = host.addon.bind(fd, s.outBuf, encodeFor(s, domain, { ip: hostIp, port }));
    if (r === 0) return port;
    host.pool.release(port);
    if (r !== -E.EADDRINUSE) return r;
  }
  return -E.EADDRINUSE;
}

/**
 * The host address a socket bound to virtual address vip is bound to, so that it can be
 * reached over exactly the families it serves: an IPv4 (or IPv4-mapped) address, or the
 * IPv4 wildcard, on the node's IPv4 address (127.0.0.1 for loopback); an IPv6 address, or
 * the wildcard of an IPV6_V6ONLY socket, on the node's IPv6 address (::1 for loopback, and
 * on a node without one: such a socket serves this node's apps only); the wildcard of a
 * dual-stack socket on the host's wildcard `::`, which serves both.
 */
export function hostAddress(s: AppSession, domain: number, v6only: boolean, vip: IpAddr): string {
  const cfg = s.host.config;
  if (vip.text === "::") return v6only ? (cfg.nodeIp6 ?? "::1") : domain === AF_INET6 ? "::" : cfg.nodeIp;
  if (vip.family === 4) return isLoopback(vip.text) ? "127.0.0.1" : cfg.nodeIp;
  return vip.text === "::1" ? "::1" : (cfg.nodeIp6 ?? "::1");
}

/** The address families a binding serves (what its virtual address accepts). */
export function servesFamily(b: Binding, family: 4 | 6): boolean {
  if (b.vip === "::") return family === 6 || (b.domain === AF_INET6 && !b.v6only);
  return ipOf(b.vip).family === family;
}

/** Where a binding is reached over IPv4 or IPv6 (a wildcard host address resolved). */
export function hostIpFor(host: TrapHost, b: Binding, family: 4 | 6): string {
  if (b.hostIp !== "::") return b.hostIp;
  return family === 4 ? host.config.nodeIp : (host.config.nodeIp6 ?? "::1");
}

/**
 * listen(2) of a bound socket's shadow (the kernel re-checks the port against other
 * listeners: two SO_REUSEADDR sockets on one port may be bound, not both listen): 0 or
 * -errno. Stale bindings of the app on the port are withdrawn and the listen retried once.
 */
export function listenVirtual(s: AppSession, fd: number, b: Binding, backlog: number): number {
  let r = shadowListen(s, fd, b, backlog);
  if (r === -E.EADDRINUSE && pruneStale(s, b.proto, b.vport)) r = shadowListen(s, fd, b, backlog);
  return r;
}

/**
 * Withdraws the app's bindings on virtual port vport whose sockets the app no longer holds
 * (closed since, and not yet noticed by the reconciler); true if any was.
 */
export function pruneStale(s: AppSession, proto: Proto, vport: number): boolean {
  const same = s.host.sockets.bindingsOn(s.app.id, proto, vport);
  if (same.length === 0) return false;
  const live = openSocketInodes(s.pids());
  let pruned = false;
  for (const b of same) {
    if (live.has(b.inode)) continue;
    withdrawBinding(s.host, b);
    pruned = true;
  }
  return pruned;
}

/**
 * Withdraws a binding: its services, its record, its shadow socket, its pool port. Where
 * other sockets of the app share its host port, they keep the port and the services.
 */
export function withdrawBinding(host: TrapHost, b: Binding): void {
  unpublish(host, b);
  const last = host.sockets.sharersOf(b).length === 0;
  host.sockets.removeBinding(b);
  closeShadow(host, b.shadowFd);
  b.shadowFd = -1;
  if (!last) return;
  host.bpf?.withdrawn(b);
  if (!b.exposed) host.pool.release(b.hostPort);
  if (b.proto === "udp") rerouteServed(host, b);
}

/**
 * Re-routes the connected UDP clients of every virtual address a UDP binding serves (it came,
 * went, or started or stopped serving every peer): see reroute.ts.
 */
export function rerouteServed(host: TrapHost, b: Binding): void {
  if (host.sockets.udpClients.size === 0) return;
  const app = host.table.getApp(b.appId);
  const ips = isUnspecified(b.vip)
    ? [...(app?.ips ?? []), "127.0.0.1", "::1"].filter((ip) => servesFamily(b, ipOf(ip).family))
    : [b.vip];
  for (const ip of ips) rerouteUdpClients(host, ip, b.vport);
}

/** Registers the services a bound (UDP) or listening (TCP) socket provides. */
export function publish(s: AppSession, b: Binding): void {
  s.host.bpf?.served(b); // the app's private loopback, for the bpf datapath's hooks
  if (b.loopback || b.serviceIds.length > 0 || b.connectedTo !== null) return;
  // Sockets that share a host port share its services: one of them holds them.
  if (s.host.sockets.sharersOf(b).some((x) => x.serviceIds.length > 0)) return;
  const { app, host } = s;
  const vips = isUnspecified(b.vip) ? app.ips.filter((ip) => servesFamily(b, ipOf(ip).family)) : [b.vip];
  const now = new Date().toISOString();
  for (const vip of vips) {
    const hostIp = hostIpFor(host, b, ipOf(vip).family);
    const svc: Service = {
      id: serviceId(b.proto, hostIp, b.hostPort, vip, b.vport),
      appId: app.id,
      name: app.name,
      proto: b.proto,
      vip,
      vport: b.vport,
      hostIp,
      hostPort: b.hostPort,
      labels: app.labels,
      lb: app.lb,
      node: host.config.nodeName,
      exposed: b.exposed,
      wildcard: isUnspecified(b.vip),
      reusePort: b.reusePort,
      createdAt: now,
    };
    host.registerService(svc);
    b.serviceIds.push(svc.id);
  }
}

/**
 * Withdraws a binding's services but keeps the binding (a UDP socket that connected). Where
 * another socket that shares its host port still serves every peer, that one takes them.
 */
export function unpublish(host: TrapHost, b: Binding): void {
  const heir =
    b.serviceIds.length > 0 ? host.sockets.sharersOf(b).find((x) => x.connectedTo === null) : undefined;
  if (heir) heir.serviceIds = b.serviceIds;
  else for (const id of b.serviceIds) host.withdrawService(id);
  b.serviceIds = [];
}
