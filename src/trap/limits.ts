// What one app may hold in the daemon at once, checked where it would take more: trapped
// calls the daemon waits on (each holds a descriptor), and host ports. Waits are also
// bounded for all apps together, by half the daemon's descriptor limit (RLIMIT_NOFILE,
// read from /proc/self/limits, getrlimit(2)), so that many apps cannot use up the
// descriptors the daemon needs to accept new apps, connections and its own sockets.
// A bound reached is answered with the errno the kernel gives for a resource it lacks and
// logged (rate-limited); docs/errors.md lists them.

import { readdirSync, readFileSync } from "node:fs";
import { openSocketInodes } from "../net/proc-net.js";
import { withdrawBinding } from "./binding.js";
import type { AppSession } from "./session.js";

/** How often the descriptor limit is read again (prlimit(1) can change it at any time). */
const RLIMIT_REFRESH_MS = 5000;

let totalWaits = 0;
let budget = 0;
let budgetAt = 0;

/** The daemon's soft RLIMIT_NOFILE (/proc/self/limits, getrlimit(2)); 8192 if unreadable. */
export function descriptorLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m?.[1] === "unlimited" ? 1 << 20 : Number(m?.[1] ?? 8192);
  } catch {
    return 8192;
  }
}

/** True for the errors of a full descriptor table (the daemon's: EMFILE; the host's: ENFILE). */
export function isOutOfDescriptors(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === "EMFILE" || code === "ENFILE";
}

/** The sentence for a daemon that needed a descriptor and had none left. */
export function outOfDescriptors(): Error {
  let detail = "";
  try {
    detail = ` (${readdirSync("/proc/self/fd").length} of ${descriptorLimit()} in use)`;
  } catch {
    // no descriptor left even to count them
  }
  return new Error(
    `the daemon is out of file descriptors${detail}; raise its limit (LimitNOFILE, ulimit -n) or stop the app that holds them (sockswitch get apps)`,
  );
}

/** Half the daemon's soft RLIMIT_NOFILE (re-read every few seconds). */
function waitBudget(): number {
  const now = Date.now();
  if (budget > 0 && now - budgetAt < RLIMIT_REFRESH_MS) return budget;
  budgetAt = now;
  budget = Math.max(16, Math.floor(descriptorLimit() / 2));
  return budget;
}

/**
 * Whether the app may have one more call waited on; counts it if so (release with
 * waitEnded), logs if not. The caller answers a refusal with ENOBUFS.
 */
export function mayWait(s: AppSession): boolean {
  const cap = s.host.config.waitsPerApp;
  if (s.waiting < cap && totalWaits < waitBudget()) {
    totalWaits++;
    return true;
  }
  const mine = s.waiting >= cap;
  s.host.limited.warn(
    `waits|${mine ? s.app.id : "all"}`,
    mine
      ? { app: s.app.id, waiting: s.waiting, limit: cap }
      : { app: s.app.id, waiting: totalWaits, limit: waitBudget() },
    mine
      ? "the app has as many blocked calls as it may (--max-waits-per-app); answered ENOBUFS"
      : "the daemon waits on as many calls as half its descriptor limit allows; answered ENOBUFS",
  );
  return false;
}

export function waitEnded(): void {
  if (totalWaits > 0) totalWaits--;
}

/**
 * Whether the app may take one more host port. At the bound, records of its sockets that
 * are gone (closed within the last second, before the reconcile pass saw it) are
 * withdrawn first; then a refusal is logged and the caller answers EADDRINUSE, as the
 * kernel does when no port is left.
 */
export function mayTakePort(s: AppSession): boolean {
  const cap = s.host.config.portsPerApp;
  const reg = s.host.sockets;
  if (reg.countOf(s.app.id) < cap) return true;
  const live = openSocketInodes(s.pids());
  for (const b of reg.bindingsOf(s.app.id))
    if (b.inode !== 0 && !live.has(b.inode)) withdrawBinding(s.host, b);
  if (reg.countOf(s.app.id) < cap) return true;
  s.host.limited.warn(
    `ports|${s.app.id}`,
    { app: s.app.id, limit: cap },
    "the app holds as many host ports as it may (--max-ports-per-app); bind answered EADDRINUSE",
  );
  return false;
}
