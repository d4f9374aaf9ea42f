// Unit tests of src/net/sockaddr.ts: the kernel layout of sockaddr_in/sockaddr_in6, the
// kernel's checks on what an app passes, and reading what the kernel returns.

import assert from "node:assert/strict";
import { constants } from "node:os";
import { describe, test } from "node:test";
import { type IpAddr, parseIp } from "../../src/net/ip.js";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  type Decoded,
  decodeSockaddr,
  encodeSockaddr,
  readKernelSockaddr,
  SIN6_LEN_RFC2133,
  SOCKADDR_IN_LEN,
  SOCKADDR_IN6_LEN,
  SOCKADDR_MAX,
  type SockAddr,
} from "../../src/net/sockaddr.js";

const { EINVAL, EAFNOSUPPORT } = constants.errno;

function ip(text: string): IpAddr {
  const p = parseIp(text);
  assert.ok(p, text);
  return p;
}

function asAddr(d: Decoded): SockAddr {
  assert.equal(typeof d, "object", `expected an address, got ${String(d)}`);
  return d as SockAddr;
}

function sin(family: number, port: number, addr: number[]): Uint8Array {
  const b = new Uint8Array(SOCKADDR_IN_LEN);
  b[0] = family & 0xff;
  b[1] = family >> 8;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  b.set(addr, 4);
  return b;
}

function sin6(family: number, port: number, addr: number[]): Uint8Array {
  const b = new Uint8Array(SOCKADDR_IN6_LEN);
  b[0] = family & 0xff;
  b[1] = family >> 8;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  b.set(addr, 8);
  return b;
}

describe("constants", () => {
  test("match ip(7)/ipv6(7)", () => {
    assert.equal(AF_INET, 2);
    assert.equal(AF_INET6, 10);
    assert.equal(SOCKADDR_IN_LEN, 16);
    assert.equal(SOCKADDR_IN6_LEN, 28);
    assert.equal(SIN6_LEN_RFC2133, 24);
  });
});

describe("encodeSockaddr", () => {
  test("AF_INET layout: family LE, port and address big-endian, zero padding", () => {
    const out = new Uint8Array(SOCKADDR_MAX).fill(0xaa);
    const len = encodeSockaddr(AF_INET, ip("10.1.2.3"), 8080, out);
    assert.equal(len, 16);
    assert.deepEqual([...out.subarray(0, 16)], [2, 0, 0x1f, 0x90, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(out[16], 0xaa, "nothing written past the sockaddr");
  });

  test("AF_INET6 layout with an IPv6 address: zero flowinfo and scope id", () => {
    const out = new Uint8Array(SOCKADDR_MAX).fill(0xaa);
    const len = encodeSockaddr(AF_INET6, ip("fd00::5"), 443, out);
    assert.equal(len, 28);
    assert.deepEqual([...out.subarray(0, 8)], [10, 0, 0x01, 0xbb, 0, 0, 0, 0]);
    assert.deepEqual([...out.subarray(8, 24)], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
    assert.deepEqual([...out.subarray(24, 28)], [0, 0, 0, 0]);
    assert.equal(out[28], 0xaa);
  });

  test("IPv4 on an AF_INET6 socket is written IPv4-mapped", () => {
    const out = new Uint8Array(SOCKADDR_MAX).fill(0xaa);
    assert.equal(encodeSockaddr(AF_INET6, ip("192.0.2.7"), 53, out), 28);
    assert.deepEqual([...out.subarray(8, 24)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7]);
  });

  test("port 8080 is bytes 0x1f, 0x90; port 65535 and 1 too", () => {
    const out = new Uint8Array(SOCKADDR_MAX);
    encodeSockaddr(AF_INET, ip("1.2.3.4"), 8080, out);
    assert.equal(out[2], 0x1f);
    assert.equal(out[3], 0x90);
    encodeSockaddr(AF_INET6, ip("::1"), 65535, out);
    assert.deepEqual([out[2], out[3]], [0xff, 0xff]);
    encodeSockaddr(AF_INET, ip("1.2.3.4"), 1, out);
    assert.deepEqual([out[2], out[3]], [0, 1]);
  });
});

describe("encode/decode round trips", () => {
  const cases: Array<[number, string, number]> = [
    [AF_INET, "10.77.0.10", 8080],
    [AF_INET, "0.0.0.0", 0],
    [AF_INET, "255.255.255.255", 65535],
    [AF_INET6, "fd77::10", 8080],
    [AF_INET6, "::", 0],
    [AF_INET6, "2001:db8::2:1", 1],
    [AF_INET6, "::1", 443],
  ];
  for (const [domain, text, port] of cases) {
    test(`domain ${domain}: ${text} port ${port}`, () => {
      const out = new Uint8Array(SOCKADDR_MAX);
      const len = encodeSockaddr(domain, ip(text), port, out);
      const d = asAddr(decodeSockaddr(domain, out, len));
      assert.equal(d.ip.text, text);
      assert.equal(d.ip.family, ip(text).family);
      assert.equal(d.port, port);
    });
  }

  test("IPv4 on an AF_INET6 socket encodes as v4-mapped and decodes back to family 4", () => {
    const out = new Uint8Array(SOCKADDR_MAX);
    const len = encodeSockaddr(AF_INET6, ip("10.77.0.10"), 5000, out);
    assert.equal(out[0], AF_INET6);
    const d = asAddr(decodeSockaddr(AF_INET6, out, len));
    assert.equal(d.ip.family, 4);
    assert.equal(d.ip.text, "10.77.0.10");
    assert.deepEqual([...d.ip.bytes], [10, 77, 0, 10]);
    assert.equal(d.port, 5000);
  });
});

describe("decodeSockaddr kernel checks", () => {
  test("AF_INET socket: len < 16 is EINVAL", () => {
    const b = sin(AF_INET, 80, [1, 2, 3, 4]);
    assert.equal(decodeSockaddr(AF_INET, b, 15), EINVAL);
    assert.equal(decodeSockaddr(AF_INET, b, 8), EINVAL);
    assert.equal(asAddr(decodeSockaddr(AF_INET, b, 16)).port, 80);
  });

  test("len < 2 is EINVAL whatever the domain", () => {
    const b = sin(AF_INET, 80, [1, 2, 3, 4]);
    assert.equal(decodeSockaddr(AF_INET, b, 0), EINVAL);
    assert.equal(decodeSockaddr(AF_INET6, b, 1), EINVAL);
  });

  test("AF_INET socket given AF_INET6 family is EAFNOSUPPORT", () => {
    const b = sin6(AF_INET6, 80, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(decodeSockaddr(AF_INET, b, 28), EAFNOSUPPORT);
  });

  test("AF_INET socket given AF_UNIX family is EAFNOSUPPORT", () => {
    const b = sin(AF_UNIX, 0, [0, 0, 0, 0]);
    assert.equal(decodeSockaddr(AF_INET, b, 16), EAFNOSUPPORT);
  });

  test("a family with a non-zero high byte is not AF_INET", () => {
    const b = sin(AF_INET, 80, [1, 2, 3, 4]);
    b[1] = 1; // family 0x0102
    assert.equal(decodeSockaddr(AF_INET, b, 16), EAFNOSUPPORT);
  });

  test("AF_INET6 socket with AF_INET6 family and len < 24 is EINVAL", () => {
    const b = sin6(AF_INET6, 80, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(decodeSockaddr(AF_INET6, b, 23), EINVAL);
    assert.equal(decodeSockaddr(AF_INET6, b, 16), EINVAL);
    const d = asAddr(decodeSockaddr(AF_INET6, b, 24));
    assert.equal(d.ip.text, "fd00::1");
  });

  test("AF_INET6 socket with a wrong family (and long enough) is EAFNOSUPPORT", () => {
    const b = sin6(AF_UNIX, 80, []);
    assert.equal(decodeSockaddr(AF_INET6, b, 28), EAFNOSUPPORT);
  });

  // The kernel takes a sockaddr_in on an AF_INET6 socket only for a UDP connect
  // (ip6_datagram_connect); bind() and TCP connect() refuse it.
  test("AF_INET6 socket: sockaddr_in is EINVAL/EAFNOSUPPORT unless v4OnV6 (UDP connect)", () => {
    const b = sin(AF_INET, 8080, [10, 0, 0, 1]);
    assert.equal(decodeSockaddr(AF_INET6, b, 16), EINVAL);
    const long = new Uint8Array(28);
    long.set(b);
    assert.equal(decodeSockaddr(AF_INET6, long, 28), EAFNOSUPPORT);
    const d = asAddr(decodeSockaddr(AF_INET6, b, 16, true));
    assert.equal(d.ip.family, 4);
    assert.equal(d.ip.text, "10.0.0.1");
    assert.equal(d.port, 8080);
    assert.equal(decodeSockaddr(AF_INET6, b, 15, true), EINVAL);
  });

  test("AF_UNSPEC is 'unspec' for both domains (connect's disconnect)", () => {
    const b = new Uint8Array(16);
    assert.equal(AF_UNSPEC, 0);
    assert.equal(decodeSockaddr(AF_INET, b, 16), "unspec");
    assert.equal(decodeSockaddr(AF_INET6, b, 16), "unspec");
    assert.equal(decodeSockaddr(AF_INET, b, 2), "unspec");
  });

  test("a socket domain other than inet/inet6 is EAFNOSUPPORT", () => {
    const b = sin(AF_INET, 80, [1, 2, 3, 4]);
    assert.equal(decodeSockaddr(AF_UNIX, b, 16), EAFNOSUPPORT);
  });

  test("decoded port is big-endian", () => {
    const b = sin(AF_INET, 0, [1, 2, 3, 4]);
    b[2] = 0x1f;
    b[3] = 0x90;
    assert.equal(asAddr(decodeSockaddr(AF_INET, b, 16)).port, 8080);
  });
});

describe("readKernelSockaddr", () => {
  test("sockaddr_in", () => {
    assert.deepEqual(readKernelSockaddr(sin(AF_INET, 40001, [192, 0, 2, 10]), 16), {
      ip: "192.0.2.10",
      port: 40001,
    });
  });

  test("sockaddr_in6 with an IPv6 address", () => {
    const b = sin6(AF_INET6, 443, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(readKernelSockaddr(b, 28), { ip: "2001:db8::1", port: 443 });
    assert.deepEqual(readKernelSockaddr(b, 24), { ip: "2001:db8::1", port: 443 });
  });

  test("sockaddr_in6 with an IPv4-mapped address reads as IPv4", () => {
    const b = sin6(AF_INET6, 80, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    assert.deepEqual(readKernelSockaddr(b, 28), { ip: "127.0.0.1", port: 80 });
  });

  test("too short or other family is null", () => {
    assert.equal(readKernelSockaddr(sin(AF_INET, 80, [1, 2, 3, 4]), 15), null);
    assert.equal(readKernelSockaddr(sin6(AF_INET6, 80, []), 23), null);
    assert.equal(readKernelSockaddr(sin(AF_UNIX, 80, [1, 2, 3, 4]), 16), null);
    assert.equal(readKernelSockaddr(new Uint8Array(16), 1), null);
  });

  test("reads back what encodeSockaddr wrote", () => {
    const out = new Uint8Array(SOCKADDR_MAX);
    const len = encodeSockaddr(AF_INET6, ip("10.9.8.7"), 1234, out);
    assert.deepEqual(readKernelSockaddr(out, len), { ip: "10.9.8.7", port: 1234 });
  });
});
