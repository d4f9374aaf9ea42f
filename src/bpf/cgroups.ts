// App cgroups for the bpf datapath, and the datapath's other setup in the host (the blackhole
// route for --vip-cidr). Every app runs in a cgroup of its own, registered in ssw_cgroups (its
// id → the app's index), because the hooks judge each call for the app of the calling task
// (native/bpf/datapath-caller.h: a socket handed to another app acts with the receiver's
// identity). The host placement (run --new-netns=false) makes its sockets itself, with no
// trapped call: its cgroup is made under the cgroup the datapath's programs are attached to, and
// the sock_create program stamps every INET socket made there with the app's index. The default
// placement's sockets are made by the daemon: its cgroup is made under the cgroup the app's
// process is already in (a container's, a service's), so that the limits and accounting there
// still apply. Children inherit the cgroup. cgroups(7) (cgroup v2: cgroup.procs, the "no
// internal processes" rule), bpf-helpers(7) (bpf_get_current_cgroup_id: the directory's inode).

import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import type { Addon } from "../native/addon.js";
import type { Cidr } from "../net/cidr.js";

/** A cgroup made for one app: its directory and its id (the key of ssw_cgroups). */
export interface AppCgroup {
  readonly path: string;
  readonly id: bigint;
}

/**
 * Makes the app's cgroup under `parent` and moves process `pid` (the app's, before it runs its
 * command) into it. Throws a sentence that says what to do when it cannot (the app must then
 * not run: its sockets would carry no identity).
 */
export function placeInCgroup(parent: string, appId: string, pid: number): AppCgroup {
  const path = join(parent, `sockswitch-app-${appId}`);
  try {
    // Another daemon starting meanwhile sweeps empty app cgroups (sweepCgroups): this one may
    // go between the mkdir and the move (ENOENT); made again, it stays (a sweep runs once).
    for (let tries = 1; ; tries++) {
      try {
        mkdirSync(path);
        writeFileSync(join(path, "cgroup.procs"), String(pid));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT" || tries === 3) throw err;
      }
    }
  } catch (err) {
    removeCgroup(path);
    throw new Error(
      `cannot move the app into a cgroup of its own under ${parent} (${messageOf(err)}); the bpf datapath needs a cgroup v2 directory the daemon may write (no controllers enabled in its cgroup.subtree_control): make one writable, or run the daemon with --datapath seccomp`,
    );
  }
  return { path, id: statSync(path, { bigint: true }).ino };
}

/** Removes an app's cgroup once its processes are gone: true, or false while some remain (EBUSY). */
export function removeCgroup(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
}

/**
 * At start: removes the app cgroups under `parent` that hold no process any more (their apps
 * ended while no daemon could remove them); returns how many. A cgroup with processes stays.
 */
export function sweepCgroups(parent: string): number {
  let n = 0;
  let names: string[] = [];
  try {
    names = readdirSync(parent).filter((d) => d.startsWith("sockswitch-app-"));
  } catch {
    return 0;
  }
  for (const d of names) {
    try {
      rmdirSync(join(parent, d));
      n++;
    } catch {
      // EBUSY: its app (or what it left running) still runs there
    }
  }
  return n;
}

/**
 * The directory of process `pid`'s cgroup v2 under the hierarchy mounted at `root`
 * (/proc/PID/cgroup, cgroups(7)), or null when it lies outside what the daemon sees (a path
 * above its cgroup namespace's root) or cannot be read.
 */
export function cgroupDirOf(pid: number, root: string): string | null {
  try {
    for (const line of readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n")) {
      if (!line.startsWith("0::")) continue;
      const rel = line.slice(3) || "/";
      if (!rel.startsWith("/") || rel.split("/").includes("..")) return null;
      const dir = join(root, rel);
      return statSync(dir).isDirectory() ? dir : null;
    }
  } catch {
    // gone, or no cgroup v2 line
  }
  return null;
}

/**
 * Whether process `pid` runs in the daemon's network namespace (the host placement's sockets
 * are made where the app runs, and the hooks translate to this namespace's addresses).
 */
export function inDaemonNetns(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`) === readlinkSync("/proc/self/ns/net");
  } catch {
    return false;
  }
}

/** Tries to remove an exited app's cgroup, 200 ms apart (its process may not be reaped yet). */
const RMDIR_TRIES = 25;

/**
 * The apps' cgroups: each one's directory, and its id → the app's index in the map
 * ssw_cgroups (mapFd), which the socket hooks read (the calling task's app; for the host
 * placement, the stamp of the sockets it makes).
 */
export class AppCgroups {
  private readonly cgroups = new Map<string, AppCgroup>();
  /** Apps of the host placement (their sockets are made in their cgroup, not by the daemon). */
  private readonly hostPlaced = new Set<string>();
  private readonly key = new Uint8Array(8);
  private readonly value = new Uint8Array(4);

  constructor(
    private readonly addon: Addon,
    private readonly log: Pick<Logger, "warn">,
    /** The cgroup the programs are attached to (the host placement's parent). */
    private readonly attached: string,
    /** The cgroup v2 hierarchy's mount point. */
    private readonly root: string,
    private readonly mapFd: number,
  ) {}

  /**
   * Moves process pid of app appId (index in the maps) into a cgroup of its own: below the
   * programs' cgroup for the host placement (hostPlacement), else below its own cgroup (or the
   * programs' one when that lies outside the daemon's view). Throws a sentence.
   */
  place(appId: string, index: number, pid: number, hostPlacement: boolean): void {
    const parent = hostPlacement ? this.attached : (cgroupDirOf(pid, this.root) ?? this.attached);
    const cg = placeInCgroup(parent, appId, pid);
    this.cgroups.set(appId, cg);
    if (hostPlacement) this.hostPlaced.add(appId);
    new DataView(this.key.buffer).setBigUint64(0, cg.id, true);
    new DataView(this.value.buffer).setUint32(0, index, true);
    const r = this.addon.bpfMapUpdate(this.mapFd, this.key, this.value, 0);
    if (r < 0) {
      this.unplace(appId);
      throw new Error(`cannot register the app's cgroup with the bpf datapath (errno ${-r})`);
    }
  }

  /**
   * After a restart: takes back the cgroup an earlier daemon made for app appId, the one its
   * main process `pid` runs in, so that its end removes it and a host placement is known as
   * such again. Nothing when the app is known already or its process is not in such a cgroup.
   */
  adopt(appId: string, pid: number): void {
    if (this.cgroups.has(appId) || pid <= 0) return;
    const path = cgroupDirOf(pid, this.root);
    if (!path || basename(path) !== `sockswitch-app-${appId}`) return;
    try {
      this.cgroups.set(appId, { path, id: statSync(path, { bigint: true }).ino });
    } catch {
      return; // gone meanwhile
    }
    if (resolve(dirname(path)) === resolve(this.attached)) this.hostPlaced.add(appId);
  }

  /**
   * The cgroup an earlier daemon made for an app whose process was gone before this daemon
   * could adopt it: only the host placement's is found (below the programs' cgroup; a default
   * placement's lies below where the app ran, and is left), or null.
   */
  private placedBefore(appId: string): AppCgroup | null {
    const path = join(this.attached, `sockswitch-app-${appId}`);
    try {
      return { path, id: statSync(path, { bigint: true }).ino };
    } catch {
      return null;
    }
  }

  /** True when app appId runs in the host placement (in the daemon's network namespace). */
  isHostPlaced(appId: string): boolean {
    return this.hostPlaced.has(appId);
  }

  /** The app ended: its cgroup is forgotten, and removed once its processes are gone. */
  unplace(appId: string): void {
    const cg = this.cgroups.get(appId) ?? this.placedBefore(appId);
    if (!cg) return;
    this.cgroups.delete(appId);
    this.hostPlaced.delete(appId);
    new DataView(this.key.buffer).setBigUint64(0, cg.id, true);
    this.addon.bpfMapDelete(this.mapFd, this.key);
    let tries = 0;
    const attempt = (): void => {
      if (removeCgroup(cg.path)) return;
      if (++tries < RMDIR_TRIES) {
        setTimeout(attempt, 200).unref();
        return;
      }
      this.log.warn(
        { app: appId, cgroup: cg.path },
        "the app's cgroup still holds processes (children it left running); remove it once they end",
      );
    };
    attempt();
  }
}

/**
 * Fail closed: a connect to a virtual IP that no program translated (the programs gone) must
 * not leave through the default route. The daemon's namespace routes --vip-cidr nowhere
 * (ip-route(8) blackhole); a failure is logged.
 */
export function blackholeRoute(cidr: Cidr, log: Pick<Logger, "warn">): void {
  try {
    execFileSync("ip", [cidr.family === 6 ? "-6" : "-4", "route", "replace", "blackhole", cidr.text], {
      stdio: "pipe",
    });
  } catch (err) {
    log.warn({ cidr: cidr.text, err: messageOf(err) }, "cannot add the blackhole route for --vip-cidr");
  }
}
