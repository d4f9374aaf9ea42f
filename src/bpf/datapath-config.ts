// The bpf datapath's global settings (struct ssw_config, native/bpf/datapath.h) from the
// daemon's state: --egress, the refusal port, the port pool, the node's addresses, the resolver,
// --vip-cidr. Written at start and again when SIGHUP changes what it holds (--egress), always
// keeping the daemon's registration (daemon_tgid), which only the programs write.

import type { Cidr } from "../net/cidr.js";
import type { TrapHost } from "../trap/host.js";
import { configValue } from "./layout.js";

/** Offset and size of daemon_tgid in struct ssw_config. */
export const DAEMON_TGID = 92;
export const CONFIG_SIZE = 96;

/**
 * struct ssw_config for host's current settings and vip-cidr, with daemon_tgid copied from
 * `current` (the map's value now; null: none registered yet).
 */
export function configFor(host: TrapHost, vipCidr: Cidr, current: Uint8Array | null): Uint8Array {
  let net: Uint8Array | null = null;
  let mask: Uint8Array | null = null;
  if (vipCidr.family === 4) {
    net = vipCidr.base.slice(0, 4);
    mask = new Uint8Array(4);
    for (let bit = 0; bit < vipCidr.prefix; bit++)
      mask[bit >> 3] = (mask[bit >> 3] as number) | (0x80 >> (bit & 7));
  }
  const dns = host.resolver;
  const out = configValue({
    egressDeny: host.config.egress === "deny",
    refusePort: host.refusePort,
    pool: host.pool.range,
    nodeIp: host.config.nodeIp,
    nodeIp6: host.config.nodeIp6,
    dns: dns ? { vip: dns.ip, hostIp: dns.hostIp, hostPort: dns.hostPort } : null,
    vipNet4: net,
    vipMask4: mask,
  });
  if (current !== null) out.set(current.subarray(DAEMON_TGID, DAEMON_TGID + 4), DAEMON_TGID);
  return out;
}
