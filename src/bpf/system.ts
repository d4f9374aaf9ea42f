// Where BPF programs live on this host: the cgroup v2 hierarchy (found in
// /proc/self/mountinfo: it is not always /sys/fs/cgroup; hybrid layouts mount it at
// /sys/fs/cgroup/unified), the daemon's own cgroup (/proc/self/cgroup, the "0::" line),
// bpffs (mounted at /sys/fs/bpf when it is not), and the directory where a daemon pins its
// maps and links so that a restarted daemon takes them over. A daemon in a mount namespace of
// its own (`ip netns exec` makes one, with a fresh /sys) mounts the cgroup v2 hierarchy and
// bpffs there itself; its pins then live only as long as that namespace.
// proc(5) (mountinfo, cgroup), cgroups(7), mount_namespaces(7), bpf(2) (BPF_OBJ_PIN).

import { createHash } from "node:crypto";
import {
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { Addon } from "../native/addon.js";

export const BPFFS = "/sys/fs/bpf";
/** Every daemon's pins are under here, one directory per daemon (pinDirOf). */
export const PIN_ROOT = join(BPFFS, "sockswitch");

interface Mount {
  readonly root: string;
  readonly point: string;
  readonly fstype: string;
}

/** The mounts of this process's mount namespace (proc(5), /proc/PID/mountinfo). */
function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const f = pre.split(" ");
    const octal = (p: string): string =>
      p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8)));
    out.push({ root: octal(f[3] ?? ""), point: octal(f[4] ?? ""), fstype: post.split(" ")[0] ?? "" });
  }
  return out;
}

/** The mount point of the cgroup v2 hierarchy, or null when it is not mounted. */
export function cgroup2Mount(): string | null {
  return mounts().find((m) => m.fstype === "cgroup2" && m.root === "/")?.point ?? null;
}

/**
 * True when this process has a mount namespace of its own: not init's, or where init's cannot
 * be read, not its parent's (`ip netns exec` makes one).
 */
export function privateMountNs(): boolean {
  const ns = (pid: number | "self"): string | null => {
    try {
      return readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      return null;
    }
  };
  const own = ns("self");
  const other = ns(1) ?? ns(process.ppid);
  return own !== null && other !== null && own !== other;
}

/**
 * The cgroup v2 hierarchy's mount point. Where none is mounted and /sys/fs/cgroup is empty (a
 * fresh /sys, as `ip netns exec` makes in a mount namespace of its own), it is mounted there
 * first. null: there is none.
 */
export function ensureCgroup2(addon: Addon): string | null {
  const found = cgroup2Mount();
  if (found !== null) return found;
  const at = "/sys/fs/cgroup";
  if (!existsSync(at) || readdirSync(at).length > 0) return null;
  return addon.bpfMount("cgroup2", at) === 0 ? at : null;
}

/** This process's cgroup v2 path (relative to the hierarchy's root, starting with /), or null. */
export function ownCgroup(): string | null {
  for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n"))
    if (line.startsWith("0::")) return line.slice(3) || "/";
  return null;
}

/** The directory of this process's cgroup v2 (mounting the hierarchy if need be), or null. */
export function ownCgroupDir(addon: Addon): string | null {
  const root = ensureCgroup2(addon);
  const own = ownCgroup();
  return root === null || own === null ? null : join(root, own);
}

/** An O_RDONLY fd of a directory (close-on-exec, as libuv opens every file); throws like fs does. */
export function openDir(path: string): number {
  return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
}

/**
 * Makes sure bpffs is mounted at /sys/fs/bpf: 0 or -errno. private: this daemon mounted it in a
 * mount namespace of its own, so what it pins there goes with that namespace.
 */
export function ensureBpffs(addon: Addon): { err: number; private: boolean } {
  if (mounts().some((m) => m.point === BPFFS && m.fstype === "bpf")) return { err: 0, private: false };
  try {
    mkdirSync(BPFFS, { recursive: true });
  } catch {
    return { err: -13, private: false }; // EACCES: cannot make the mount point
  }
  return { err: addon.bpfMount("bpf", BPFFS), private: privateMountNs() };
}

/**
 * The bpffs directory where the daemon with state dir stateDir pins its maps and links: one
 * per state dir, which is what a restarted daemon shares with the one before it.
 */
export function pinDirOf(stateDir: string): string {
  const h = createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 16);
  return join(PIN_ROOT, h);
}

/** Removes a daemon's pins (its programs detach once nothing else holds their links). */
export function removePins(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

const OWNER = "owner=";

/** The name of the entry that records a pin directory's state dir: no "." (bpffs refuses it). */
export function ownerName(stateDir: string): string {
  return OWNER + encodeURIComponent(resolve(stateDir)).replaceAll(".", "%2E");
}

/**
 * Makes the daemon's pin directory (bpffs must be mounted) and records whose it is: a
 * directory named `owner=` + the state dir, URI-encoded with "." as %2E too (bpffs holds
 * only directories and pinned objects, and refuses names with a dot: EPERM), which
 * sweepOrphanPins reads. Throws what mkdir(2) throws.
 */
export function claimPinDir(stateDir: string): string {
  const dir = pinDirOf(stateDir);
  mkdirSync(dir, { recursive: true });
  const owner = ownerName(stateDir);
  if (owner.length <= 255) mkdirSync(join(dir, owner), { recursive: true });
  return dir;
}

/**
 * Removes the pins of daemons whose state dir no longer exists (a daemon that was killed and
 * whose state was thrown away: its programs would otherwise stay attached). Returns how many.
 */
export function sweepOrphanPins(): number {
  let n = 0;
  let dirs: string[];
  try {
    dirs = readdirSync(PIN_ROOT);
  } catch {
    return 0;
  }
  for (const d of dirs) {
    try {
      const owner = readdirSync(join(PIN_ROOT, d)).find((e) => e.startsWith(OWNER));
      if (owner === undefined || existsSync(decodeURIComponent(owner.slice(OWNER.length)))) continue;
      removePins(join(PIN_ROOT, d));
      n++;
    } catch {
      // gone meanwhile, or not ours to read: leave it
    }
  }
  return n;
}
