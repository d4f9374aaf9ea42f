// App cgroups for the bpf datapath's host placement (run --new-netns=false), and the
// datapath's other setup in the host (the blackhole route for --vip-cidr). Such an app makes
// its sockets itself, with no trapped call; what identifies them is the cgroup they are made in:
// each app gets a cgroup of its own under the cgroup the datapath's programs are attached to,
// and the sock_create program stamps every INET socket made there with the app's index
// (native/bpf/datapath.bpf.c, ssw_cgroups). Its children inherit the cgroup. cgroups(7)
// (cgroup v2: cgroup.procs, the "no internal processes" rule), bpf-helpers(7)
// (bpf_get_current_cgroup_id: the cgroup directory's inode number).

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readlinkSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
    mkdirSync(path);
    writeFileSync(join(path, "cgroup.procs"), String(pid));
  } catch (err) {
    removeCgroup(path);
    throw new Error(
      `cannot move the app into a cgroup of its own under ${parent} (${messageOf(err)}); --new-netns=false with the bpf datapath needs a cgroup v2 directory the daemon may write (no controllers enabled in its cgroup.subtree_control), or run the app without --new-netns=false`,
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
 * The apps of the host placement: each one's cgroup below `parent`, and its id → the app's
 * index in the map ssw_cgroups (mapFd), which the sock_create program reads.
 */
export class HostPlacement {
  private readonly cgroups = new Map<string, AppCgroup>();
  private readonly key = new Uint8Array(8);
  private readonly value = new Uint8Array(4);

  constructor(
    private readonly addon: Addon,
    private readonly log: Pick<Logger, "warn">,
    private readonly parent: string,
    private readonly mapFd: number,
  ) {}

  /** Moves process pid of app appId (index in the maps) into its cgroup; throws a sentence. */
  place(appId: string, index: number, pid: number): void {
    const cg = placeInCgroup(this.parent, appId, pid);
    this.cgroups.set(appId, cg);
    new DataView(this.key.buffer).setBigUint64(0, cg.id, true);
    new DataView(this.value.buffer).setUint32(0, index, true);
    const r = this.addon.bpfMapUpdate(this.mapFd, this.key, this.value, 0);
    if (r < 0) {
      this.unplace(appId);
      throw new Error(`cannot register the app's cgroup with the bpf datapath (errno ${-r})`);
    }
  }

  /** The cgroup an earlier daemon made for the app (a restart), or null. */
  private placedBefore(appId: string): AppCgroup | null {
    const path = join(this.parent, `sockswitch-app-${appId}`);
    try {
      return { path, id: statSync(path, { bigint: true }).ino };
    } catch {
      return null;
    }
  }

  /** True when app appId runs in a cgroup of its own (placed). */
  has(appId: string): boolean {
    return this.cgroups.has(appId);
  }

  /** The app ended: its cgroup is forgotten, and removed once its processes are gone. */
  unplace(appId: string): void {
    const cg = this.cgroups.get(appId) ?? this.placedBefore(appId);
    if (!cg) return;
    this.cgroups.delete(appId);
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
