// Which of an app's sockets on a virtual ip:port the bpf datapath's hooks balance over: the
// ones the kernel's lookup would deliver to on a host where the virtual address were real.
// The seccomp datapath makes the same choice per connect or datagram (table/table.ts
// resolve); the hooks only balance, so the daemon makes it when it writes the backends.

import { AF_INET } from "../net/sockaddr.js";
import type { Binding } from "../table/sockets.js";
import { mostSpecific } from "../table/table.js";
import type { Service } from "../table/types.js";
import { ipOf } from "../trap/addresses.js";

/**
 * The backends of one virtual proto/vip/vport (the table's services, newest last) that the
 * hooks balance over: per app, a socket bound to that address before a wildcard one (TCP
 * and UDP); for UDP one host port per app, since the kernel delivers each datagram to one
 * of the app's sockets (sockets that share a host port are one backend: the host's kernel
 * chooses among them), of several the one its lookup prefers: an AF_INET socket for an IPv4
 * address (bindingOf gives a local service's socket), else the newest. Other apps stay
 * peers. ip(7) and udp(7); __udp4_lib_lookup's scoring.
 */
export function kernelBackends(
  services: readonly Service[],
  bindingOf: (svc: Service) => Binding | undefined,
): Service[] {
  if (services.length < 2) return [...services];
  const specific = mostSpecific([...services]);
  if ((specific[0] as Service).proto !== "udp") return specific;
  const best = new Map<string, { svc: Service; score: number }>();
  for (const svc of specific) {
    const four = ipOf(svc.vip).family === 4;
    const score = four && bindingOf(svc)?.domain === AF_INET ? 1 : 0;
    const had = best.get(svc.appId);
    if (!had || score >= had.score) best.set(svc.appId, { svc, score });
  }
  if (best.size === specific.length) return specific;
  const keep = new Set([...best.values()].map((b) => b.svc));
  return specific.filter((svc) => keep.has(svc));
}
