// End-to-end: a server sees a remote client's virtual IP through the client app's
// source-port block, by both mechanisms: IP_LOCAL_PORT_RANGE (Linux 6.3; where the kernel
// has it) and the explicit bind the daemon does without it (forced here with
// SOCKSWITCH_TEST_HIDE_FEATURES=IP_LOCAL_PORT_RANGE, so both run on every kernel). Three
// test hosts on a test-made LAN with etcd (cluster-harness.ts): servers on host 1, clients on
// host 2 (the kernel's features) and host 3 (the option hidden); --client-block 8 so that a
// block fills up: both mechanisms refuse a ninth connection to the same backend with
// EADDRNOTAVAIL, as the kernel does when it runs out of ports; the bind fallback also
// refuses one to another backend (one port per connection, docs/cluster.md).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestCluster } from "./cluster-harness.js";
import { BPF_DATAPATH, FIXTURES, type Proc, PYTHON, type TestHost, TIME_SCALE, waitFor } from "./harness.js";
import { api, HIDE, hasFeature, hasServiceAt } from "./kernel-helpers.js";

const ECHO_SERVER = `${FIXTURES}/echo-server.py`;

/** Connects `n` times to host:port and once to host:other, holding every connection. */
const HOLD = [
  "import errno, json, socket, sys, time",
  "host, port, other, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])",
  "held = []",
  "def dial(p):",
  "    s = socket.socket()",
  "    try:",
  "        s.settimeout(10); s.connect((host, p)); s.sendall(b'hi\\n')",
  "        reply = s.makefile('rb').readline().decode().strip()",
  "        held.append(s); return {'ok': True, 'port': s.getsockname()[1], 'reply': reply}",
  "    except OSError as e:",
  "        s.close(); return {'ok': False, 'errno': errno.errorcode.get(e.errno, str(e.errno))}",
  "same = [dial(port) for _ in range(n)]",
  "print(json.dumps({'same': same, 'other': dial(other)}), flush=True)",
  "time.sleep(120)",
].join("\n");

interface Dial {
  ok: boolean;
  port?: number;
  reply?: string;
  errno?: string;
}

function accepted(text: string): { accept_peer: [string, number]; peername: [string, number] }[] {
  return text
    .split("\n")
    .filter((l) => l.includes('"accepted"'))
    .map((l) => JSON.parse(l));
}

const CLIENTS = [
  { name: "the kernel's own features", host: 1, net: 2 },
  { name: "IP_LOCAL_PORT_RANGE hidden: the daemon binds", host: 2, net: 3 },
];

describe("cross-host client identity through source-port blocks", () => {
  const c = new TestCluster({
    hosts: 3,
    // A lease kept alive every ttl/3 s: longer where the tests run emulated (TIME_SCALE).
    ttl: Math.min(300, 3 * TIME_SCALE),
    sequential: TIME_SCALE > 1,
    daemonArgs: ["--client-block", "8"],
    env: (i) => (i === 2 ? { [HIDE]: "IP_LOCAL_PORT_RANGE" } : undefined),
  });
  let h1: TestHost;
  let a: Proc;
  let udp: Proc;
  const vip = (n: number) => `10.77.66.${n}`;

  before(async () => {
    await c.start();
    h1 = c.hosts[0] as TestHost;
    assert.equal(hasFeature(c.hosts[2] as TestHost, "IP_LOCAL_PORT_RANGE"), false);
    a = h1.run(["--ip", vip(1)], [PYTHON, ECHO_SERVER, "0.0.0.0", "7000", "A"]);
    h1.run(["--ip", vip(1)], [PYTHON, ECHO_SERVER, "0.0.0.0", "7001", "B"]); // killed at cleanup
    udp = h1.run(["--ip", vip(1)], [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", "5400", "U"]);
    for (const h of c.hosts.slice(1))
      await waitFor("the services on the client hosts", () =>
        [`${vip(1)}:7000`, `${vip(1)}:7001`, `${vip(1)}:5400`].every((x) => hasServiceAt(h, x)),
      );
  });

  after(async () => {
    await c.cleanup();
  });

  for (const client of CLIENTS) {
    const me = `10.77.66.${10 * client.net}`;

    test(`TCP (${client.name}): the server sees the client's virtual IP; ports from its block until it is full`, async () => {
      const h = c.hosts[client.host] as TestHost;
      const kernelRange = hasFeature(h, "IP_LOCAL_PORT_RANGE");
      const cli = h.run(["--ip", me, "--name", "holder"], [PYTHON, "-c", HOLD, vip(1), "7000", "7001", "9"]);
      const res = await waitFor(
        "the client's dials",
        () => {
          if (!cli.running) throw new Error(`client exited: ${cli.stdout} ${cli.stderr}`);
          const line = cli.stdout.split("\n").find((l) => l.startsWith("{"));
          return line ? (JSON.parse(line) as { same: Dial[]; other: Dial }) : false;
        },
        60_000,
      );
      const app = api<{ items: { name: string; srcPorts: string | null }[] }>(h, "/v1/apps").items.find(
        (x) => x.name === "holder",
      );
      const [first, last] = (app?.srcPorts ?? "0-0").split("-").map(Number) as [number, number];
      assert.equal(last - first + 1, 8, JSON.stringify(app));
      const ok = res.same.slice(0, 8);
      for (const d of ok) {
        assert.equal(d.reply, "A hi", JSON.stringify(res));
        assert.ok(
          (d.port as number) >= first && (d.port as number) <= last,
          `port ${d.port} not in ${first}-${last}`,
        );
      }
      assert.equal(new Set(ok.map((d) => d.port)).size, 8);
      // Both mechanisms: a ninth connection to the same backend finds no port, as in the kernel.
      assert.deepEqual(res.same[8], { ok: false, errno: "EADDRNOTAVAIL" });
      // To another backend the kernel shares a port; the daemon's bind cannot.
      if (kernelRange) assert.equal(res.other.reply, "B hi", JSON.stringify(res.other));
      else assert.deepEqual(res.other, { ok: false, errno: "EADDRNOTAVAIL" });
      const mine = () => accepted(a.stdout).filter((e) => e.accept_peer[0] === me);
      await waitFor("8 accepts", () => mine().length === 8);
      for (const ev of mine()) {
        assert.equal(ev.peername[0], me);
        assert.ok(ev.accept_peer[1] >= first && ev.accept_peer[1] <= last);
      }
      if (!kernelRange)
        assert.match(h.daemon?.stdout ?? "", /every port of the app's source-port block is taken/);
      cli.kill("SIGKILL");
      await cli.wait();
    });

    test(`UDP (${client.name}): datagrams both ways, virtual addresses on both sides`, async () => {
      const h = c.hosts[client.host] as TestHost;
      // The bpf datapath without IP_LOCAL_PORT_RANGE binds into the block at connect only: an
      // unbound socket's unconnected sends leave from an ordinary port (docs/how-it-works.md).
      const fallback = BPF_DATAPATH && !hasFeature(h, "IP_LOCAL_PORT_RANGE");
      const modes = fallback ? [["--connected"]] : [[], ["--connected"], ["--msg"]];
      for (const m of modes) {
        const r = await h.runToEnd(
          ["--ip", me],
          [PYTHON, `${FIXTURES}/udp-echo.py`, "client", vip(1), "5400", ...m],
        );
        const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as {
          reply?: string;
          peer?: [string, number];
        };
        assert.equal(out.reply, "U hello", `${m}: ${r.stdout} ${r.stderr}`);
        assert.deepEqual(out.peer, [vip(1), 5400]);
      }
      const peers = udp.stdout
        .split("\n")
        .filter((l) => l.includes('"datagram"'))
        .map((l) => JSON.parse(l).peer as [string, number])
        .filter((p) => p[0] === me);
      assert.equal(peers.length, modes.length, udp.stdout);
      // Each from a port of the client node's --client-ports (32768-39999 by default).
      for (const p of peers) assert.ok(p[1] >= 32768 && p[1] <= 39999, String(p[1]));
    });
  }
});
