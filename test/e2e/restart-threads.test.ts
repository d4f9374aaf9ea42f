// End-to-end: the daemon is killed (kill -9) and started again while threaded apps run: a
// thread-pool server whose workers wait in accept(), and a client whose threads keep
// connecting. Calls made while no daemon runs wait and then succeed; the workers' accept()
// calls, received by the old daemon and never answered, are restarted by the new one
// (daemon/takeover.ts finds each waiting thread); a Go client with many goroutines is
// served afterwards. Once on the kernel's own features and once with PIDFD_THREAD and
// sock_diag hidden (SOCKSWITCH_TEST_HIDE_FEATURES): every call then goes through the
// process's pidfd (trap/thread-fds.ts), and the restart reads the socket list from /proc/net.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PIDFD_THREAD } from "../../src/core/kernel-info.js";
import { loadAddon } from "../../src/native/addon.js";
import { FIXTURES, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";
import { goEcho, HIDE } from "./kernel-helpers.js";

const THREADS = `${FIXTURES}/threads.py`;

/** Warnings and errors a daemon logged (for a failure's message). */
function complaints(log: string): string {
  return log
    .split("\n")
    .filter((l) => /"level":(40|50)/.test(l))
    .join("\n");
}

function kernelHasPidfdThread(): boolean {
  const a = loadAddon();
  const fd = a.pidfdOpen(process.pid, PIDFD_THREAD);
  if (fd >= 0) a.close(fd);
  return fd >= 0;
}

const MODES = [
  { name: "the kernel's own features", env: {} as Record<string, string>, net: 65 },
  { name: "PIDFD_THREAD and sock_diag hidden", env: { [HIDE]: "PIDFD_THREAD,sock_diag" }, net: 67 },
];
const skipHidden = kernelHasPidfdThread()
  ? false
  : "this kernel has no PIDFD_THREAD: the first pass took that path";

for (const mode of MODES) {
  describe(`daemon restart with threaded apps (${mode.name})`, {
    skip: mode.env[HIDE] ? skipHidden : false,
  }, () => {
    let host: TestHost;
    const vip = (n: number) => `10.77.${mode.net}.${n}`;

    before(async () => {
      host = new TestHost("rthr");
      await host.start({ env: mode.env });
    });

    after(async () => {
      await host?.cleanup();
    });

    test("kill -9 while threads connect: nothing fails; workers waiting in accept() serve again", async () => {
      const srv = host.run(["--ip", vip(1)], [PYTHON, THREADS, "server", "0.0.0.0", "7900", "R", "4"]);
      await waitFor("thread-pool server", () => srv.stdout.includes('"listening"'));
      const loop: Proc = host.run(
        ["--ip", vip(2)],
        [PYTHON, THREADS, "loop", vip(1), "7900", "4", "40", "0.1"],
      );
      await waitFor("two rounds", () => loop.stdout.includes('{"round": 2}'), 60_000);
      const old = await host.stopDaemon("SIGKILL");
      assert.equal(loop.stdout.includes('"summary"'), false, "the loop ended before the daemon was down");
      await host.start({ env: mode.env });
      const r = await loop.wait(180_000);
      const sum = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { ok?: number; errors?: string[] };
      const why = () =>
        `${r.stdout.slice(-3000)}\n${r.stderr}\nold daemon:\n${complaints(old?.stdout ?? "")}\nnew daemon:\n${complaints(host.daemon?.stdout ?? "")}`;
      assert.deepEqual({ ok: sum.ok, errors: sum.errors }, { ok: 160, errors: [] }, why());
      await waitFor(
        "both apps reattached",
        () => (host.daemon?.stdout.match(/"msg":"app reattached"/g) ?? []).length === 2,
      );

      const go = await host.runToEnd(
        ["--ip", vip(3)],
        [goEcho(), "client", `${vip(1)}:7900`, "50", "R"],
        90_000,
      );
      const g = JSON.parse(go.stdout.trim().split("\n").pop() ?? "{}") as { ok?: number; errors?: string[] };
      assert.deepEqual({ ok: g.ok, errors: g.errors }, { ok: 50, errors: [] }, go.stdout + go.stderr);
      await waitFor("every connection accepted", () => {
        const peers = srv.stdout
          .split("\n")
          .filter((l) => l.includes('"accepted"'))
          .map((l) => (JSON.parse(l) as { accept_peer: [string, number] }).accept_peer[0]);
        return peers.length === 210 && peers.filter((p) => p === vip(3)).length === 50;
      });
      srv.kill("SIGKILL");
      await srv.wait();
    });
  });
}
