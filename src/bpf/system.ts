// Where BPF programs live on this host: the cgroup v2 hierarchy (found in
// /proc/self/mountinfo: it is not always /sys/fs/cgroup; hybrid layouts mount it at
// /sys/fs/cgroup/unified), the daemon's own cgroup (/proc/self/cgroup, the "0::" line),
// bpffs, and the directory where a daemon pins its maps and links so that a restarted daemon
// takes them over. A daemon in a mount namespace of its own (`ip netns exec` makes one, with a
// fresh /sys) mounts the cgroup v2 hierarchy there itself; its pins go to the bpffs of the
// mount namespace it was started from (found through an ancestor's /proc/PID/root) when that
// namespace sees the same state dir, so that the next daemon started the same way finds them;
// only where there is none does it mount bpffs in its own namespace, and its pins then live
// only as long as that namespace (said in a warning).
// proc(5) (mountinfo, cgroup, /proc/PID/root), cgroups(7), mount_namespaces(7), bpf(2) (BPF_OBJ_PIN).

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
  statfsSync,
  statSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { Addon } from "../native/addon.js";

export const BPFFS = "/sys/fs/bpf";
/** statfs(2) f_type of bpffs (linux/magic.h BPF_FS_MAGIC). */
const BPF_FS_MAGIC = 0xcafe4a11;
/** Where this process's bpffs is (ensureBpffs): /sys/fs/bpf, or an outer namespace's through an fd. */
let bpffsRoot = BPFFS;
/** The root of the mount namespace that bpffs belongs to, as a prefix of paths ("": this one's). */
let viewRoot = "";

/** Every daemon's pins are under here, one directory per daemon (pinDirOf). */
export function pinRoot(): string {
  return join(bpffsRoot, "sockswitch");
}

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
 * True when this process has a mount namespace of its own: not init's; where init's cannot be
 * read, not that of every ancestor whose namespace can be read (`ip netns exec` makes one);
 * and where none can be read (a daemon reparented to an init it may not inspect), true: its
 * pins are then treated as its own, which the daemon says, rather than as the host's.
 */
export function privateMountNs(): boolean {
  const own = mountNsOf("self");
  if (own === null) return false;
  const init = mountNsOf(1);
  if (init !== null) return own !== init;
  let compared = false;
  const seen = new Set<number>();
  for (let pid = parentOf("self"); pid !== null && !seen.has(pid) && seen.size < 64; pid = parentOf(pid)) {
    seen.add(pid);
    const ns = mountNsOf(pid);
    if (ns === null) continue;
    if (ns !== own) return true;
    compared = true;
  }
  return !compared;
}

/** The mount namespace of process pid (its /proc/PID/ns/mnt link), or null when unreadable. */
function mountNsOf(pid: number | "self"): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return null;
  }
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

/** Where a daemon's pins go (ensureBpffs). */
export interface Bpffs {
  /** 0, or -errno of the mount that failed. */
  readonly err: number;
  /** This daemon mounted bpffs in a mount namespace of its own: its pins end with that namespace. */
  readonly private: boolean;
  /** The outer mount namespace's bpffs it pins in instead (/proc/PID/root/sys/fs/bpf), or null. */
  readonly outer: string | null;
}

let resolved: Bpffs | null = null;

/**
 * Finds (once per process) the bpffs where the daemon with state dir stateDir pins: the one
 * mounted at /sys/fs/bpf here; else, in a mount namespace of its own, the one at /sys/fs/bpf
 * of the nearest ancestor process in another mount namespace that sees the same state dir (the
 * namespace it was started from: a daemon started there again finds the pins), held open by a
 * directory fd; else one it mounts at /sys/fs/bpf (private when the namespace is its own).
 * pinRoot() follows the answer.
 */
export function ensureBpffs(addon: Addon, stateDir: string): Bpffs {
  if (resolved !== null) return resolved;
  if (mounts().some((m) => m.point === BPFFS && m.fstype === "bpf")) {
    resolved = { err: 0, private: false, outer: null };
    return resolved;
  }
  const outer = privateMountNs() ? outerBpffs(stateDir) : null;
  if (outer !== null) {
    bpffsRoot = `/proc/self/fd/${outer.fd}`;
    viewRoot = outer.root;
    resolved = { err: 0, private: false, outer: outer.path };
    return resolved;
  }
  try {
    mkdirSync(BPFFS, { recursive: true });
  } catch {
    return { err: -13, private: false, outer: null }; // EACCES: cannot make the mount point
  }
  const err = addon.bpfMount("bpf", BPFFS);
  if (err < 0) return { err, private: false, outer: null };
  resolved = { err: 0, private: privateMountNs(), outer: null };
  return resolved;
}

/**
 * The cgroup v2 hierarchy and the bpffs this daemon uses, after its datapath set them up
 * (ensureCgroup2, ensureBpffs may have mounted them; the bpffs may be an outer namespace's,
 * /proc/PID/root/sys/fs/bpf); null where none.
 */
export function mountsInUse(): { cgroup2: string | null; bpffs: string | null } {
  return { cgroup2: cgroup2Mount(), bpffs: resolved === null ? null : (resolved.outer ?? BPFFS) };
}

/** The sentence a daemon logs when its pins end with it (ensureBpffs said private). */
export const PRIVATE_PINS =
  "bpffs was mounted in the daemon's own mount namespace and no outer one that sees its state dir has bpffs at /sys/fs/bpf: its BPF pins end with this daemon, so a restarted daemon does not take over the programs, the sockets' stamps or its servers' view of clients connected before (mount bpffs at /sys/fs/bpf on the host, or start the daemon with nsenter --net=/run/netns/NAME instead of ip netns exec)";

/** The parent of process pid (proc(5), /proc/PID/stat), or null. */
function parentOf(pid: number | "self"): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : null;
  } catch {
    return null;
  }
}

/**
 * The bpffs of the nearest ancestor in another mount namespace, when that namespace sees the
 * same state dir (same device and inode: a private /var/lib is another host's) and has bpffs
 * at /sys/fs/bpf: an fd of it (kept open for the daemon's life) and the path it was found at.
 */
function outerBpffs(stateDir: string): { fd: number; path: string; root: string } | null {
  let own: string;
  let state: { dev: bigint; ino: bigint };
  try {
    own = readlinkSync("/proc/self/ns/mnt");
    state = statSync(resolve(stateDir), { bigint: true });
  } catch {
    return null;
  }
  const seen = new Set<number>();
  for (let pid = parentOf("self"); pid !== null && !seen.has(pid) && seen.size < 64; pid = parentOf(pid)) {
    seen.add(pid);
    const ns = mountNsOf(pid);
    if (ns === null || ns === own) continue; // not ours to inspect (an init): its ancestors may be
    try {
      const root = `/proc/${pid}/root`;
      const there = statSync(join(root, resolve(stateDir)), { bigint: true });
      if (there.dev !== state.dev || there.ino !== state.ino) return null;
      const path = join(root, BPFFS);
      if (statfsSync(path).type !== BPF_FS_MAGIC) return null;
      return { fd: openDir(path), path, root };
    } catch {
      return null; // gone, not ours to read, or no such directory there
    }
  }
  return null;
}

/**
 * The bpffs directory where the daemon with state dir stateDir pins its maps and links: one
 * per state dir, which is what a restarted daemon shares with the one before it.
 */
export function pinDirOf(stateDir: string): string {
  const h = createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 16);
  return join(pinRoot(), h);
}

/** Removes a daemon's pins (its programs detach once nothing else holds their links). */
export function removePins(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** --clean: removes the pins of the daemon with state dir stateDir, wherever ensureBpffs finds them. */
export function cleanPins(addon: Addon, stateDir: string): void {
  if (addon.bpfBuilt() === 1 && ensureBpffs(addon, stateDir).err === 0) removePins(pinDirOf(stateDir));
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
    dirs = readdirSync(pinRoot());
  } catch {
    return 0;
  }
  for (const d of dirs) {
    try {
      const owner = readdirSync(join(pinRoot(), d)).find((e) => e.startsWith(OWNER));
      // Judged in the namespace the bpffs belongs to (its ancestor's view while this runs).
      if (owner === undefined || existsSync(viewRoot + decodeURIComponent(owner.slice(OWNER.length))))
        continue;
      removePins(join(pinRoot(), d));
      n++;
    } catch {
      // gone meanwhile, or not ours to read: leave it
    }
  }
  return n;
}
