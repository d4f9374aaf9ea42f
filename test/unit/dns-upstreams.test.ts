// Unit tests of src/dns/upstreams.ts: --dns-upstream lists and resolv.conf nameservers.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { parseDnsServers, readResolvConf } from "../../src/dns/index.js";

describe("parseDnsServers", () => {
  test("IPv4 with and without a port, IPv6 bracketed or bare, spaces and empty entries", () => {
    assert.deepEqual(parseDnsServers("192.0.2.1, 192.0.2.2:5353,[2001:db8::1]:54,[::1],2001:db8::2,"), [
      { host: "192.0.2.1", port: 53 },
      { host: "192.0.2.2", port: 5353 },
      { host: "2001:db8::1", port: 54 },
      { host: "::1", port: 53 },
      { host: "2001:db8::2", port: 53 },
    ]);
    assert.deepEqual(parseDnsServers(""), []);
  });

  for (const bad of [
    "dns.example.org",
    "192.0.2.1:0",
    "192.0.2.1:65536",
    "192.0.2.1:",
    "192.0.2.1:x",
    "[192.0.2.1]:53",
    "[2001:db8::1",
    "[2001:db8::1]:",
    "256.0.0.1",
    "2001:db8::1:53:x",
  ]) {
    test(`rejects ${JSON.stringify(bad)} with a sentence`, () => {
      assert.throws(
        () => parseDnsServers(bad),
        (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`"${bad}" is not an address`),
      );
    });
  }
});

describe("readResolvConf", () => {
  const dir = mkdtempSync(join(tmpdir(), "sockswitch-dns-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("nameserver lines in order; comments, options and non-addresses skipped", () => {
    const path = join(dir, "resolv.conf");
    writeFileSync(
      path,
      [
        "# generated",
        "search example.org",
        "nameserver 192.0.2.53",
        "  nameserver   2001:db8::53  # v6",
        "; nameserver 192.0.2.99",
        "nameserver dns.example.org",
        "nameserver",
        "options ndots:2",
        "nameserver 192.0.2.54",
      ].join("\n"),
    );
    assert.deepEqual(readResolvConf(path), [
      { host: "192.0.2.53", port: 53 },
      { host: "2001:db8::53", port: 53 },
      { host: "192.0.2.54", port: 53 },
    ]);
  });

  test("a missing file gives no upstreams", () => {
    assert.deepEqual(readResolvConf(join(dir, "absent")), []);
  });

  test("the default path is /etc/resolv.conf and does not throw", () => {
    assert.ok(Array.isArray(readResolvConf()));
  });
});
