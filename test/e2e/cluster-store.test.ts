// End-to-end: the cluster store's own cases — mistakes in the cluster options, etcd
// unreachable at start, and etcd with client TLS (certificates made by the harness).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { curl, httpServer, type NodeJson, services, TestCluster } from "./cluster-harness.js";
import { CLI, sh, type TestHost, waitFor } from "./harness.js";

describe("cluster store errors", () => {
  test("bad cluster options are usage errors (exit 2) with one sentence", () => {
    const daemon = (...args: string[]) => sh(CLI, ["--socket", "/nonexistent/ssw.sock", "daemon", ...args]);
    const cases: Array<[string[], RegExp]> = [
      [["--store", "etcd:/x"], /--store "etcd:\/x" is not a store; use embedded, or etcd:\/\/HOST:PORT/],
      [["--cluster", "prod"], /--cluster and --etcd-\* need --store etcd:\/\/HOST:PORT/],
      [["--store", "etcd://10.0.0.1:2379", "--cluster", "a/b"], /--cluster "a\/b" is not a usable name/],
      [["--store", "etcd://10.0.0.1:2379", "--lease-ttl", "0"], /--lease-ttl "0" must be whole seconds/],
      [
        ["--store", "etcd://10.0.0.1:2379", "--ports", "30000-50000"],
        /--client-ports 32768-39999 overlaps --ports/,
      ],
      [["--store", "etcd://10.0.0.1:2379", "--etcd-key", "/k"], /--etcd-cert and --etcd-key go together/],
      [["--client-block", "3"], /--client-block "3" must be a number of ports from 8 to 4096/],
    ];
    for (const [args, re] of cases) {
      const r = daemon(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^sockswitch: ${re.source}`), args.join(" "));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    // On one host the client-port range is not checked: parsing gets past it to --egress.
    assert.match(
      daemon("--ports", "30000-50000", "--egress", "maybe").stderr,
      /^sockswitch: --egress "maybe"/,
    );
  });

  test("etcd unreachable at start: a clear error", async () => {
    const c = new TestCluster({ hosts: 1 });
    try {
      await c.start();
      const h = c.hosts[0] as TestHost;
      await h.stopDaemon();
      const r = h.cli([
        "daemon",
        "--store",
        `etcd://${c.etcdIp}:${c.etcdPort + 7}`,
        "--node-ip",
        c.ips[0] as string,
        "--state-dir",
        `${h.dir}/state2`,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^sockswitch: cannot reach etcd at 10\.250\.0\.2:\d+: .*; check --store/);
    } finally {
      await c.cleanup();
    }
  });
});

describe("cluster on etcd with client TLS", () => {
  const c = new TestCluster({ hosts: 2, tls: true, cluster: "tls" });

  before(async () => {
    await c.start();
  });

  after(async () => {
    await c.cleanup();
  });

  test("nodes join over TLS and share services; without a client certificate etcd refuses", async () => {
    const [h1, h2] = c.hosts as [TestHost, TestHost];
    await waitFor("two nodes", () => h1.getJson<NodeJson>("nodes").length === 2);
    const web = await httpServer(h1, ["--ip", "10.77.27.1", "--name", "tlsweb"], 8088);
    await waitFor("tlsweb on h2", () => services(h2).some((s) => s.address === "10.77.27.1:8088"));
    const r = await curl(h2, "http://tlsweb:8088/");
    assert.equal(r.stdout, "200", r.stderr);
    web.kill("SIGKILL");
    await web.wait();
    // Its own socket and state dir: h2's daemon holds (locks) the others.
    const bare = h2.cli([
      "daemon",
      "--socket",
      `${h2.dir}/bare.sock`,
      "--store",
      c.store,
      "--etcd-ca",
      `${c.certs}/ca.pem`,
      "--node-ip",
      c.ips[1] as string,
      "--state-dir",
      `${h2.dir}/state2`,
      "--node-name",
      "bare",
    ]);
    assert.equal(bare.code, 1);
    assert.match(
      bare.stderr,
      /^sockswitch: cannot reach etcd at 10\.250\.0\.2:\d+: TLS handshake failed \(.*certificate.*\); check --store/,
    );
    assert.doesNotMatch(bare.stderr, /DEP0123|DeprecationWarning/, "Node's IP-servername warning is dropped");
  });
});
