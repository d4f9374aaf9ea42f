// End-to-end (hostile): no trapped call can be re-aimed after the daemon looked at it
// (issue "Security, round 2", kind 3; ../shared/cases/security/udp-sendmsg-toctou). A
// second thread of the app races each call: it writes a destination into msg_name, or swaps
// an INET socket onto a UNIX socket's fd number. The promise held when nothing reaches the
// targets: an unmanaged service on the host's loopback under --egress deny, and another
// label's UDP service at its host pool port.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FIXTURES, must, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

const SINK = [
  "import socket, sys, time",
  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.2)",
  "print('listening', flush=True)",
  "while True:",
  "    try: d, a = s.recvfrom(100); print('received', d, a, flush=True)",
  "    except socket.timeout: pass",
].join("\n");

describe("no continued call can be re-aimed (hostile)", () => {
  let host: TestHost;
  let dir: string;
  let bin: string;
  let hostSink: Proc;
  let service: Proc;
  let servicePort: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ssw-reaim-"));
    chmodSync(dir, 0o755); // run as nobody
    bin = join(dir, "hostile-reaim");
    must("cc", ["-O2", "-pthread", "-o", bin, join(FIXTURES, "hostile-reaim.c")]);
    host = new TestHost("reaim");
    // --strict-unix-sockets: without the kernel guard, what refuses the swapped-in socket.
    await host.start({ daemonArgs: ["--egress", "deny", "--strict-unix-sockets"] });
    hostSink = host.spawnInHost([PYTHON, "-u", "-c", SINK, "127.0.0.1", "9999"]);
    service = host.run(
      ["--ip", "10.77.34.10", "--labels", "zone=a"],
      [PYTHON, "-u", "-c", SINK, "0.0.0.0", "5000"],
    );
    for (const p of [hostSink, service]) await waitFor("the sinks", () => p.stdout.includes("listening"));
    const svc = host
      .getJson<{ address: string; host: string }>("services")
      .find((s) => s.address === "10.77.34.10:5000");
    servicePort = Number(svc?.host.split(":").pop());
    assert.ok(servicePort > 0, "the zone=a service's host port");
  });

  after(async () => {
    await host?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (opts: string[], args: string[]) =>
    host.runToEnd(["--user", "nobody", ...opts], [bin, ...args]);

  test("sendmsg() whose msg_name another thread flips reaches neither the host (--egress deny) nor another label's pool port", async () => {
    const a = await run(["--labels", "zone=b"], ["msgname", "127.0.0.1", "9999"]);
    const b = await run(
      ["--labels", "zone=b", "--ip", "10.77.34.20"],
      ["msgname", "127.0.0.1", String(servicePort), "10.77.34.20"],
    );
    // (Calls may succeed: 127.0.0.1 is the app's own loopback, where nothing listens.)
    for (const r of [a, b]) assert.match(r.stdout, /^\d+ of \d+ racing calls accepted/, r.stdout + r.stderr);
    assert.doesNotMatch(hostSink.stdout, /received/);
    assert.doesNotMatch(service.stdout, /received/);
  });

  test("an INET socket swapped onto a UNIX socket's fd number during sendto() or connect() reaches nothing", async () => {
    const r = await run(["--labels", "zone=b"], ["swap", "127.0.0.1", "9999"]);
    assert.match(r.stdout, /^\d+ of \d+ racing calls accepted/, r.stdout + r.stderr);
    assert.doesNotMatch(hostSink.stdout, /received/);
  });
});
