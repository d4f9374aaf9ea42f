// An app's private loopback in the bpf datapath: the entries (scope: the app's index in the
// maps) that send the app's connects and datagrams to 127.0.0.1 or ::1 to its own sockets
// bound there, or to a wildcard, as the kernel's lookup finds them (datapath-route.h).

import { isUnspecified, parseIp } from "../net/ip.js";
import type { Binding } from "../table/sockets.js";
import { servesFamily } from "../trap/binding.js";
import { svcKey } from "./layout.js";

export interface PrivateEntry {
  /** struct ssw_svc_key of the app's loopback address and port. */
  readonly key: Uint8Array;
  /** Where a connect there goes: the binding's host address (the host's :: on the family's loopback). */
  readonly reach: string;
}

/**
 * The private loopback entries of binding b of the app with map index `app`: a binding to a
 * loopback address has that address, one to a wildcard the loopback of each family it
 * serves (servesFamily: IPV6_V6ONLY, the socket's family); any other binding has none.
 */
export function privateKeys(app: number, b: Binding): PrivateEntry[] {
  const wild = isUnspecified(b.vip);
  if (!b.loopback && !wild) return [];
  const out: PrivateEntry[] = [];
  for (const ip of wild ? ["0.0.0.0", "::"] : [b.vip]) {
    const family = parseIp(ip)?.family ?? 4;
    if (wild && !servesFamily(b, family)) continue;
    const reach = b.hostIp === "::" ? (family === 4 ? "127.0.0.1" : "::1") : b.hostIp;
    out.push({ key: svcKey(b.proto, ip, b.vport, app), reach });
  }
  return out;
}
