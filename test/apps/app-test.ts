// One test per (application, node shape) for the real-application suite: each gets a fresh
// AppNode (namespace + daemon) that is closed whatever happens, and a failure message that
// carries what the node saw. An application whose programs are not installed is skipped
// with the reason on a developer's machine, and fails under CI (`CI` set), where `.ci/run`
// installs every package and a missing one is a broken install step, not a pass.

import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { AppNode, findBinary, SHAPES, type Shape } from "./app-node.js";

export interface AppCase {
  /** The name tests and the README use ("nginx"). */
  app: string;
  /** Debian packages that provide the programs (.ci/run installs them). */
  packages: string[];
  /** Programs that must exist (looked up on PATH and in extraDirs). */
  needs: string[];
  extraDirs?: string[];
  /** Bound on the whole test (default 120 s). */
  timeoutMs?: number;
  /** The test body: start the server, run the clients, check what the server saw. */
  run(node: AppNode, shape: Shape): Promise<void>;
}

/** Registers one test per node shape for c. */
export function appTests(c: AppCase): void {
  for (const shape of SHAPES) {
    test(`${c.app} (${shape === "ipv4" ? "IPv4-only" : "dual-stack"} node)`, {
      timeout: c.timeoutMs ?? 120_000,
    }, async (t) => {
      const missing = c.needs.filter((b) => findBinary(b, c.extraDirs) === null);
      if (missing.length > 0) {
        const why = `${missing.join(", ")} not installed (Debian ${c.packages.join(", ")}; bash .ci/run installs them)`;
        if (process.env.CI) throw new Error(why);
        t.skip(why);
        return;
      }
      t.diagnostic(`packages: ${c.packages.map((p) => `${p} ${packageVersion(p)}`).join(", ")}`);
      const node = await AppNode.open(
        c.app
          .replace(/[^a-z0-9]/gi, "")
          .slice(0, 8)
          .toLowerCase(),
        shape,
      );
      try {
        await c.run(node, shape);
      } catch (err) {
        const e = err as Error;
        e.message = `${e.message}\n---- what the node saw ----\n${node.context()}`;
        throw e;
      } finally {
        await node.close();
      }
    });
  }
}

/** The installed version of a Debian package ("not installed" if dpkg does not know it). */
export function packageVersion(pkg: string): string {
  const r = spawnSync("dpkg-query", ["-W", pkg], { encoding: "utf8" });
  const version = r.status === 0 ? r.stdout.trim().split("\t")[1] : undefined;
  return version || "not installed";
}
