// Unit tests of src/core/config.ts: validation of the daemon's options and the socket path.

import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { afterEach, beforeEach, describe, test } from "node:test";
import {
  DEFAULT_SOCKET,
  DEFAULT_VIP_CIDR,
  detectNodeIp,
  parseEgress,
  parseLb,
  parseNodeIps,
  parsePortRange,
  parseVipCidr,
  socketPath,
} from "../../src/core/config.js";
import { InvalidArgumentError } from "../../src/core/errors.js";

function invalid(re: RegExp) {
  return (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message);
}

describe("parseNodeIps", () => {
  test("a single IPv4", () => {
    assert.deepEqual(parseNodeIps("192.0.2.10"), { nodeIp: "192.0.2.10", nodeIp6: null });
  });

  test("v4,v6 (canonicalised, spaces allowed)", () => {
    assert.deepEqual(parseNodeIps("192.0.2.10, 2001:DB8::0:10"), {
      nodeIp: "192.0.2.10",
      nodeIp6: "2001:db8::10",
    });
  });

  test("v6,v4 in the other order", () => {
    assert.deepEqual(parseNodeIps("2001:db8::10,192.0.2.10"), {
      nodeIp: "192.0.2.10",
      nodeIp6: "2001:db8::10",
    });
  });

  test("only an IPv6 address is refused", () => {
    assert.throws(
      () => parseNodeIps("2001:db8::10"),
      invalid(/^--node-ip needs an IPv4 address \(an IPv6 one may follow after a comma\)$/),
    );
  });

  for (const bad of ["0.0.0.0", "::", "192.0.2.10,::", "0.0.0.0,2001:db8::1"]) {
    test(`unspecified in ${JSON.stringify(bad)} is refused`, () => {
      assert.throws(() => parseNodeIps(bad), invalid(/is not a host address; give this host's IPv4/));
    });
  }

  for (const bad of ["", "host.example", "192.0.2", "192.0.2.10,", "192.0.2.10/24"]) {
    test(`non-address ${JSON.stringify(bad)} is refused, quoting the part`, () => {
      assert.throws(() => parseNodeIps(bad), invalid(/^--node-ip ".*" is not a host address/));
    });
  }

  test("two addresses of one family are refused, not silently reduced to the last", () => {
    assert.throws(() => parseNodeIps("192.0.2.1,192.0.2.2"), InvalidArgumentError);
    assert.throws(() => parseNodeIps("192.0.2.1,2001:db8::1,2001:db8::2"), InvalidArgumentError);
  });

  test("the bad part is the one quoted", () => {
    assert.throws(() => parseNodeIps("192.0.2.10,nope"), invalid(/^--node-ip "nope"/));
  });

  test("undefined detects this host's addresses, with a loopback fallback", () => {
    const r = parseNodeIps(undefined);
    const v4 = detectNodeIp(4);
    const v6 = detectNodeIp(6);
    assert.equal(r.nodeIp, v4 ?? "127.0.0.1");
    assert.equal(r.nodeIp6, v6 ?? (v4 === null ? "::1" : null));
  });
});

describe("detectNodeIp", () => {
  test("returns a non-internal address of the family, or null", () => {
    const all = Object.values(networkInterfaces()).flatMap((a) => a ?? []);
    const v4 = detectNodeIp(4);
    if (v4 === null) assert.ok(!all.some((a) => !a.internal && a.family === "IPv4"));
    else assert.ok(all.some((a) => a.address === v4 && !a.internal && a.family === "IPv4"));
    const v6 = detectNodeIp(6);
    if (v6 !== null) {
      assert.ok(all.some((a) => a.address === v6 && !a.internal && a.family === "IPv6"));
      assert.ok(!v6.toLowerCase().startsWith("fe80"), "link-local is skipped");
    }
  });
});

describe("parseEgress", () => {
  test("allow and deny", () => {
    assert.equal(parseEgress("allow"), "allow");
    assert.equal(parseEgress("deny"), "deny");
  });

  for (const bad of ["", "Allow", "block", "deny "]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseEgress(bad), invalid(/^--egress ".*" is not a mode; use allow or deny$/));
    });
  }
});

describe("parseLb", () => {
  test("random and round-robin", () => {
    assert.equal(parseLb("random"), "random");
    assert.equal(parseLb("round-robin"), "round-robin");
  });

  for (const bad of ["", "roundrobin", "RANDOM", "least-conn"]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseLb(bad), invalid(/^--lb ".*" is not a mode; use round-robin or random$/));
    });
  }

  test("names the flag it was given", () => {
    assert.throws(() => parseLb("x", "--default-lb"), invalid(/^--default-lb "x" is not a mode/));
  });
});

describe("parseVipCidr", () => {
  test("the default parses", () => {
    const c = parseVipCidr(DEFAULT_VIP_CIDR);
    assert.equal(c.text, "10.77.0.0/16");
    assert.equal(c.family, 4);
  });

  test("host bits are cleared", () => {
    assert.equal(parseVipCidr("10.77.1.2/24").text, "10.77.1.0/24");
  });

  test("/30 (4 addresses) is the smallest IPv4 block accepted", () => {
    assert.equal(parseVipCidr("10.0.0.0/30").prefix, 30);
    assert.throws(
      () => parseVipCidr("10.0.0.0/31"),
      invalid(/is too small; give a block of at least 4 addresses/),
    );
    assert.throws(() => parseVipCidr("10.0.0.1/32"), invalid(/is too small/));
    assert.throws(() => parseVipCidr("10.0.0.1"), invalid(/is too small/));
  });

  test("/126 is the smallest IPv6 block accepted", () => {
    assert.equal(parseVipCidr("fd77::/126").prefix, 126);
    assert.throws(() => parseVipCidr("fd77::/127"), invalid(/^--vip-cidr fd77::\/127 is too small/));
    assert.throws(() => parseVipCidr("fd77::/128"), invalid(/is too small/));
  });

  test("malformed blocks are refused", () => {
    assert.throws(() => parseVipCidr("10.77.0.0/40"), InvalidArgumentError);
    assert.throws(() => parseVipCidr("nope"), InvalidArgumentError);
  });
});

describe("parsePortRange (re-exported)", () => {
  test("is the port pool's parser", () => {
    assert.deepEqual(parsePortRange("40000-60000"), { first: 40000, last: 60000 });
    assert.throws(() => parsePortRange("60000-40000"), InvalidArgumentError);
  });
});

describe("socketPath", () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.SOCKSWITCH_SOCKET;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.SOCKSWITCH_SOCKET;
    else process.env.SOCKSWITCH_SOCKET = saved;
  });

  test("the default without flag or environment", () => {
    delete process.env.SOCKSWITCH_SOCKET;
    assert.equal(socketPath(undefined), DEFAULT_SOCKET);
    assert.equal(DEFAULT_SOCKET, "/run/sockswitch/sockswitch.sock");
  });

  test("$SOCKSWITCH_SOCKET over the default", () => {
    process.env.SOCKSWITCH_SOCKET = "/tmp/env.sock";
    assert.equal(socketPath(undefined), "/tmp/env.sock");
  });

  test("the flag over $SOCKSWITCH_SOCKET", () => {
    process.env.SOCKSWITCH_SOCKET = "/tmp/env.sock";
    assert.equal(socketPath("/tmp/flag.sock"), "/tmp/flag.sock");
  });

  test("the flag without environment", () => {
    delete process.env.SOCKSWITCH_SOCKET;
    assert.equal(socketPath("/tmp/flag.sock"), "/tmp/flag.sock");
  });
});
