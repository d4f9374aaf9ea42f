// The CONTINUE guard (native/bpf/guard.bpf.c): cgroup connect4/6, bind4/6 and sendmsg4/6
// programs that refuse (EPERM) a bind, connect or addressed UDP send on a socket the daemon
// made for an app unless the daemon itself makes it. It closes the window of the seccomp
// datapath's SECCOMP_USER_NOTIF_FLAG_CONTINUE answers (seccomp_unotify(2), "Caveats"): another
// thread of the app dup2()s one of its INET sockets onto the fd number of a call the daemon
// has just judged harmless (a UNIX socket's, or a sendmsg without a destination) and the kernel
// runs it on the host socket.
//
// The daemon marks every app socket at socket() time (mark: socket storage keyed by the fd;
// BPF_F_CLONE carries it to accepted sockets). The programs know the daemon by its tgid as
// the kernel sees it: the daemon registers by binding a socket marked GUARD_REGISTER, and the
// program records the caller. openGuard() checks the whole chain before it hands out a guard:
// a marked socket is refused for a tgid that is not the daemon's, and allowed for the daemon.
// The kernel's answers come from the daemon's probe (core/kernel-info.ts): a kernel without
// the hooks is not asked again. Maps and links are pinned (pinDirOf): a restarted daemon keeps the marks of every
// socket made before it and registers itself again.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { feature, type KernelInfo } from "../core/kernel-info.js";
import type { Addon } from "../native/addon.js";
import { claimPinDir, ensureBpffs, openDir, ownCgroupDir, PRIVATE_PINS, sweepOrphanPins } from "./system.js";

const GUARD_APP = 1;
const GUARD_REGISTER = 2;
const PROGRAMS = [
  "guard_connect4",
  "guard_connect6",
  "guard_bind4",
  "guard_bind6",
  "guard_sendmsg4",
  "guard_sendmsg6",
];
const AF_INET = 2;
const SOCK_DGRAM = 2;
const EPERM = 1;
const LOOPBACK_PORT_9 = new Uint8Array([2, 0, 0, 9, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
const LOOPBACK_ANY_PORT = new Uint8Array([2, 0, 0, 0, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);

/** The kernel features the guard needs (core/kernel-info.ts names). */
export const GUARD_FEATURES = [
  "BPF_CGROUP_INET{4,6}_BIND",
  "BPF_CGROUP_INET{4,6}_CONNECT",
  "BPF_CGROUP_UDP{4,6}_SENDMSG",
] as const;

/** The attached guard: its programs were seen to refuse and to allow as they must. */
export interface SocketGuard {
  readonly available: true;
  /** Marks fd (a socket the daemon made for an app): 0 or -errno. */
  mark(fd: number): number;
  /** Detaches the daemon: unpinned programs go; pinned ones stay for the next daemon. */
  close(): void;
}

export interface GuardOptions {
  /** The daemon's state dir, which names its pins (null: pin nothing, the guard dies with the daemon). */
  readonly stateDir: string | null;
  /** The daemon's kernel probe: a hook it found missing is not tried again. */
  readonly kernel?: KernelInfo;
}

/** Loads, attaches and checks the guard; never throws: the guard, or why there is none. */
export function openGuard(addon: Addon, log: Logger, opts: GuardOptions): SocketGuard | string {
  if (addon.bpfBuilt() !== 1)
    return "this build has no BPF programs (clang, bpftool or libbpf-dev were missing when it was built)";
  for (const name of opts.kernel ? GUARD_FEATURES : []) {
    const f = feature(opts.kernel as KernelInfo, name);
    if (f.available === false)
      return `the kernel lacks ${name} (Linux ${f.since}${f.reason ? `: ${f.reason}` : ""})`;
  }
  let dir = "";
  if (opts.stateDir !== null) {
    const m = ensureBpffs(addon, opts.stateDir);
    if (m.err < 0) return `cannot mount bpffs at /sys/fs/bpf (errno ${-m.err})`;
    if (m.private) log.warn(PRIVATE_PINS);
    const swept = sweepOrphanPins();
    if (swept > 0) log.info({ count: swept }, "removed the BPF pins of daemons whose state dir is gone");
    try {
      dir = join(claimPinDir(opts.stateDir), "guard");
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      return `cannot make its pin directory in /sys/fs/bpf: ${(err as Error).message}`;
    }
  }
  const cgroup = ownCgroupDir(addon);
  if (cgroup === null) return "no cgroup v2 hierarchy is mounted";
  const h = addon.bpfOpen("guard", dir);
  if (h < 0) return `loading the programs failed (errno ${-h}): ${addon.bpfLog().trim()}`;
  let cgFd = -1;
  const fail = (why: string): string => {
    addon.bpfClose(h);
    if (cgFd >= 0) addon.close(cgFd);
    return why;
  };
  try {
    cgFd = openDir(cgroup);
  } catch (err) {
    return fail(`cannot open the daemon's cgroup ${cgroup}: ${(err as Error).message}`);
  }
  for (const p of PROGRAMS) {
    const r = addon.bpfAttachCgroup(h, p, cgFd, dir ? join(dir, `link_${p}`) : "");
    if (r < 0) return fail(`attaching ${p} to ${cgroup} failed (errno ${-r}): ${addon.bpfLog().trim()}`);
  }
  addon.close(cgFd);
  cgFd = -1;
  const socks = addon.bpfMapFd(h, "guard_socks");
  const daemon = addon.bpfMapFd(h, "guard_daemon");
  const key = new Uint8Array(4);
  const keyView = new DataView(key.buffer);
  const app = new Uint8Array(4);
  new DataView(app.buffer).setUint32(0, GUARD_APP, true);
  const setDaemon = (tgid: number): number => {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, tgid, true);
    return addon.bpfMapUpdate(daemon, new Uint8Array(4), v, 0);
  };
  const mark = (fd: number, value: number): number => {
    keyView.setInt32(0, fd, true);
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, value, true);
    return addon.bpfMapUpdate(socks, key, v, 0);
  };
  const check = selfTest(addon, mark, setDaemon);
  if (check !== "") return fail(check);
  log.debug({ pinned: dir || null, cgroup }, "CONTINUE guard attached");
  return {
    available: true,
    mark(fd) {
      keyView.setInt32(0, fd, true);
      return addon.bpfMapUpdate(socks, key, app, 0);
    },
    close() {
      // A pinned guard outlives us: no tgid of ours may stay trusted (it may be reused).
      setDaemon(0);
      addon.bpfClose(h);
    },
  };
}

/**
 * Registers the daemon and checks the programs: a marked socket is refused (EPERM) while the
 * registered tgid is not ours, and allowed once we are registered. "" or why not.
 */
function selfTest(
  addon: Addon,
  mark: (fd: number, value: number) => number,
  setDaemon: (tgid: number) => number,
): string {
  const probe = addon.socket(AF_INET, SOCK_DGRAM, 0);
  if (probe < 0) return `cannot make a probe socket (errno ${-probe})`;
  try {
    let r = mark(probe, GUARD_APP);
    if (r < 0) return `marking a socket failed (errno ${-r}): ${addon.bpfLog().trim()}`;
    r = setDaemon(0);
    if (r < 0) return `writing the daemon's entry failed (errno ${-r})`;
    r = addon.connect(probe, LOOPBACK_PORT_9, LOOPBACK_PORT_9.length);
    if (r !== -EPERM) return `a marked socket was not refused (connect gave ${r}, not -EPERM)`;
    const reg = addon.socket(AF_INET, SOCK_DGRAM, 0);
    if (reg < 0) return `cannot make the registration socket (errno ${-reg})`;
    r = mark(reg, GUARD_REGISTER);
    if (r >= 0) r = addon.bind(reg, LOOPBACK_ANY_PORT, LOOPBACK_ANY_PORT.length);
    addon.close(reg);
    if (r < 0) return `registering the daemon failed (errno ${-r})`;
    r = addon.connect(probe, LOOPBACK_PORT_9, LOOPBACK_PORT_9.length);
    if (r !== 0) return `the daemon itself was refused on a marked socket (connect gave ${r})`;
    return "";
  } finally {
    addon.close(probe);
  }
}
