// End-to-end, hostile, bpf datapath: the one call `--datapath bpf` answers with CONTINUE, a
// bind on a UNIX socket, cannot be turned onto an app's host socket (docs/security.md,
// promise 17). The datapath traps bind and carries it out itself for INET sockets; its bind4/6
// hooks refuse a bind of a socket the daemon made (SSW_SK_TRAPPED) by anyone but the daemon
// (native/bpf/datapath.bpf.c). A C program (test/fixtures/hostile-continue.c) races it: a
// thread dup2()s one of the app's INET sockets onto the fd number of a bind the daemon
// continued because it was a UNIX socket's. The races it wins must fail with EPERM, and no
// host socket may be bound to the port it names.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FIXTURES, must, TestHost, waitFor } from "./harness.js";

const BIND_PORT = 7613;
const CALLS = "20000";

interface Outcome {
  ok: number;
  errno: Record<string, number>;
}

describe("the bpf datapath's bind hooks", () => {
  let host: TestHost;
  let bin: string;

  before(async () => {
    host = new TestHost("bpfbind");
    bin = join(host.dir, "hostile-continue");
    must("cc", ["-O2", "-pthread", "-o", bin, join(FIXTURES, "hostile-continue.c")]);
    await host.start({ daemonArgs: ["--datapath", "bpf"] });
  });

  after(async () => {
    await host?.cleanup();
  });

  test("the daemon runs the bpf datapath", () => {
    assert.match(host.daemon?.stdout ?? "", /"datapath":"bpf"/);
  });

  test("a bind continued for a UNIX socket never binds a swapped-in socket the daemon made", async () => {
    const p = host.run([], [bin, "bind", String(BIND_PORT), CALLS]);
    try {
      await waitFor("the race", () => p.stdout.includes("listening") || !p.running, 60_000);
      const r = JSON.parse(p.stdout.split("\n")[0] ?? "") as Outcome;
      // One bind may succeed: the daemon's own, of the app's virtual wildcard address.
      assert.ok(r.ok <= 1, JSON.stringify(r));
      assert.ok((r.errno.EPERM ?? 0) > 0, `the race was never won: ${JSON.stringify(r)}`);
      assert.equal(host.exec(["ss", "-Htln", `sport = :${BIND_PORT}`]).stdout.trim(), "");
    } finally {
      p.kill("SIGKILL");
      await p.wait();
    }
  });
});
