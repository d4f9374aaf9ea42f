// The app's source-port block on a connection (or an autobound datagram) to another node,
// so that the server's node can tell which app a peer (node IP, port) is (docs/cluster.md).
// Two ways, by kernel (ip(7)):
//
// - IP_LOCAL_PORT_RANGE (Linux 6.3): the kernel picks the port within the block when it
//   autobinds, and shares a port between connections to different destinations.
// - Before 6.3: the daemon binds the still unbound socket itself to the wildcard address and
//   a port of the block that no socket uses at all (SO_REUSEADDR/SO_REUSEPORT held off for
//   the bind, so the port is the socket's alone and the connection's 4-tuple is unique),
//   going round the block from where the last bind stopped. A port taken (EADDRINUSE) is
//   skipped; a block with every port taken (in use or in TIME_WAIT) gives EADDRNOTAVAIL,
//   as the kernel does when it runs out of ephemeral ports. One port per connection, so a
//   block bounds an app's connections to other nodes open or in TIME_WAIT at a time.

import { AF_INET, encodeSockaddr } from "../net/sockaddr.js";
import { E, hostName, ipOf, SO_REUSEADDR, SO_REUSEPORT, SOL_SOCKET } from "./addresses.js";
import type { AppSession } from "./session.js";

const SOL_IP = 0;
export const IP_LOCAL_PORT_RANGE = 51; // Linux 6.3: u32, low port in the low 16 bits
/** The option's value, reused by every connect (no allocation on the trapped path). */
const RANGE = new Uint8Array(4);
const RANGE_VIEW = new DataView(RANGE.buffer);
const WILDCARD = new Uint8Array(28);
/** Per app: where the next bind in its block starts (the bind fallback). */
const cursors = new WeakMap<AppSession, number>();
/** Apps already warned that their block is full (once each). */
const warned = new WeakSet<AppSession>();

/**
 * Makes an unbound socket of the app (fd, a duplicate; domain AF_INET or AF_INET6) take its
 * local port from the app's source-port block when it connects or sends. Returns 0, or
 * -errno for the call (EADDRNOTAVAIL: every port of the block is taken). A socket that is
 * already bound keeps its port; an app without a block is left alone.
 */
export function useSourceBlock(s: AppSession, fd: number, domain: number): number {
  const b = s.app.srcPorts;
  if (!b) return 0;
  const a = s.host.addon;
  if (s.host.kernel.ipLocalPortRange) {
    RANGE_VIEW.setUint32(0, ((b.last & 0xffff) << 16) | (b.first & 0xffff), true);
    const r = a.setsockoptBytes(fd, SOL_IP, IP_LOCAL_PORT_RANGE, RANGE);
    if (r < 0) s.host.log.warn({ app: s.app.id, errno: -r }, "IP_LOCAL_PORT_RANGE failed");
    return 0;
  }
  const local = hostName(s, fd, false);
  if (local !== null && local.port !== 0) return 0;
  const size = b.last - b.first + 1;
  const start = cursors.get(s) ?? 0;
  const reuse = a.getsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR);
  const reusePort = a.getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT);
  if (reuse > 0) a.setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 0);
  if (reusePort > 0) a.setsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 0);
  let r = -E.EADDRINUSE;
  let i = 0;
  for (; i < size && r === -E.EADDRINUSE; i++) {
    const port = b.first + ((start + i) % size);
    const len = encodeSockaddr(domain, ipOf(domain === AF_INET ? "0.0.0.0" : "::"), port, WILDCARD);
    r = a.bind(fd, WILDCARD, len);
  }
  if (reuse > 0) a.setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, reuse);
  if (reusePort > 0) a.setsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, reusePort);
  cursors.set(s, (start + i) % size);
  // EINVAL: another thread of the app bound the socket meanwhile; it keeps that port.
  if (r === 0 || r === -E.EINVAL) return 0;
  if (r !== -E.EADDRINUSE) return r;
  if (!warned.has(s)) {
    warned.add(s);
    s.host.log.warn(
      { app: s.app.id, ports: `${b.first}-${b.last}` },
      "every port of the app's source-port block is taken (in use or TIME_WAIT): its connections to other nodes get EADDRNOTAVAIL; without IP_LOCAL_PORT_RANGE (Linux 6.3) each takes a port of its own; raise --client-block",
    );
  }
  return -E.EADDRNOTAVAIL;
}
