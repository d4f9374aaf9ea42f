// Re-routing connected UDP client sockets. A connected UDP socket sends to one host address,
// fixed at connect(); what answers at its virtual destination can change afterwards: the
// server's socket is closed and made again (a restart), a backend is added or withdrawn.
// On a host where the virtual address were real, the kernel would simply reach whatever is
// bound there now, so when a binding that serves a virtual address appears or goes, the
// daemon connects each client socket of that address again, on its own duplicate, to where
// the address now leads (or to the refusal port when nothing is there: ICMP port unreachable,
// ECONNREFUSED, as the kernel would answer). connect(2) on a UDP socket, udp(7).

import { encodeFor, ipOf } from "./addresses.js";
import type { TrapHost } from "./host.js";
import { routeOf } from "./route.js";

/** Re-routes the connected UDP clients of virtual ip:port whose route changed. */
export function rerouteUdpClients(host: TrapHost, ip: string, port: number): void {
  for (const c of host.sockets.udpClients.connectedTo(ip, port)) {
    const s = host.sessionOf(c.appId);
    if (!s || s.isClosed) continue;
    const route = routeOf(s, "udp", c.domain, { ip: ipOf(ip), port }, c.local);
    if (typeof route === "number") continue; // now refused by policy: it keeps what it had
    if (route.host.ip === c.target.ip && route.host.port === c.target.port) continue;
    const dup = s.findSocket(c.inode);
    if (dup < 0) {
      host.sockets.udpClients.remove(c.host); // closed meanwhile
      continue;
    }
    const r = host.addon.connect(dup, s.outBuf, encodeFor(s, c.domain, route.host));
    host.addon.closeShared(dup);
    if (r === 0) {
      c.target = route.host;
      host.log.debug(
        { app: c.appId, dst: `${ip}:${port}`, host: route.host },
        "connected UDP socket re-routed",
      );
    } else {
      host.log.warn(
        { app: c.appId, dst: `${ip}:${port}`, errno: -r },
        "re-routing a connected UDP socket failed",
      );
    }
  }
}
