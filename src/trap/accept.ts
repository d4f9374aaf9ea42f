// accept(2) and accept4(2). The daemon accepts on its duplicate of the listening socket,
// writes the peer's virtual address into the app's buffers, and installs the new socket in
// the app with ADDFD + SEND (that is the call's return value). A blocking listener with no
// pending connection is watched for readability; the app's thread stays in accept() as it
// would in the kernel. Listeners of other families (UNIX) are accepted the same way, their
// peer's address written as the kernel has it.

import type { Binding, Source, VAddr } from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import {
  domainOf,
  E,
  encodeFor,
  F_GETFL,
  hostName,
  isInet,
  O_CLOEXEC,
  O_NONBLOCK,
  protoOf,
  SO_RCVTIMEO,
  SO_TYPE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  socketTimeoutMs,
  virtualPeer,
} from "./addresses.js";
import { liveSource } from "./admission.js";
import type { Notification } from "./notification.js";
import { type AppSession, READABLE } from "./session.js";

export function handleAccept(s: AppSession, n: Notification, withFlags: boolean): void {
  const addrPtr = n.ptr(1);
  const lenPtr = n.ptr(2);
  const flags = withFlags ? n.int(3) : 0;
  if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) return s.fail(n, E.EINVAL);
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  let owned = true;
  try {
    if (!s.idValid(n)) return;
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    // Every family is accepted here (a continued accept could meet an INET listener swapped
    // in by another thread: see continue.ts); only INET listeners have records to consult.
    const inet = isInet(domain);
    // Looked up only once a connection is in hand: an event-driven server's last accept()
    // finds the queue empty.
    let listener: Listener | undefined;

    const tryAccept = (): boolean => {
      let conn: number;
      let peer: VAddr | null = null;
      let local: VAddr | null = null;
      let src: Source | undefined;
      for (;;) {
        conn = a.accept4(dup, flags & SOCK_NONBLOCK);
        if (conn < 0) break;
        listener ??= inet ? listenerOf(s, dup) : OTHER;
        if (!inet) break; // no records: anyone may come in
        peer = hostName(s, conn, true);
        local = hostName(s, conn, false);
        src = peer && local ? liveSource(s.host, listener.proto, peer, local) : undefined;
        if (admitted(s, listener.binding, peer, src)) break;
        // Not a managed client: refused with a reset, and the app never sees it.
        a.setsockoptBytes(conn, SOL_SOCKET, SO_LINGER, LINGER_RESET);
        a.close(conn);
      }
      if (conn === -E.EAGAIN) return false;
      if (conn < 0) {
        s.fail(n, -conn);
        return true;
      }
      if (addrPtr !== 0 && !inet) {
        const len = a.getpeername(conn, s.outBuf);
        const w =
          len < 0 ? len : s.writeSockaddr(n, addrPtr, lenPtr, s.outBuf, Math.min(len, s.outBuf.length));
        if (w < 0) {
          a.closeShared(conn);
          s.fail(n, -w);
          return true;
        }
      } else if (addrPtr !== 0) {
        const v =
          peer && listener
            ? peerName(s, listener.proto, local, peer, src)
            : { ip: domain === 2 ? "0.0.0.0" : "::", port: 0 };
        const w = s.writeSockaddr(n, addrPtr, lenPtr, s.outBuf, encodeFor(s, domain, v));
        if (w < 0) {
          a.closeShared(conn);
          s.fail(n, -w);
          return true;
        }
      }
      const r = a.notifAddFd(s.listenerFd, n.idLo, n.idHi, conn, flags & SOCK_CLOEXEC ? O_CLOEXEC : 0, 1);
      a.closeShared(conn); // the app holds it now, and may make ours the last close
      if (r === -E.ENOENT)
        s.host.log.warn(
          { app: s.app.id },
          "accepted a connection for a thread that went away; it was closed",
        );
      else if (r < 0) s.fail(n, -r);
      return true;
    };

    if (tryAccept()) return;
    const fl = a.fcntl(dup, F_GETFL, 0);
    if (fl < 0 || (fl & O_NONBLOCK) !== 0) return s.fail(n, E.EAGAIN);
    owned = false;
    // SO_RCVTIMEO: the call gives up with EAGAIN (the wait's default answer), accept(2).
    s.wait(n, dup, READABLE, tryAccept, socketTimeoutMs(s, dup, SO_RCVTIMEO));
  } finally {
    if (owned) a.closeShared(dup);
  }
}

const SO_LINGER = 13;
/** struct linger { l_onoff = 1, l_linger = 0 }: close() resets the connection. */
const LINGER_RESET = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

interface Listener {
  readonly proto: Proto;
  /** The listener's record, if it was bound through sockswitch. */
  readonly binding: Binding | undefined;
}

/** A listener of another family (UNIX): no records, anyone may come in. */
const OTHER: Listener = { proto: "tcp", binding: undefined };

function listenerOf(s: AppSession, fd: number): Listener {
  const proto = protoOf(s.host.addon.getsockoptInt(fd, SOL_SOCKET, SO_TYPE));
  const name = hostName(s, fd, false);
  return { proto, binding: name ? s.host.sockets.binding(proto, name.ip, name.port) : undefined };
}

/**
 * What the app sees as the peer: a managed client's virtual address (its live record);
 * a peer at an address whose record belongs to another socket is shown as it is, never
 * as the recorded app; anything else as virtualPeer names it (another node's client).
 */
function peerName(
  s: AppSession,
  proto: Proto,
  local: VAddr | null,
  peer: VAddr,
  src: Source | undefined,
): VAddr {
  if (src) return src.local;
  if (s.host.sockets.source(proto, peer.ip, peer.port)) return peer;
  return virtualPeer(s, proto, local, peer);
}

/**
 * Pool ports are where managed services really listen, on the node's address: only a
 * managed client whose connection this is (src: the live record of its client socket,
 * see admission.ts; or a peer in another node's published client-port range) may come
 * in, and a private loopback listener admits only its own app. --expose ports and sockets
 * the daemon has no record of (not bound through sockswitch) admit anyone. A refused
 * connection is reset; the app never sees it.
 */
function admitted(
  s: AppSession,
  b: Binding | undefined,
  peer: VAddr | null,
  src: Source | undefined,
): boolean {
  if (!b || b.exposed) return true;
  if (!peer) return true; // already gone: let the app see what the kernel says
  if (src && (!b.loopback || src.appId === s.app.id)) return true;
  // A managed client on another node: its node's IP and a port of the node's published
  // client-port range (its app's block is in there).
  // (Never this host's own addresses: an unmanaged local process may hold such a port.)
  if (
    !b.loopback &&
    !src &&
    !s.host.isLocalAddress(peer.ip) &&
    s.host.table.isRemoteManaged(peer.ip, peer.port)
  )
    return true;
  s.host.log.warn(
    { app: s.app.id, listener: `${b.hostIp}:${b.hostPort}`, peer: `${peer.ip}:${peer.port}` },
    "connection to a managed listener from an unmanaged peer refused",
  );
  return false;
}
