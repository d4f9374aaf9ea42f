// Unit tests of admission by a connection that exists now (src/trap/admission.ts) with a
// fake addon standing in for the kernel's exact socket lookup (sock_diag) and its receive
// timestamps: a record names a peer whose socket is the recorded one now, or (UDP) a
// datagram the kernel received while the recorded socket held the address; a retired
// record (its app exited) names its client's queued traffic and is never dropped for an
// impostor's, which it never names.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Addon } from "../../src/native/addon.js";
import { SocketRegistry, type Source } from "../../src/table/sockets.js";
import type { Proto } from "../../src/table/types.js";
import { checkSender, liveSource } from "../../src/trap/admission.js";
import type { TrapHost } from "../../src/trap/host.js";

const CLIENT = { ip: "192.0.2.1", port: 40100 };
const SERVER = { ip: "192.0.2.1", port: 45000 };

interface Kernel {
  /** The cookie of the socket the lookup finds at the client's address; null: none. */
  at: number | null;
  /** The receive time of the datagram just read (µs); negative: -errno. */
  stamp: number;
  stampCalls: number;
}

function fakeHost(k: Kernel): TrapHost {
  const addon = {
    sockLookup: (
      _f: number,
      _p: number,
      _s: Uint8Array,
      _sp: number,
      _d: Uint8Array,
      _dp: number,
      out: Uint8Array,
    ) => {
      if (k.at === null) return 0;
      const v = new DataView(out.buffer, out.byteOffset);
      v.setUint32(8, 7000 + k.at, true);
      v.setUint32(48, k.at, true);
      v.setUint32(52, 0, true);
      return 1;
    },
    recvStampUs: () => {
      k.stampCalls++;
      return k.stamp;
    },
  } as unknown as Addon;
  const log = { error: () => {}, info: () => {}, warn: () => {} };
  return {
    addon,
    log,
    sockets: new SocketRegistry(),
    config: { nodeIp: "192.0.2.1", nodeIp6: null },
  } as unknown as TrapHost;
}

function record(appId: string, cookie: number, held?: [number, number]): Source {
  return {
    appId,
    local: { ip: "10.77.0.20", port: CLIENT.port },
    peer: { ip: "10.77.0.10", port: 53 },
    cookie,
    heldSince: held?.[0],
    heldUntil: held?.[1],
  };
}

function setup(proto: Proto, r: Source, k: Partial<Kernel> = {}) {
  const kernel: Kernel = { at: null, stamp: -2, stampCalls: 0, ...k };
  const host = fakeHost(kernel);
  host.sockets.addSource(proto, CLIENT.ip, CLIENT.port, r);
  return { host, kernel };
}

describe("admission of UDP senders", () => {
  test("the recorded socket there now: named, and known to hold its address until now", () => {
    const r = record("a", 11, [100, 200]);
    const { host, kernel } = setup("udp", r, { at: 11 });
    assert.equal(checkSender(host, 3, SERVER, CLIENT), r);
    assert.equal(kernel.stampCalls, 0, "no timestamp needed");
    assert.ok((r.heldUntil ?? 0) >= Date.now() * 1000 - 5_000_000, "held until the lookup");
  });

  test("its socket gone: a datagram received while it held the address is still its own", () => {
    const r = record("a", 11, [100, 200]);
    const { host } = setup("udp", r, { at: null, stamp: 150 });
    assert.equal(checkSender(host, 3, SERVER, CLIENT), r);
    assert.equal(host.sockets.source("udp", CLIENT.ip, CLIENT.port), r, "kept for the rest of the queue");
  });

  test("another socket at the address now: a datagram received after the client's last send is nobody's", () => {
    const r = record("a", 11, [100, 200]);
    const { host, kernel } = setup("udp", r, { at: 12, stamp: 201 });
    assert.equal(checkSender(host, 3, SERVER, CLIENT), null);
    assert.equal(host.sockets.source("udp", CLIENT.ip, CLIENT.port), undefined, "a stale record is dropped");
    kernel.stamp = 150;
    assert.equal(checkSender(host, 3, SERVER, CLIENT), null, "and names nothing after");
  });

  test("a datagram from whoever held the address before the client is not the client's", () => {
    const r = record("a", 11, [100, 200]);
    const { host } = setup("udp", r, { at: null, stamp: 99 });
    assert.equal(checkSender(host, 3, SERVER, CLIENT), null);
  });

  test("no timestamp (nothing received, or no window known): nobody's", () => {
    const { host } = setup("udp", record("a", 11, [100, 200]), { at: null, stamp: -2 });
    assert.equal(checkSender(host, 3, SERVER, CLIENT), null);
    const rebuilt = setup("udp", record("a", 11), { at: null, stamp: 150 });
    assert.equal(checkSender(rebuilt.host, 3, SERVER, CLIENT), null, "a record without a window");
  });

  test("a retired record names its client's queued datagrams and survives an impostor's", () => {
    const r = record("a", 11, [100, 200]);
    const { host, kernel } = setup("udp", r, { at: 12, stamp: 150 });
    host.sockets.removeApp("a", 1);
    assert.equal(checkSender(host, 3, SERVER, CLIENT), r, "queued before the exit");
    kernel.stamp = 300;
    assert.equal(checkSender(host, 3, SERVER, CLIENT), null, "the impostor's");
    assert.equal(host.sockets.source("udp", CLIENT.ip, CLIENT.port), r, "still there");
    kernel.stamp = 190;
    assert.equal(checkSender(host, 3, SERVER, CLIENT), r, "another server's queued datagram");
  });
});

describe("admission of TCP connections", () => {
  test("an exited client's connection still queued: its socket lingers with its cookie", () => {
    const r = record("a", 21);
    const { host } = setup("tcp", r, { at: 21 });
    host.sockets.removeApp("a", 1);
    assert.equal(liveSource(host, "tcp", CLIENT, SERVER), r);
  });

  test("a connection from a socket bound to the port since: refused, the record stays", () => {
    const r = record("a", 21);
    const { host, kernel } = setup("tcp", r, { at: 22 });
    assert.equal(liveSource(host, "tcp", CLIENT, SERVER), undefined);
    assert.equal(host.sockets.source("tcp", CLIENT.ip, CLIENT.port), r);
    assert.equal(kernel.stampCalls, 0, "TCP has no receive times");
  });

  test("nothing there any more: refused, and a running app's record is dropped", () => {
    const { host } = setup("tcp", record("a", 21), { at: null });
    assert.equal(liveSource(host, "tcp", CLIENT, SERVER), undefined);
    assert.equal(host.sockets.source("tcp", CLIENT.ip, CLIENT.port), undefined);
  });
});
