// End-to-end: an app that floods the daemon with trapped calls does not starve another
// (docs/security.md, promise 15). One app spins socket()+close() as fast as it can (the
// benchmark's flood tool); meanwhile another app makes socket()+connect() rounds and must
// get through all of them, each well within a generous bound. Not a timing test: the
// bound only catches starvation (the benchmark's fairness measure gives the figures).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { must, PYTHON, ROOT, TestHost, waitFor } from "./harness.js";

const ROUNDS = 300;
/** A round slower than this is starvation, not noise, even on a busy 2-CPU machine. */
const BOUND_MS = 1000;

describe("fair service", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("fairness");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("a flooding app does not starve another app's calls", async () => {
    const flood = join(host.dir, "flood");
    must("cc", [
      "-O2",
      "-o",
      flood,
      "-I",
      join(ROOT, "bench", "tools"),
      join(ROOT, "bench", "tools", "flood.c"),
    ]);
    must("chmod", ["755", host.dir, flood]);
    const server = host.run(
      ["--ip", "10.77.120.1"],
      [
        PYTHON,
        "-c",
        "import socket\ns=socket.socket(); s.bind(('0.0.0.0', 7000)); s.listen(512); print('listening', flush=True)\nwhile True: s.accept()[0].close()",
      ],
    );
    await waitFor("the server", () => server.stdout.includes("listening"));
    const flooder = host.run(["--user", "nobody"], [flood, "120"]);
    await waitFor("the flood", () => flooder.stdout.includes("flooding"));
    const victim = `import json, socket, time
worst, t0 = 0, time.monotonic()
for i in range(${ROUNDS}):
    a = time.monotonic(); s = socket.socket(); s.connect(("10.77.120.1", 7000)); s.close()
    worst = max(worst, time.monotonic() - a)
print(json.dumps({"worst_ms": round(worst * 1000), "total_s": round(time.monotonic() - t0, 1)}))`;
    const r = await host.runToEnd(["--user", "nobody"], [PYTHON, "-c", victim], 120_000);
    flooder.kill("SIGTERM");
    const done = await flooder.wait(10_000);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { worst_ms: number; total_s: number };
    assert.ok(out.worst_ms < BOUND_MS, `a round took ${out.worst_ms} ms during the flood`);
    const rate = JSON.parse(done.stdout.trim().split("\n").pop() ?? "{}") as { calls?: number };
    assert.ok((rate.calls ?? 0) > 1000, `the flood did not flood: ${done.stdout}`);
  });
});
