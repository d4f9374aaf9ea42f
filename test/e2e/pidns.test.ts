// End-to-end: a launcher that runs in another PID namespace than the daemon, as the first
// process of it (what a container's entrypoint is; made here with unshare(1), so that it runs
// without a container runtime): the app is handed over and served, named by its pid in the
// daemon's namespace; after the daemon is killed and started again the launcher hands the
// app over again (REATTACH) and a call the app makes meanwhile waits and then succeeds; when
// the app ends, processes it started end with it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { nsPids, parentPid } from "../../src/daemon/identity.js";
import { FIXTURES, Proc, PYTHON, ROOT, TestHost, waitFor } from "./harness.js";

const LAUNCHER = join(ROOT, "build", "sockswitch-launch");

describe("a launcher in a PID namespace of its own (as in a container)", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("pidns");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  /** `unshare --pid --fork --mount --mount-proc sockswitch-launch run ARGS` in the test host. */
  const contained = (args: string[]): Proc => {
    const p = new Proc(
      spawn(
        "ip",
        [
          "netns",
          "exec",
          host.ns,
          "unshare",
          "--pid",
          "--fork",
          "--mount",
          "--mount-proc",
          LAUNCHER,
          "--socket",
          host.socket,
          "run",
          ...args,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      ),
    );
    return p;
  };

  test("is served, survives a daemon restart, and its processes end with the app", async () => {
    const srv = contained([
      "--new-netns=false",
      "--ip",
      "10.77.140.1",
      "--",
      PYTHON,
      `${FIXTURES}/echo-server.py`,
      "0.0.0.0",
      "7600",
      "C",
    ]);
    try {
      await waitFor(
        "the server",
        () => {
          if (!srv.running) throw new Error(`exited: ${srv.stderr}`);
          return srv.stdout.includes('"listening"');
        },
        30_000,
      );
      const app = host
        .getJson<{ id: string; ips: string[]; pid: number }>("apps")
        .find((a) => a.ips.includes("10.77.140.1"));
      assert.ok(app);
      // The daemon's pid of the app; the launcher above it is pid 1 of the app's namespace.
      assert.equal(nsPids(app.pid)?.length, 2);
      assert.equal(nsPids(parentPid(app.pid) as number)?.at(-1), 1);
      const hello = await host.runToEnd([], [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.140.1", "7600"]);
      assert.match(hello.stdout, /"reply": "C hello"/, hello.stderr);

      await host.stopDaemon("SIGKILL");
      await host.start();
      await waitFor("the reattach", () => host.daemon?.stdout.includes('"msg":"app reattached"'), 30_000);
      const again = await host.runToEnd([], [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.140.1", "7600"]);
      assert.match(again.stdout, /"reply": "C hello"/, again.stderr);
      // As a runtime stops a container: SIGTERM to its first process, the launcher.
      process.kill(parentPid(app.pid) as number, "SIGTERM");
    } finally {
      const r = await srv.wait(10_000);
      if (r.code !== 143) srv.kill("SIGKILL");
    }
    const r = await srv.exited;
    assert.equal(r.code, 143, r.stderr);
    await waitFor("the app's removal", () => host.getJson("apps").length === 0, 5_000);
  });

  test("processes the app started end with it", async () => {
    const marker = `${300 + (process.pid % 1000)}.25`;
    const app = host.run([], ["sh", "-c", `sleep ${marker} & echo started`]);
    const r = await app.wait(20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /started/);
    await waitFor(
      "the orphan's end",
      () => host.exec(["pgrep", "-f", `sleep ${marker}`]).stdout.trim() === "",
      5_000,
    );
  });
});
