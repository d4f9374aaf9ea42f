// End-to-end: the daemon is killed (kill -9) and started again while threaded apps run: a
// thread-pool server whose workers wait in accept(), and a client whose threads keep
// connecting. Calls made while no daemon runs wait and then succeed; the workers' accept()
// calls, received by the old daemon and never answered, are restarted by the new one
// (daemon/takeover.ts finds each waiting thread); a Go client with many goroutines is
// served afterwards. On a kernel without PIDFD_THREAD every one of these calls goes through
// the process's pidfd (trap/thread-fds.ts).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FIXTURES, PYTHON, TestHost, waitFor } from "./harness.js";
import { goEcho } from "./kernel-helpers.js";

const THREADS = `${FIXTURES}/threads.py`;

describe("daemon restart with threaded apps", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("rthr");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("kill -9 while threads connect: nothing fails; workers waiting in accept() serve again", async () => {
    const srv = host.run(["--ip", "10.77.65.1"], [PYTHON, THREADS, "server", "0.0.0.0", "7900", "R", "4"]);
    await waitFor("thread-pool server", () => srv.stdout.includes('"listening"'));
    const loop = host.run(
      ["--ip", "10.77.65.2"],
      [PYTHON, THREADS, "loop", "10.77.65.1", "7900", "4", "40", "0.1"],
    );
    await waitFor("two rounds", () => loop.stdout.includes('{"round": 2}'), 60_000);
    await host.stopDaemon("SIGKILL");
    assert.equal(loop.stdout.includes('"summary"'), false, "the loop ended before the daemon was down");
    await host.start();
    const r = await loop.wait(180_000);
    const sum = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { ok?: number; errors?: string[] };
    assert.deepEqual({ ok: sum.ok, errors: sum.errors }, { ok: 160, errors: [] }, r.stdout + r.stderr);
    await waitFor(
      "both apps reattached",
      () => (host.daemon?.stdout.match(/"msg":"app reattached"/g) ?? []).length === 2,
    );

    const go = await host.runToEnd(
      ["--ip", "10.77.65.3"],
      [goEcho(), "client", "10.77.65.1:7900", "50", "R"],
      90_000,
    );
    const g = JSON.parse(go.stdout.trim().split("\n").pop() ?? "{}") as { ok?: number; errors?: string[] };
    assert.deepEqual({ ok: g.ok, errors: g.errors }, { ok: 50, errors: [] }, go.stdout + go.stderr);
    await waitFor("every connection accepted", () => {
      const peers = srv.stdout
        .split("\n")
        .filter((l) => l.includes('"accepted"'))
        .map((l) => (JSON.parse(l) as { accept_peer: [string, number] }).accept_peer[0]);
      return peers.length === 210 && peers.filter((p) => p === "10.77.65.3").length === 50;
    });
    srv.kill("SIGKILL");
    await srv.wait();
  });
});
