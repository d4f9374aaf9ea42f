// End-to-end: policy that cannot be bypassed. A "secret" service (labels zone=secret) and
// a public one run on a test host; hostile apps in zone=default try to reach the secret
// one around the policy, and unmanaged processes try the host pool ports directly. Each
// attempt must fail, and the secret server must never see a connection from them.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BPF_DATAPATH, FIXTURES, type Proc, PYTHON, ROOT, sleep, TestHost, waitFor } from "./harness.js";

const HOSTILE = `${FIXTURES}/hostile-app.py`;
const SECRET = "10.77.110.1";
const PUBLIC = "10.77.110.2";
const SECRET_UDP = "10.77.110.3";
const PORT = 7500;
const GIVER = "10.77.110.4";
const RECEIVER = "10.77.110.5";

function result<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split("\n").pop() ?? "") as T;
}

describe("policy cannot be bypassed", () => {
  let host: TestHost;
  let secret: Proc;
  let pub: Proc;
  let secretUdp: Proc;

  const accepted = (p: Proc) => p.stdout.split("\n").filter((l) => l.includes('"accepted"')).length;

  before(async () => {
    host = new TestHost("hostile");
    await host.start();
    secret = host.run(
      ["--ip", SECRET, "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", String(PORT), "S"],
    );
    pub = host.run(["--ip", PUBLIC], [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", String(PORT), "P"]);
    secretUdp = host.run(
      ["--ip", SECRET_UDP, "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", String(PORT), "SU"],
    );
    for (const p of [secret, pub, secretUdp])
      await waitFor("servers", () => p.stdout.includes('"listening"'));
  });

  after(async () => {
    await host?.cleanup();
  });

  test("changing connect()'s sockaddr from another thread (TOCTOU) never reaches the secret service", async () => {
    const r = await host.runToEnd([], [PYTHON, HOSTILE, "toctou", PUBLIC, SECRET, String(PORT), "200"]);
    const { results } = result<{ results: Record<string, number> }>(r.stdout);
    for (const k of Object.keys(results))
      assert.ok(k === `OK ${PUBLIC}` || k === "EACCES", `${k}: ${r.stdout}`);
    assert.equal(accepted(secret), 0);
  });

  test("a new network namespace changes nothing, and setns is refused", async () => {
    const r = await host.runToEnd([], [PYTHON, HOSTILE, "netns", SECRET, String(PORT)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(result(r.stdout), {
      unshare: "OK",
      connect_after_unshare: "EACCES",
      setns: "EPERM",
    });
    assert.equal(accepted(secret), 0);
  });

  test("ptrace, process_vm_readv and pidfd_getfd are refused; another app's pid names nothing", async () => {
    const pid = host
      .getJson<{ pid: number; labels: Record<string, string> }>("apps")
      .find((a) => a.labels.zone === "secret")?.pid;
    assert.ok(pid);
    const r = await host.runToEnd([], [PYTHON, HOSTILE, "peek", String(pid)]);
    assert.deepEqual(result(r.stdout), {
      ptrace_attach: "EPERM",
      process_vm_readv: "EPERM",
      pidfd_open: "ESRCH",
      pidfd_getfd: "EPERM",
    });
  });

  /** Passes a new socket (proto) from an app run with giverOpts to one run with receiverOpts, which uses it on ip. */
  const handOver = async (
    name: string,
    proto: "tcp" | "udp",
    giverOpts: string[],
    receiverOpts: string[],
    ip: string,
  ): Promise<Record<string, string>> => {
    const path = join(host.dir, `${name}.sock`);
    const giver = host.run(giverOpts, [PYTHON, HOSTILE, "send-fd", path, proto]);
    await waitFor("the giver", () => giver.stdout.includes("ready"));
    const r = await host.runToEnd(receiverOpts, [PYTHON, HOSTILE, "recv-fd", path, ip, String(PORT), proto]);
    await giver.wait(5000);
    return result(r.stdout);
  };

  test("a socket passed from a secret-zone app to another app connects with the receiver's identity", async () => {
    const r = await handOver("pass", "tcp", ["--labels", "zone=secret"], [], SECRET);
    assert.deepEqual(r, { connect: "EACCES" });
    assert.equal(accepted(secret), 0);
  });

  test("a UDP socket passed from a secret-zone app to another app sends with the receiver's identity", async () => {
    const r = await handOver("pass-udp", "udp", ["--labels", "zone=secret"], [], SECRET_UDP);
    assert.deepEqual(r, { sendto: "EACCES" });
    assert.equal(secretUdp.stdout.includes('"datagram"'), false, secretUdp.stdout);
  });

  test("a socket passed to a secret-zone app reaches the secret service, which sees the receiver's address", async () => {
    const before = accepted(secret);
    const r = await handOver(
      "pass-in",
      "tcp",
      ["--ip", GIVER],
      ["--ip", RECEIVER, "--labels", "zone=secret"],
      SECRET,
    );
    assert.deepEqual(r, { connect: "OK", reply: "S hello" });
    const seen = secret.stdout.split("\n").filter((l) => l.includes('"accepted"'));
    assert.equal(seen.length, before + 1, secret.stdout);
    assert.equal(JSON.parse(seen.at(-1) ?? "").accept_peer[0], RECEIVER, secret.stdout);
  });

  test("an app cannot register apps: a forged handshake and the launcher itself are refused", async () => {
    const launcher = join(ROOT, "build", "sockswitch-launch");
    const r = await host.runToEnd([], [PYTHON, HOSTILE, "register", host.socket, launcher]);
    const out = result<{ hello: string; launcher: [number, string] }>(r.stdout);
    assert.match(out.hello, /^ERR a managed app may not start apps/);
    assert.equal(out.launcher[0], 125, JSON.stringify(out));
    assert.ok(!host.getJson<{ name: string }>("apps").some((a) => a.name === "forged"));
  });

  test("unmanaged processes on the host cannot use a service's pool port; the app never sees them", async () => {
    const svc = host
      .getJson<{ address: string; host: string }>("services")
      .find((s) => s.address === `${SECRET}:${PORT}`);
    assert.ok(svc);
    const [ip, port] = [
      svc.host.slice(0, svc.host.lastIndexOf(":")),
      svc.host.slice(svc.host.lastIndexOf(":") + 1),
    ];
    const before = accepted(secret);
    const probe = host.exec([
      PYTHON,
      "-c",
      `import socket
try:
    s = socket.create_connection(("${ip}", ${port}), timeout=3)
    s.sendall(b"hello\\n"); print(repr(s.recv(100)))
except OSError as e:
    print(type(e).__name__)`,
    ]);
    // seccomp: accepted, then reset; bpf: the SYN is dropped at the pool port (docs/errors.md).
    assert.match(
      probe.stdout.trim(),
      BPF_DATAPATH ? /^TimeoutError$/ : /^(b''|ConnectionResetError|BrokenPipeError)$/,
      probe.stdout + probe.stderr,
    );
    await sleep(300);
    assert.equal(accepted(secret), before);
    // The secret server still serves its own zone.
    const ok = await host.runToEnd(
      ["--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/echo-client.py`, SECRET, String(PORT)],
    );
    assert.match(ok.stdout, /"reply": "S hello"/);
  });
});
