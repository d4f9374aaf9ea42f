// Stopping an app (`sockswitch stop`, `rm -f`), as `docker stop` does: SIGTERM to its main
// process, then, if the app is still there after the grace period, SIGKILL to every process
// it is made of — the main process's tree, and every process in the app's own network
// namespace (a child that outlived its parent is reparented away from the tree, but stays in
// the namespace). Processes are named by pid and start time, read before the first signal,
// so a pid reused meanwhile is never signalled. kill(2), proc(5).

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { App } from "../table/types.js";
import { processStart } from "./identity.js";

/** A process as first seen: pid and start time. */
interface Proc {
  readonly pid: number;
  readonly start: number;
}

function netns(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

/** The app's processes: the tree under its main process, and every process in its own netns. */
export function appProcesses(app: App): Proc[] {
  const own = netns(app.pid);
  const shared = own === null || own === netns(process.pid);
  const children = new Map<number, number[]>();
  const inNs: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      continue;
    }
    if (!shared && netns(pid) === own) inNs.push(pid);
  }
  const pids = new Set<number>(inNs);
  const todo = [app.pid];
  while (todo.length > 0 && pids.size < 100_000) {
    const pid = todo.pop() as number;
    pids.add(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  const out: Proc[] = [];
  for (const pid of pids) {
    const start = processStart(pid);
    if (start !== null) out.push({ pid, start });
  }
  return out;
}

/** Sends sig to the process if it is still the one first seen; false if it is gone. */
function signal(p: Proc, sig: NodeJS.Signals): boolean {
  if (processStart(p.pid) !== p.start) return false;
  try {
    process.kill(p.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the app: SIGTERM to its main process (SIGKILL at once when graceMs is 0), then
 * SIGKILL to all its processes if `gone` has not resolved within graceMs. Resolves when
 * `gone` does, or rejects after KILL_WAIT_MS more.
 */
export async function stopApp(app: App, graceMs: number, gone: Promise<void>): Promise<void> {
  // A main process that is gone (or whose pid now names another process) leaves nothing to
  // find by pid: the app's record goes when its last task does.
  const alive = processStart(app.pid) === app.pidStart;
  const procs = alive ? appProcesses(app) : [];
  const main = procs.find((p) => p.pid === app.pid);
  if (main && graceMs > 0) signal(main, "SIGTERM");
  const wait = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      gone.then(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  if (graceMs > 0 && (await wait(graceMs))) return;
  const now = processStart(app.pid) === app.pidStart ? appProcesses(app) : [];
  for (const p of now.concat(procs)) signal(p, "SIGKILL");
  if (!(await wait(KILL_WAIT_MS)))
    throw new Error(`app ${app.id} did not end within ${KILL_WAIT_MS / 1000} s of SIGKILL`);
}

const KILL_WAIT_MS = 5000;
