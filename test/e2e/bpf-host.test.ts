// End-to-end: the bpf datapath's host placement (`run --new-netns=false` with `--datapath bpf`).
// Such an app runs in the daemon's network namespace with no trapped network call: its sockets
// are stamped in the kernel by the cgroup it runs in (src/bpf/cgroups.ts), and the socket hooks
// give it the same virtual world as the default placement: it reaches services by virtual IP,
// servers see its virtual IP, label policy refuses (EACCES). Skipped where this build or host
// cannot run the bpf datapath (no clang/bpftool/libbpf-dev at build time, no cgroup v2).

import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { loadAddon } from "../../src/native/addon.js";
import { FIXTURES, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

const HOST = ["--new-netns=false"];
const bpfBuilt = (() => {
  try {
    return loadAddon().bpfBuilt() === 1;
  } catch {
    return false;
  }
})();

/** The cgroups of the host placement's apps, wherever cgroup v2 is mounted here. */
function appCgroups(): string[] {
  const roots = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].filter((d) => existsSync(`${d}/cgroup.procs`));
  return roots.flatMap((r) => readdirSync(r).filter((n) => n.startsWith("sockswitch-app-")));
}

describe("bpf datapath, host placement (--new-netns=false)", {
  skip: !bpfBuilt && "no BPF in this build",
}, () => {
  let host: TestHost;
  let server: Proc;

  before(async () => {
    host = new TestHost("bpfhost");
    await host.start({ daemonArgs: ["--datapath", "bpf"] });
    server = host.run(
      [...HOST, "--ip", "10.77.60.1", "--name", "bpfsrv", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "A"],
    );
    host.run(
      [...HOST, "--ip", "10.77.60.9", "--labels", "zone=s"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "S"],
    );
    await waitFor("the server", () => server.stdout.includes('"listening"'));
  });

  after(async () => {
    await host?.cleanup();
  });

  test("a client reaches a service by virtual IP; both see virtual addresses; policy refuses", async () => {
    const before = appCgroups().length;
    const r = await host.runToEnd(
      [...HOST, "--ip", "10.77.60.5", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.60.1", "7000"],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    assert.equal(got.reply, "A hello");
    assert.equal(got.sockname[0], "10.77.60.5");
    assert.deepEqual(got.peername, ["10.77.60.1", 7000]);
    await waitFor("the accept", () => server.stdout.includes('"accepted"'));
    const accepted = JSON.parse(server.stdout.split("\n").find((l) => l.includes('"accepted"')) ?? "");
    assert.equal(accepted.accept_peer[0], "10.77.60.5", server.stdout);
    assert.deepEqual(accepted.sockname, ["10.77.60.1", 7000]);
    const denied = await host.runToEnd(
      [...HOST, "--ip", "10.77.60.6", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.60.9", "7000"],
    );
    assert.equal(denied.code, 3, denied.stdout);
    assert.match(denied.stdout, /"errno": "EACCES"/);
    // Each client's cgroup is gone with it.
    await waitFor("the clients' cgroups removed", () => appCgroups().length <= before, 10_000);
  });

  test("names resolve through the daemon's DNS (a query from a host-placed app is admitted)", async () => {
    const r = await host.runToEnd(
      [...HOST, "--ip", "10.77.60.8", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "bpfsrv.sockswitch.local", "7000"],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    assert.equal(got.reply, "A hello");
    assert.deepEqual(got.peername, ["10.77.60.1", 7000]);
  });

  test("no network call of such an app is trapped: it works with the daemon stopped", async () => {
    // Started while the daemon runs; its socket(), connect() and reads happen while the
    // daemon is stopped (SIGSTOP): a trapped call would wait for it.
    const code = `import socket, time
time.sleep(3)
s = socket.create_connection(("10.77.60.1", 7000), timeout=5)
s.sendall(b"hi\\n")
print(s.makefile("rb").readline().decode().strip(), s.getsockname()[0])`;
    const app = host.run([...HOST, "--ip", "10.77.60.7", "--labels", "zone=a"], [PYTHON, "-c", code]);
    await waitFor("the app started", () => (host.daemon?.stdout ?? "").includes('"ips":["10.77.60.7"]'));
    const pid = host.daemon?.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      const r = await app.wait(20_000);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "A hi 10.77.60.7");
    } finally {
      process.kill(pid, "SIGCONT");
    }
  });
});
