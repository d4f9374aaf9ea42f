// What sockswitch needs from the kernel, feature by feature: the Linux release that brought
// it, whether the daemon cannot run without it (required), works differently without it
// (optional: among them the hooks of the CONTINUE guard), is needed by the bpf datapath
// (bpf: without it --datapath auto picks seccomp; cgroup2 and bpffs the daemon also mounts
// when absent), or is not used at all (unused), and what happens without it. The probe (src/daemon/kernel-probe.ts) fills in what the running
// kernel offers; this file is pure: the table, the report's shape, mountinfo parsing, and
// the one sentence a daemon refuses to start with. README.md's kernel table says the same.

import { InvalidArgumentError } from "./errors.js";

/** pidfd_open flag (O_EXCL): a pidfd for a thread that is not a group leader (Linux 6.9). */
export const PIDFD_THREAD = 0x80;
/** kcmp(2) type: the two tasks' file tables (include/uapi/linux/kcmp.h). */
export const KCMP_FILES = 2;

export type Need = "required" | "optional" | "bpf" | "unused";

export interface FeatureSpec {
  readonly name: string;
  /** The mainline release that brought it ("5.14"), or a config note. */
  readonly since: string;
  readonly need: Need;
  /** What sockswitch uses it for. */
  readonly use: string;
  /** What happens on a kernel without it. */
  readonly without: string;
}

export interface FeatureReport extends FeatureSpec {
  /** true or false as probed; null when the probe could not tell. */
  readonly available: boolean | null;
  /** Why it is not available (or unknown): the probe's errno name, or a short note. */
  readonly reason?: string;
}

export interface KernelInfo {
  /** uname -r. */
  readonly release: string;
  /** uname -m. */
  readonly machine: string;
  /** Where cgroup v2 is mounted (the first such mount in /proc/self/mountinfo), or null. */
  readonly cgroup2: string | null;
  /** Where a BPF filesystem is mounted, or null. */
  readonly bpffs: string | null;
  readonly features: readonly FeatureReport[];
}

const BPF_WITHOUT = "--datapath bpf cannot run (auto picks seccomp)";
const GUARD_USE = "the CONTINUE guard (and --datapath bpf)";
const GUARD_WITHOUT =
  "the CONTINUE guard is off: a multithreaded app's bind, connect or send on a UNIX socket is continued with a window another thread can use (--strict-unix-sockets: EPERM), and the daemon carries out every send on an INET socket";

export const FEATURES: readonly FeatureSpec[] = [
  {
    name: "SECCOMP_USER_NOTIF",
    since: "5.0",
    need: "required",
    use: "apps' socket calls are handed to the daemon (seccomp user notification, a listener per app)",
    without: "the daemon cannot run",
  },
  {
    name: "SECCOMP_IOCTL_NOTIF_ADDFD",
    since: "5.9",
    need: "required",
    use: "socket() and accept() install the daemon's host socket in the app",
    without: "the daemon cannot run",
  },
  {
    name: "SECCOMP_ADDFD_FLAG_SEND",
    since: "5.14",
    need: "required",
    use: "the installed socket's fd is the trapped call's answer, in one step",
    without: "the daemon cannot run",
  },
  {
    name: "pidfd_open",
    since: "5.3",
    need: "required",
    use: "a handle on an app's process or thread",
    without: "the daemon cannot run",
  },
  {
    name: "pidfd_getfd",
    since: "5.6",
    need: "required",
    use: "the daemon takes a duplicate of the app's socket",
    without: "the daemon cannot run",
  },
  {
    name: "process_vm_readv",
    since: "3.2",
    need: "required",
    use: "the daemon copies addresses and datagrams out of the app",
    without: "the daemon cannot run",
  },
  {
    name: "PIDFD_THREAD",
    since: "6.9",
    need: "optional",
    use: "a pidfd for the calling thread, whatever its file table",
    without:
      "calls from a thread that is not its process's main thread go through the main thread's pidfd once kcmp shows they share a file table; a thread with a file table of its own gets EOPNOTSUPP",
  },
  {
    name: "kcmp",
    since: "3.5 (CONFIG_KCMP)",
    need: "optional",
    use: "checks that a thread shares its process's file table (used without PIDFD_THREAD)",
    without: "without PIDFD_THREAD too, calls from threads other than a process's main one get EOPNOTSUPP",
  },
  {
    name: "IP_LOCAL_PORT_RANGE",
    since: "6.3",
    need: "optional",
    use: "connections to other nodes take their source port from the app's block, chosen by the kernel",
    without:
      "the daemon binds a connection to another node to a free port of the app's block itself: one port per connection (TIME_WAIT included) instead of one per destination",
  },
  {
    name: "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP",
    since: "6.6",
    need: "optional",
    use: "the app's thread and the daemon take turns on one CPU for a trapped call",
    without: "trapped calls answered without an fd cost a little more",
  },
  {
    name: "sock_diag",
    since: "3.3 (inet_diag)",
    need: "optional",
    use: "the daemon lists sockets by state in the kernel (closed listeners, restart)",
    without: "it reads /proc/net instead, which is slower on a host with many connections",
  },
  {
    name: "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    since: "5.19",
    need: "unused",
    use: "not used: a trapped call stays interruptible by signals, as the kernel's own calls are",
    without: "nothing changes",
  },
  {
    name: "cgroup2",
    since: "4.5",
    need: "bpf",
    use: "the CONTINUE guard and --datapath bpf attach their programs to the daemon's cgroup",
    without:
      "the daemon mounts it at /sys/fs/cgroup when that is empty (a fresh /sys), else the CONTINUE guard is off",
  },
  {
    name: "bpffs",
    since: "4.4",
    need: "bpf",
    use: "the CONTINUE guard and --datapath bpf pin their maps and links, for the next daemon",
    without: "the daemon mounts it at /sys/fs/bpf (in its own mount namespace, its pins end with it)",
  },
  {
    name: "BPF_CGROUP_INET_SOCK_CREATE",
    since: "4.10",
    need: "bpf",
    use: "socket() hook",
    without: BPF_WITHOUT,
  },
  {
    name: "BPF_CGROUP_SOCK_OPS",
    since: "4.13",
    need: "bpf",
    use: "TCP events hook",
    without: BPF_WITHOUT,
  },
  {
    name: "BPF_CGROUP_INET{4,6}_BIND",
    since: "4.17",
    need: "optional",
    use: `bind() hooks: ${GUARD_USE}`,
    without: GUARD_WITHOUT,
  },
  {
    name: "BPF_CGROUP_INET{4,6}_CONNECT",
    since: "4.17",
    need: "optional",
    use: `connect() hooks: ${GUARD_USE}`,
    without: GUARD_WITHOUT,
  },
  {
    name: "BPF_CGROUP_UDP{4,6}_SENDMSG",
    since: "4.18",
    need: "optional",
    use: `UDP send hooks: ${GUARD_USE}`,
    without: GUARD_WITHOUT,
  },
  {
    name: "BPF_CGROUP_UDP{4,6}_RECVMSG",
    since: "5.2",
    need: "bpf",
    use: "UDP receive hooks",
    without: BPF_WITHOUT,
  },
  {
    name: "BPF_CGROUP_INET{4,6}_GETPEERNAME",
    since: "5.8",
    need: "bpf",
    use: "getpeername() hooks",
    without: BPF_WITHOUT,
  },
  {
    name: "BPF_CGROUP_INET{4,6}_GETSOCKNAME",
    since: "5.8",
    need: "bpf",
    use: "getsockname() hooks",
    without: BPF_WITHOUT,
  },
];

/** The environment variable, for tests only, that makes the probe report features as absent. */
export const HIDE_ENV = "SOCKSWITCH_TEST_HIDE_FEATURES";

/**
 * Names in SOCKSWITCH_TEST_HIDE_FEATURES (comma-separated; a comma inside braces, as in
 * BPF_CGROUP_INET{4,6}_CONNECT, is part of the name); an unknown name is a mistake.
 */
export function parseHidden(text: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const name of (text ?? "").split(/,(?![^{}]*\})/).map((x) => x.trim())) {
    if (name === "") continue;
    if (!FEATURES.some((f) => f.name === name))
      throw new InvalidArgumentError(
        `${HIDE_ENV} names "${name}", which is not a kernel feature sockswitch probes; use names shown by \`sockswitch info\``,
      );
    out.add(name);
  }
  return out;
}

/** Mount points by filesystem type from /proc/self/mountinfo text (proc(5)): fstype → paths. */
export function mountsByType(mountinfo: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    const point = f[4];
    const type = f[dash + 1];
    if (dash < 6 || point === undefined || type === undefined) continue;
    // Octal escapes (\040 for a space) in the mount point.
    const where = point.replace(/\\([0-7]{3})/g, (_m, o: string) =>
      String.fromCharCode(Number.parseInt(o, 8)),
    );
    const list = out.get(type) ?? [];
    list.push(where);
    out.set(type, list);
  }
  return out;
}

/** The report of one feature by name (it is always in the table). */
export function feature(info: KernelInfo, name: string): FeatureReport {
  const f = info.features.find((x) => x.name === name);
  if (!f) throw new Error(`no kernel feature named ${name}`);
  return f;
}

/**
 * The one sentence a daemon refuses to start with, naming every required feature this
 * kernel lacks; null when none is missing (a feature the probe could not tell is not).
 */
export function missingRequirement(info: KernelInfo): string | null {
  const missing = info.features.filter((f) => f.need === "required" && f.available === false);
  if (missing.length === 0) return null;
  const names = missing.map((f) => `${f.name} (Linux ${f.since})`);
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  const newest = missing
    .map((f) => f.since)
    .sort(compareReleases)
    .at(-1) as string;
  return `this kernel (Linux ${info.release}) lacks ${list}, which sockswitch needs; run the daemon on Linux ${newest} or later`;
}

/** Orders "5.9" before "5.14" (the leading numeric parts; notes after a space are ignored). */
export function compareReleases(a: string, b: string): number {
  const pa = (a.split(" ")[0] ?? "").split(".").map(Number);
  const pb = (b.split(" ")[0] ?? "").split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
