// Unit tests of src/net/ip.ts: parsing, RFC 5952 formatting, and the small predicates.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  formatHostPort,
  formatV4,
  formatV6,
  ipFromBytes,
  isLoopback,
  isUnspecified,
  isV4MappedBytes,
  parseIp,
} from "../../src/net/ip.js";

function mustParse(text: string) {
  const ip = parseIp(text);
  assert.ok(ip, `expected "${text}" to parse`);
  return ip;
}

describe("parseIp IPv4", () => {
  test("parses dotted quads into family 4, canonical text and 4 bytes", () => {
    const ip = mustParse("10.1.2.3");
    assert.equal(ip.family, 4);
    assert.equal(ip.text, "10.1.2.3");
    assert.deepEqual([...ip.bytes], [10, 1, 2, 3]);
  });

  test("accepts the extremes 0.0.0.0 and 255.255.255.255", () => {
    assert.deepEqual([...mustParse("0.0.0.0").bytes], [0, 0, 0, 0]);
    assert.deepEqual([...mustParse("255.255.255.255").bytes], [255, 255, 255, 255]);
  });

  for (const bad of [
    "256.1.1.1",
    "1.2.3.256",
    "01.2.3.4",
    "1.2.3.04",
    "1.2.3",
    "1.2.3.",
    "1.2.3.4.5",
    "1..3.4",
    "",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1234.1.1.1",
    "a.b.c.d",
    "-1.2.3.4",
    "1.2.3.4/24",
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(parseIp(bad), null);
    });
  }
});

describe("parseIp IPv6", () => {
  test("'::' is the unspecified address, 16 zero bytes", () => {
    const ip = mustParse("::");
    assert.equal(ip.family, 6);
    assert.equal(ip.text, "::");
    assert.equal(ip.bytes.length, 16);
    assert.ok(ip.bytes.every((b) => b === 0));
  });

  test("'::1' is loopback with the last byte 1", () => {
    const ip = mustParse("::1");
    assert.equal(ip.family, 6);
    assert.equal(ip.text, "::1");
    assert.equal(ip.bytes[15], 1);
    assert.ok(ip.bytes.subarray(0, 15).every((b) => b === 0));
  });

  test("full form parses to the right bytes and compresses on output", () => {
    const ip = mustParse("2001:0db8:0000:0000:0000:0000:0002:0001");
    assert.equal(ip.family, 6);
    assert.deepEqual([...ip.bytes], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0x01]);
    assert.equal(ip.text, "2001:db8::2:1");
  });

  test("compression in the middle, at the start and at the end", () => {
    assert.equal(mustParse("fd00::5").text, "fd00::5");
    assert.deepEqual([...mustParse("fd00::5").bytes.subarray(0, 2)], [0xfd, 0x00]);
    assert.equal(mustParse("fd00::5").bytes[15], 5);
    assert.equal(mustParse("::2:3").text, "::2:3");
    assert.equal(mustParse("1:2::").text, "1:2::");
    assert.equal(mustParse("1:2::").bytes[3], 2);
  });

  test("'::' may stand for a single group", () => {
    assert.equal(mustParse("1:2:3:4:5:6:7::").text, "1:2:3:4:5:6:7:0");
    assert.equal(mustParse("::2:3:4:5:6:7:8").text, "0:2:3:4:5:6:7:8");
  });

  test("RFC 5952: lower case, no leading zeros, longest run compressed", () => {
    assert.equal(mustParse("2001:DB8:0:0:0:0:2:1").text, "2001:db8::2:1");
    assert.equal(mustParse("2001:0DB8:00AB:000C::1").text, "2001:db8:ab:c::1");
  });

  test("RFC 5952: the longest zero run wins over an earlier, shorter one", () => {
    assert.equal(mustParse("1:0:0:2:0:0:0:3").text, "1:0:0:2::3");
    assert.equal(mustParse("1:0:0:0:2:0:0:3").text, "1::2:0:0:3");
  });

  test("RFC 5952: of two equal runs the first is compressed", () => {
    assert.equal(mustParse("1:0:0:2:3:0:0:4").text, "1::2:3:0:0:4");
  });

  test("RFC 5952: a single zero group is not compressed", () => {
    assert.equal(mustParse("2001:db8:0:1:1:1:1:1").text, "2001:db8:0:1:1:1:1:1");
    assert.equal(mustParse("2001:db8::1:1:1:1:1").text, "2001:db8:0:1:1:1:1:1");
  });

  test("embedded IPv4-mapped address becomes family 4", () => {
    const ip = mustParse("::ffff:1.2.3.4");
    assert.equal(ip.family, 4);
    assert.equal(ip.text, "1.2.3.4");
    assert.deepEqual([...ip.bytes], [1, 2, 3, 4]);
  });

  test("IPv4-mapped written in hex also becomes family 4", () => {
    const ip = mustParse("::FFFF:0a00:0001");
    assert.equal(ip.family, 4);
    assert.equal(ip.text, "10.0.0.1");
  });

  test("a non-mapped embedded IPv4 stays IPv6", () => {
    const ip = mustParse("64:ff9b::192.0.2.33");
    assert.equal(ip.family, 6);
    assert.deepEqual([...ip.bytes.subarray(12)], [192, 0, 2, 33]);
    assert.equal(ip.text, "64:ff9b::c000:221");
  });

  for (const bad of [
    ":",
    ":::",
    "1:::2",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "12345::",
    "g::1",
    ":1::",
    "::1:",
    "::ffff:256.1.1.1",
    "::ffff:1.2.3",
    "1:2:3:4:5:6:7:1.2.3.4",
    "[::1]",
    "fe80::1%eth0",
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(parseIp(bad), null);
    });
  }
});

describe("formatV6 / parseIp round trips", () => {
  const addrs = [
    "::",
    "::1",
    "1::",
    "fd77::10",
    "2001:db8::2:1",
    "2001:db8:0:1:1:1:1:1",
    "1:2:3:4:5:6:7:8",
    "fe80::1:2:3:4",
    "1::2:0:0:3",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "64:ff9b::c000:221",
  ];
  for (const a of addrs) {
    test(`${a} survives parse → formatV6 → parse`, () => {
      const ip = mustParse(a);
      assert.equal(ip.text, a, "already canonical text is kept");
      const again = formatV6(ip.bytes);
      assert.equal(again, a);
      assert.deepEqual([...mustParse(again).bytes], [...ip.bytes]);
    });
  }

  test("formatV6 honours an offset", () => {
    const buf = new Uint8Array(20);
    buf[4] = 0xfd;
    buf[19] = 7;
    assert.equal(formatV6(buf, 4), "fd00::7");
  });

  test("formatV6 prints IPv4-mapped bytes as ::ffff:a.b.c.d", () => {
    const b = new Uint8Array(16);
    b[10] = 0xff;
    b[11] = 0xff;
    b.set([192, 0, 2, 1], 12);
    assert.equal(formatV6(b), "::ffff:192.0.2.1");
    assert.equal(isV4MappedBytes(b), true);
    b[9] = 1;
    assert.equal(isV4MappedBytes(b), false);
  });

  test("formatV4 honours an offset", () => {
    assert.equal(formatV4(new Uint8Array([9, 9, 10, 0, 0, 1]), 2), "10.0.0.1");
  });
});

describe("ipFromBytes", () => {
  test("4 bytes are IPv4", () => {
    const ip = ipFromBytes(new Uint8Array([127, 0, 0, 1]));
    assert.equal(ip.family, 4);
    assert.equal(ip.text, "127.0.0.1");
  });

  test("16 mapped bytes are IPv4 with 4 bytes", () => {
    const b = new Uint8Array(16);
    b[10] = 0xff;
    b[11] = 0xff;
    b.set([10, 0, 0, 2], 12);
    const ip = ipFromBytes(b);
    assert.equal(ip.family, 4);
    assert.equal(ip.text, "10.0.0.2");
    assert.equal(ip.bytes.length, 4);
  });

  test("other 16 bytes are IPv6", () => {
    const b = new Uint8Array(16);
    b[15] = 1;
    const ip = ipFromBytes(b);
    assert.equal(ip.family, 6);
    assert.equal(ip.text, "::1");
  });
});

describe("predicates", () => {
  test("isLoopback: all of 127/8 and ::1", () => {
    assert.equal(isLoopback("127.0.0.1"), true);
    assert.equal(isLoopback("127.255.0.9"), true);
    assert.equal(isLoopback("::1"), true);
    assert.equal(isLoopback("128.0.0.1"), false);
    assert.equal(isLoopback("10.127.0.1"), false);
    assert.equal(isLoopback("::2"), false);
    assert.equal(isLoopback("::"), false);
  });

  test("isUnspecified: only 0.0.0.0 and ::", () => {
    assert.equal(isUnspecified("0.0.0.0"), true);
    assert.equal(isUnspecified("::"), true);
    assert.equal(isUnspecified("0.0.0.1"), false);
    assert.equal(isUnspecified("::1"), false);
  });
});

describe("formatHostPort", () => {
  test("IPv4 without brackets", () => {
    assert.equal(formatHostPort("10.0.0.1", 80), "10.0.0.1:80");
  });
  test("IPv6 with brackets", () => {
    assert.equal(formatHostPort("fd00::1", 8080), "[fd00::1]:8080");
    assert.equal(formatHostPort("::", 0), "[::]:0");
  });
});
