// Unit tests of src/net/cidr.ts: parsing, membership, and walking a block.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { type Cidr, cidrContains, cidrNth, cidrSize, parseCidr } from "../../src/net/cidr.js";
import { type IpAddr, parseIp } from "../../src/net/ip.js";

function ip(text: string): IpAddr {
  const p = parseIp(text);
  assert.ok(p, text);
  return p;
}

function contains(c: Cidr, text: string): boolean {
  return cidrContains(c, ip(text));
}

describe("parseCidr", () => {
  test("IPv4 block", () => {
    const c = parseCidr("10.77.0.0/16");
    assert.equal(c.family, 4);
    assert.equal(c.prefix, 16);
    assert.equal(c.text, "10.77.0.0/16");
    assert.deepEqual([...c.base], [10, 77, 0, 0]);
  });

  test("host bits are cleared (IPv4)", () => {
    const c = parseCidr("10.77.5.9/16");
    assert.deepEqual([...c.base], [10, 77, 0, 0]);
    assert.equal(c.text, "10.77.0.0/16");
    assert.equal(parseCidr("192.168.15.255/21").text, "192.168.8.0/21");
    assert.equal(parseCidr("255.255.255.255/0").text, "0.0.0.0/0");
    assert.equal(parseCidr("10.0.0.7/31").text, "10.0.0.6/31");
  });

  test("host bits are cleared (IPv6) and text is canonical", () => {
    const c = parseCidr("FD77:0:0:0:1:2:3:4/64");
    assert.equal(c.family, 6);
    assert.equal(c.text, "fd77::/64");
    assert.equal(parseCidr("2001:db8:abcd:12ff::1/52").text, "2001:db8:abcd:1000::/52");
  });

  test("no prefix means a single address", () => {
    assert.equal(parseCidr("10.0.0.1").prefix, 32);
    assert.equal(parseCidr("10.0.0.1").text, "10.0.0.1/32");
    assert.equal(parseCidr("fd00::1").prefix, 128);
  });

  test("prefix limits: 0 and the family's maximum", () => {
    assert.equal(parseCidr("0.0.0.0/0").prefix, 0);
    assert.equal(parseCidr("1.2.3.4/32").prefix, 32);
    assert.equal(parseCidr("::/0").text, "::/0");
    assert.equal(parseCidr("fd00::1/128").text, "fd00::1/128");
  });

  for (const bad of [
    "10.0.0.0/33",
    "fd00::/129",
    "10.0.0.0/",
    "10.0.0.0/-1",
    "10.0.0.0/abc",
    "10.0.0.0/1.5",
  ]) {
    test(`bad prefix ${JSON.stringify(bad)} is an InvalidArgumentError naming the range`, () => {
      assert.throws(
        () => parseCidr(bad),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.code === "SOCKSWITCH_ERR_INVALID_ARGUMENT" &&
          /bad prefix length; it must be 0 to (32|128)/.test(e.message),
      );
    });
  }

  test("the prefix bound depends on the family", () => {
    assert.throws(() => parseCidr("10.0.0.0/64"), /0 to 32/);
    assert.equal(parseCidr("fd00::/64").prefix, 64);
  });

  for (const bad of ["", "/16", "10.0.0/16", "300.0.0.0/8", "fd00:::/64", "hello"]) {
    test(`bad address ${JSON.stringify(bad)} is rejected with an example`, () => {
      assert.throws(
        () => parseCidr(bad),
        (e: unknown) =>
          e instanceof InvalidArgumentError && /is not a CIDR block; write it like/.test(e.message),
      );
    });
  }
});

describe("cidrContains", () => {
  test("IPv4 /16", () => {
    const c = parseCidr("10.77.0.0/16");
    assert.equal(contains(c, "10.77.0.0"), true);
    assert.equal(contains(c, "10.77.255.255"), true);
    assert.equal(contains(c, "10.78.0.0"), false);
    assert.equal(contains(c, "10.76.255.255"), false);
  });

  test("IPv4 /21 (not on an octet boundary)", () => {
    const c = parseCidr("192.168.8.0/21");
    assert.equal(contains(c, "192.168.8.0"), true);
    assert.equal(contains(c, "192.168.15.255"), true);
    assert.equal(contains(c, "192.168.7.255"), false);
    assert.equal(contains(c, "192.168.16.0"), false);
  });

  test("IPv4 /3 and /31", () => {
    const c3 = parseCidr("224.0.0.0/3");
    assert.equal(contains(c3, "224.0.0.1"), true);
    assert.equal(contains(c3, "255.255.255.255"), true);
    assert.equal(contains(c3, "223.255.255.255"), false);
    const c31 = parseCidr("10.0.0.6/31");
    assert.equal(contains(c31, "10.0.0.6"), true);
    assert.equal(contains(c31, "10.0.0.7"), true);
    assert.equal(contains(c31, "10.0.0.8"), false);
    assert.equal(contains(c31, "10.0.0.5"), false);
  });

  test("/32 holds exactly one address", () => {
    const c = parseCidr("10.0.0.1/32");
    assert.equal(contains(c, "10.0.0.1"), true);
    assert.equal(contains(c, "10.0.0.0"), false);
    assert.equal(contains(c, "10.0.0.2"), false);
  });

  test("prefix 0 holds every address of its family only", () => {
    const c4 = parseCidr("0.0.0.0/0");
    assert.equal(contains(c4, "1.2.3.4"), true);
    assert.equal(contains(c4, "255.255.255.255"), true);
    assert.equal(contains(c4, "fd00::1"), false);
    const c6 = parseCidr("::/0");
    assert.equal(contains(c6, "2001:db8::1"), true);
    assert.equal(contains(c6, "1.2.3.4"), false);
  });

  test("IPv6 /64 and /52 and /128", () => {
    const c = parseCidr("fd77::/64");
    assert.equal(contains(c, "fd77::1"), true);
    assert.equal(contains(c, "fd77::ffff:ffff:ffff:ffff"), true);
    assert.equal(contains(c, "fd77:0:0:1::"), false);
    const c52 = parseCidr("2001:db8:abcd:1000::/52");
    assert.equal(contains(c52, "2001:db8:abcd:1fff::9"), true);
    assert.equal(contains(c52, "2001:db8:abcd:2000::"), false);
    assert.equal(contains(c52, "2001:db8:abcd:fff::"), false);
    const one = parseCidr("fd00::5/128");
    assert.equal(contains(one, "fd00::5"), true);
    assert.equal(contains(one, "fd00::4"), false);
  });

  test("a v4-mapped IPv6 address is matched as IPv4", () => {
    assert.equal(contains(parseCidr("10.0.0.0/8"), "::ffff:10.1.2.3"), true);
  });

  test("family mismatch is never contained", () => {
    assert.equal(contains(parseCidr("10.0.0.0/8"), "::a00:1"), false);
  });
});

describe("cidrNth", () => {
  test("offsets from the base, carrying across octets", () => {
    const c = parseCidr("10.77.0.0/16");
    assert.equal(cidrNth(c, 0)?.text, "10.77.0.0");
    assert.equal(cidrNth(c, 1)?.text, "10.77.0.1");
    assert.equal(cidrNth(c, 255)?.text, "10.77.0.255");
    assert.equal(cidrNth(c, 256)?.text, "10.77.1.0");
    assert.equal(cidrNth(c, 65535)?.text, "10.77.255.255");
  });

  test("carry from a non-zero base byte", () => {
    const c = parseCidr("10.0.0.128/25");
    assert.equal(cidrNth(c, 127)?.text, "10.0.0.255");
    assert.equal(cidrNth(c, 128), null);
  });

  test("out of the block is null", () => {
    const c = parseCidr("10.77.0.0/16");
    assert.equal(cidrNth(c, 65536), null);
    assert.equal(cidrNth(c, -1), null);
    assert.equal(cidrNth(parseCidr("10.0.0.1/32"), 1), null);
    assert.equal(cidrNth(parseCidr("10.0.0.1/32"), 0)?.text, "10.0.0.1");
  });

  test("IPv6 offsets", () => {
    const c = parseCidr("fd77::/64");
    assert.equal(cidrNth(c, 0)?.text, "fd77::");
    assert.equal(cidrNth(c, 16)?.text, "fd77::10");
    assert.equal(cidrNth(c, 0x10000)?.text, "fd77::1:0");
    assert.equal(cidrNth(c, 2 ** 40)?.family, 6);
    assert.equal(cidrNth(c, 2 ** 40)?.text, "fd77::100:0:0");
    assert.equal(cidrNth(parseCidr("fd00::/120"), 256), null);
    assert.equal(cidrNth(parseCidr("fd00::/120"), 255)?.text, "fd00::ff");
  });

  test("every address cidrNth yields is inside the block", () => {
    const c = parseCidr("172.16.8.0/21");
    for (const n of [0, 1, 100, 255, 256, 1000, 2047]) {
      const a = cidrNth(c, n);
      assert.ok(a);
      assert.equal(cidrContains(c, a), true, a.text);
    }
  });
});

describe("cidrSize", () => {
  test("powers of two by host bits", () => {
    assert.equal(cidrSize(parseCidr("10.0.0.0/16")), 65536);
    assert.equal(cidrSize(parseCidr("10.0.0.0/21")), 2048);
    assert.equal(cidrSize(parseCidr("10.0.0.0/32")), 1);
    assert.equal(cidrSize(parseCidr("0.0.0.0/0")), 2 ** 32);
    assert.equal(cidrSize(parseCidr("fd00::/120")), 256);
  });

  test("capped at 2^48", () => {
    assert.equal(cidrSize(parseCidr("fd00::/64")), 2 ** 48);
    assert.equal(cidrSize(parseCidr("fd00::/80")), 2 ** 48);
    assert.equal(cidrSize(parseCidr("fd00::/81")), 2 ** 47);
  });
});
