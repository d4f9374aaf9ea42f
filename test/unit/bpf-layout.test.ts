// Unit tests of src/bpf/layout.ts (the bytes of native/bpf/datapath.h's struct ssw_sock and
// struct ssw_config that the daemon writes) and src/bpf/private-loopback.ts (which entries of
// an app's private loopback a binding makes).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  APP_BLOCK_BIND,
  addrText,
  appValue,
  backendValue,
  boundSockValue,
  boundValue,
  configValue,
  hostKey,
  rangeValue,
  SK_BOUND,
  SK_LOOPBACK,
  SK_REGISTER,
  SK_TRAPPED,
  sockValue,
  svcKey,
  svcValue,
} from "../../src/bpf/layout.js";
import { privateKeys } from "../../src/bpf/private-loopback.js";
import type { Binding } from "../../src/table/sockets.js";

const AF_INET = 2;
const AF_INET6 = 10;

describe("struct ssw_sock", () => {
  test("a new socket's stamp: the app's index and flags, nothing bound", () => {
    const v = sockValue(7, new Uint8Array(48), SK_TRAPPED);
    const d = new DataView(v.buffer);
    assert.equal(v.length, 48);
    assert.equal(d.getUint32(0, true), 7);
    assert.equal(d.getUint32(4, true), SK_TRAPPED);
    assert.ok(v.subarray(8).every((b) => b === 0));
  });

  test("a stamp overwrites what the buffer held before (it is reused)", () => {
    const buf = new Uint8Array(48).fill(0xaa);
    sockValue(1, buf);
    assert.ok(buf.subarray(4).every((b) => b === 0));
  });

  test("a bound socket: local address at 8 (IPv4-mapped), local port at 40, SK_BOUND added", () => {
    const v = boundSockValue(3, SK_TRAPPED | SK_LOOPBACK, "127.0.0.1", 8080);
    const d = new DataView(v.buffer);
    assert.equal(d.getUint32(0, true), 3);
    assert.equal(d.getUint32(4, true), SK_TRAPPED | SK_LOOPBACK | SK_BOUND);
    assert.equal(addrText(v, 8), "127.0.0.1");
    assert.deepEqual([...v.subarray(8, 20)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    assert.equal(d.getUint16(40, true), 8080);
    assert.ok(
      v.subarray(24, 40).every((b) => b === 0),
      "no peer",
    );
    assert.equal(d.getUint16(42, true), 0);
  });

  test("an IPv6 and a wildcard bound address", () => {
    assert.equal(addrText(boundSockValue(1, 0, "fd00::5", 53), 8), "fd00::5");
    assert.equal(addrText(boundSockValue(1, 0, "::", 53), 8), "::");
    assert.equal(addrText(boundSockValue(1, 0, "0.0.0.0", 53), 8), "0.0.0.0");
  });

  test("the trapped and registration flags are distinct bits, apart from the kernel's own", () => {
    const all = [SK_BOUND, SK_LOOPBACK, 4, 8, SK_TRAPPED, SK_REGISTER];
    assert.equal(new Set(all).size, all.length);
    for (const f of all) assert.equal(f & (f - 1), 0);
  });
});

describe("struct ssw_config", () => {
  test("96 bytes; the daemon's tgid (offset 92) is left to the registration bind", () => {
    const v = configValue({
      egressDeny: true,
      refusePort: 60000,
      pool: { first: 40000, last: 60000 },
      nodeIp: "10.1.2.3",
      nodeIp6: null,
      dns: null,
      vipNet4: new Uint8Array([10, 0, 0, 0]),
      vipMask4: new Uint8Array([255, 0, 0, 0]),
    });
    const d = new DataView(v.buffer);
    assert.equal(v.length, 96);
    assert.equal(d.getUint32(0, true), 1);
    assert.equal(d.getUint32(4, true), 60000);
    assert.equal(addrText(v, 16), "10.1.2.3");
    assert.deepEqual([...v.subarray(84, 92)], [10, 0, 0, 0, 255, 0, 0, 0]);
    assert.equal(d.getUint32(92, true), 0);
  });
});

function binding(over: Partial<Binding>): Binding {
  return {
    appId: "a1",
    proto: "tcp",
    inode: 1,
    vip: "10.0.0.5",
    vport: 80,
    hostIp: "192.0.2.1",
    hostPort: 40001,
    domain: AF_INET,
    reusePort: false,
    reuseAddr: false,
    loopback: false,
    v6only: false,
    exposed: false,
    listening: true,
    serviceIds: [],
    shadowFd: -1,
    connectedTo: null,
    ...over,
  };
}

describe("privateKeys", () => {
  test("a binding to the app's virtual IP has no private loopback entry", () => {
    assert.deepEqual(privateKeys(2, binding({})), []);
  });

  test("a loopback binding: its address, scoped to the app, reached at its host address", () => {
    const b = binding({ vip: "127.0.0.1", loopback: true, hostIp: "127.0.0.1" });
    assert.deepEqual(privateKeys(2, b), [{ key: svcKey("tcp", "127.0.0.1", 80, 2), reach: "127.0.0.1" }]);
  });

  test("an IPv4 wildcard: the IPv4 loopback only, at the node address it is bound to", () => {
    const b = binding({ vip: "0.0.0.0", hostIp: "192.0.2.1" });
    assert.deepEqual(privateKeys(4, b), [{ key: svcKey("tcp", "0.0.0.0", 80, 4), reach: "192.0.2.1" }]);
  });

  test("a dual-stack wildcard (the host's ::): both loopbacks, each on its family's loopback", () => {
    const b = binding({ vip: "::", domain: AF_INET6, hostIp: "::", proto: "udp" });
    assert.deepEqual(privateKeys(1, b), [
      { key: svcKey("udp", "0.0.0.0", 80, 1), reach: "127.0.0.1" },
      { key: svcKey("udp", "::", 80, 1), reach: "::1" },
    ]);
  });

  test("an IPV6_V6ONLY wildcard serves IPv6 only", () => {
    const b = binding({ vip: "::", domain: AF_INET6, v6only: true, hostIp: "::1" });
    assert.deepEqual(privateKeys(1, b), [{ key: svcKey("tcp", "::", 80, 1), reach: "::1" }]);
  });
});

describe("the cluster's records (datapath.h: struct ssw_app, ssw_host_key, ssw_range, ssw_client, ssw_svc, ssw_be)", () => {
  test("an app: addresses, flags at 32 (APP_BLOCK_BIND added), labels at 40, its block at 72", () => {
    const v = appValue(
      ["10.77.0.5", "fd77::5"],
      [1n, 0n, 0n, 2n],
      { first: 32768, last: 32831 },
      APP_BLOCK_BIND,
    );
    const d = new DataView(v.buffer);
    assert.equal(v.length, 80);
    assert.equal(addrText(v, 0), "10.77.0.5");
    assert.equal(addrText(v, 16), "fd77::5");
    assert.equal(d.getUint32(32, true), 1 | 2 | APP_BLOCK_BIND);
    assert.equal(d.getBigUint64(40, true), 1n);
    assert.equal(d.getBigUint64(64, true), 2n);
    assert.equal(d.getUint16(72, true), 32768);
    assert.equal(d.getUint16(74, true), 32831);
    const none = appValue(["10.77.0.5"], [0n, 0n, 0n, 0n]);
    assert.equal(new DataView(none.buffer).getUint32(72, true), 0);
  });

  test("a host key, a node's range and a remote UDP service's virtual address", () => {
    const k = hostKey("10.250.0.11", 32770, 17);
    assert.equal(k.length, 20);
    assert.equal(addrText(k, 0), "10.250.0.11");
    assert.equal(new DataView(k.buffer).getUint16(16, true), 32770);
    assert.equal(k[18], 17);
    assert.equal(hostKey("10.250.0.11", 1)[18], 0);
    const r = new DataView(rangeValue(32768, 39999).buffer);
    assert.deepEqual([r.getUint32(0, true), r.getUint32(4, true)], [32768, 39999]);
    const b = boundValue("10.77.29.1", 5400);
    assert.equal(b.length, 40);
    assert.equal(addrText(b, 0), "10.77.29.1");
    assert.equal(new DataView(b.buffer).getUint16(32, true), 5400);
    assert.equal(new DataView(b.buffer).getUint32(36, true), 0);
  });

  test("--prefer-local at 12 of a service; a backend's locality at 18", () => {
    assert.equal(new DataView(svcValue(2, false, true).buffer).getUint32(12, true), 1);
    assert.equal(new DataView(svcValue(2, true).buffer).getUint32(12, true), 0);
    const be = (local: boolean) =>
      new DataView(backendValue("10.250.0.10", 40001, [0n, 0n, 0n, 0n], local).buffer);
    assert.equal(be(true).getUint16(16, true), 40001);
    assert.equal(be(true).getUint16(18, true), 1);
    assert.equal(be(false).getUint16(18, true), 0);
  });
});
