// Unit tests of src/table/table.ts (ServiceTable): apps, virtual IPs, services, and the
// connect-time resolve() decision.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseCidr } from "../../src/net/cidr.js";
import { type Lookup, ServiceTable } from "../../src/table/table.js";
import { type App, type Labels, type LbMode, type Service, serviceId } from "../../src/table/types.js";

function app(id: string, ips: string[], labels: Labels = { zone: "default" }, name = ""): App {
  return {
    id,
    name,
    ips,
    labels,
    expose: [],
    lb: null,
    node: "n1",
    pid: 1000,
    pidStart: 1,
    command: ["sleep", "1"],
    user: null,
    createdAt: "2024-01-01T00:00:00.000Z",
  };
}

interface SvcOpts {
  appId: string;
  vip: string;
  vport: number;
  hostPort: number;
  hostIp?: string;
  proto?: "tcp" | "udp";
  labels?: Labels;
  lb?: LbMode | null;
}

function svc(o: SvcOpts): Service {
  const proto = o.proto ?? "tcp";
  const hostIp = o.hostIp ?? "192.0.2.1";
  return {
    id: serviceId(proto, hostIp, o.hostPort, o.vip, o.vport),
    appId: o.appId,
    name: "",
    proto,
    vip: o.vip,
    vport: o.vport,
    hostIp,
    hostPort: o.hostPort,
    labels: o.labels ?? { zone: "default" },
    lb: o.lb ?? null,
    node: "n1",
    exposed: false,
    createdAt: "2024-01-01T00:00:00.000Z",
  };
}

function backendOf(l: Lookup): Service {
  assert.equal(l.kind, "backend");
  return (l as { kind: "backend"; service: Service }).service;
}

const CIDR = parseCidr("10.77.0.0/16");
const DEF = { zone: "default" };

describe("ServiceTable apps", () => {
  test("putApp, getApp, listApps, appsWithIp, appsWithName", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    const a = app("a", ["10.77.0.10", "fd77::10"], DEF, "web");
    const b = app("b", ["10.77.0.10"], DEF, "web");
    t.putApp(a);
    t.putApp(b);
    assert.equal(t.getApp("a"), a);
    assert.equal(t.getApp("zzz"), undefined);
    assert.deepEqual(
      t.listApps().map((x) => x.id),
      ["a", "b"],
    );
    assert.deepEqual(
      t.appsWithIp("10.77.0.10").map((x) => x.id),
      ["a", "b"],
    );
    assert.deepEqual(
      t.appsWithIp("fd77::10").map((x) => x.id),
      ["a"],
    );
    assert.deepEqual(t.appsWithIp("10.77.0.11"), []);
    assert.deepEqual(
      t.appsWithName("web").map((x) => x.id),
      ["a", "b"],
    );
    assert.deepEqual(t.appsWithName("db"), []);
  });

  test("putApp again with other IPs re-indexes the app", () => {
    const t = new ServiceTable([], "round-robin");
    t.putApp(app("a", ["10.1.1.1"]));
    t.putApp(app("a", ["10.2.2.2"]));
    assert.deepEqual(t.appsWithIp("10.1.1.1"), []);
    assert.deepEqual(
      t.appsWithIp("10.2.2.2").map((x) => x.id),
      ["a"],
    );
    assert.equal(t.listApps().length, 1);
    assert.equal(t.isVirtual("10.2.2.2"), true);
  });

  test("an IP an app no longer has is no longer virtual after putApp", () => {
    const t = new ServiceTable([], "round-robin");
    t.putApp(app("a", ["10.1.1.1"]));
    t.putApp(app("a", ["10.2.2.2"]));
    assert.equal(t.isVirtual("10.1.1.1"), false);
    assert.deepEqual(t.resolve("tcp", "10.1.1.1", 80, DEF), { kind: "not-virtual" });
  });

  test("removeApp removes the app, its IPs and its services, and returns the services", () => {
    const t = new ServiceTable([], "round-robin");
    t.putApp(app("a", ["10.1.1.1"]));
    t.putApp(app("b", ["10.1.1.2"]));
    const s1 = svc({ appId: "a", vip: "10.1.1.1", vport: 80, hostPort: 40000 });
    const s2 = svc({ appId: "a", vip: "10.1.1.1", vport: 443, hostPort: 40001 });
    const s3 = svc({ appId: "b", vip: "10.1.1.2", vport: 80, hostPort: 40002 });
    t.putService(s1);
    t.putService(s2);
    t.putService(s3);
    const removed = t.removeApp("a");
    assert.deepEqual(removed.map((s) => s.id).sort(), [s1.id, s2.id].sort());
    assert.equal(t.getApp("a"), undefined);
    assert.deepEqual(t.appsWithIp("10.1.1.1"), []);
    assert.equal(t.isVirtual("10.1.1.1"), false);
    assert.deepEqual(t.backends("tcp", "10.1.1.1", 80), []);
    assert.deepEqual(t.servicesOfApp("a"), []);
    assert.equal(t.getService(s1.id), undefined);
    assert.deepEqual(
      t.listServices().map((s) => s.id),
      [s3.id],
    );
    assert.equal(t.isVirtual("10.1.1.2"), true);
  });

  test("removeApp keeps an IP that another app still has", () => {
    const t = new ServiceTable([], "round-robin");
    t.putApp(app("a", ["10.1.1.1"]));
    t.putApp(app("b", ["10.1.1.1"]));
    t.removeApp("a");
    assert.equal(t.isVirtual("10.1.1.1"), true);
    assert.deepEqual(
      t.appsWithIp("10.1.1.1").map((x) => x.id),
      ["b"],
    );
  });

  test("removeApp of an unknown app still removes services registered under its id", () => {
    const t = new ServiceTable([], "round-robin");
    const s = svc({ appId: "ghost", vip: "10.1.1.1", vport: 80, hostPort: 40000 });
    t.putService(s);
    assert.deepEqual(
      t.removeApp("ghost").map((x) => x.id),
      [s.id],
    );
    assert.deepEqual(t.listServices(), []);
    assert.deepEqual(t.removeApp("ghost"), []);
  });
});

describe("ServiceTable isVirtual", () => {
  test("an app's IP outside the pool is virtual", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    t.putApp(app("a", ["192.168.50.5", "fd99::5"]));
    assert.equal(t.isVirtual("192.168.50.5"), true);
    assert.equal(t.isVirtual("fd99::5"), true);
    assert.equal(t.isVirtual("192.168.50.6"), false);
  });

  test("any address inside a pool CIDR is virtual, even without an app", () => {
    const t = new ServiceTable([CIDR, parseCidr("fd77::/64")], "round-robin");
    assert.equal(t.isVirtual("10.77.0.1"), true);
    assert.equal(t.isVirtual("10.77.255.254"), true);
    assert.equal(t.isVirtual("10.78.0.1"), false);
    assert.equal(t.isVirtual("fd77::abcd"), true);
    assert.equal(t.isVirtual("fd78::1"), false);
  });

  test("garbage text is not virtual", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    assert.equal(t.isVirtual("not-an-ip"), false);
    assert.equal(t.isVirtual(""), false);
  });

  test("without a pool only app IPs are virtual", () => {
    const t = new ServiceTable([], "round-robin");
    assert.equal(t.isVirtual("10.77.0.1"), false);
  });
});

describe("ServiceTable services", () => {
  test("putService / backends / removeService, grouped by proto, vip and vport", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    const a = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000 });
    const b = svc({ appId: "b", vip: "10.77.0.10", vport: 80, hostPort: 40001 });
    const u = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40002, proto: "udp" });
    const other = svc({ appId: "a", vip: "10.77.0.10", vport: 81, hostPort: 40003 });
    for (const s of [a, b, u, other]) t.putService(s);
    assert.deepEqual(
      t.backends("tcp", "10.77.0.10", 80).map((s) => s.id),
      [a.id, b.id],
    );
    assert.deepEqual(
      t.backends("udp", "10.77.0.10", 80).map((s) => s.id),
      [u.id],
    );
    assert.deepEqual(
      t.backends("tcp", "10.77.0.10", 81).map((s) => s.id),
      [other.id],
    );
    assert.deepEqual(t.backends("tcp", "10.77.0.11", 80), []);
    assert.equal(t.getService(a.id), a);
    assert.deepEqual(
      t.servicesOfApp("a").map((s) => s.id),
      [a.id, u.id, other.id],
    );

    assert.equal(t.removeService(a.id), a);
    assert.equal(t.removeService(a.id), undefined);
    assert.deepEqual(
      t.backends("tcp", "10.77.0.10", 80).map((s) => s.id),
      [b.id],
    );
    assert.deepEqual(
      t.servicesOfApp("a").map((s) => s.id),
      [u.id, other.id],
    );
  });

  test("putService with an existing id replaces the record, not duplicates it", () => {
    const t = new ServiceTable([], "round-robin");
    const s1 = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000, labels: { zone: "x" } });
    const s2 = { ...s1, labels: { zone: "y" } };
    t.putService(s1);
    t.putService(s2);
    const list = t.backends("tcp", "10.77.0.10", 80);
    assert.equal(list.length, 1);
    assert.equal(list[0], s2);
    assert.equal(t.listServices().length, 1);
    assert.equal(t.getService(s1.id), s2);
  });

  test("putService of the same id under another app moves ownership", () => {
    const t = new ServiceTable([], "round-robin");
    const s1 = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000 });
    t.putService(s1);
    t.putService({ ...s1, appId: "b" });
    assert.deepEqual(t.servicesOfApp("a"), []);
    assert.equal(t.servicesOfApp("b").length, 1);
    assert.deepEqual(t.removeApp("a"), []);
    assert.equal(t.listServices().length, 1);
  });
});

describe("ServiceTable resolve", () => {
  test("backend when a service exists and labels are shared", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    t.putApp(app("srv", ["10.77.0.10"]));
    const s = svc({ appId: "srv", vip: "10.77.0.10", vport: 80, hostPort: 40000 });
    t.putService(s);
    assert.deepEqual(t.resolve("tcp", "10.77.0.10", 80, DEF), { kind: "backend", service: s });
  });

  test("no-backend for a virtual IP without a service on that port or proto", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    t.putApp(app("srv", ["192.168.5.5"]));
    t.putService(svc({ appId: "srv", vip: "192.168.5.5", vport: 80, hostPort: 40000 }));
    assert.deepEqual(t.resolve("tcp", "192.168.5.5", 81, DEF), { kind: "no-backend" });
    assert.deepEqual(t.resolve("udp", "192.168.5.5", 80, DEF), { kind: "no-backend" });
    assert.deepEqual(t.resolve("tcp", "10.77.3.3", 80, DEF), { kind: "no-backend" }, "inside the pool");
  });

  test("not-virtual for a real destination", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    assert.deepEqual(t.resolve("tcp", "93.184.216.34", 443, DEF), { kind: "not-virtual" });
    assert.deepEqual(t.resolve("tcp", "2001:db8::1", 443, DEF), { kind: "not-virtual" });
  });

  test("denied when no backend shares a label, with the number of candidates", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    t.putService(svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000, labels: { zone: "db" } }));
    t.putService(svc({ appId: "b", vip: "10.77.0.10", vport: 80, hostPort: 40001, labels: { zone: "ops" } }));
    assert.deepEqual(t.resolve("tcp", "10.77.0.10", 80, { zone: "web" }), { kind: "denied", candidates: 2 });
  });

  test("label policy picks only the allowed backends", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    const db = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000, labels: { zone: "db" } });
    const web1 = svc({ appId: "b", vip: "10.77.0.10", vport: 80, hostPort: 40001, labels: { zone: "web" } });
    const web2 = svc({
      appId: "c",
      vip: "10.77.0.10",
      vport: 80,
      hostPort: 40002,
      labels: { tier: "x", zone: "web" },
    });
    t.putService(db);
    t.putService(web1);
    t.putService(web2);
    const picks = Array.from({ length: 6 }, () =>
      backendOf(t.resolve("tcp", "10.77.0.10", 80, { zone: "web" })),
    );
    assert.ok(picks.every((p) => p !== db));
    assert.ok(picks.includes(web1));
    assert.ok(picks.includes(web2));
    assert.equal(backendOf(t.resolve("tcp", "10.77.0.10", 80, { zone: "db" })), db);
  });

  test("round-robin across two backends of one vip:port", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    const s1 = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000 });
    const s2 = svc({ appId: "b", vip: "10.77.0.10", vport: 80, hostPort: 40001 });
    t.putService(s1);
    t.putService(s2);
    const picks = Array.from(
      { length: 4 },
      () => backendOf(t.resolve("tcp", "10.77.0.10", 80, DEF)).hostPort,
    );
    assert.deepEqual(picks, [40000, 40001, 40000, 40001]);
  });

  test("removing the last backend forgets the round-robin position", () => {
    const t = new ServiceTable([CIDR], "round-robin");
    const s1 = svc({ appId: "a", vip: "10.77.0.10", vport: 80, hostPort: 40000 });
    const s2 = svc({ appId: "b", vip: "10.77.0.10", vport: 80, hostPort: 40001 });
    t.putService(s1);
    t.putService(s2);
    t.resolve("tcp", "10.77.0.10", 80, DEF); // s1; next would be s2
    t.removeService(s1.id);
    t.removeService(s2.id);
    assert.deepEqual(t.resolve("tcp", "10.77.0.10", 80, DEF), { kind: "no-backend" });
    t.putService(s1);
    t.putService(s2);
    assert.equal(backendOf(t.resolve("tcp", "10.77.0.10", 80, DEF)), s1);
  });

  test("after removeApp its services are no longer resolved", () => {
    const t = new ServiceTable([], "round-robin");
    t.putApp(app("a", ["10.1.1.1"]));
    t.putService(svc({ appId: "a", vip: "10.1.1.1", vport: 80, hostPort: 40000 }));
    assert.equal(t.resolve("tcp", "10.1.1.1", 80, DEF).kind, "backend");
    t.removeApp("a");
    assert.deepEqual(t.resolve("tcp", "10.1.1.1", 80, DEF), { kind: "not-virtual" });
  });
});
