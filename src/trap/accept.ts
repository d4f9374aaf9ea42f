// accept(2) and accept4(2). The daemon accepts on its duplicate of the listening socket,
// writes the peer's virtual address into the app's buffers, and installs the new socket in
// the app with ADDFD + SEND (that is the call's return value). A blocking listener with no
// pending connection is watched for readability; the app's thread stays in accept() as it
// would in the kernel. UNIX sockets are left to the kernel.

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
  SO_TYPE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  virtualPeer,
} from "./addresses.js";
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
    if (!isInet(domain)) return s.cont(n);
    const proto = protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE));

    const tryAccept = (): boolean => {
      const conn = a.accept4(dup, flags & SOCK_NONBLOCK);
      if (conn === -E.EAGAIN) return false;
      if (conn < 0) {
        s.fail(n, -conn);
        return true;
      }
      if (addrPtr !== 0) {
        const peer = hostName(s, conn, true);
        const local = hostName(s, conn, false);
        const v = peer
          ? virtualPeer(s, proto, local, peer)
          : { ip: domain === 2 ? "0.0.0.0" : "::", port: 0 };
        const w = s.writeSockaddr(n, addrPtr, lenPtr, s.outBuf, encodeFor(s, domain, v));
        if (w < 0) {
          a.close(conn);
          s.fail(n, -w);
          return true;
        }
      }
      const r = a.notifAddFd(s.listenerFd, n.idLo, n.idHi, conn, flags & SOCK_CLOEXEC ? O_CLOEXEC : 0, 1);
      a.close(conn);
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
    s.wait(n, dup, READABLE, tryAccept);
  } finally {
    if (owned) a.close(dup);
  }
}
