// The bpf datapath's ssw_config record (native/bpf/datapath.h) from the daemon's settings:
// --egress, the refusal port, the listener pool, the node's addresses, the resolver and
// --vip-cidr (its IPv4 network and mask, for "is this a virtual address" in the kernel).

import type { Cidr } from "../net/cidr.js";
import type { TrapHost } from "../trap/host.js";
import { configValue } from "./layout.js";

/** struct ssw_config for this host. */
export function configOf(h: TrapHost, vipCidr: Cidr): Uint8Array {
  let net: Uint8Array | null = null;
  let mask: Uint8Array | null = null;
  if (vipCidr.family === 4) {
    net = vipCidr.base.slice(0, 4);
    mask = new Uint8Array(4);
    for (let bit = 0; bit < vipCidr.prefix; bit++)
      mask[bit >> 3] = (mask[bit >> 3] as number) | (0x80 >> (bit & 7));
  }
  const dns = h.resolver;
  return configValue({
    egressDeny: h.config.egress === "deny",
    refusePort: h.refusePort,
    pool: h.pool.range,
    nodeIp: h.config.nodeIp,
    nodeIp6: h.config.nodeIp6,
    dns: dns ? { vip: dns.ip, hostIp: dns.hostIp, hostPort: dns.hostPort } : null,
    vipNet4: net,
    vipMask4: mask,
  });
}
