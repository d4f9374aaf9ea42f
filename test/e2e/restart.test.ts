// End-to-end: the daemon restarts (kill -9) while managed apps run. Established
// connections keep flowing (the data path is the kernel's); calls trapped while the daemon
// is down wait and then succeed (the launcher hands the app's listener to the new
// daemon); a server blocked in accept() is served again; the table comes back without
// duplicates; an app that died meanwhile is cleaned up; --clean starts empty.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, FIXTURES, type Proc, PYTHON, sleep, TestHost, waitFor } from "./harness.js";

const LOOP = `${FIXTURES}/conn-loop.py`;

function summary(p: Proc): { ok: number; errors: string[] } {
  const line = p.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as { ok: number; errors: string[] };
}

describe("daemon restart", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("restart");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  async function echoServer(ip: string, port: number): Promise<Proc> {
    const p = host.run(["--ip", ip], [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", String(port), "R"]);
    await waitFor("echo server", () => p.stdout.includes('"listening"'));
    return p;
  }

  test("kill -9 and start again: no connection fails, established ones keep flowing, nothing doubles", async () => {
    const srv = await echoServer("10.77.95.1", 7100);
    const steady = host.run([], [PYTHON, LOOP, "steady", "10.77.95.1", "7100", "60", "0.1"]);
    await waitFor("the steady connection", () => steady.stdout.includes("connected"));
    const fresh = host.run([], [PYTHON, LOOP, "new", "10.77.95.1", "7100", "40", "0.1"]);
    // Both clients are registered before the daemon dies (a launcher that starts while no
    // daemon runs cannot register: exit 125); then their calls cross the restart.
    await waitFor(
      "the clients' registration",
      () => (host.daemon?.stdout.match(/"msg":"app started"/g) ?? []).length >= 3,
      30_000,
    );
    await sleep(1000);
    await host.stopDaemon("SIGKILL");
    await sleep(1500); // calls made now wait in the kernel
    await host.start();
    const [s, f] = await Promise.all([steady.wait(30_000), fresh.wait(30_000)]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(f.code, 0, f.stderr);
    assert.deepEqual(summary(steady), { ok: 60, errors: [] });
    assert.deepEqual(summary(fresh), { ok: 40, errors: [] });
    const services = host
      .getJson<{ address: string }>("services")
      .filter((x) => x.address === "10.77.95.1:7100");
    assert.equal(services.length, 1);
    assert.match(host.daemon?.stdout ?? "", /"restartedCalls":1,"msg":"app reattached"/);
    srv.kill();
  });

  test("a connection made before the restart and accepted after it is admitted, with the client's virtual IP", async () => {
    const flag = join(host.dir, "accept-now");
    const server = [
      "import json, os, socket, time",
      "s = socket.socket()",
      's.bind(("0.0.0.0", 7400)); s.listen(8)',
      "print('\"listening\"', flush=True)",
      `while not os.path.exists(${JSON.stringify(flag)}): time.sleep(0.05)`,
      "c, peer = s.accept()",
      "data = c.recv(100)",
      "c.sendall(data.upper())",
      'print(json.dumps({"peer": peer[0], "getpeername": c.getpeername()[0]}), flush=True)',
    ].join("\n");
    const client = [
      "import socket, time",
      'c = socket.create_connection(("10.77.98.1", 7400), timeout=20)',
      "print('connected', flush=True)",
      "time.sleep(3)",
      'c.sendall(b"before")',
      "try:",
      "    print('reply', c.recv(100).decode(), flush=True)",
      "except OSError as e:",
      "    print('error', type(e).__name__, flush=True)",
    ].join("\n");
    const srv = host.run(["--ip", "10.77.98.1"], [PYTHON, "-c", server]);
    await waitFor("the server", () => srv.stdout.includes('"listening"'));
    const cli = host.run(["--ip", "10.77.98.2"], [PYTHON, "-c", client]);
    await waitFor("the client's connection (in the backlog)", () => cli.stdout.includes("connected"));
    await host.stopDaemon("SIGKILL");
    await host.start();
    writeFileSync(flag, "");
    const [s, c] = await Promise.all([srv.wait(20_000), cli.wait(20_000)]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^reply BEFORE$/m, c.stdout);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(JSON.parse(s.stdout.trim().split("\n").pop() ?? ""), {
      peer: "10.77.98.2",
      getpeername: "10.77.98.2",
    });
  });

  test("an app that exits while the daemon is down is removed, and its port freed, at restart", async () => {
    const srv = await echoServer("10.77.96.1", 7200);
    const port = Number(
      host
        .getJson<{ address: string; host: string }>("services")
        .find((x) => x.address === "10.77.96.1:7200")
        ?.host.split(":")
        .pop(),
    );
    // A client of the event stream when the daemon dies: one sentence that says what to do.
    const events = host.spawnInHost([CLI, "events", "-o", "json", "--socket", host.socket]);
    for (let i = 0; i < 20 && !events.stdout.includes('"ping"'); i++)
      await host.runToEnd(["--name", "ping", "--rm"], ["true"]); // until the stream shows one
    assert.match(events.stdout, /"ping"/, events.stderr);
    await host.stopDaemon("SIGKILL");
    const ev = await events.wait(10_000);
    assert.equal(ev.code, 1, ev.stderr);
    assert.match(
      ev.stderr,
      /^sockswitch: the sockswitch daemon at \S+ ended the stream \(aborted\): it stopped or restarted; run this again once it is back\n$/,
    );
    srv.kill("SIGKILL");
    await srv.wait();
    await host.start();
    assert.ok(!host.getJson<{ address: string }>("services").some((x) => x.address === "10.77.96.1:7200"));
    const probe = host.exec([
      PYTHON,
      "-c",
      `import socket; socket.socket().bind(("127.0.0.1", ${port})); print("ok")`,
    ]);
    assert.equal(probe.stdout.trim(), "ok", probe.stderr);
  });

  test("--clean starts empty; a running app's launcher is told and stops the app", async () => {
    const srv = await echoServer("10.77.97.1", 7300);
    await host.stopDaemon("SIGKILL");
    await host.start({ daemonArgs: ["--clean"] });
    const r = await srv.wait(10_000);
    assert.equal(r.code, 125, r.stderr);
    assert.match(
      r.stderr,
      /refused this app: this daemon does not know app [0-9a-f]+ \(was it started with --clean\?\)/,
    );
    assert.deepEqual(host.getJson("apps"), []);
  });
});
