// Unit tests of the cluster's pure parts: the etcd store's record cache and what it tells
// the daemon (src/store/etcd-cache.ts), the cluster options (src/core/cluster-config.ts),
// source-port blocks (BlockPool), and the table's nodes, remote clients and --prefer-local.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pino from "pino";
import {
  parseClientBlock,
  parseClientPorts,
  parseEtcdUrl,
  parseStore,
} from "../../src/core/cluster-config.js";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { parseCidr } from "../../src/net/cidr.js";
import { BlockPool } from "../../src/net/port-pool.js";
import { RecordCache } from "../../src/store/etcd-cache.js";
import { etcdReason } from "../../src/store/etcd-reason.js";
import { ServiceTable } from "../../src/table/table.js";
import { type App, type NodeInfo, type Service, serviceId } from "../../src/table/types.js";

const P = "/sockswitch/t/";
const log = pino({ level: "silent" });

function app(id: string, node: string, ips: string[], srcPorts: App["srcPorts"] = null): App {
  return {
    id,
    name: id,
    ips,
    labels: { zone: "default" },
    expose: [],
    lb: null,
    node,
    pid: 1,
    pidStart: 1,
    command: ["x"],
    user: null,
    createdAt: "2024-01-01T00:00:00.000Z",
    srcPorts,
  };
}

function svc(appId: string, node: string, vip: string, hostIp: string): Service {
  return {
    id: serviceId("tcp", hostIp, 40000, vip, 80),
    appId,
    name: appId,
    proto: "tcp",
    vip,
    vport: 80,
    hostIp,
    hostPort: 40000,
    labels: { zone: "default" },
    lb: null,
    node,
    exposed: false,
    createdAt: "2024-01-01T00:00:00.000Z",
  };
}

function node(name: string, ip: string): NodeInfo {
  return {
    name,
    cluster: "t",
    ip,
    ip6: null,
    roles: ["worker"],
    apps: 0,
    version: "0",
    startedAt: "2024-01-01T00:00:00.000Z",
    clientPorts: { first: 32768, last: 39999 },
  };
}

function recorder() {
  const events: string[] = [];
  return {
    events,
    listener: {
      app: (id: string, a: App | null) => events.push(`app ${id} ${a ? "put" : "del"}`),
      service: (id: string, s: Service | null) => events.push(`svc ${id} ${s ? "put" : "del"}`),
      node: (n: string, v: NodeInfo | null) => events.push(`node ${n} ${v ? "put" : "del"}`),
    },
  };
}

describe("record cache", () => {
  test("delivers other nodes' records only, and nothing twice", () => {
    const c = new RecordCache(P, "me", log);
    const r = recorder();
    c.attach(r.listener);
    c.set(`${P}apps/a1`, JSON.stringify(app("a1", "other", ["10.77.0.1"])));
    c.set(`${P}apps/a2`, JSON.stringify(app("a2", "me", ["10.77.0.2"])));
    c.set(`${P}nodes/me`, JSON.stringify(node("me", "192.0.2.1")));
    c.set(`${P}nodes/other`, JSON.stringify(node("other", "192.0.2.2")));
    c.set(`${P}apps/a1`, JSON.stringify(app("a1", "other", ["10.77.0.1"])));
    c.set(`${P}apps/a1`, null);
    c.set(`${P}apps/a2`, null);
    assert.deepEqual(r.events, ["app a1 put", "node other put", "app a1 del"]);
  });

  test("a resync tells only what changed meanwhile", () => {
    const c = new RecordCache(P, "me", log);
    const r = recorder();
    const keep = JSON.stringify(svc("a1", "other", "10.77.0.1", "192.0.2.2"));
    c.set(`${P}services/s1`, keep);
    c.set(`${P}services/s2`, JSON.stringify(svc("a2", "other", "10.77.0.2", "192.0.2.2")));
    const snap = c.snapshot();
    assert.equal(snap.services.length, 2);
    c.attach(r.listener);
    assert.deepEqual(r.events, []);
    const fresh = new Map([
      [`${P}services/s1`, keep],
      [`${P}services/s3`, JSON.stringify(svc("a3", "other", "10.77.0.3", "192.0.2.2"))],
    ]);
    c.replace(fresh);
    assert.deepEqual(r.events.sort(), ["svc s2 del", "svc s3 put"]);
  });

  test("events before the daemon attaches are delivered when it does", () => {
    const c = new RecordCache(P, "me", log);
    c.snapshot();
    c.set(`${P}apps/late`, JSON.stringify(app("late", "other", ["10.77.0.9"])));
    const r = recorder();
    c.attach(r.listener);
    assert.deepEqual(r.events, ["app late put"]);
  });
});

describe("cluster options", () => {
  test("--store", () => {
    assert.deepEqual(parseStore({}), { kind: "embedded" });
    assert.deepEqual(parseEtcdUrl("etcd://10.0.0.1:2379,etcd-2.lan:2379"), [
      "10.0.0.1:2379",
      "etcd-2.lan:2379",
    ]);
    assert.deepEqual(parseEtcdUrl("etcd://[fd00::1]:2379"), ["[fd00::1]:2379"]);
    const s = parseStore({ store: "etcd://10.0.0.1:2379", cluster: "prod", leaseTtl: "3" });
    assert.equal(s.kind, "etcd");
    if (s.kind === "etcd") assert.deepEqual([s.cluster, s.ttl, s.tls], ["prod", 3, null]);
    for (const bad of ["etcd://", "etcd://host", "http://h:1", "etcd://h:99999"])
      assert.throws(() => parseStore({ store: bad }), /is not a store; use embedded, or etcd:\/\//);
    assert.throws(() => parseStore({ cluster: "x" }), /need --store etcd/);
    assert.throws(() => parseStore({ store: "etcd://h:1", cluster: "a/b" }), /not a usable name/);
    assert.throws(() => parseStore({ store: "etcd://h:1", leaseTtl: "1" }), /from 2 to 300/);
    assert.throws(() => parseStore({ store: "etcd://h:1", etcdCert: "/x" }), /go together/);
    assert.throws(() => parseStore({ store: "etcd://h:1", etcdCa: "/nonexistent" }), InvalidArgumentError);
  });

  test("--client-ports must lie apart from --ports and inside the ephemeral range", () => {
    const pool = { first: 40000, last: 60000 };
    const eph = { first: 32768, last: 60999 };
    assert.deepEqual(parseClientPorts("32768-39999", pool, eph), { first: 32768, last: 39999 });
    assert.throws(() => parseClientPorts("39000-41000", pool, eph), /overlaps --ports/);
    assert.throws(() => parseClientPorts("20000-30000", pool, eph), /ip_local_port_range/);
    assert.throws(() => parseClientPorts("33000-33010", pool, eph), /too small/);
    assert.deepEqual(parseClientPorts("33000-33015", pool, eph, 16), { first: 33000, last: 33015 });
    assert.equal(parseClientBlock("128"), 128);
    for (const bad of ["4", "5000", "x", "16.5"])
      assert.throws(() => parseClientBlock(bad), /from 8 to 4096/);
  });

  test("etcd errors are shortened to their cause", () => {
    assert.equal(
      etcdReason(
        new Error(
          "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 10.0.0.1:2379. Resolution note: ",
        ),
      ),
      "connect ECONNREFUSED 10.0.0.1:2379",
    );
    assert.equal(etcdReason(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded")), "Deadline exceeded");
    assert.equal(
      etcdReason(
        new Error(
          "14 UNAVAILABLE: No connection established. Last error: 80AC82CB627F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/ssl/rec_layer_s3.c:1601:SSL alert number 42\n. Resolution note: x",
        ),
      ),
      "TLS handshake failed (sslv3 alert bad certificate)",
    );
  });
});

describe("source-port blocks", () => {
  test("blocks are handed out, claimed and released whole", () => {
    const b = new BlockPool({ first: 32768, last: 32768 + 191 }, 64);
    assert.equal(b.count, 3);
    assert.deepEqual(b.take(), { first: 32768, last: 32831 });
    assert.equal(b.claim({ first: 32896, last: 32959 }), true);
    assert.deepEqual(b.take(), { first: 32832, last: 32895 });
    assert.equal(b.take(), null);
    b.release({ first: 32832, last: 32895 });
    assert.deepEqual(b.take(), { first: 32832, last: 32895 });
    assert.equal(b.claim({ first: 32770, last: 32833 }), false);
  });

  test("a released block is handed out again only after the others (its ports may be in TIME_WAIT)", () => {
    const b = new BlockPool({ first: 32768, last: 32768 + 191 }, 64);
    const first = b.take();
    assert.deepEqual(first, { first: 32768, last: 32831 });
    b.release(first as { first: number; last: number });
    assert.deepEqual(b.take(), { first: 32832, last: 32895 });
    assert.deepEqual(b.take(), { first: 32896, last: 32959 });
    assert.deepEqual(b.take(), { first: 32768, last: 32831 });
  });
});

describe("table across nodes", () => {
  test("a peer in another node's client range is managed; its app is found by block", () => {
    const t = new ServiceTable([parseCidr("10.77.0.0/16")], "round-robin");
    t.putNode(node("n2", "192.0.2.2"));
    t.putApp(app("c1", "n2", ["10.77.0.5"], { first: 32768, last: 32831 }));
    assert.equal(t.isRemoteManaged("192.0.2.2", 32800), true);
    assert.equal(t.isRemoteManaged("192.0.2.2", 45000), false);
    assert.equal(t.isRemoteManaged("192.0.2.9", 32800), false);
    assert.equal(t.remoteClient("192.0.2.2", 32800)?.id, "c1");
    assert.equal(t.remoteClient("192.0.2.2", 32900), undefined);
    // A new record of the app with another block, then the app gone.
    t.putApp(app("c1", "n2", ["10.77.0.5"], { first: 32896, last: 32959 }));
    assert.equal(t.remoteClient("192.0.2.2", 32800), undefined);
    assert.equal(t.remoteClient("192.0.2.2", 32900)?.id, "c1");
    t.removeApp("c1");
    assert.equal(t.remoteClient("192.0.2.2", 32900), undefined);
    t.removeNode("n2");
    assert.equal(t.isRemoteManaged("192.0.2.2", 32800), false);
    assert.equal(t.isNodeIp("192.0.2.2"), false);
  });

  test("services are found by their host address, also after one of a socket's is removed", () => {
    const t = new ServiceTable([parseCidr("10.77.0.0/16")], "round-robin");
    t.putApp(app("w", "n2", ["10.77.2.1", "fd77::1"]));
    const v4 = svc("w", "n2", "10.77.2.1", "192.0.2.2");
    const v6 = { ...svc("w", "n2", "fd77::1", "192.0.2.2"), id: "tcp/192.0.2.2/40000/fd77::1/80" };
    t.putService(v4);
    t.putService(v6);
    assert.equal(t.serviceAtHost("tcp", "192.0.2.2", 40000)?.appId, "w");
    t.removeService(v6.id);
    assert.equal(t.serviceAtHost("tcp", "192.0.2.2", 40000), v4);
    t.removeService(v4.id);
    assert.equal(t.serviceAtHost("tcp", "192.0.2.2", 40000), undefined);
    assert.equal(t.serviceAtHost("udp", "192.0.2.2", 40000), undefined);
  });

  test("--prefer-local picks this node's backends while there are any", () => {
    const t = new ServiceTable([parseCidr("10.77.0.0/16")], "round-robin", "n1");
    t.putApp(app("a", "n1", ["10.77.1.1"]));
    t.putApp(app("b", "n2", ["10.77.1.1"]));
    const local = svc("a", "n1", "10.77.1.1", "192.0.2.1");
    const remote = svc("b", "n2", "10.77.1.1", "192.0.2.2");
    t.putService(local);
    t.putService(remote);
    for (let i = 0; i < 4; i++) {
      const r = t.resolve("tcp", "10.77.1.1", 80, { zone: "default" });
      assert.equal(r.kind === "backend" && r.service.node, "n1");
    }
    t.removeApp("a");
    const r = t.resolve("tcp", "10.77.1.1", 80, { zone: "default" });
    assert.equal(r.kind === "backend" && r.service.node, "n2");
  });
});
