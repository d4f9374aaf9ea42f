// Unit tests of the apps' cgroups after a restart (src/bpf/cgroups.ts AppCgroups.adopt): a
// daemon that finds an app from before takes back the cgroup its process runs in, wherever it
// lies (a default placement's is below where the app was started, not below the programs'
// cgroup), so that the app's end removes it; a host placement's is known as such again.
// Needs root and cgroup v2 (skipped otherwise): real cgroups below this process's own.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AppCgroups } from "../../src/bpf/cgroups.js";
import { cgroup2Mount, ownCgroup } from "../../src/bpf/system.js";
import { loadAddon } from "../../src/native/addon.js";

const root = cgroup2Mount();
const own = ownCgroup();
const usable = process.getuid?.() === 0 && root !== null && own !== null;

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("app cgroups after a restart", { skip: !usable && "needs root and cgroup v2" }, () => {
  const base = join(root ?? "/", own ?? "/", `ssw-unit-${process.pid}`);
  const attached = join(base, "programs");
  const elsewhere = join(base, "session");
  const sleepers: ChildProcess[] = [];
  const warned: string[] = [];
  let cgroups: AppCgroups;

  /** A process moved into a new cgroup dir (as an earlier daemon's place() left it). */
  function appIn(dir: string): ChildProcess {
    mkdirSync(dir);
    const p = spawn("sleep", ["60"], { stdio: "ignore" });
    sleepers.push(p);
    writeFileSync(join(dir, "cgroup.procs"), String(p.pid));
    return p;
  }

  before(() => {
    mkdirSync(attached, { recursive: true });
    mkdirSync(elsewhere, { recursive: true });
    // mapFd -1: the map's delete fails (EBADF), which unplace ignores, as for an entry gone.
    cgroups = new AppCgroups(
      loadAddon(),
      { warn: (_o: unknown, m: string) => warned.push(m) } as never,
      attached,
      root as string,
      -1,
    );
  });

  after(async () => {
    for (const p of sleepers) p.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    for (const d of [
      join(attached, "sockswitch-app-h1"),
      join(elsewhere, "sockswitch-app-d1"),
      attached,
      elsewhere,
      base,
    ])
      if (existsSync(d)) rmdirSync(d);
  });

  /** Adopts app id's cgroup below parent, ends the app, waits for the cgroup's removal; isHostPlaced. */
  async function adoptThenEnd(parent: string, id: string): Promise<boolean> {
    const dir = join(parent, `sockswitch-app-${id}`);
    const p = appIn(dir);
    cgroups.adopt(id, p.pid as number);
    const hostPlaced = cgroups.isHostPlaced(id);
    p.kill("SIGKILL");
    cgroups.unplace(id);
    await until(`the removal of ${dir}`, () => !existsSync(dir));
    return hostPlaced;
  }

  test("a default placement's cgroup (below where the app ran) is taken back and removed at the app's end", async () => {
    assert.equal(await adoptThenEnd(elsewhere, "d1"), false);
    assert.deepEqual(warned, []);
  });

  test("a host placement's cgroup (below the programs' cgroup) is known as such again", async () => {
    assert.equal(await adoptThenEnd(attached, "h1"), true);
  });

  test("a process in a cgroup named for another app is not taken", () => {
    const p = spawn("sleep", ["60"], { stdio: "ignore" });
    sleepers.push(p);
    cgroups.adopt("x1", p.pid as number); // its cgroup is this test's own
    assert.equal(cgroups.isHostPlaced("x1"), false);
    cgroups.unplace("x1"); // nothing known: nothing removed
    assert.ok(existsSync(join(root as string, own as string)));
  });
});
