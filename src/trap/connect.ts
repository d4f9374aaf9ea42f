// connect(2). For AF_INET/AF_INET6 the destination is looked up: a virtual ip:port goes
// through label policy and load balancing to a backend's host ip:port; 127.0.0.1/::1 reach
// only the app's own listeners; anything else is egress (allowed or refused by --egress,
// and never to this host's pool ports). The daemon connects its duplicate of the app's
// socket with its own copy of the address. A blocking socket is answered when the
// connection completes, without blocking the daemon: it is switched to non-blocking for the
// connect() alone and then watched for writability. UNIX sockets are left to the kernel.

import { AF_INET, decodeSockaddr, SOCKADDR_MAX, type SockAddr } from "../net/sockaddr.js";
import { sharesLabel } from "../table/policy.js";
import type { VAddr } from "../table/sockets.js";
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
import type { Notification } from "./notification.js";
import { type AppSession, WRITABLE } from "./session.js";
import { useSourceBlock } from "./source-block.js";

/**
 * Where a connect goes on the host, or the errno that refuses it. remote: the backend runs
 * on another node (the connection then leaves from the app's source-port block).
 */
export type Route = { host: VAddr; loopback: boolean; remote?: boolean } | number;

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
    if (d === "unspec") return s.settle(n, a.connect(dup, s.addrBuf, len));
    if (typeof d === "number") return s.fail(n, d);
    const route = routeOf(s, proto, domain, d);
    if (typeof route === "number") return s.fail(n, route);
    if (route.remote) {
      const b = useSourceBlock(s, dup, domain);
      if (b < 0) return s.fail(n, -b);
    }
    const hostLen = encodeFor(s, domain, route.host);
    const flags = a.fcntl(dup, F_GETFL, 0);
    const blocking = proto === "tcp" && flags >= 0 && (flags & O_NONBLOCK) === 0;
    if (blocking) a.fcntl(dup, F_SETFL, flags | O_NONBLOCK);
    const c = a.connect(dup, s.outBuf, hostLen);
    if (blocking) a.fcntl(dup, F_SETFL, flags);
    if (c === 0 || c === -E.EINPROGRESS) recordSource(s, dup, proto, d, route.loopback);
    if (blocking && (c === -E.EINPROGRESS || c === -E.EALREADY)) {
      // On this host (loopback, the node's own address) the handshake is usually done by
      // the time connect() returns: answer at once, without a trip through the event loop.
      if (a.getpeername(dup, s.outBuf) >= 0) return s.respond(n, 0);
      owned = false;
      s.wait(n, dup, WRITABLE, () => {
        const err = a.getsockoptInt(dup, SOL_SOCKET, SO_ERROR);
        s.settle(n, err > 0 ? -err : Math.min(err, 0));
        return true;
      });
      return;
    }
    s.settle(n, c);
  } finally {
    if (owned) a.close(dup);
  }
}

export function routeOf(s: AppSession, proto: Proto, domain: number, d: SockAddr, fromIp?: string): Route {
  const { host, app } = s;
  const ip = d.ip.text;
  if (isLoopbackOrAny(ip)) return loopbackRoute(s, proto, domain, d);
  // The resolver's well-known address: open to every app, whatever its labels.
  const dns = host.resolver;
  if (dns !== null && d.port === 53 && ip === dns.ip) {
    if (domain === AF_INET && ipOf(dns.hostIp).family === 6) return E.ECONNREFUSED;
    return { host: { ip: dns.hostIp, port: dns.hostPort }, loopback: false };
  }
  const look = host.table.resolve(proto, ip, d.port, app.labels);
  if (proto === "udp" && (look.kind === "no-backend" || look.kind === "not-virtual")) {
    const reply = replyRoute(s, ip, d.port, fromIp);
    if (reply !== null) return reply;
  }
  switch (look.kind) {
    case "backend": {
      const svc = look.service;
      const remote = svc.node !== host.config.nodeName;
      // An --expose on 0.0.0.0 is bound to the wildcard: reach it on its node's IP.
      const hostIp = isLoopbackOrAny(svc.hostIp) ? host.nodeIpOf(svc.node) : svc.hostIp;
      if (hostIp === null) return E.ECONNREFUSED;
      if (domain === AF_INET && ipOf(hostIp).family === 6) return E.ECONNREFUSED;
      return { host: { ip: hostIp, port: svc.hostPort }, loopback: false, remote };
    }
    case "no-backend":
      return E.ECONNREFUSED;
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
      return { host: { ip, port: d.port }, loopback: false };
  }
}

/**
 * A datagram to a client's virtual ip:port (a UDP server answering whoever wrote to it):
 * the client socket's host address, if the two apps share a label. null: not a client.
 */
function replyRoute(s: AppSession, ip: string, port: number, fromIp?: string): Route | null {
  const found = s.host.sockets.hostOfSource("udp", ip, port);
  if (!found) return remoteReplyRoute(s, ip, port);
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
  // the sending socket's family (a socket bound to an IPv4 host address cannot reach ::1).
  if (host.ip === "0.0.0.0" || host.ip === "::") {
    const fromV6 =
      fromIp !== undefined && fromIp !== "0.0.0.0" && fromIp !== "::"
        ? ipOf(fromIp).family === 6
        : ipOf(ip).family === 6;
    const v6 = host.ip === "::" && fromV6 && s.host.config.nodeIp6 !== null;
    host = { ip: v6 ? (s.host.config.nodeIp6 as string) : s.host.config.nodeIp, port: host.port };
  }
  return { host, loopback: false };
}

/**
 * A datagram to a client on another node, by its virtual ip:port: the app with that IP
 * whose published source-port block holds the port, at its node's IP. null: none.
 */
function remoteReplyRoute(s: AppSession, ip: string, port: number): Route | null {
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
    return { host: { ip: nodeIp, port }, loopback: false, remote: true };
  }
  return null;
}

/** 127.0.0.1/::1 (and 0.0.0.0) inside an app: only the app's own listeners answer. */
function loopbackRoute(s: AppSession, proto: Proto, domain: number, d: SockAddr): Route {
  const v4 = d.ip.family === 4;
  for (const b of s.host.sockets.bindingsOn(s.app.id, proto, d.port)) {
    if (proto === "tcp" && !b.listening) continue;
    const any = b.vip === "0.0.0.0" || b.vip === "::";
    const fits = b.loopback || any;
    if (!fits) continue;
    if (v4 && b.v6only) continue;
    if (!v4 && ipOf(b.hostIp).family === 4 && domain === AF_INET) continue;
    return { host: { ip: b.hostIp, port: b.hostPort }, loopback: true };
  }
  return E.ECONNREFUSED;
}

/** Remembers which app (and virtual destination) this host connection belongs to. */
export function recordSource(s: AppSession, fd: number, proto: Proto, d: SockAddr, loopback: boolean): void {
  const local = hostName(s, fd, false);
  if (!local) return;
  const family = d.ip.family;
  const ip = loopback ? (family === 4 ? "127.0.0.1" : "::1") : appIp(s.app, family);
  s.host.sockets.addSource(proto, local.ip, local.port, {
    appId: s.app.id,
    local: { ip, port: local.port },
    peer: { ip: d.ip.text, port: d.port },
  });
}
