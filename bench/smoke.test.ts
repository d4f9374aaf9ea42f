// Keeps the benchmark harness from rotting: runs `bench/run.ts --smoke` (every measure and
// path, tiny counts, about a minute) into a temp dir and checks the shape of what it
// writes. Not part of `npm test` (benchmarks are not timed tests); run it with
//   node --import tsx --test bench/smoke.test.ts
// Needs root and the Debian packages listed in bench/README.md; skipped without them.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BENCH, ROOT } from "./env.js";

const missing = ["iperf3", "redis-server", "redis-benchmark", "nft", "cc", "etcd"].filter(
  (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0,
);
const skip =
  process.getuid?.() !== 0 ? "needs root" : missing.length > 0 ? `missing ${missing.join(", ")}` : false;

test("the benchmark harness runs every measure on every path and writes JSON, SVG and Markdown", {
  skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "sswb-smoke-"));
  try {
    const out = join(dir, "smoke.json");
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", join(BENCH, "run.ts"), "--smoke", "--out", out],
      { cwd: ROOT, encoding: "utf8", timeout: 300_000 },
    );
    assert.equal(r.status, 0, `bench --smoke failed:\n${r.stderr}\n${r.stdout}`);
    const j = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(j.runs, 1);
    assert.deepEqual(j.failures, []);
    // The bpf paths where this machine can run the bpf datapath (else the report says why not).
    const bpf = j.skipped ? [] : ["sockswitch-bpf", "sockswitch-bpf-host"];
    for (const k of ["throughput", "rr", "crr", "redis"]) {
      for (const p of ["host", "bridge", "sockswitch", ...bpf]) {
        assert.ok(j.metrics[k][p] > 0, `${k} ${p}: ${j.metrics[k][p]}`);
        assert.equal(j.metrics[k].per_run[p].length, 1);
      }
      assert.ok(j.ratios[k].sockswitch_vs_host > 0);
      assert.ok(j.ratios[k].bridge_vs_host > 0);
    }
    for (const k of ["connect_p50_us", "connect_p99_us", "socket_p50_us", "socket_p99_us"]) {
      assert.equal(typeof j.metrics.trap[k], "number", k);
    }
    for (const k of ["send_p50_us", "addfd_p50_us"]) assert.ok(j.metrics.trap.floor[k] > 0, k);
    assert.ok(j.metrics.daemon_rss.services_0_mb > 0);
    assert.ok(j.metrics.daemon_rss.services_10_mb > 0);
    assert.equal(j.metrics.cluster.per_sample.register_ms.length, 6); // 3 cycles × 2 other hosts
    for (const k of ["register_p50_ms", "register_p99_ms", "remove_p50_ms", "remove_p99_ms"])
      assert.ok(j.metrics.cluster[k] >= 0, k);
    assert.match(readFileSync(join(dir, "smoke.svg"), "utf8"), /^<svg [^>]*>/);
    assert.match(readFileSync(join(dir, "smoke.md"), "utf8"), /\| crr \|/);
    // Nothing of ours is left behind.
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    assert.doesNotMatch(left, new RegExp(`sswb-\\w+-${r.pid}-`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(existsSync(join(BENCH, "build", "netbench")));
});
