// Unit tests of src/table/sockets.ts (SocketRegistry): bindings and sources keyed by host
// address.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Binding, SocketRegistry, type Source } from "../../src/table/sockets.js";
import type { Proto } from "../../src/table/types.js";

interface BOpts {
  appId: string;
  hostPort: number;
  vport: number;
  proto?: Proto;
  hostIp?: string;
  vip?: string;
  inode?: number;
}

function binding(o: BOpts): Binding {
  return {
    appId: o.appId,
    proto: o.proto ?? "tcp",
    inode: o.inode ?? 1000 + o.hostPort,
    vip: o.vip ?? "10.77.0.10",
    vport: o.vport,
    hostIp: o.hostIp ?? "192.0.2.1",
    hostPort: o.hostPort,
    domain: 2,
    reusePort: false,
    reuseAddr: false,
    loopback: false,
    v6only: false,
    exposed: false,
    listening: false,
    serviceIds: [],
    shadowFd: -1,
    connectedTo: null,
  };
}

function source(appId: string, localPort: number, peerIp = "10.77.0.20", peerPort = 80, cookie = 0): Source {
  return {
    appId,
    local: { ip: "10.77.0.10", port: localPort },
    peer: { ip: peerIp, port: peerPort },
    cookie,
  };
}

describe("SocketRegistry bindings", () => {
  test("looked up by proto and host address", () => {
    const r = new SocketRegistry();
    const b = binding({ appId: "a", hostPort: 40000, vport: 80 });
    r.addBinding(b);
    assert.equal(r.binding("tcp", "192.0.2.1", 40000), b);
    assert.equal(r.binding("udp", "192.0.2.1", 40000), undefined);
    assert.equal(r.binding("tcp", "192.0.2.2", 40000), undefined);
    assert.equal(r.binding("tcp", "192.0.2.1", 40001), undefined);
  });

  test("tcp and udp on the same host address are separate", () => {
    const r = new SocketRegistry();
    const t = binding({ appId: "a", hostPort: 40000, vport: 53 });
    const u = binding({ appId: "a", hostPort: 40000, vport: 53, proto: "udp" });
    r.addBinding(t);
    r.addBinding(u);
    assert.equal(r.binding("tcp", "192.0.2.1", 40000), t);
    assert.equal(r.binding("udp", "192.0.2.1", 40000), u);
    assert.equal(r.allBindings().length, 2);
  });

  test("bindingsOn filters by app, proto and virtual port", () => {
    const r = new SocketRegistry();
    const a80 = binding({ appId: "a", hostPort: 40000, vport: 80 });
    const a80v6 = binding({ appId: "a", hostPort: 40001, vport: 80, vip: "fd77::10", hostIp: "2001:db8::1" });
    const a81 = binding({ appId: "a", hostPort: 40002, vport: 81 });
    const a80u = binding({ appId: "a", hostPort: 40003, vport: 80, proto: "udp" });
    const b80 = binding({ appId: "b", hostPort: 40004, vport: 80 });
    for (const b of [a80, a80v6, a81, a80u, b80]) r.addBinding(b);
    assert.deepEqual(r.bindingsOn("a", "tcp", 80), [a80, a80v6]);
    assert.deepEqual(r.bindingsOn("a", "udp", 80), [a80u]);
    assert.deepEqual(r.bindingsOn("a", "tcp", 81), [a81]);
    assert.deepEqual(r.bindingsOn("b", "tcp", 80), [b80]);
    assert.deepEqual(r.bindingsOn("c", "tcp", 80), []);
    assert.deepEqual(r.bindingsOf("a"), [a80, a80v6, a81, a80u]);
  });

  test("removeBinding removes only that binding", () => {
    const r = new SocketRegistry();
    const b1 = binding({ appId: "a", hostPort: 40000, vport: 80 });
    const b2 = binding({ appId: "a", hostPort: 40001, vport: 80 });
    r.addBinding(b1);
    r.addBinding(b2);
    r.removeBinding(b1);
    assert.equal(r.binding("tcp", "192.0.2.1", 40000), undefined);
    assert.deepEqual(r.bindingsOn("a", "tcp", 80), [b2]);
  });

  test("sockets of one app that share a host port each keep a record; the port stays until the last goes", () => {
    const r = new SocketRegistry();
    const s1 = binding({ appId: "a", proto: "udp", hostPort: 40000, vport: 53, inode: 1 });
    const s2 = binding({ appId: "a", proto: "udp", hostPort: 40000, vport: 53, inode: 2 });
    const s3 = binding({ appId: "a", proto: "udp", hostPort: 40000, vport: 53, inode: 3 });
    r.addBinding(s1);
    r.addBinding(s2, true);
    r.addBinding(s3, true);
    assert.equal(r.binding("udp", "192.0.2.1", 40000), s3, "the newest at the address");
    assert.deepEqual(r.bindingsOn("a", "udp", 53), [s1, s2, s3]);
    assert.deepEqual(r.bindingsOf("a"), [s1, s2, s3]);
    assert.equal(r.allBindings().length, 3);
    assert.deepEqual(r.sharersOf(s2), [s1, s3]);
    assert.equal(r.countOf("a"), 1, "one host port");
    r.removeBinding(s3);
    assert.equal(r.has(s3), false);
    assert.equal(r.binding("udp", "192.0.2.1", 40000), s2, "the newest left takes the address");
    r.removeBinding(s1);
    assert.deepEqual(r.sharersOf(s2), []);
    assert.deepEqual(r.bindingsOn("a", "udp", 53), [s2]);
    r.removeBinding(s2);
    assert.equal(r.binding("udp", "192.0.2.1", 40000), undefined);
    assert.equal(r.countOf("a"), 0);
  });

  test("a binding that does not share replaces the records at its address", () => {
    const r = new SocketRegistry();
    const s1 = binding({ appId: "a", proto: "udp", hostPort: 40000, vport: 53, inode: 1 });
    const s2 = binding({ appId: "a", proto: "udp", hostPort: 40000, vport: 53, inode: 2 });
    const other = binding({ appId: "b", proto: "udp", hostPort: 40000, vport: 53, inode: 3 });
    r.addBinding(s1);
    r.addBinding(s2, true);
    r.addBinding(other, true); // another app's socket never shares: it replaces
    assert.deepEqual(r.allBindings(), [other]);
    assert.equal(r.has(s1), false);
    assert.equal(r.has(s2), false);
  });

  test("removeBinding of a replaced record leaves the newer one in place", () => {
    const r = new SocketRegistry();
    const old = binding({ appId: "a", hostPort: 40000, vport: 80, inode: 1 });
    const fresh = binding({ appId: "a", hostPort: 40000, vport: 80, inode: 2 });
    r.addBinding(old);
    r.addBinding(fresh);
    r.removeBinding(old);
    assert.equal(r.binding("tcp", "192.0.2.1", 40000), fresh);
    assert.deepEqual(r.bindingsOn("a", "tcp", 80), [fresh]);
    assert.deepEqual(r.bindingsOf("a"), [fresh], "the app still owns the host port");
  });

  test("a record replaced on another virtual port moves to that port", () => {
    const r = new SocketRegistry();
    r.addBinding(binding({ appId: "a", hostPort: 40000, vport: 80 }));
    const fresh = binding({ appId: "b", hostPort: 40000, vport: 81 });
    r.addBinding(fresh);
    assert.deepEqual(r.bindingsOn("a", "tcp", 80), []);
    assert.deepEqual(r.bindingsOn("b", "tcp", 81), [fresh]);
    assert.deepEqual(r.bindingsOf("a"), []);
  });

  test("binding objects are mutable records (listening, serviceIds)", () => {
    const r = new SocketRegistry();
    const b = binding({ appId: "a", hostPort: 40000, vport: 80 });
    r.addBinding(b);
    b.listening = true;
    b.serviceIds.push("svc1");
    assert.equal(r.binding("tcp", "192.0.2.1", 40000)?.listening, true);
    assert.deepEqual(r.binding("tcp", "192.0.2.1", 40000)?.serviceIds, ["svc1"]);
  });
});

describe("SocketRegistry sources", () => {
  test("looked up by proto and host address", () => {
    const r = new SocketRegistry();
    const s = source("a", 40100);
    r.addSource("tcp", "192.0.2.1", 40100, s);
    assert.equal(r.source("tcp", "192.0.2.1", 40100), s);
    assert.equal(r.source("udp", "192.0.2.1", 40100), undefined);
    assert.equal(r.source("tcp", "192.0.2.1", 40101), undefined);
    assert.deepEqual(r.allSources(), [["tcp|192.0.2.1|40100", s]]);
  });

  test("a newer source on the same host address replaces the older one", () => {
    const r = new SocketRegistry();
    r.addSource("tcp", "192.0.2.1", 40100, source("a", 40100, "10.77.0.20"));
    const s2 = source("b", 40100, "10.77.0.30");
    r.addSource("tcp", "192.0.2.1", 40100, s2);
    assert.equal(r.source("tcp", "192.0.2.1", 40100), s2);
    assert.equal(r.allSources().length, 1);
  });

  test("the records of other sockets on the same host address stay behind the newest (at most 3)", () => {
    const r = new SocketRegistry();
    const olds = [1, 2, 3, 4].map((c) => source("a", 40100, "10.77.0.20", 80 + c, c));
    for (const o of olds) r.addSource("tcp", "192.0.2.1", 40100, o);
    const newest = r.source("tcp", "192.0.2.1", 40100);
    assert.equal(newest, olds[3]);
    assert.deepEqual(
      [newest?.previous, newest?.previous?.previous, newest?.previous?.previous?.previous],
      [olds[2], olds[1], olds[0]],
    );
    r.addSource("tcp", "192.0.2.1", 40100, source("a", 40100, "10.77.0.20", 90, 5));
    let depth = 0;
    for (let x = r.source("tcp", "192.0.2.1", 40100)?.previous; x; x = x.previous) depth++;
    assert.equal(depth, 3, "the oldest is forgotten");
  });

  test("the same socket recorded again (same cookie) keeps no earlier record of itself", () => {
    const r = new SocketRegistry();
    r.addSource("udp", "192.0.2.1", 40100, source("a", 40100, "10.77.0.20", 53, 7));
    r.addSource("udp", "192.0.2.1", 40100, source("a", 40100, "10.77.0.21", 53, 7));
    assert.equal(r.source("udp", "192.0.2.1", 40100)?.previous, undefined);
  });

  test("removeSource forgets one record: the newest (the next takes its place) or one behind it", () => {
    const r = new SocketRegistry();
    const [s1, s2, s3] = [1, 2, 3].map((c) => source(`app${c}`, 40100, `10.77.0.${c}`, 80, c)) as [
      Source,
      Source,
      Source,
    ];
    for (const s of [s1, s2, s3]) r.addSource("udp", "192.0.2.1", 40100, s);
    r.removeSource("udp", "192.0.2.1", 40100, s2);
    assert.equal(r.source("udp", "192.0.2.1", 40100), s3);
    assert.equal(s3.previous, s1);
    r.removeSource("udp", "192.0.2.1", 40100, s3);
    assert.equal(r.source("udp", "192.0.2.1", 40100), s1);
    assert.equal(r.hostOfSource("udp", "10.77.0.10", 40100)?.source, s1, "the reply index follows");
    r.removeSource("udp", "192.0.2.1", 40100, s1);
    assert.equal(r.source("udp", "192.0.2.1", 40100), undefined);
    assert.deepEqual(r.allSources(), []);
  });

  test("a new binding replaces a stale source on the same host address", () => {
    const r = new SocketRegistry();
    r.addSource("tcp", "192.0.2.1", 40000, source("a", 40000));
    r.addSource("tcp", "192.0.2.1", 40001, source("a", 40001));
    r.addSource("udp", "192.0.2.1", 40000, source("a", 40000));
    r.addBinding(binding({ appId: "b", hostPort: 40000, vport: 80 }));
    assert.equal(r.source("tcp", "192.0.2.1", 40000), undefined);
    assert.ok(r.source("tcp", "192.0.2.1", 40001), "other ports keep their source");
    assert.ok(r.source("udp", "192.0.2.1", 40000), "the other proto keeps its source");
  });
});

describe("SocketRegistry removeApp", () => {
  test("forgets the app's bindings, retires its sources, returns its bindings, keeps others", () => {
    const r = new SocketRegistry();
    const a1 = binding({ appId: "a", hostPort: 40000, vport: 80 });
    const a2 = binding({ appId: "a", hostPort: 40001, vport: 53, proto: "udp" });
    const b1 = binding({ appId: "b", hostPort: 40002, vport: 80 });
    for (const b of [a1, a2, b1]) r.addBinding(b);
    r.addSource("tcp", "192.0.2.1", 40100, source("a", 40100));
    r.addSource("tcp", "192.0.2.1", 40101, source("b", 40101));
    const removed = r.removeApp("a", 1000);
    assert.deepEqual(removed, [a1, a2]);
    assert.equal(r.binding("tcp", "192.0.2.1", 40000), undefined);
    assert.equal(r.binding("udp", "192.0.2.1", 40001), undefined);
    assert.deepEqual(r.bindingsOf("a"), []);
    assert.deepEqual(r.bindingsOn("a", "tcp", 80), []);
    assert.ok(r.source("tcp", "192.0.2.1", 40100), "a client record outlives its app for a while");
    assert.equal(r.forgetRetired(1000), 0, "not retired before 1000");
    assert.equal(r.forgetRetired(1001), 1);
    assert.equal(r.source("tcp", "192.0.2.1", 40100), undefined);
    assert.equal(r.binding("tcp", "192.0.2.1", 40002), b1);
    assert.ok(r.source("tcp", "192.0.2.1", 40101));
    assert.deepEqual(r.allBindings(), [b1]);
  });

  test("removeApp of an unknown app changes nothing", () => {
    const r = new SocketRegistry();
    r.addBinding(binding({ appId: "a", hostPort: 40000, vport: 80 }));
    assert.deepEqual(r.removeApp("zzz", 0), []);
    assert.equal(r.allBindings().length, 1);
  });

  test("a host address taken over by another app stays with the new app", () => {
    const r = new SocketRegistry();
    const stale = binding({ appId: "a", hostPort: 18080, vport: 8080, inode: 1 });
    const fresh = binding({ appId: "b", hostPort: 18080, vport: 8080, inode: 2 });
    r.addBinding(stale);
    r.addBinding(fresh); // same host address: replaces a's record
    assert.deepEqual(r.bindingsOn("a", "tcp", 8080), [], "a no longer owns 18080");
    assert.deepEqual(r.removeApp("a", 0), [], "a's removal must not return b's binding");
    assert.equal(r.binding("tcp", "192.0.2.1", 18080), fresh, "b's binding survives a's removal");
  });

  test("a retired client record replaced by a new one at its host address is not forgotten", () => {
    const r = new SocketRegistry();
    r.addSource("udp", "0.0.0.0", 40100, source("a", 40100));
    r.removeApp("a", 5);
    r.addSource("udp", "0.0.0.0", 40100, source("b", 40100));
    assert.equal(r.source("udp", "0.0.0.0", 40100)?.previous?.appId, "a", "a's record behind b's");
    assert.equal(r.forgetRetired(10), 1, "only a's retired record goes");
    assert.equal(r.source("udp", "0.0.0.0", 40100)?.appId, "b");
    assert.equal(r.source("udp", "0.0.0.0", 40100)?.previous, undefined);
    assert.equal(r.retiredCount, 0);
  });

  test("forgetRetired goes by the newest retirement at each address, oldest first", () => {
    const r = new SocketRegistry();
    r.addSource("tcp", "192.0.2.1", 40300, source("a", 40300));
    r.addSource("tcp", "192.0.2.1", 40300, source("c", 40300)); // a's behind c's
    r.addSource("tcp", "192.0.2.1", 40301, source("b", 40301));
    r.removeApp("a", 5);
    r.removeApp("b", 6);
    r.removeApp("c", 9); // 40300 again: now the newest
    assert.equal(r.forgetRetired(7), 1, "b's; 40300 waits for c's");
    assert.equal(r.source("tcp", "192.0.2.1", 40300)?.appId, "c");
    assert.equal(r.forgetRetired(10), 2, "c's and a's");
    assert.equal(r.retiredCount, 0);
    assert.equal(r.source("tcp", "192.0.2.1", 40300), undefined);
  });

  test("a retired record routes no reply, and records behind another app's are retired too", () => {
    const r = new SocketRegistry();
    r.addSource("udp", "192.0.2.1", 40100, source("a", 40100));
    assert.ok(r.hostOfSource("udp", "10.77.0.10", 40100), "a running client is reached");
    r.removeApp("a", 5);
    assert.equal(r.hostOfSource("udp", "10.77.0.10", 40100), undefined, "its app exited");
    assert.equal(r.source("udp", "192.0.2.1", 40100)?.retiredAt, 5, "still there, retired");
    r.addSource("tcp", "192.0.2.1", 40200, source("c", 40200));
    r.addSource("tcp", "192.0.2.1", 40200, source("d", 40200));
    r.removeApp("c", 7);
    assert.equal(r.source("tcp", "192.0.2.1", 40200)?.previous?.retiredAt, 7);
    assert.equal(r.forgetRetired(6), 1, "a's, retired at 5");
    assert.equal(r.forgetRetired(8), 1, "c's, behind d's");
    assert.equal(r.source("tcp", "192.0.2.1", 40200)?.appId, "d");
    assert.equal(r.retiredCount, 0);
  });

  test("a datagram's sender: a live socket on the wildcard wins over a retired record at the exact address", () => {
    const r = new SocketRegistry();
    // An exited app's connected UDP socket had 127.0.0.1:40200; a new app's unbound socket
    // was autobound to 0.0.0.0:40200 since (the kernel reuses ephemeral ports).
    r.addSource("udp", "127.0.0.1", 40200, source("old", 40200));
    r.removeApp("old", 5);
    r.addSource("udp", "0.0.0.0", 40200, source("new", 40200));
    assert.equal(r.sourceOfDatagram("127.0.0.1", 40200)?.appId, "new");
    // The same with the IPv6 wildcard.
    r.addSource("udp", "127.0.0.1", 40201, source("old2", 40201));
    r.removeApp("old2", 5);
    r.addSource("udp", "::", 40201, source("new2", 40201));
    assert.equal(r.sourceOfDatagram("127.0.0.1", 40201)?.appId, "new2");
    // With no live record, the retired one still names what was sent before the exit.
    r.addSource("udp", "127.0.0.1", 40202, source("gone", 40202));
    r.removeApp("gone", 5);
    assert.equal(r.sourceOfDatagram("127.0.0.1", 40202)?.appId, "gone");
  });
});
