// End-to-end: UDP switching between managed apps on one test host (a network namespace
// made here). A python UDP echo server and clients, with sendto/recvfrom, connected
// sockets and sendmsg/recvmsg; the client must see replies from the server's virtual
// ip:port, the server must see the client's virtual IP, and labels must decide.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FIXTURES, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

const UDP_ECHO = `${FIXTURES}/udp-echo.py`;

interface Reply {
  ok: boolean;
  errno?: string;
  reply?: string;
  peer?: [string, number];
  sockname?: [string, number];
}

describe("UDP on one host", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("udp");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  async function server(opts: string[], addr: string, port: number, tag: string, extra: string[] = []) {
    const p = host.run(opts, [PYTHON, UDP_ECHO, "server", addr, String(port), tag, ...extra]);
    await waitFor(`UDP server ${tag}`, () => {
      if (!p.running) throw new Error(`server exited: ${p.stderr}`);
      return p.stdout.includes('"listening"');
    });
    return p;
  }

  async function client(opts: string[], addr: string, port: number, extra: string[] = []): Promise<Reply> {
    const r = await host.runToEnd(opts, [PYTHON, UDP_ECHO, "client", addr, String(port), ...extra]);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    try {
      return JSON.parse(line) as Reply;
    } catch {
      throw new Error(`client printed no result (exit ${r.code}): ${r.stdout} ${r.stderr}`);
    }
  }

  function peers(p: Proc): string[] {
    return p.stdout
      .split("\n")
      .filter((l) => l.includes('"datagram"'))
      .map((l) => (JSON.parse(l) as { peer: [string, number] }).peer[0]);
  }

  test("a bound UDP socket registers a udp service", async () => {
    const srv = await server(["--ip", "10.77.50.1", "--name", "u1"], "0.0.0.0", 5301, "A");
    const svc = host
      .getJson<{ address: string; proto: string; name: string }>("services")
      .find((s) => s.address === "10.77.50.1:5301");
    assert.equal(svc?.proto, "udp");
    assert.equal(svc?.name, "u1");
    srv.kill();
  });

  test("sendto/recvfrom, connected send/recv and sendmsg/recvmsg all reach the server, with virtual addresses both ways", async () => {
    const srv = await server(["--ip", "10.77.51.1"], "0.0.0.0", 5302, "B");
    for (const mode of [[], ["--connected"], ["--msg"]]) {
      const r = await client(["--ip", "10.77.51.2"], "10.77.51.1", 5302, mode);
      assert.equal(r.reply, "B hello", `${mode}: ${JSON.stringify(r)}`);
      assert.deepEqual(r.peer, ["10.77.51.1", 5302], `${mode}`);
      // As the kernel: an unconnected socket stays on the wildcard (the source address is
      // picked per datagram); a connected one shows its own virtual IP.
      assert.equal(r.sockname?.[0], mode[0] === "--connected" ? "10.77.51.2" : "0.0.0.0", `${mode}`);
    }
    await waitFor("three datagrams", () => peers(srv).length === 3);
    assert.deepEqual(peers(srv), ["10.77.51.2", "10.77.51.2", "10.77.51.2"]);
    srv.kill();
  });

  test("a server using sendmsg/recvmsg answers like one using sendto/recvfrom", async () => {
    const srv = await server(["--ip", "10.77.52.1"], "10.77.52.1", 5303, "C", ["--msg"]);
    const r = await client(["--ip", "10.77.52.2"], "10.77.52.1", 5303);
    assert.equal(r.reply, "C hello");
    assert.deepEqual(r.peer, ["10.77.52.1", 5303]);
    assert.deepEqual(peers(srv), ["10.77.52.2"]);
    srv.kill();
  });

  test("IPv6 virtual IPs over UDP", async () => {
    const srv = await server(["--ip", "fd77::51"], "::", 5304, "V6");
    const r = await client(["--ip", "fd77::52"], "fd77::51", 5304);
    assert.equal(r.reply, "V6 hello");
    assert.deepEqual(r.peer, ["fd77::51", 5304]);
    assert.deepEqual(peers(srv), ["fd77::52"]);
    srv.kill();
  });

  test("labels that share nothing refuse a UDP send (EACCES); matching labels pass", async () => {
    const srv = await server(["--ip", "10.77.53.1", "--labels", "zone=red"], "0.0.0.0", 5305, "L");
    assert.deepEqual(await client(["--labels", "zone=blue"], "10.77.53.1", 5305), {
      ok: false,
      errno: "EACCES",
    });
    assert.deepEqual(await client(["--labels", "zone=blue"], "10.77.53.1", 5305, ["--connected"]), {
      ok: false,
      errno: "EACCES",
    });
    const ok = await client(["--labels", "zone=red"], "10.77.53.1", 5305);
    assert.equal(ok.reply, "L hello");
    srv.kill();
  });

  test("two UDP servers on one virtual IP and port share the datagrams", async () => {
    const one = await server(["--ip", "10.77.54.1"], "0.0.0.0", 5306, "ONE");
    const two = await server(["--ip", "10.77.54.1"], "0.0.0.0", 5306, "TWO");
    const replies = new Set<string>();
    for (let i = 0; i < 4; i++) replies.add((await client([], "10.77.54.1", 5306)).reply ?? "");
    assert.deepEqual([...replies].sort(), ["ONE hello", "TWO hello"]);
    one.kill();
    two.kill();
  });

  test("a blocking receive with SO_RCVTIMEO times out; a virtual IP with no UDP backend refuses as the kernel does", async () => {
    const r = await host.runToEnd(
      [],
      [
        PYTHON,
        "-c",
        [
          "import socket, struct, json",
          "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
          "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack('ll', 0, 300000))",
          "s.bind(('0.0.0.0', 0))",
          "try:",
          "    s.recvfrom(100); print(json.dumps('got'))",
          "except OSError as e:",
          "    print(json.dumps(e.errno))",
          "try:",
          "    s.sendto(b'x', ('10.77.55.55', 9)); print(json.dumps('sent'))",
          "except OSError as e:",
          "    print(json.dumps(e.errno))",
          "c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(2)",
          "c.connect(('10.77.55.55', 9)); c.send(b'x')",
          "try:",
          "    c.recv(100); print(json.dumps('got'))",
          "except OSError as e:",
          "    print(json.dumps(e.errno))",
        ].join("\n"),
      ],
    );
    // EAGAIN; the unconnected send goes (nothing tells it that nobody listens); the connected
    // socket learns it from the ICMP port unreachable: ECONNREFUSED on its next receive.
    assert.deepEqual(r.stdout.trim().split("\n"), ["11", '"sent"', "111"], r.stderr);
  });
});
