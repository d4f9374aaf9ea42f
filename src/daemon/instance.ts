// One daemon per socket and per state dir. Before anything else starts, the daemon makes
// its directories (a fresh host has neither /run/sockswitch nor /var/lib/sockswitch) and
// takes two locks that it holds for its whole life: `<state-dir>/daemon.lock` and
// `<socket>.lock`, each an exclusive flock(2) on a file that records the holder's pid. The
// kernel drops a lock when its holder dies (kill -9 included), so a stale lock cannot block
// a restart. A daemon that answers on the socket but holds no lock there (an older
// version, another state dir) is found by asking it over HTTP. Each refusal is one sentence.
// flock(2), unix(7).

import { ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { request } from "node:http";
import { dirname, join, resolve } from "node:path";
import { InstanceError } from "../core/errors.js";
import type { Addon } from "../native/addon.js";

const EWOULDBLOCK = 11;
/** How long a daemon found on the socket has to answer the probe. */
const PROBE_MS = 1000;

/** Makes the socket's directory (0755) and the state dir (0700) if they are missing. */
export function makeDirs(socket: string, stateDir: string): void {
  for (const [dir, mode, what] of [
    [dirname(socket), 0o755, "the socket's directory"],
    [stateDir, 0o700, "the state dir (--state-dir)"],
  ] as const) {
    try {
      mkdirs(dir, mode);
    } catch (err) {
      throw new InstanceError(
        `cannot create ${what} ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; create it or choose another path`,
      );
    }
  }
}

/**
 * mkdir -p, one component at a time (Node 20's recursive mkdirSync never returns for some
 * paths, e.g. under /proc). Components that exist are left as they are.
 */
function mkdirs(dir: string, mode: number): void {
  const parts = resolve(dir).split("/").filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const p = `/${parts.slice(0, i).join("/")}`;
    try {
      mkdirSync(p, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/** Takes an exclusive lock on path for the life of this process, or says who holds it. */
function lock(addon: Addon, path: string, what: string, hint: string): void {
  let fd: number;
  try {
    fd = openSync(path, "a+", 0o600);
  } catch (err) {
    throw new InstanceError(
      `cannot open the lock file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const rc = addon.flock(fd, 1);
  if (rc === -EWOULDBLOCK) {
    const pid = readPid(path);
    throw new InstanceError(
      `another sockswitch daemon${pid ? ` (pid ${pid})` : ""} already uses ${what}; stop it first, or ${hint}`,
    );
  }
  if (rc < 0) throw new InstanceError(`cannot lock ${path}: errno ${-rc}`);
  // The fd stays open (and the lock held) until the process ends: it is never closed.
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // The pid is only a hint for the next daemon's message.
  }
}

function readPid(path: string): number | null {
  try {
    const n = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Whether something answers HTTP on the UNIX socket at path within PROBE_MS. */
export function daemonAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: path, path: "/healthz", method: "GET", timeout: PROBE_MS }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    // ENOENT, ECONNREFUSED (a stale socket file), a timeout: nobody serves there.
    req.on("error", () => resolve(false));
    req.end();
  });
}

/**
 * Claims the socket and the state dir for this daemon; throws an InstanceError when another
 * daemon has either. Call before opening the store or binding anything.
 */
export async function claimInstance(addon: Addon, socket: string, stateDir: string): Promise<void> {
  makeDirs(socket, stateDir);
  lock(
    addon,
    join(stateDir, "daemon.lock"),
    `the state dir ${stateDir}`,
    "give this one its own --state-dir and --socket",
  );
  lock(addon, `${socket}.lock`, `the socket ${socket}`, "give this one its own --socket");
  if (await daemonAnswers(socket))
    throw new InstanceError(
      `a sockswitch daemon already answers on ${socket}; stop it first, or give this one its own --socket`,
    );
}
