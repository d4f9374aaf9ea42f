// Re-routing connected UDP client sockets. A connected UDP socket sends to one host address,
// fixed at connect(); what answers at its virtual destination can change afterwards: the
// server's socket is closed and made again (a restart), a backend is added or withdrawn.
// On a host where the virtual address were real, the kernel would simply reach whatever is
// bound there now, so when a binding that serves a virtual address appears or goes, the
// daemon connects each client socket of that address again, on its own duplicate, to where
// the address now leads (or to the refusal port when nothing is there: ICMP port unreachable,
// ECONNREFUSED, as the kernel would answer). connect(2) on a UDP socket, udp(7).

import { readdirSync, readlinkSync } from "node:fs";
import type { UdpClient } from "../table/udp-clients.js";
import { encodeFor, ipOf } from "./addresses.js";
import { routeOf } from "./connect.js";
import type { TrapHost } from "./host.js";
import type { AppSession } from "./session.js";

const stat = new Float64Array(3);

/** Re-routes the connected UDP clients of virtual ip:port whose route changed. */
export function rerouteUdpClients(host: TrapHost, ip: string, port: number): void {
  for (const c of host.sockets.udpClients.connectedTo(ip, port)) {
    const s = host.sessionOf(c.appId);
    if (!s || s.isClosed) continue;
    const route = routeOf(s, "udp", c.domain, { ip: ipOf(ip), port }, c.local);
    if (typeof route === "number") continue; // now refused by policy: it keeps what it had
    if (route.host.ip === c.target.ip && route.host.port === c.target.port) continue;
    const dup = findSocket(s, c);
    if (dup < 0) {
      host.sockets.udpClients.remove(c.host); // closed meanwhile
      continue;
    }
    const r = host.addon.connect(dup, s.outBuf, encodeFor(s, c.domain, route.host));
    host.addon.close(dup);
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

/** A duplicate of the client's socket, found among the app's fds by its inode; -1: gone. */
function findSocket(s: AppSession, c: UdpClient): number {
  const want = `socket:[${c.inode}]`;
  for (const pid of s.pids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link !== want) continue;
      const dup = s.takeProcessFd(pid, Number(fd));
      if (dup < 0) continue;
      if (s.host.addon.fstat(dup, stat) === 0 && stat[1] === c.inode) return dup;
      s.host.addon.close(dup);
    }
  }
  return -1;
}
