// The kernel feature probe the daemon runs once at start: each feature of
// core/kernel-info.ts is tried with the smallest call that tells (a flag the kernel must
// reject if it does not know it, an ioctl on a throwaway listener with an id that cannot
// exist, a two-instruction BPF program that is loaded and closed, a socket option on a
// throwaway socket). Nothing is left behind: every fd made here is closed. The report goes
// to the log (once), `sockswitch info` and GET /v1/info; the trap handlers get the three
// answers that change how they work (trapKernel).
//
// Leans on seccomp(2), seccomp_unotify(2), pidfd_open(2), pidfd_getfd(2), kcmp(2),
// process_vm_readv(2), ip(7) (IP_LOCAL_PORT_RANGE), sock_diag(7), bpf(2), proc(5).

import { readFileSync } from "node:fs";
import { constants, machine, release } from "node:os";
import type { Logger } from "pino";
import {
  FEATURES,
  type FeatureReport,
  feature,
  HIDE_ENV,
  KCMP_FILES,
  type KernelInfo,
  mountsByType,
  PIDFD_THREAD,
} from "../core/kernel-info.js";
import type { Addon } from "../native/addon.js";
import type { TrapKernel } from "../trap/host.js";

const E = constants.errno;
const ERRNO_NAMES = new Map(Object.entries(E).map(([k, v]) => [v, k]));

const SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5;
const SOL_IP = 0;
const IP_LOCAL_PORT_RANGE = 51;
const IPPROTO_TCP = 6;
const TCP_LISTEN = 10;
// enum bpf_prog_type and enum bpf_attach_type (include/uapi/linux/bpf.h: ABI, never renumbered).
const BPF_PROG_TYPE_CGROUP_SOCK = 9;
const BPF_PROG_TYPE_SOCK_OPS = 13;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18;
const BPF_HOOKS: Record<string, readonly (readonly [number, number])[]> = {
  BPF_CGROUP_INET_SOCK_CREATE: [[BPF_PROG_TYPE_CGROUP_SOCK, 2]],
  BPF_CGROUP_SOCK_OPS: [[BPF_PROG_TYPE_SOCK_OPS, 3]],
  "BPF_CGROUP_INET{4,6}_BIND": [
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 8],
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 9],
  ],
  "BPF_CGROUP_INET{4,6}_CONNECT": [
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 10],
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 11],
  ],
  "BPF_CGROUP_UDP{4,6}_SENDMSG": [
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 14],
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 15],
  ],
  "BPF_CGROUP_UDP{4,6}_RECVMSG": [
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 19],
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 20],
  ],
  "BPF_CGROUP_INET{4,6}_GETPEERNAME": [
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 29],
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 30],
  ],
  "BPF_CGROUP_INET{4,6}_GETSOCKNAME": [
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 31],
    [BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 32],
  ],
};

/** A probe's answer: available or not (with the errno or note why), or unknown. */
type Answer = { available: boolean | null; reason?: string };

function errnoName(negErrno: number): string {
  return ERRNO_NAMES.get(-negErrno) ?? `errno ${-negErrno}`;
}

/** r is what a call returned: yes when ok(r), no when r is one of the errnos in `no`, else unknown. */
function answer(r: number, ok: (r: number) => boolean, no: readonly number[]): Answer {
  if (ok(r)) return { available: true };
  return { available: no.includes(-r) ? false : null, reason: errnoName(r) };
}

function probeSeccomp(a: Addon, out: Map<string, Answer>): void {
  const listener = a.seccompListenerProbe();
  out.set(
    "SECCOMP_USER_NOTIF",
    answer(listener, (r) => r >= 0, [E.EINVAL, E.ENOSYS]),
  );
  if (listener < 0) {
    const reason = `no listener to probe with (${errnoName(listener)})`;
    for (const name of [
      "SECCOMP_IOCTL_NOTIF_ADDFD",
      "SECCOMP_ADDFD_FLAG_SEND",
      "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP",
    ])
      out.set(name, { available: null, reason });
  } else {
    // No notification ever exists on this listener: a known ioctl answers ENOENT for any id.
    const none = 0xffffffff;
    const isEnoent = (r: number) => r === -E.ENOENT;
    out.set(
      "SECCOMP_IOCTL_NOTIF_ADDFD",
      answer(a.notifAddFd(listener, none, none, listener, 0, 0), isEnoent, [E.EINVAL, E.ENOTTY]),
    );
    out.set(
      "SECCOMP_ADDFD_FLAG_SEND",
      answer(a.notifAddFd(listener, none, none, listener, 0, 1), isEnoent, [E.EINVAL, E.ENOTTY]),
    );
    out.set(
      "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP",
      answer(a.notifSyncWakeUp(listener), (r) => r === 0, [E.EINVAL, E.ENOTTY]),
    );
    a.close(listener);
  }
  const flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  out.set(
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    answer(a.seccompFlagsProbe(flags), (r) => r === -E.EFAULT, [E.EINVAL]),
  );
}

function probeProcess(a: Addon, out: Map<string, Answer>): void {
  const self = process.pid;
  const pidfd = a.pidfdOpen(self, 0);
  out.set(
    "pidfd_open",
    answer(pidfd, (r) => r >= 0, [E.ENOSYS]),
  );
  if (pidfd >= 0) {
    const dup = a.pidfdGetfd(pidfd, pidfd);
    out.set(
      "pidfd_getfd",
      answer(dup, (r) => r >= 0, [E.ENOSYS]),
    );
    if (dup >= 0) a.close(dup);
    a.close(pidfd);
  } else {
    out.set("pidfd_getfd", { available: null, reason: "no pidfd to probe with" });
  }
  const thread = a.pidfdOpen(self, PIDFD_THREAD);
  out.set(
    "PIDFD_THREAD",
    answer(thread, (r) => r >= 0, [E.EINVAL]),
  );
  if (thread >= 0) a.close(thread);
  out.set(
    "kcmp",
    answer(a.kcmp(self, self, KCMP_FILES, 0, 0), (r) => r === 0, [E.ENOSYS, E.EOPNOTSUPP]),
  );
  // Address 0 is never mapped: EFAULT means the call exists.
  const mem = a.readMem(self, 0, new Uint8Array(1), 1);
  out.set(
    "process_vm_readv",
    answer(mem, (r) => r === -E.EFAULT, [E.ENOSYS]),
  );
}

function probeNet(a: Addon, out: Map<string, Answer>): void {
  const k = a.constants;
  const fd = a.socket(k.AF_INET, k.SOCK_DGRAM, 0);
  if (fd < 0) {
    out.set("IP_LOCAL_PORT_RANGE", { available: null, reason: `no socket to probe with (${errnoName(fd)})` });
  } else {
    const range = new Uint8Array(4); // 0: the kernel's own range; only whether the option exists matters
    out.set(
      "IP_LOCAL_PORT_RANGE",
      answer(a.setsockoptBytes(fd, SOL_IP, IP_LOCAL_PORT_RANGE, range), (r) => r === 0, [E.ENOPROTOOPT]),
    );
    a.close(fd);
  }
  const diag = a.sockDiag(k.AF_INET, IPPROTO_TCP, 1 << TCP_LISTEN, new Uint8Array(48 * 1024));
  // Any error: the daemon reads /proc/net instead (sock-diag.ts), so it counts as absent.
  out.set(
    "sock_diag",
    diag >= 0 || diag === -E.ENOBUFS ? { available: true } : { available: false, reason: errnoName(diag) },
  );
}

function probeBpf(a: Addon, out: Map<string, Answer>): void {
  for (const [name, loads] of Object.entries(BPF_HOOKS)) {
    let result: Answer = { available: true };
    for (const [type, attach] of loads) {
      const r = a.bpfProgLoadProbe(type, attach);
      // EPERM: bpf() is not allowed here (no CAP_BPF, lockdown): the kernel's support is unknown.
      const one = answer(r, (x) => x === 0, [E.EINVAL, E.ENOSYS, E.E2BIG]);
      if (one.available !== true) {
        result = one;
        if (one.available === false) break;
      }
    }
    out.set(name, result);
  }
}

/**
 * Probes the running kernel. hide: feature names to report as absent (tests only, from
 * SOCKSWITCH_TEST_HIDE_FEATURES); mountinfo: /proc/self/mountinfo's text (read when absent).
 */
export function probeKernel(a: Addon, hide: ReadonlySet<string>, mountinfo?: string): KernelInfo {
  const answers = new Map<string, Answer>();
  probeSeccomp(a, answers);
  probeProcess(a, answers);
  probeNet(a, answers);
  probeBpf(a, answers);
  let mounts: Map<string, string[]>;
  try {
    mounts = mountsByType(mountinfo ?? readFileSync("/proc/self/mountinfo", "utf8"));
  } catch {
    mounts = new Map();
  }
  const cgroup2 = mounts.get("cgroup2")?.[0] ?? null;
  const bpffs = mounts.get("bpf")?.[0] ?? null;
  answers.set(
    "cgroup2",
    cgroup2
      ? { available: true, reason: `mounted at ${cgroup2}` }
      : { available: false, reason: "not mounted" },
  );
  answers.set(
    "bpffs",
    bpffs ? { available: true, reason: `mounted at ${bpffs}` } : { available: false, reason: "not mounted" },
  );
  const features: FeatureReport[] = FEATURES.map((spec) => {
    if (hide.has(spec.name)) return { ...spec, available: false, reason: `hidden by ${HIDE_ENV}` };
    const got = answers.get(spec.name) ?? { available: null, reason: "not probed" };
    return { ...spec, ...got };
  });
  return { release: release(), machine: machine(), cgroup2, bpffs, features };
}

/**
 * The report with the cgroup v2 and bpffs mounts the daemon set up after the probe (its
 * datapath mounts them where they were missing): `sockswitch info` shows what is in use.
 */
export function withMounts(
  info: KernelInfo,
  inUse: { cgroup2: string | null; bpffs: string | null },
): KernelInfo {
  const cgroup2 = info.cgroup2 ?? inUse.cgroup2;
  const bpffs = info.bpffs ?? inUse.bpffs;
  const now: Record<string, string | null> = {
    cgroup2: info.cgroup2 ? null : cgroup2,
    bpffs: info.bpffs ? null : bpffs,
  };
  const features = info.features.map((f) => {
    const at = now[f.name];
    return at && f.available === false ? { ...f, available: true, reason: `set up by the daemon: ${at}` } : f;
  });
  return { ...info, cgroup2, bpffs, features };
}

/** The answers the trap handlers work by. An unknown kcmp is tried (its errors are handled). */
export function trapKernel(info: KernelInfo): TrapKernel {
  return {
    pidfdThread: feature(info, "PIDFD_THREAD").available === true,
    kcmp: feature(info, "kcmp").available !== false,
    ipLocalPortRange: feature(info, "IP_LOCAL_PORT_RANGE").available === true,
  };
}

/** Logs the report once: one line with every answer, and a warning per optional feature missing. */
export function logKernel(info: KernelInfo, hidden: ReadonlySet<string>, log: Logger): void {
  const features: Record<string, boolean | null> = {};
  for (const f of info.features) features[f.name] = f.available;
  log.info(
    { kernel: info.release, machine: info.machine, cgroup2: info.cgroup2, bpffs: info.bpffs, features },
    "kernel features",
  );
  if (hidden.size > 0)
    log.warn({ hidden: [...hidden] }, `${HIDE_ENV} hides kernel features (for tests only)`);
  for (const f of info.features) {
    if (f.need === "optional" && f.available === false)
      log.warn(
        { feature: f.name, since: f.since, reason: f.reason },
        `kernel without ${f.name}: ${f.without}`,
      );
    if (f.need === "required" && f.available === null)
      log.warn(
        { feature: f.name, since: f.since, reason: f.reason },
        `could not tell whether the kernel has ${f.name}`,
      );
  }
}
