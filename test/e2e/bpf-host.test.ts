// End-to-end: the bpf datapath's host placement (`run --new-netns=false` with `--datapath bpf`).
// Such an app runs in the daemon's network namespace with no trapped network call: its sockets
// are stamped in the kernel by the cgroup it runs in (src/bpf/cgroups.ts), and the socket hooks
// give it the same virtual world as the default placement: it reaches services by virtual IP,
// servers see its virtual IP, label policy refuses (EACCES). A launcher started in another
// network namespace (a container's) gets the default placement instead: that namespace is the
// app's own, as under the seccomp datapath. Skipped where this build or host cannot run the
// bpf datapath (no clang/bpftool/libbpf-dev at build time, no cgroup v2).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { loadAddon } from "../../src/native/addon.js";
import { CLI, FIXTURES, must, Proc, PYTHON, sh, TestHost, waitFor } from "./harness.js";

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
    const denied = host.run(
      [...HOST, "--ip", "10.77.60.9", "--labels", "zone=s"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "S"],
    );
    // Both listening: their cgroups exist before a test counts the clients' own.
    await waitFor(
      "the servers",
      () => server.stdout.includes('"listening"') && denied.stdout.includes('"listening"'),
    );
  });

  after(async () => {
    await host?.cleanup();
  });

  /**
   * Runs Python code (which prints "running" first) as a host-placed app, with the daemon
   * stopped (SIGSTOP) from then until the app ends: what it does meanwhile gets no daemon.
   */
  async function runWithDaemonStopped(opts: string[], code: string, ms: number) {
    const app = host.run(opts, [PYTHON, "-c", code]);
    // Running its command: the daemon's handover (its cgroup, then the go) is over.
    await waitFor("the app running", () => app.stdout.includes("running"));
    const pid = host.daemon?.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      return await app.wait(ms);
    } finally {
      process.kill(pid, "SIGCONT");
    }
  }

  test("a client reaches a service by virtual IP; both see virtual addresses; policy refuses", async () => {
    const before = new Set(appCgroups());
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
    await waitFor("the clients' cgroups removed", () => appCgroups().every((n) => before.has(n)), 10_000);
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
print("running", flush=True)
time.sleep(3)
s = socket.create_connection(("10.77.60.1", 7000), timeout=5)
s.sendall(b"hi\\n")
print(s.makefile("rb").readline().decode().strip(), s.getsockname()[0])`;
    const r = await runWithDaemonStopped([...HOST, "--ip", "10.77.60.7", "--labels", "zone=a"], code, 20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "running\nA hi 10.77.60.7");
  });

  test("events the kernel could not queue (the ring full) are counted and logged", async () => {
    // Each refused connect is an event (the daemon's log line); with the daemon stopped nothing
    // reads the ring (256 KiB, 64-byte records), so 8,000 of them overflow it.
    const code = `import socket, time
print("running", flush=True)
time.sleep(2)
n = 0
for i in range(8000):
    s = socket.socket()
    try:
        s.connect(("10.77.60.9", 7000))
    except PermissionError:
        n += 1
    s.close()
print(n, flush=True)`;
    const r = await runWithDaemonStopped([...HOST, "--ip", "10.77.60.4", "--labels", "zone=a"], code, 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "running\n8000");
    await waitFor(
      "the lost events logged",
      () => /event ring was full/.test(host.daemon?.stdout ?? ""),
      10_000,
    );
    const line = (host.daemon?.stdout ?? "").split("\n").find((l) => l.includes("event ring was full")) ?? "";
    const lost = JSON.parse(line).lost as number;
    assert.ok(lost > 0 && lost < 8000, line);
  });

  test("--new-netns=false from another network namespace (a container's) is the default placement there", async (t) => {
    // The launcher's namespace is not the daemon's: it becomes the app's own, socket() is
    // trapped and the daemon makes the host sockets, as for a container under the seccomp
    // datapath. Like every app it runs in a cgroup of its own (the hooks know whose call it is
    // by it: native/bpf/datapath-caller.h), below the cgroup it was started in.
    const other = `ssw-elsewhere-${process.pid}-${randomBytes(3).toString("hex")}`;
    must("ip", ["netns", "add", other]);
    must("ip", ["-n", other, "link", "set", "lo", "up"]);
    const inOther = (opts: string[], cmd: string[]): Proc =>
      new Proc(
        spawn(
          "ip",
          ["netns", "exec", other, CLI, "--socket", host.socket, "run", ...HOST, ...opts, "--", ...cmd],
          {
            stdio: ["ignore", "pipe", "pipe"],
          },
        ),
      );
    const srv = inOther(
      ["--ip", "10.77.60.20", "--name", "elsesrv", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "E"],
    );
    t.after(async () => {
      srv.kill("SIGKILL");
      await srv.wait(5000);
      sh("ip", ["netns", "del", other]);
    });
    await waitFor("the server in the other namespace", () => {
      if (!srv.running) throw new Error(`it exited: ${srv.stderr}`);
      return srv.stdout.includes('"listening"');
    });
    const row = host.getJson<{ name: string; pid: number }>("apps").find((a) => a.name === "elsesrv");
    assert.ok(row);
    assert.equal(must("ip", ["netns", "identify", String(row.pid)]).trim(), other);
    assert.match(readFileSync(`/proc/${row.pid}/cgroup`, "utf8"), /^0::.*\/sockswitch-app-[^/\n]+$/m);
    // A client there too, and one of the host placement: both reach it; it sees their IPs.
    const client = inOther(
      ["--ip", "10.77.60.21", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.60.20", "7000"],
    );
    const r = await client.wait(20_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    assert.equal(got.reply, "E hello");
    assert.equal(got.sockname[0], "10.77.60.21");
    assert.deepEqual(got.peername, ["10.77.60.20", 7000]);
    const fromHost = await host.runToEnd(
      [...HOST, "--ip", "10.77.60.22", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "elsesrv.sockswitch.local", "7000"],
    );
    assert.equal(fromHost.code, 0, fromHost.stderr + fromHost.stdout);
    const peers = () =>
      srv.stdout
        .split("\n")
        .filter((l) => l.includes('"accepted"'))
        .map((l) => JSON.parse(l).accept_peer[0]);
    await waitFor("both accepts", () => peers().length === 2);
    assert.deepEqual(peers(), ["10.77.60.21", "10.77.60.22"]);
  });
});
