// listen(2). The daemon listens on its duplicate of the app's socket (for every family: a
// listen has no address to resolve, and doing it here means a swapped fd cannot slip an
// unbound INET socket past us). An INET socket the app never bound is first bound as the
// kernel would autobind it: a wildcard address and a port of our choosing. Then the
// services the listener provides are registered.

import { ipFromBytes } from "../net/ip.js";
import { AF_INET6, encodeSockaddr } from "../net/sockaddr.js";
import { domainOf, E, hostName, isInet, protoOf, SO_TYPE, SOL_SOCKET } from "./addresses.js";
import { bindVirtual, listenVirtual, publish } from "./binding.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

const stat = new Float64Array(3);

export function handleListen(s: AppSession, n: Notification): void {
  const backlog = n.int(1);
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return s.fail(n, -dup);
  const a = s.host.addon;
  try {
    if (!s.idValid(n)) return;
    const domain = domainOf(s, dup);
    if (domain < 0) return s.fail(n, -domain);
    if (!isInet(domain)) return s.settle(n, a.listen(dup, backlog));
    const proto = protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE));
    let local = hostName(s, dup, false);
    if (local && local.port === 0 && proto === "tcp") {
      // Autobind, as the kernel's listen does: the wildcard and a port the kernel picks.
      if (a.fstat(dup, stat) < 0) return s.fail(n, E.EBADF);
      const any = ipFromBytes(new Uint8Array(domain === AF_INET6 ? 16 : 4));
      const len = encodeSockaddr(domain, any, 0, s.addrBuf);
      const r = bindVirtual(s, n.pid, dup, domain, proto, stat[1] as number, s.addrBuf, len, any);
      if (r < 0) return s.fail(n, -r);
      local = hostName(s, dup, false);
    }
    const b = local ? s.host.sockets.binding(proto, local.ip, local.port) : undefined;
    if (b && proto === "tcp") {
      const r = listenVirtual(s, dup, b, backlog);
      if (r < 0) return s.fail(n, -r);
    }
    const r = a.listen(dup, backlog);
    if (r < 0) return s.fail(n, -r);
    if (b && !b.listening) {
      b.listening = true;
      publish(s, b);
    }
    s.respond(n, 0);
  } finally {
    a.closeShared(dup);
  }
}
