// The bpf datapath's registration of the daemon: the programs must tell the daemon's own
// binds of app sockets (carried out for the app's trapped bind) from anyone else's (a bind
// the app's kernel call makes on a socket swapped in under a continued call's fd). They know
// the daemon by its thread group id as the kernel sees it (bpf_get_current_pid_tgid, the
// initial PID namespace), which the daemon cannot read from inside a PID namespace of its own:
// it stamps one socket of its own SK_REGISTER and binds it, and the bind program records the
// caller (native/bpf/datapath.bpf.c). Only the daemon writes socket storage from user space.

import type { Addon } from "../native/addon.js";
import { parseIp } from "../net/ip.js";
import { AF_INET, encodeSockaddr } from "../net/sockaddr.js";
import { SOCK_CLOEXEC, SOCK_DGRAM } from "../trap/addresses.js";
import { DAEMON_TGID } from "./datapath-config.js";
import { SK_REGISTER, sockValue } from "./layout.js";

/**
 * Registers the calling process with the programs whose maps are socksFd (ssw_socks) and
 * configFd (ssw_config), and checks that they recorded it. Until then every bind of a
 * trapped socket is refused (fail closed). null, or a sentence saying what failed.
 */
export function registerDaemon(addon: Addon, socksFd: number, configFd: number): string | null {
  const fd = addon.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return `cannot make the registration socket (errno ${-fd})`;
  try {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setInt32(0, fd, true);
    const m = addon.bpfMapUpdate(socksFd, key, sockValue(0, undefined, SK_REGISTER), 0);
    if (m < 0) return `cannot stamp the registration socket (errno ${-m})`;
    const sa = new Uint8Array(16);
    const ip = parseIp("127.0.0.1");
    const b = ip ? addon.bind(fd, sa, encodeSockaddr(AF_INET, ip, 0, sa)) : -1;
    if (b < 0) return `the registration bind failed (errno ${-b})`;
  } finally {
    addon.close(fd);
  }
  const cfg = new Uint8Array(96);
  const r = addon.bpfMapLookup(configFd, new Uint8Array(4), cfg);
  if (r < 0 || new DataView(cfg.buffer).getUint32(DAEMON_TGID, true) === 0)
    return "the programs did not record the daemon's registration";
  return null;
}
