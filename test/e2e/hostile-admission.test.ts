// End-to-end: pool ports and the daemon's DNS serve managed apps only, and only through a
// connection that exists now (docs/security.md, promises 7 and 13). A managed client
// connects once and closes; an unmanaged process on the test host then binds that client's
// old host port and tries to pass for it: at a pool port of another zone (the handed case
// stale-source-admission), over UDP, and at an --expose port (where anyone may come in,
// but must not be named as the client). What a client sent before its app exited is still
// its own (the kernel's queues), never what a process sends from its port afterwards. The
// DNS server on its pool port answers no
// unmanaged peer, and answers an app only the names of apps it may reach.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BPF_DATAPATH, FIXTURES, type Proc, PYTHON, sleep, TestHost, waitFor } from "./harness.js";

const PEER = `${FIXTURES}/hostile-peer.py`;
const NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"];

function lastJson<T>(text: string): T {
  return JSON.parse(text.trim().split("\n").pop() ?? "") as T;
}

/** A UDP and a TCP server that read what is queued when the test says so. */
const QUEUED_SERVER = `
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 7101))
t = socket.socket(); t.bind(("0.0.0.0", 7102)); t.listen(16)
print("ready", flush=True)
sys.stdin.readline()
u.settimeout(1)
try:
    while True:
        d, a = u.recvfrom(100); print("udp", d.decode(), a[0], flush=True)
except socket.timeout:
    pass
t.settimeout(3)
c, a = t.accept(); print("tcp", c.recv(100).decode().strip(), a[0], flush=True)
print("done", flush=True)
`;

/** A client that sends three datagrams and a line on a connection, prints its host ports, and exits. */
const FIRE_AND_EXIT = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3): s.sendto(b"m%d" % i, ("10.77.0.90", 7101))
c = socket.create_connection(("10.77.0.90", 7102)); c.sendall(b"line\\n")
print(s.getsockname()[1], c.getsockname()[1])
`;

describe("admission by a live connection", () => {
  let host: TestHost;
  let secret: Proc;
  let udpSecret: Proc;

  const hostPortOf = (address: string, proto = "tcp"): number => {
    const svc = host
      .getJson<{ address: string; host: string; proto: string }>("services")
      .find((s) => s.address === address && s.proto === proto);
    assert.ok(svc, `no service ${address}`);
    return Number(svc.host.slice(svc.host.lastIndexOf(":") + 1));
  };

  /** The unmanaged process, as nobody. */
  const peer = (...args: string[]) =>
    lastJson<Record<string, unknown>>(host.exec([...NOBODY, PYTHON, PEER, ...args]).stdout);

  before(async () => {
    host = new TestHost("admission");
    await host.start();
    secret = host.run(
      ["--user", "nobody", "--ip", "10.77.0.99", "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "SECRET"],
    );
    udpSecret = host.run(
      ["--user", "nobody", "--ip", "10.77.0.98", "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", "7001", "SECRET"],
    );
    // Where the former clients connect: a web server, which closes first (no TIME_WAIT on
    // the client's side to hold its port).
    host.run(
      ["--user", "nobody", "--ip", "10.77.0.96", "--labels", "zone=secret"],
      [PYTHON, "-m", "http.server", "8080"],
    );
    await waitFor(
      "the secret servers",
      () =>
        [secret, udpSecret].every((p) => p.stdout.includes('"listening"')) &&
        host.getJson<{ address: string }>("services").some((x) => x.address === "10.77.0.96:8080"),
    );
  });

  after(async () => {
    await host?.cleanup();
  });

  /**
   * A zone=secret client app that makes one request (TCP: to the web server, which closes
   * first; UDP: one datagram to the UDP server), closes and lives on; its host port.
   */
  async function formerClient(kind: "tcp" | "udp"): Promise<number> {
    const code =
      kind === "tcp"
        ? `import socket, time
s = socket.create_connection(("10.77.0.96", 8080)); s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
while s.recv(4096): pass
print(s.getsockname()[1], flush=True); s.close(); time.sleep(60)`
        : `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hi", ("10.77.0.98", 7001)); s.recv(100)
print(s.getsockname()[1], flush=True); s.close(); time.sleep(60)`;
    const p = host.run(
      ["--user", "nobody", "--ip", "10.77.0.33", "--labels", "zone=secret"],
      [PYTHON, "-c", code],
    );
    await waitFor("the client's connection", () => /^\d+$/m.test(p.stdout));
    return Number(p.stdout.trim().split("\n")[0]);
  }

  test("TCP: a freed client port bound by an unmanaged process is not admitted to a pool port", async () => {
    const pool = hostPortOf("10.77.0.99:7000");
    const old = await formerClient("tcp");
    const accepted = () => secret.stdout.split("\n").filter((l) => l.includes('"accepted"')).length;
    const before = accepted();
    const r = peer("tcp", String(old), String(pool));
    // (The bpf datapath drops the SYN: the connect times out.)
    const refused = BPF_DATAPATH
      ? r.error === "TimeoutError"
      : r.error === "ConnectionResetError" || r.reply === "";
    assert.ok(refused, JSON.stringify(r));
    await sleep(300);
    assert.equal(accepted(), before, "the secret server accepted the impostor");
    assert.doesNotMatch(secret.stdout, /unmanaged/);
  });

  test("UDP: a datagram from a freed client port is not admitted to a pool port", async () => {
    const pool = hostPortOf("10.77.0.98:7001", "udp");
    const old = await formerClient("udp");
    const r = peer("udp", String(old), String(pool));
    assert.deepEqual(r, { reply: null });
    // A datagram the server would have to receive first: the server reads on, but never this one.
    assert.doesNotMatch(udpSecret.stdout, /unmanaged/);
  });

  test("an --expose port admits anyone, but never names an impostor as the client it replaced", async () => {
    const exposed = host.run(
      ["--user", "nobody", "--ip", "10.77.0.97", "--labels", "zone=secret", "--expose", "7002:17002"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7002", "EXPOSED"],
    );
    await waitFor("the exposed server", () => exposed.stdout.includes('"listening"'));
    const old = await formerClient("tcp");
    const r = peer("tcp", String(old), "17002");
    assert.equal(r.reply, "EXPOSED unmanaged\n", JSON.stringify(r));
    await waitFor(
      "the impostor's accept",
      () => exposed.stdout.split("\n").filter((l) => l.includes('"accepted"')).length >= 1,
    );
    const last = exposed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; accept_peer?: [string, number] })
      .filter((e) => e.event === "accepted")
      .pop();
    assert.deepEqual(last?.accept_peer, ["127.0.0.1", old]);
    exposed.kill();
  });

  test("an exited client's queued datagrams and connection keep its name; an impostor on its port after the exit gets nothing", async () => {
    // The server reads only when told: the client has exited and the impostor has sent by then.
    const srv = host.steered(
      ["--user", "nobody", "--ip", "10.77.0.90", "--labels", "zone=q"],
      [PYTHON, "-u", "-c", QUEUED_SERVER],
    );
    await waitFor("the queued-traffic server", () => srv.stdout.includes("ready"));
    const cli = await host.runToEnd(
      ["--user", "nobody", "--ip", "10.77.0.91", "--labels", "zone=q"],
      [PYTHON, "-c", FIRE_AND_EXIT],
    );
    assert.equal(cli.code, 0, cli.stderr);
    const [udpPort, tcpPort] = cli.stdout.trim().split(" ").map(Number) as [number, number];
    await waitFor(
      "the client's removal (its records retired)",
      () => !host.getJson<{ ips: string[] }>("apps").some((a) => a.ips.includes("10.77.0.91")),
    );
    // The unmanaged process takes the client's freed UDP port and sends to the same server.
    assert.deepEqual(peer("udp", String(udpPort), String(hostPortOf("10.77.0.90:7101", "udp"))), {
      reply: null,
    });
    // Its TCP port is still the client's (the connection's end lingers until the server
    // closes): the kernel refuses the bind, as it would anywhere.
    const t = peer("tcp", String(tcpPort), String(hostPortOf("10.77.0.90:7102")));
    assert.equal(t.reply, undefined, JSON.stringify(t));
    srv.go();
    await waitFor("the server's reads", () => srv.stdout.includes("done"));
    assert.deepEqual(srv.stdout.trim().split("\n").slice(1), [
      "udp m0 10.77.0.91",
      "udp m1 10.77.0.91",
      "udp m2 10.77.0.91",
      "tcp line 10.77.0.91",
      "done",
    ]);
    srv.kill();
  });

  test("the DNS server answers no unmanaged peer, over UDP or TCP", async () => {
    const m = /"host":"127\.0\.0\.1:(\d+)"[^\n]*"DNS server ready"/.exec(host.daemon?.stdout ?? "");
    assert.ok(m, "no DNS server in the daemon's log");
    assert.deepEqual(peer("dns-udp", m[1] as string, "example.com"), { timeout: true });
    const tcp = peer("dns-tcp", m[1] as string, "example.com");
    assert.ok(tcp.closed === true || tcp.error === "ConnectionResetError", JSON.stringify(tcp));
    await waitFor("the refusal in the daemon's log", () =>
      /dns query from a peer that is not a managed app refused/.test(host.daemon?.stdout ?? ""),
    );
  });

  test("DNS answers an app the names of the apps it may reach, and no others", async () => {
    const named = host.run(
      ["--user", "nobody", "--name", "vault", "--labels", "zone=secret"],
      [PYTHON, "-c", "import time; time.sleep(60)"],
    );
    await waitFor("vault to start", () =>
      host.getJson<{ name: string }>("apps").some((a) => a.name === "vault"),
    );
    const ask = async (labels: string) => {
      const r = await host.runToEnd(
        ["--labels", labels],
        [PYTHON, `${FIXTURES}/dns-query.py`, "10.77.0.53", "vault.sockswitch.local"],
      );
      assert.equal(r.code, 0, r.stderr);
      return lastJson<{ rcode: number; answers: number }>(r.stdout);
    };
    const inside = await ask("zone=secret");
    assert.equal(inside.rcode, 0, JSON.stringify(inside));
    assert.equal(inside.answers, 1, JSON.stringify(inside));
    const outside = await ask("zone=public");
    assert.equal(outside.rcode, 3, `a zone=public app was told about vault: ${JSON.stringify(outside)}`);
    named.kill();
  });

  test("a socket on a pool port is answered by the resolver (the daemon's own peer is admitted)", async () => {
    const r = await host.runToEnd(
      ["--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/dns-query.py`, "10.77.0.53", "vault.sockswitch.local", "--bind", "5533"],
    );
    assert.equal(r.code, 0, r.stderr);
    const out = lastJson<{ rcode?: number; from?: [string, number]; timeout?: boolean }>(r.stdout);
    assert.equal(out.timeout, undefined, "the answer to a bound socket was dropped");
    assert.deepEqual(out.from, ["10.77.0.53", 53]);
  });
});
