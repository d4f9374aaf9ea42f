// Shadow sockets: the kernel as the judge of an app's binds. Each app that binds gets a
// network namespace of the daemon's own (never the app's: the app cannot change it) whose
// `lo` carries the app's virtual addresses, made on its first bind. For every bind of the
// app the daemon makes a socket there with the same family, type and bind options, and binds
// it to the app's own address: what the kernel answers is what the app gets, and the port it
// picks for port 0 is the app's virtual port. The shadow socket then stays bound (and
// listens when the app's socket listens) until the app's socket is gone, so that the app's
// later binds meet it exactly as they would meet the real socket on a host where the virtual
// addresses were real. No traffic ever reaches a shadow socket.
//
// bind(2), listen(2), ip(7) (ip_unprivileged_port_start), capabilities(7)
// (CAP_NET_BIND_SERVICE), network_namespaces(7).

import { readFileSync } from "node:fs";
import { encodeSockaddr } from "../net/sockaddr.js";
import type { Binding } from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import {
  E,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  ipOf,
  SO_DOMAIN,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
} from "./addresses.js";
import { socketCookie } from "./admission.js";
import type { TrapHost } from "./host.js";
import type { AppSession } from "./session.js";

const SOL_IP = 0;
const IP_FREEBIND = 15;
const IPV6_FREEBIND = 78;
const AF_INET6 = 10;
const CAP_NET_BIND_SERVICE = 10;
/** The kernel's default ip_unprivileged_port_start, which a shadow namespace has. */
const UNPRIVILEGED_PORT_START = 1024;

/** Options copied from the app's socket to its shadow: [level, name]. */
const BIND_OPTIONS: ReadonlyArray<readonly [number, number]> = [
  [SOL_SOCKET, SO_REUSEADDR],
  [SOL_SOCKET, SO_REUSEPORT],
  [SOL_IP, IP_FREEBIND],
];
const BIND_OPTIONS6: ReadonlyArray<readonly [number, number]> = [
  [IPPROTO_IPV6, IPV6_V6ONLY],
  [IPPROTO_IPV6, IPV6_FREEBIND],
];

export interface ShadowBind {
  /** 0, or the positive errno the app's bind gets. */
  readonly error: number;
  /** The bound shadow socket (-1 on error, or when only the address was checked). */
  readonly fd: number;
  /** The port the shadow socket got: the app's virtual port. */
  readonly port: number;
}

/** The app's shadow namespace, made on first use: its fd, or -errno. */
function shadowNs(s: AppSession): number {
  if (s.shadowNs >= 0) return s.shadowNs;
  const recs = new Uint8Array(17 * s.app.ips.length);
  s.app.ips.forEach((text, i) => {
    const ip = ipOf(text);
    recs[i * 17] = ip.family;
    recs.set(ip.bytes, i * 17 + 1);
  });
  const fd = s.host.addon.netnsCreate(recs);
  if (fd < 0) {
    s.host.log.error({ app: s.app.id, errno: -fd }, "cannot make the app's shadow network namespace");
    return fd;
  }
  s.shadowNs = fd;
  return fd;
}

/** A new shadow socket with the bind options of the app's socket hostFd; fd or -errno. */
function shadowSocket(s: AppSession, hostFd: number, domain: number, proto: Proto): number {
  const ns = shadowNs(s);
  if (ns < 0) return ns;
  const a = s.host.addon;
  const fd = a.socketIn(ns, domain, proto === "udp" ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (fd < 0) return fd;
  copyOptions(s, hostFd, fd, domain);
  return fd;
}

function copyOptions(s: AppSession, from: number, to: number, domain: number): void {
  const a = s.host.addon;
  for (const opts of domain === AF_INET6 ? [BIND_OPTIONS, BIND_OPTIONS6] : [BIND_OPTIONS]) {
    for (const [level, name] of opts) {
      const v = a.getsockoptInt(from, level, name);
      if (v > 0) a.setsockoptInt(to, level, name, v);
    }
  }
}

/** True when thread tid lacks CAP_NET_BIND_SERVICE (/proc/TID/status CapEff). */
function lacksBindService(tid: number): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${tid}/status`, "latin1"));
    return m === null || (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_BIND_SERVICE))) === 0n;
  } catch {
    return true;
  }
}

/**
 * Binds a shadow socket for the app's bind of addr (its own copy, addrLen bytes) from thread
 * tid on host socket hostFd (tid 0: judge as privileged). checkOnly: the app's socket is bound already, so only the
 * address is judged (a shadow bound to it with port 0) and no shadow is kept. On
 * EADDRINUSE, prune(port) may withdraw stale records (sockets the app has closed since);
 * when it did, the bind is tried once more.
 */
export function shadowBind(
  s: AppSession,
  tid: number,
  hostFd: number,
  domain: number,
  proto: Proto,
  addr: Uint8Array,
  addrLen: number,
  checkOnly: boolean,
  prune: (port: number) => boolean,
): ShadowBind {
  const a = s.host.addon;
  const fd = shadowSocket(s, hostFd, domain, proto);
  if (fd < 0) return { error: -fd, fd: -1, port: 0 };
  const sa = addr.slice(0, addrLen);
  if (checkOnly) {
    sa[2] = 0;
    sa[3] = 0;
  }
  const port = ((sa[2] as number) << 8) | (sa[3] as number);
  const unprivileged = tid > 0 && port !== 0 && port < UNPRIVILEGED_PORT_START && lacksBindService(tid);
  const bind = (): number => (unprivileged ? a.bindUnprivileged(fd, sa, addrLen) : a.bind(fd, sa, addrLen));
  let r = bind();
  if (r === -E.EADDRINUSE && port !== 0 && prune(port)) r = bind();
  if (r < 0 || checkOnly) {
    a.close(fd);
    return { error: r < 0 ? -r : 0, fd: -1, port: 0 };
  }
  const len = a.getsockname(fd, s.outBuf);
  return { error: 0, fd, port: len >= 4 ? ((s.outBuf[2] as number) << 8) | (s.outBuf[3] as number) : port };
}

/** listen(2) on a binding's shadow, with the app socket's current options: 0 or -errno. */
export function shadowListen(s: AppSession, hostFd: number, b: Binding, backlog: number): number {
  if (b.shadowFd < 0) return 0;
  copyOptions(s, hostFd, b.shadowFd, b.domain);
  return s.host.addon.listen(b.shadowFd, backlog);
}

export function closeShadow(host: TrapHost, fd: number): void {
  if (fd >= 0) host.addon.close(fd);
}

/**
 * After a daemon restart: shadows for the app's restored bindings (takeover.ts rebuilt them
 * from the kernel's socket list), each record corrected from the socket itself (family,
 * IPV6_V6ONLY, SO_REUSEADDR, SO_REUSEPORT) and its address held again in a new shadow
 * namespace. Returns how many were restored.
 */
export function restoreShadows(s: AppSession): number {
  const a = s.host.addon;
  let n = 0;
  for (const b of s.host.sockets.bindingsOf(s.app.id)) {
    if (b.shadowFd >= 0) continue;
    const dup = s.findSocket(b.inode);
    if (dup < 0) continue;
    try {
      const domain = a.getsockoptInt(dup, SOL_SOCKET, SO_DOMAIN);
      if (domain < 0) continue;
      const sa = new Uint8Array(28);
      const len = encodeSockaddr(domain, ipOf(b.vip), b.vport, sa);
      const r = shadowBind(s, 0, dup, domain, b.proto, sa, len, false, () => false);
      if (r.error !== 0) {
        s.host.log.warn(
          { app: s.app.id, vip: `${b.vip}:${b.vport}`, errno: r.error },
          "cannot hold a restored socket's address in the shadow namespace",
        );
        continue;
      }
      if (b.listening) a.listen(r.fd, 128);
      s.host.sockets.replaceBinding(b, {
        ...b,
        cookie: socketCookie(s.host, dup),
        domain,
        v6only: domain === AF_INET6 && a.getsockoptInt(dup, IPPROTO_IPV6, IPV6_V6ONLY) === 1,
        reuseAddr: a.getsockoptInt(dup, SOL_SOCKET, SO_REUSEADDR) === 1,
        reusePort: a.getsockoptInt(dup, SOL_SOCKET, SO_REUSEPORT) === 1,
        shadowFd: r.fd,
      });
      n++;
    } finally {
      a.closeShared(dup);
    }
  }
  return n;
}
