// getpeername(2): a client sees the virtual ip:port it dialed; a server sees its managed
// client's virtual IP; an unmanaged peer (egress, ingress) is shown as it is. UNIX sockets:
// the kernel answers.

import {
  domainOf,
  E,
  encodeFor,
  hostName,
  isInet,
  protoOf,
  SO_TYPE,
  SOL_SOCKET,
  virtualPeer,
  writeKernelName,
} from "./addresses.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

export function handleGetpeername(s: AppSession, n: Notification): void {
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  try {
    if (!s.idValid(n)) return;
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    if (!isInet(domain)) return s.settle(n, writeKernelName(s, n, dup, true));
    const peer = hostName(s, dup, true);
    if (!peer) return s.fail(n, E.ENOTCONN);
    const local = hostName(s, dup, false);
    const proto = protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE));
    const v = virtualPeer(s, proto, local, peer);
    // A UDP socket connected to port 0 has no peer (inet_getname: no destination port).
    if (v.port === 0) return s.fail(n, E.ENOTCONN);
    s.settle(n, s.writeSockaddr(n, n.ptr(1), n.ptr(2), s.outBuf, encodeFor(s, domain, v)));
  } finally {
    a.closeShared(dup);
  }
}
