// What the bpf datapath checks before it serves apps (bpf/datapath.ts; the kernel probe's
// verdict on its hooks is daemon/datapath.ts's): that its bind hooks guard the one call the
// datapath lets the kernel run, a bind on a UNIX socket (trap/continue.ts): a bind of a socket
// the daemon made for an app (SK_TRAPPED) is refused (EPERM) for any task but the registered
// daemon, and allowed for it. That check is what the daemon's `continueGuard: on` stands for
// under --datapath bpf (docs/security.md, promise 17).

import type { Addon } from "../native/addon.js";
import { parseIp } from "../net/ip.js";
import { AF_INET, encodeSockaddr } from "../net/sockaddr.js";
import { SOCK_CLOEXEC, SOCK_DGRAM } from "../trap/addresses.js";
import { SK_TRAPPED, sockValue } from "./layout.js";
import { registerDaemon } from "./register.js";

const EPERM = 1;
/** No app has this index: the bind hook lets nothing but the check through (no app's address). */
const PROBE_APP = 0xffffffff;

/**
 * Binds a socket stamped SK_TRAPPED to 127.0.0.1:0 (socksFd: ssw_socks) and returns what the
 * bind hook answered: 0, or -errno. Before the daemon registers it must be -EPERM, after it 0.
 */
export function probeTrappedBind(addon: Addon, socksFd: number): number {
  const fd = addon.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  try {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setInt32(0, fd, true);
    const m = addon.bpfMapUpdate(socksFd, key, sockValue(PROBE_APP, undefined, SK_TRAPPED), 0);
    if (m < 0) return m;
    const sa = new Uint8Array(16);
    const ip = parseIp("127.0.0.1");
    return ip ? addon.bind(fd, sa, encodeSockaddr(AF_INET, ip, 0, sa)) : -EPERM;
  } finally {
    addon.close(fd);
  }
}

/**
 * Registers the daemon with the programs (register.ts) and checks their bind hooks around it:
 * a trapped socket's bind is refused before (the configuration names no daemon yet) and
 * allowed after. null, or a sentence saying what failed.
 */
export function registerChecked(addon: Addon, socksFd: number, configFd: number): string | null {
  const before = probeTrappedBind(addon, socksFd);
  if (before !== -EPERM)
    return `the bind hooks did not refuse a bind of an app's socket by a task that is not the daemon (bind gave ${before}, not -EPERM)`;
  const reg = registerDaemon(addon, socksFd, configFd);
  if (reg !== null) return reg;
  const after = probeTrappedBind(addon, socksFd);
  return after === 0
    ? null
    : `the bind hooks refused the daemon's own bind of an app's socket (bind gave ${after})`;
}
