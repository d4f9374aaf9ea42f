// getsockname(2): the app sees its virtual address (its virtual IP and virtual port, the
// wildcard it bound, or its loopback), never the host's. UNIX sockets: the kernel answers.

import {
  domainOf,
  encodeFor,
  hostName,
  isInet,
  protoOf,
  SO_TYPE,
  SOL_SOCKET,
  virtualLocal,
  writeKernelName,
} from "./addresses.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

export function handleGetsockname(s: AppSession, n: Notification): void {
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  try {
    if (!s.idValid(n)) return;
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    if (!isInet(domain)) return s.settle(n, writeKernelName(s, n, dup, false));
    const local = hostName(s, dup, false);
    if (!local) return s.settle(n, writeKernelName(s, n, dup, false));
    const proto = protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE));
    const v = virtualLocal(s, dup, proto, local);
    s.settle(n, s.writeSockaddr(n, n.ptr(1), n.ptr(2), s.outBuf, encodeFor(s, domain, v)));
  } finally {
    a.closeShared(dup);
  }
}
