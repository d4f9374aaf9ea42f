// App cgroups for the bpf datapath's host placement (run --new-netns=false). Such an app makes
// its sockets itself, with no trapped call; what identifies them is the cgroup they are made in:
// each app gets a cgroup of its own under the cgroup the datapath's programs are attached to,
// and the sock_create program stamps every INET socket made there with the app's index
// (native/bpf/datapath.bpf.c, ssw_cgroups). Its children inherit the cgroup. cgroups(7)
// (cgroup v2: cgroup.procs, the "no internal processes" rule), bpf-helpers(7)
// (bpf_get_current_cgroup_id: the cgroup directory's inode number).

import { mkdirSync, readdirSync, readlinkSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { messageOf } from "../core/errors.js";

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
