import { decodeSockaddr, SOCKADDR_MAX, type SockAddr } from "../net/sockaddr.js";
import type { Binding, VAddr } from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import {
  domainOf,
  E,
  encodeFor,
  F_GETFL,
  F_SETFL,
  hostName,
  isInet,
  O_NONBLOCK,
  protoOf,
  SO_ERROR,
  SO_SNDTIMEO,
  SO_TYPE,
  SOL_SOCKET,
  socketTimeoutMs,
} from "./addresses.js";
import { keepReceiveTimes, socketCookie } from "./admission.js";
import { publish, rerouteServed, unpublish } from "./binding.js";
import { continueOther } from "./continue.js";
import type { Notification } from "./notification.js";
import { boundLoopbackError, clientAddress, dialedOf, type Route, routeOf } from "./route.js";
import { type AppSession, WRITABLE } from "./session.js";
import { useSourceBlock } from "./source-block.js";

export function handleConnect(s: AppSession, n: Notification): void {
  const len = n.uint(2);
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  let owned = true;
  let lentFlags = -1; // the app's file flags while the daemon has made the socket non-blocking
  try {
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    if (!isInet(domain)) return continueOther(s, n);
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
    const stuck = bound?.loopback && !route.loopback ? boundLoopbackError(s, proto, bound, route.dialed) : 0;
    if (stuck !== 0) return s.fail(n, stuck);
    if (route.remote) {
      const b = useSourceBlock(s, dup, domain);
      if (b < 0) return s.fail(n, -b);
    }
    const hostLen = encodeFor(s, domain, route.host);
    const flags = a.fcntl(dup, F_GETFL, 0);
    const blocking = proto === "tcp" && flags >= 0 && (flags & O_NONBLOCK) === 0;
    // Non-blocking for the daemon's calls; the app's flags are put back before it is answered
    // (and in `finally`, should anything throw).
    if (blocking && a.fcntl(dup, F_SETFL, flags | O_NONBLOCK) >= 0) lentFlags = flags;
    const since = Date.now() * 1000; // before the connect that may bind it (rounded down)
    const c = a.connect(dup, s.outBuf, hostLen);
    if (c === 0 || c === -E.EINPROGRESS) connected(s, dup, domain, proto, route, bound, since);
    if (blocking && (c === -E.EINPROGRESS || c === -E.EALREADY)) {
      // On this host (loopback, the node's own address) the handshake is usually done by
      // the time connect() returns: answer at once, without a trip through the event loop.
      // (addrBuf is free by now; outBuf still holds the host address.) The socket is still
      // non-blocking here: the second connect needs no fcntl of its own.
      if (a.getpeername(dup, s.addrBuf) >= 0) {
        a.connect(dup, s.outBuf, hostLen);
        lentFlags = giveBack(s, dup, lentFlags);
        return s.respond(n, 0);
      }
      lentFlags = giveBack(s, dup, lentFlags);
      // Only a connect that waits keeps a copy: the scratch buffers are reused meanwhile.
      const hostAddr = s.outBuf.slice(0, hostLen);
      owned = false;
      s.wait(
        n,
        dup,
        WRITABLE,
        () => {
          const err = a.getsockoptInt(dup, SOL_SOCKET, SO_ERROR);
          // A blocking connect that fails leaves the socket disconnected (its address reset),
          // as the kernel's own wait does (__inet_stream_connect → tcp_disconnect).
          if (err > 0) disconnect(s, dup);
          else if (err === 0) completeConnect(s, dup, flags, hostAddr, hostLen);
          s.settle(n, err > 0 ? -err : Math.min(err, 0));
          return true;
        },
        // SO_SNDTIMEO: the call gives up with EINPROGRESS, the handshake goes on (connect(2)).
        socketTimeoutMs(s, dup, SO_SNDTIMEO),
        () => s.fail(n, E.EINPROGRESS),
      );
      return;
    }
    lentFlags = giveBack(s, dup, lentFlags);
    // An error at once is the kernel's own answer, and it has already done what its wait
    // would have (a refused handshake on this host disconnects the socket): EISCONN on a
    // listener or a connected socket must leave it as it is.
    s.settle(n, c);
  } finally {
    lentFlags = giveBack(s, dup, lentFlags);
    if (owned) a.closeShared(dup);
  }
}

const UNSPEC = new Uint8Array(16);

/** Puts back the app's file flags the daemon had replaced (flags < 0: none); returns -1. */
function giveBack(s: AppSession, fd: number, flags: number): number {
  if (flags >= 0) s.host.addon.fcntl(fd, F_SETFL, flags);
  return -1;
}

/**
 * After a blocking connect the daemon made without blocking: connects once more, so the
 * kernel marks the socket connected (SS_CONNECTED) as its own wait would have. Without it
 * the socket stays "connecting", and the app's next connect() would return 0 (and be
 * recorded as a new destination) where the kernel says EISCONN (inet_stream_connect(2)).
 */
function completeConnect(s: AppSession, fd: number, flags: number, hostAddr: Uint8Array, len: number): void {
  const a = s.host.addon;
  a.fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  a.connect(fd, hostAddr, len);
  a.fcntl(fd, F_SETFL, flags);
}

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
  since: number,
): void {
  const source = recordSource(s, fd, proto, route.dialed, bound, since);
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

/**
 * Records the client socket at fd's host address: its virtual local address, what it
 * dialed, its cookie, and for UDP (admission.ts) since when and until when it is known to
 * hold the address: `since` (µs since the epoch) was read before the connect or send that
 * may have bound it, and the time now (after it) extends the hold.
 */
export function recordSource(
  s: AppSession,
  fd: number,
  proto: Proto,
  dialed: SockAddr,
  bound: Binding | undefined,
  since: number,
): { host: VAddr; local: VAddr } | null {
  const host = hostName(s, fd, false);
  if (!host) return null;
  const local = clientAddress(s, bound, host, dialed);
  const cookie = socketCookie(s.host, fd);
  const udp = proto === "udp";
  // A socket recorded for the first time keeps its datagrams' receive times from now on.
  if (udp && s.host.sockets.source(proto, host.ip, host.port)?.cookie !== cookie)
    keepReceiveTimes(s.host, fd);
  s.host.sockets.addSource(proto, host.ip, host.port, {
    appId: s.app.id,
    local,
    peer: { ip: dialed.ip.text, port: dialed.port },
    cookie,
    heldSince: udp ? since : undefined,
    heldUntil: udp ? s.host.addon.realtimeUs() : undefined,
  });
  return { host, local };
}
