// End-to-end: a bpf daemon started with `ip netns exec` whose starting shell has exited (the
// daemon is reparented, here to an init whose namespaces even root may not read) never pins in
// a bpffs of its own silently: it pins in an outer namespace's bpffs (found through an ancestor),
// or it says that its pins end with it (PRIVATE_PINS). It pinned silently before: a restart then
// lost the identity of connections to apps from before it, and admission at their pool ports.
// Skipped where this build cannot run the bpf datapath.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PRIVATE_PINS, pinDirOf } from "../../src/bpf/system.js";
import { loadAddon } from "../../src/native/addon.js";
import { CLI, must, sh, waitFor } from "./harness.js";

const bpfBuilt = (() => {
  try {
    return loadAddon().bpfBuilt() === 1;
  } catch {
    return false;
  }
})();

test("a reparented bpf daemon pins in an outer bpffs or says its pins are its own", {
  skip: !bpfBuilt && "no BPF in this build",
}, async () => {
  const ns = `sswrp${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), "ssw-reparented-"));
  const socket = join(dir, "s.sock");
  const log = join(dir, "daemon.log");
  must("ip", ["netns", "add", ns]);
  try {
    must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    // The shell ends at once: the daemon's parent is whatever adopts it.
    must("sh", [
      "-c",
      `ip netns exec ${ns} ${CLI} --socket ${socket} daemon --state-dir ${dir}/state --node-ip 127.0.0.1 --datapath bpf >${log} 2>&1 &`,
    ]);
    const text = () => readFileSync(log, "utf8");
    await waitFor("the daemon", () => text().includes("sockswitch daemon ready"), 30_000);
    const attached = text()
      .split("\n")
      .find((l) => l.includes('"msg":"bpf datapath attached"'));
    assert.ok(attached, text());
    const bpffs = String((JSON.parse(attached) as { bpffs?: string }).bpffs ?? "");
    if (!bpffs.startsWith("/proc/")) assert.ok(text().includes(PRIVATE_PINS), text());
  } finally {
    // The pattern starts with the socket's path ("--socket …" would be taken for an option).
    const daemon = `${socket} daemon`;
    sh("pkill", ["-f", daemon]);
    await waitFor("the daemon's end", () => sh("pgrep", ["-f", daemon]).code === 1, 15_000);
    sh("ip", ["netns", "del", ns]);
    rmSync(pinDirOf(join(dir, "state")), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
