// End-to-end: a cluster of three test hosts on a test-made LAN, with etcd in a namespace
// of its own (cluster-harness.ts). Real programs: python3 -m http.server, curl, the echo
// fixtures. Lease TTL 3 s, so a dead node leaves within a few seconds.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { curl, everywhere, httpServer, type NodeJson, services, TestCluster } from "./cluster-harness.js";
import { BPF_DATAPATH, FIXTURES, PYTHON, type TestHost, waitFor } from "./harness.js";

const ECHO_SERVER = `${FIXTURES}/echo-server.py`;
const ECHO_CLIENT = `${FIXTURES}/echo-client.py`;

describe("cluster on etcd", () => {
  // --prefer-local: a client on a node with a backend uses it; host 3 has none of its own.
  const c = new TestCluster({ hosts: 3, ttl: 3, daemonArgs: ["--prefer-local"] });
  let h1: TestHost;
  let h2: TestHost;
  let h3: TestHost;

  before(async () => {
    await c.start();
    [h1, h2, h3] = c.hosts as [TestHost, TestHost, TestHost];
  });

  after(async () => {
    await c.cleanup();
  });

  test("get nodes shows the three nodes with their cluster and IP", async () => {
    const nodes = await waitFor("three nodes", () => {
      const n = h2.getJson<NodeJson>("nodes");
      return n.length === 3 ? n : false;
    });
    assert.deepEqual(
      nodes.map((n) => [n.name, n.cluster, n.ip]),
      [
        ["h1", "test", c.ips[0]],
        ["h2", "test", c.ips[1]],
        ["h3", "test", c.ips[2]],
      ],
    );
    const table = h1.cli(["get", "nodes"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /NAME\s+CLUSTER\s+IP\s+ROLES\s+APPS\s+AGE/);
    assert.match(table.stdout, /h3\s+test\s+10\.250\.0\.12\s+worker\s+0/);
  });

  test("a server on host 1 is reached from hosts 2 and 3 by name and by IP; removal reaches everyone", async () => {
    const web = await httpServer(h1, ["--ip", "10.77.20.1", "--name", "web"], 8080);
    await everywhere(c, "web on every node", (s) => s.address === "10.77.20.1:8080" && s.node === "h1");
    await waitFor("h1 counts its app on h3", () =>
      h3.getJson<NodeJson>("nodes").some((n) => n.name === "h1" && n.apps === 1),
    );
    for (const h of [h2, h3]) {
      for (const url of [
        "http://10.77.20.1:8080/",
        "http://web:8080/",
        "http://web.sockswitch.local:8080/",
      ]) {
        const r = await curl(h, url);
        assert.equal(r.code, 0, `${url} from ${h.ns}: ${r.stderr}`);
        assert.equal(r.stdout, "200");
      }
    }
    const t0 = Date.now();
    web.kill("SIGKILL");
    await web.wait();
    await everywhere(c, "web gone everywhere", (s) => s.address === "10.77.20.1:8080", false);
    assert.ok(Date.now() - t0 < 10_000, "removal took too long");
  });

  test("the server sees the client's virtual IP across hosts", async () => {
    const srv = h1.run(["--ip", "10.77.21.1"], [PYTHON, ECHO_SERVER, "0.0.0.0", "7000", "S"]);
    await waitFor("echo server", () => srv.stdout.includes('"listening"'));
    await everywhere(c, "echo service", (s) => s.address === "10.77.21.1:7000");
    const r = await h2.runToEnd(["--ip", "10.77.21.9"], [PYTHON, ECHO_CLIENT, "10.77.21.1", "7000"]);
    const res = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as {
      reply?: string;
      peername?: [string, number];
    };
    assert.equal(res.reply, "S hello", r.stderr);
    assert.deepEqual(res.peername, ["10.77.21.1", 7000]);
    await waitFor("accept event", () => srv.stdout.includes('"accepted"'));
    const ev = srv.stdout
      .split("\n")
      .filter((l) => l.includes('"accepted"'))
      .map((l) => JSON.parse(l) as { accept_peer: [string, number]; peername: [string, number] })[0];
    assert.equal(ev?.accept_peer[0], "10.77.21.9", srv.stdout);
    assert.equal(ev?.peername[0], "10.77.21.9");
    srv.kill("SIGKILL");
    await srv.wait();
  });

  test("label policy holds across hosts; unmanaged processes cannot use a remote pool port", async () => {
    const srv = h1.run(
      ["--ip", "10.77.28.1", "--labels", "zone=a"],
      [PYTHON, ECHO_SERVER, "0.0.0.0", "7200", "L"],
    );
    await everywhere(c, "zone=a server", (s) => s.address === "10.77.28.1:7200");
    const reply = async (labels: string) => {
      const r = await h2.runToEnd(["--labels", labels], [PYTHON, ECHO_CLIENT, "10.77.28.1", "7200"]);
      return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { reply?: string; errno?: string };
    };
    assert.equal((await reply("zone=a")).reply, "L hello");
    assert.equal((await reply("zone=b")).errno, "EACCES");
    // The pool port itself, from host 2's own namespace (not managed), from a source port
    // outside host 2's --client-ports: reset, never served. (Inside that range a cluster
    // node is trusted: docs/cluster.md, security notes.)
    const host = services(h2).find((s) => s.address === "10.77.28.1:7200")?.host as string;
    const probe = [
      "import socket, sys",
      "s = socket.socket(); s.bind(('', int(sys.argv[3]))); s.settimeout(5)",
      "try:",
      "    s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b'hello\\n'); print('got', s.recv(100))",
      "except OSError as e:",
      "    print('refused', type(e).__name__)",
    ].join("\n");
    const src = String(61000 + Math.floor(Math.random() * 4000));
    const raw = h2.exec([PYTHON, "-c", probe, ...host.split(":"), src]);
    // (The bpf datapath drops the SYN: the connect times out.)
    const refused = BPF_DATAPATH ? /^refused TimeoutError$/m : /^(refused ConnectionResetError|got b'')$/m;
    assert.match(raw.stdout, refused, raw.stdout + raw.stderr);
    srv.kill("SIGKILL");
    await srv.wait();
  });

  test("UDP across hosts: datagrams both ways, virtual addresses on both sides", async () => {
    const srv = h1.run(
      ["--ip", "10.77.29.1"],
      [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", "5400", "U"],
    );
    await everywhere(c, "udp service", (s) => s.address === "10.77.29.1:5400");
    for (const mode of [[], ["--connected"], ["--msg"]]) {
      const r = await h2.runToEnd(
        ["--ip", "10.77.29.2"],
        [PYTHON, `${FIXTURES}/udp-echo.py`, "client", "10.77.29.1", "5400", ...mode],
      );
      const res = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as {
        reply?: string;
        peer?: [string, number];
      };
      assert.equal(res.reply, "U hello", `${mode}: ${r.stdout} ${r.stderr}`);
      assert.deepEqual(res.peer, ["10.77.29.1", 5400]);
    }
    const peers = srv.stdout
      .split("\n")
      .filter((l) => l.includes('"datagram"'))
      .map((l) => JSON.parse(l).peer[0]);
    assert.deepEqual(peers, ["10.77.29.2", "10.77.29.2", "10.77.29.2"]);
    srv.kill("SIGKILL");
    await srv.wait();
  });

  test("two backends on hosts 1 and 2 both get connections from host 3; host 2 prefers its own", async () => {
    const a = h1.run(["--ip", "10.77.22.1", "--name", "echo"], [PYTHON, ECHO_SERVER, "0.0.0.0", "7100", "A"]);
    const b = h2.run(["--ip", "10.77.22.1", "--name", "echo"], [PYTHON, ECHO_SERVER, "0.0.0.0", "7100", "B"]);
    // One virtual ip:port, a backend on each of two nodes.
    await everywhere(c, "backend on h1", (s) => s.address === "10.77.22.1:7100" && s.node === "h1");
    await everywhere(c, "backend on h2", (s) => s.address === "10.77.22.1:7100" && s.node === "h2");
    const replies = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await h3.runToEnd([], [PYTHON, ECHO_CLIENT, "10.77.22.1", "7100"]);
      const res = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { reply?: string };
      if (res.reply) replies.add(res.reply);
    }
    assert.deepEqual([...replies].sort(), ["A hello", "B hello"]);
    // From host 2, with --prefer-local: always host 2's own backend.
    for (let i = 0; i < 3; i++) {
      const r = await h2.runToEnd([], [PYTHON, ECHO_CLIENT, "10.77.22.1", "7100"]);
      assert.equal(
        (JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { reply?: string }).reply,
        "B hello",
      );
    }
    a.kill("SIGKILL");
    b.kill("SIGKILL");
    await Promise.all([a.wait(), b.wait()]);
  });

  test("an exposed node port answers on every host, also to unmanaged clients", async () => {
    const web = h1.run(
      ["--ip", "10.77.23.1", "--expose", "8081:0.0.0.0:30081"],
      [PYTHON, "-m", "http.server", "8081", "--directory", FIXTURES],
    );
    await everywhere(c, "exposed web", (s) => s.address === "10.77.23.1:8081");
    await waitFor("proxies on h2 and h3", () =>
      [h2, h3].every((h) =>
        h.getJson<{ listen: string }>("proxies").some((p) => p.listen === "0.0.0.0:30081"),
      ),
    );
    for (let i = 0; i < 3; i++) {
      for (const from of c.hosts) {
        // Unmanaged curl in each host namespace, to every node's IP.
        const r = from.exec([
          "curl",
          "-sS",
          "-m",
          "5",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          `http://${c.ips[i]}:30081/`,
        ]);
        assert.equal(r.stdout, "200", `from ${from.ns} to ${c.ips[i]}: ${r.stderr}`);
      }
    }
    // On one other node only: APP_PORT:NODE_IP:HOST_PORT with host 3's IP.
    const one = h1.run(
      ["--ip", "10.77.23.2", "--expose", `8082:${c.ips[2]}:30082`],
      [PYTHON, "-m", "http.server", "8082", "--directory", FIXTURES],
    );
    await waitFor("proxy on h3", () =>
      h3.getJson<{ listen: string }>("proxies").some((p) => p.listen === `${c.ips[2]}:30082`),
    );
    const viaH3 = h2.exec([
      "curl",
      "-sS",
      "-m",
      "5",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://${c.ips[2]}:30082/`,
    ]);
    assert.equal(viaH3.stdout, "200", viaH3.stderr);
    assert.ok(!h2.getJson<{ listen: string }>("proxies").some((p) => p.listen.endsWith(":30082")));
    one.kill("SIGKILL");
    await one.wait();
    const table = h2.cli(["get", "proxies"]);
    assert.match(table.stdout, /0\.0\.0\.0:30081\s+10\.77\.23\.1:8081|0\.0\.0\.0:30081/);
    web.kill("SIGKILL");
    await web.wait();
    await waitFor(
      "proxies closed",
      () => h2.getJson("proxies").length === 0 && h3.getJson("proxies").length === 0,
    );
  });

  test("etcd lost: calls are served from the cache; the daemons reconnect and resync", async () => {
    const web = await httpServer(h1, ["--ip", "10.77.24.1", "--name", "web2"], 8082);
    await everywhere(c, "web2 everywhere", (s) => s.address === "10.77.24.1:8082");
    await c.stopEtcd();
    const r = await curl(h2, "http://web2:8082/");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "200");
    // A registration made while etcd is down reaches the others once it is back.
    const late = await httpServer(h3, ["--ip", "10.77.24.3"], 8083);
    await c.startEtcd();
    await everywhere(c, "late service everywhere", (s) => s.address === "10.77.24.3:8083");
    const r2 = await curl(h1, "http://10.77.24.3:8083/");
    assert.equal(r2.stdout, "200", r2.stderr);
    await waitFor("three nodes again", () => h1.getJson("nodes").length === 3, 15_000);
    web.kill("SIGKILL");
    late.kill("SIGKILL");
    await Promise.all([web.wait(), late.wait()]);
    await everywhere(c, "web2 gone", (s) => s.address === "10.77.24.1:8082", false);
  });

  test("a node cut off past its lease and etcd's compacted history: it rejoins on a new lease and resyncs", async () => {
    const mine = await httpServer(h2, ["--ip", "10.77.31.2"], 8091);
    await everywhere(c, "h2's server everywhere", (s) => s.address === "10.77.31.2:8091");
    c.setLink(1, false);
    for (const h of [h1, h3])
      await waitFor(
        "h2 gone after its lease",
        () =>
          !h.getJson<NodeJson>("nodes").some((n) => n.name === "h2") &&
          !services(h).some((s) => s.node === "h2"),
        c.ttl * 1000 + 10_000,
      );
    // Meanwhile: a new service h2 cannot see, and history compacted past what h2 saw.
    const late = await httpServer(h1, ["--ip", "10.77.31.1"], 8092);
    await waitFor("late on h3", () => services(h3).some((s) => s.address === "10.77.31.1:8092"));
    c.compactEtcd();
    c.setLink(1, true);
    await everywhere(c, "h2's server back everywhere", (s) => s.address === "10.77.31.2:8091", true);
    await waitFor(
      "h2 sees the late service",
      () => services(h2).some((s) => s.address === "10.77.31.1:8092"),
      15_000,
    );
    await waitFor("three nodes", () => h1.getJson<NodeJson>("nodes").length === 3);
    assert.equal((await curl(h3, "http://10.77.31.2:8091/")).stdout, "200");
    assert.equal((await curl(h2, "http://10.77.31.1:8092/")).stdout, "200");
    assert.match(h2.daemon?.stdout ?? "", /etcd is back; own records re-put, cache resynced/);
    mine.kill("SIGKILL");
    late.kill("SIGKILL");
    await Promise.all([mine.wait(), late.wait()]);
  });

  test("a daemon restarted on etcd: its live apps come back once, one that died meanwhile is cleaned", async () => {
    const live = await httpServer(h2, ["--ip", "10.77.26.1", "--name", "stays"], 8085);
    const dies = await httpServer(h2, ["--ip", "10.77.26.2", "--name", "goes"], 8086);
    await everywhere(c, "both on every node", (s) => s.address === "10.77.26.2:8086");
    await h2.stopDaemon("SIGKILL");
    dies.kill("SIGKILL");
    await dies.wait();
    await c.startDaemon(1);
    // Past the old lease's TTL: nothing may vanish with it, nothing may be doubled.
    await everywhere(c, "the dead app cleaned", (s) => s.address === "10.77.26.2:8086", false);
    await new Promise((r) => setTimeout(r, c.ttl * 1000 + 1000));
    for (const h of c.hosts) {
      const mine = services(h).filter((s) => s.address === "10.77.26.1:8085");
      assert.equal(mine.length, 1, `${h.ns}: ${JSON.stringify(mine)}`);
      assert.equal(h.getJson<NodeJson>("nodes").filter((n) => n.name === "h2").length, 1);
    }
    const r = await curl(h3, "http://stays:8085/");
    assert.equal(r.stdout, "200", r.stderr);
    live.kill("SIGKILL");
    await live.wait();
  });

  test("a daemon killed with SIGKILL: its node and services leave the others' tables after the lease TTL", async () => {
    const web = await httpServer(h1, ["--ip", "10.77.25.1", "--name", "doomed"], 8084);
    await everywhere(c, "doomed everywhere", (s) => s.address === "10.77.25.1:8084");
    const t0 = Date.now();
    await h1.stopDaemon("SIGKILL");
    for (const h of [h2, h3]) {
      await waitFor(
        "h1 gone",
        () =>
          !h.getJson<NodeJson>("nodes").some((n) => n.name === "h1") &&
          !services(h).some((s) => s.node === "h1"),
        c.ttl * 1000 + 10_000,
      );
    }
    assert.ok(Date.now() - t0 >= (c.ttl - 1) * 1000, "removed before the lease could expire");
    web.kill("SIGKILL");
    await web.wait();
  });
});
