// Virtual binds: an app binds its virtual ip:port (or a wildcard, or its private loopback);
// the daemon binds the app's host socket to the node IP and a port from the pool (or the
// --expose host port) and records what it stands for. Shared by bind and listen (an
// unbound listener is bound first, as the kernel would autobind it).

import { type IpAddr, isLoopback, isUnspecified } from "../net/ip.js";
import { openSocketInodes } from "../net/proc-net.js";
import { AF_INET6 } from "../net/sockaddr.js";
import type { Binding } from "../table/sockets.js";
import { type Proto, type Service, serviceId } from "../table/types.js";
import {
  E,
  encodeFor,
  hostBindIp,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  ipOf,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOL_SOCKET,
} from "./addresses.js";
import type { TrapHost } from "./host.js";
import { mayTakePort } from "./limits.js";
import type { AppSession } from "./session.js";

const POOL_TRIES = 32;

/** Binds host socket fd for the app's virtual address vip:vport; returns 0 or -errno. */
export function bindVirtual(
  s: AppSession,
  fd: number,
  domain: number,
  proto: Proto,
  inode: number,
  vip: IpAddr,
  vport: number,
): number {
  const { app, host } = s;
  const a = host.addon;
  const wildcard = isUnspecified(vip.text);
  const loopback = !wildcard && isLoopback(vip.text);
  if (!wildcard && !loopback && !app.ips.includes(vip.text)) return -E.EADDRNOTAVAIL;
  const current = s.host.addon.getsockname(fd, s.outBuf);
  if (current >= 4 && ((s.outBuf[2] as number) !== 0 || (s.outBuf[3] as number) !== 0)) return -E.EINVAL;
  const reusePort = a.getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT) === 1;
  const reuseAddr = a.getsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR) === 1;
  const v6only = domain === AF_INET6 && a.getsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY) === 1;
  if (vport !== 0 && conflicts(s, proto, vip.text, vport, reusePort, reuseAddr)) return -E.EADDRINUSE;

  if (!mayTakePort(s)) return -E.EADDRINUSE;
  const rule = loopback ? undefined : app.expose.find((e) => e.appPort === vport);
  // An --expose on another node's IP: this node serves it on its own node IP, and the
  // ingress gateway of that node forwards to it.
  const ruleIp =
    rule?.hostIp && !isUnspecified(rule.hostIp) && !host.isLocalAddress(rule.hostIp) ? null : rule?.hostIp;
  const hostIp = rule ? (ruleIp ?? host.config.nodeIp) : hostBindIp(s, domain, v6only, loopback);
  if (hostIp === null) {
    host.log.warn({ app: app.id }, "IPv6-only socket but the host has no IPv6 node address (--node-ip)");
    return -E.EADDRNOTAVAIL;
  }
  let hostPort = 0;
  if (rule) {
    host.releaseProxyPort(rule.hostPort);
    const r = a.bind(fd, s.outBuf, encodeFor(s, domain, { ip: hostIp, port: rule.hostPort }));
    if (r < 0) return r;
    hostPort = rule.hostPort;
  } else {
    for (let i = 0; i < POOL_TRIES && hostPort === 0; i++) {
      const port = host.pool.tryTake();
      if (port === null) {
        host.log.warn({ app: app.id }, "the host port pool is exhausted; widen --ports");
        return -E.EADDRINUSE;
      }
      const r = a.bind(fd, s.outBuf, encodeFor(s, domain, { ip: hostIp, port }));
      if (r === 0) hostPort = port;
      else {
        host.pool.release(port);
        if (r !== -E.EADDRINUSE) return r;
      }
    }
    if (hostPort === 0) return -E.EADDRINUSE;
  }
  const binding: Binding = {
    appId: app.id,
    proto,
    inode,
    vip: vip.text,
    vport: vport === 0 ? hostPort : vport,
    hostIp,
    hostPort,
    domain,
    reusePort,
    reuseAddr,
    loopback,
    v6only,
    exposed: rule !== undefined,
    listening: false,
    serviceIds: [],
  };
  host.sockets.addBinding(binding);
  if (proto === "udp") publish(s, binding);
  return 0;
}

/** True when a live socket of the same app already holds an overlapping address. */
function conflicts(
  s: AppSession,
  proto: Proto,
  vip: string,
  vport: number,
  reusePort: boolean,
  reuseAddr: boolean,
): boolean {
  const same = s.host.sockets
    .bindingsOn(s.app.id, proto, vport)
    .filter((b) => b.vip === vip || isUnspecified(b.vip) || isUnspecified(vip));
  if (same.length === 0) return false;
  const live = openSocketInodes(s.pids());
  let conflict = false;
  for (const b of same) {
    if (!live.has(b.inode)) forget(s, b);
    else if (!shareable(proto, b, reusePort, reuseAddr)) conflict = true;
  }
  return conflict;
}

/**
 * As the kernel decides: SO_REUSEPORT on both; for UDP, SO_REUSEADDR on both (socat's
 * fork mode, multicast receivers); for TCP, SO_REUSEADDR on both while the other socket
 * does not listen.
 */
function shareable(proto: Proto, b: Binding, reusePort: boolean, reuseAddr: boolean): boolean {
  if (reusePort && b.reusePort) return true;
  if (!(reuseAddr && b.reuseAddr)) return false;
  return proto === "udp" || !b.listening;
}

/** Withdraws a binding whose socket is gone, with its services and pool port. */
export function forget(s: AppSession, b: Binding): void {
  withdrawBinding(s.host, b);
}

/** Withdraws a binding: its services, its record, its pool port. */
export function withdrawBinding(host: TrapHost, b: Binding): void {
  for (const id of b.serviceIds) host.withdrawService(id);
  host.sockets.removeBinding(b);
  if (!b.exposed) host.pool.release(b.hostPort);
}

/** Registers the services a bound (UDP) or listening (TCP) socket provides. */
export function publish(s: AppSession, b: Binding): void {
  if (b.loopback || b.serviceIds.length > 0) return;
  const { app, host } = s;
  let vips: string[];
  if (isUnspecified(b.vip)) {
    vips = app.ips.filter((ip) => {
      const fam = ipOf(ip).family;
      return b.domain === AF_INET6 ? fam === 6 || !b.v6only : fam === 4;
    });
  } else {
    vips = [b.vip];
  }
  const now = new Date().toISOString();
  for (const vip of vips) {
    const svc: Service = {
      id: serviceId(b.proto, b.hostIp, b.hostPort, vip, b.vport),
      appId: app.id,
      name: app.name,
      proto: b.proto,
      vip,
      vport: b.vport,
      hostIp: b.hostIp,
      hostPort: b.hostPort,
      labels: app.labels,
      lb: app.lb,
      node: host.config.nodeName,
      exposed: b.exposed,
      createdAt: now,
    };
    host.registerService(svc);
    b.serviceIds.push(svc.id);
  }
}
