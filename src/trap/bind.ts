// bind(2) on an app's socket. For AF_INET/AF_INET6 the address is virtual (the app's own
// virtual IP, a wildcard, or its private loopback) and the daemon binds the host socket
// itself, with its own copy of the address (no rewrite of app memory, no TOCTOU). Other
// families (UNIX) are left to the kernel: their addresses live in the app's own namespaces.

import { ipFromBytes } from "../net/ip.js";
import { AF_INET, decodeSockaddr, SOCKADDR_MAX } from "../net/sockaddr.js";
import { domainOf, E, isInet, protoOf, SO_TYPE, SOL_SOCKET } from "./addresses.js";
import { bindVirtual } from "./binding.js";
import { continueOther } from "./continue.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

const stat = new Float64Array(3);

export function handleBind(s: AppSession, n: Notification): void {
  const len = n.uint(2);
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  try {
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    if (!isInet(domain)) return continueOther(s, n);
    if (len > SOCKADDR_MAX) return s.fail(n, E.EINVAL);
    const r = s.read(n, n.ptr(1), s.addrBuf, len);
    if (r < 0) return s.fail(n, -r);
    if (!s.idValid(n)) return;
    let d = decodeSockaddr(domain, s.addrBuf, len);
    if (d === "unspec") {
      // The kernel accepts AF_UNSPEC with INADDR_ANY on an AF_INET socket, for old programs.
      const any = domain === AF_INET && len >= 8 && s.addrBuf.subarray(4, 8).every((b) => b === 0);
      d = any
        ? {
            ip: ipFromBytes(new Uint8Array(4)),
            port: ((s.addrBuf[2] as number) << 8) | (s.addrBuf[3] as number),
          }
        : E.EAFNOSUPPORT;
    }
    if (typeof d === "number") return s.fail(n, d);
    if (a.fstat(dup, stat) < 0) return s.fail(n, E.EBADF);
    const proto = protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE));
    s.settle(n, bindVirtual(s, n.pid, dup, domain, proto, stat[1] as number, s.addrBuf, len, d.ip));
  } finally {
    a.closeShared(dup);
  }
}
