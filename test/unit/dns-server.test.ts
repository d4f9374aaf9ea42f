// Unit tests of src/dns as a server of our own zone: a DnsServer on 127.0.0.1 (port 0)
// asked over UDP and TCP. A/AAAA, NXDOMAIN, empty NOERROR, EDNS and TC, malformed
// queries (FORMERR or dropped, the server answering on afterwards). No upstreams here:
// forwarding is dns-forward.test.ts.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import dnsPacket from "dns-packet";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { type DnsAddresses, DnsServer } from "../../src/dns/index.js";
import { decode, frame, query, rcodeOf, tcpAsk, udpAsk } from "./dns-client.js";

const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const NOTIMP = 4;
const REFUSED = 5;

const many = Array.from({ length: 60 }, (_, i) => `10.77.2.${i + 1}`);
const table = new Map<string, DnsAddresses>([
  ["web", { v4: ["10.77.1.1"], v6: ["fd77::1"] }],
  ["db", { v4: ["10.77.1.2", "10.77.1.3"], v6: [] }],
  ["v6only", { v4: [], v6: ["fd77::6"] }],
  ["big", { v4: many, v6: [] }],
]);
const lookups: string[] = [];

let server: DnsServer;
let port: number;

before(async () => {
  server = new DnsServer({
    lookup: (name) => {
      lookups.push(name);
      if (name === "boom") throw new Error("table exploded");
      return table.get(name);
    },
    upstreams: [],
    timeoutMs: 300,
  });
  port = await server.listen({ host: "127.0.0.1", port: 0 });
});

after(async () => {
  await server.close();
});

async function ask(msg: Buffer) {
  const reply = await udpAsk(port, msg);
  assert.ok(reply, "expected a reply");
  return { raw: reply, p: decode(reply), rcode: rcodeOf(reply) };
}

function addrs(p: ReturnType<typeof decode>): string[] {
  return (p.answers ?? []).map((a) => String((a as { data: unknown }).data));
}

describe("our zone", () => {
  test("A for NAME.DOMAIN: the address, AA, RA, RD copied, the client's id, TTL 5", async () => {
    const { p, rcode } = await ask(query("web.sockswitch.local", "A", { id: 4242 }));
    assert.equal(rcode, NOERROR);
    assert.equal(p.id, 4242);
    assert.equal(p.type, "response");
    assert.ok(p.flag_aa && p.flag_ra && p.flag_rd && !p.flag_tc);
    assert.deepEqual(addrs(p), ["10.77.1.1"]);
    assert.equal(p.answers?.[0]?.type, "A");
    assert.equal((p.answers?.[0] as { ttl?: number } | undefined)?.ttl, 5);
    assert.deepEqual(p.questions, [{ name: "web.sockswitch.local", type: "A", class: "IN" }]);
  });

  test("the bare NAME is answered too; lookup gets it lower-cased", async () => {
    lookups.length = 0;
    const { p, rcode } = await ask(query("WEB", "A"));
    assert.equal(rcode, NOERROR);
    assert.deepEqual(addrs(p), ["10.77.1.1"]);
    assert.deepEqual(lookups, ["web"]);
  });

  test("the question's case is echoed (DNS 0x20) and RD stays clear when the client cleared it", async () => {
    const { p } = await ask(query("wEb.SockSwitch.LOCAL", "A", { rd: false }));
    assert.equal(p.questions?.[0]?.name, "wEb.SockSwitch.LOCAL");
    assert.equal(p.answers?.[0]?.name, "wEb.SockSwitch.LOCAL");
    assert.equal(p.flag_rd, false);
    assert.deepEqual(addrs(p), ["10.77.1.1"]);
  });

  test("AAAA, and every address of a name with several", async () => {
    assert.deepEqual(addrs((await ask(query("web.sockswitch.local", "AAAA"))).p), ["fd77::1"]);
    assert.deepEqual(addrs((await ask(query("db", "A"))).p), ["10.77.1.2", "10.77.1.3"]);
  });

  test("a name without the asked family: NOERROR, no answer, our SOA", async () => {
    for (const [name, type] of [
      ["v6only.sockswitch.local", "A"],
      ["db.sockswitch.local", "AAAA"],
    ] as const) {
      const { p, rcode } = await ask(query(name, type));
      assert.equal(rcode, NOERROR, name);
      assert.ok(p.flag_aa);
      assert.deepEqual(p.answers, []);
      assert.equal(p.authorities?.[0]?.type, "SOA");
      assert.equal(p.authorities?.[0]?.name, "sockswitch.local");
    }
  });

  test("another type (MX, TXT) of a known name: NOERROR, no answer", async () => {
    for (const type of ["MX", "TXT"] as const) {
      const { p, rcode } = await ask(query("web.sockswitch.local", type));
      assert.equal(rcode, NOERROR);
      assert.deepEqual(p.answers, []);
      assert.equal(p.authorities?.[0]?.type, "SOA");
    }
  });

  test("an unknown name in our domain, or a deeper one: NXDOMAIN, AA, SOA", async () => {
    for (const name of ["nope.sockswitch.local", "a.web.sockswitch.local"]) {
      const { p, rcode } = await ask(query(name, "A"));
      assert.equal(rcode, NXDOMAIN, name);
      assert.ok(p.flag_aa);
      assert.deepEqual(p.answers, []);
      assert.equal(p.authorities?.[0]?.type, "SOA");
      assert.equal((p.authorities?.[0] as { ttl?: number } | undefined)?.ttl, 5);
    }
  });

  test("the apex has an SOA and no addresses", async () => {
    const soa = await ask(query("sockswitch.local", "SOA"));
    assert.equal(soa.rcode, NOERROR);
    assert.equal(soa.p.answers?.[0]?.type, "SOA");
    const a = await ask(query("sockswitch.local", "A"));
    assert.equal(a.rcode, NOERROR);
    assert.deepEqual(a.p.answers, []);
  });

  test("zone transfers are refused", async () => {
    assert.equal((await ask(query("sockswitch.local", "AXFR"))).rcode, REFUSED);
  });

  test("a lookup that throws gives SERVFAIL, not a crash", async () => {
    assert.equal((await ask(query("boom.sockswitch.local", "A"))).rcode, SERVFAIL);
    assert.equal((await ask(query("web", "A"))).rcode, NOERROR);
  });

  test("a custom domain, normalized; a bad one is refused with a sentence", async () => {
    const s = new DnsServer({ domain: "Apps.Example.", lookup: (n) => table.get(n) });
    assert.equal(s.domain, "apps.example");
    const reply = await s.answer(query("web.apps.example", "A"), "udp");
    assert.ok(reply);
    assert.deepEqual(addrs(decode(reply)), ["10.77.1.1"]);
    assert.throws(
      () => new DnsServer({ domain: "bad..domain", lookup: () => undefined }),
      InvalidArgumentError,
    );
  });
});

describe("TCP", () => {
  test("several queries on one connection, each answered with its id", async () => {
    const bytes = Buffer.concat([
      frame(query("web.sockswitch.local", "A", { id: 1 })),
      frame(query("db.sockswitch.local", "A", { id: 2 })),
      frame(query("nope.sockswitch.local", "A", { id: 3 })),
    ]);
    const { replies } = await tcpAsk(port, bytes, 3);
    assert.equal(replies.length, 3);
    const byId = new Map(replies.map((r) => [r.readUInt16BE(0), r]));
    assert.deepEqual(addrs(decode(byId.get(1) as Buffer)), ["10.77.1.1"]);
    assert.deepEqual(addrs(decode(byId.get(2) as Buffer)), ["10.77.1.2", "10.77.1.3"]);
    assert.equal(rcodeOf(byId.get(3) as Buffer), NXDOMAIN);
  });

  test("a query split across writes is put together", async () => {
    const f = frame(query("web", "A", { id: 9 }));
    const { replies } = await tcpAsk(port, f.subarray(0, 1), 1, 300);
    assert.equal(replies.length, 0, "half a length prefix is no query");
    // The whole frame in one go, then: answered.
    const whole = await tcpAsk(port, f, 1);
    assert.equal(whole.replies[0]?.readUInt16BE(0), 9);
  });

  test("a big answer, too big for plain UDP, comes whole over TCP", async () => {
    const { replies } = await tcpAsk(port, frame(query("big", "A")), 1);
    const p = decode(replies[0] as Buffer);
    assert.equal(p.flag_tc, false);
    assert.equal(p.answers?.length, many.length);
  });
});

describe("EDNS and truncation", () => {
  test("over 512 bytes without EDNS: TC set, no answers, the question kept", async () => {
    const { raw, p } = await ask(query("big.sockswitch.local", "A"));
    assert.ok(raw.length <= 512);
    assert.ok(p.flag_tc);
    assert.deepEqual(p.answers, []);
    assert.equal(p.questions?.[0]?.name, "big.sockswitch.local");
  });

  test("with EDNS 4096 the whole answer comes over UDP, with an OPT record", async () => {
    const { raw, p } = await ask(query("big.sockswitch.local", "A", { edns: 4096 }));
    assert.ok(raw.length > 512);
    assert.equal(p.flag_tc, false);
    assert.equal(p.answers?.length, many.length);
    assert.equal(p.additionals?.[0]?.type, "OPT");
  });

  test("an EDNS size too small for the answer still truncates; below 512 counts as 512", async () => {
    const small = await ask(query("big.sockswitch.local", "A", { edns: 600 }));
    assert.ok(small.p.flag_tc);
    assert.ok(small.raw.length <= 600);
    const tiny = await ask(query("db.sockswitch.local", "A", { edns: 100 }));
    assert.equal(tiny.p.flag_tc, false);
    assert.equal(tiny.p.answers?.length, 2);
  });

  test("an EDNS version other than 0: BADVERS (extended rcode 16)", async () => {
    const { p, rcode } = await ask(query("web.sockswitch.local", "A", { edns: 1232, ednsVersion: 1 }));
    assert.equal(rcode, 0);
    const opt = p.additionals?.[0] as { type: string; extendedRcode: number };
    assert.equal(opt.type, "OPT");
    assert.equal(opt.extendedRcode, 1);
    assert.deepEqual(p.answers, []);
  });
});

/** A header: id 0xBEEF, RD, and the given counts. */
function header(qd: number, an = 0, ns = 0, ar = 0, flags = 0x0100): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0xbeef, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

const QNAME_A_IN = Buffer.from([3, 0x77, 0x65, 0x62, 0, 0, 1, 0, 1]); // web. A IN

describe("malformed queries", () => {
  const formerr: Array<[string, Buffer]> = [
    ["a question count of 1 and no question", header(1)],
    ["two questions", Buffer.concat([header(2), QNAME_A_IN, QNAME_A_IN])],
    ["no question", header(0)],
    ["counts the length cannot hold", Buffer.concat([header(1, 5, 5, 5), QNAME_A_IN])],
    ["a question cut short", Buffer.concat([header(1), QNAME_A_IN.subarray(0, 6)])],
    ["a label running past the end", Buffer.concat([header(1), Buffer.from([40, 0x61, 0x62])])],
    [
      "a compression pointer in the question",
      Buffer.concat([header(1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]),
    ],
    ["a reserved label type (0x40)", Buffer.concat([header(1), Buffer.from([0x41, 0x61, 0, 0, 1, 0, 1])])],
    [
      // An additional record whose owner name is a pointer to itself.
      "a compression pointer loop",
      Buffer.concat([header(1, 0, 0, 1), QNAME_A_IN, Buffer.from([0xc0, 21, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]),
    ],
    [
      // Two pointers at each other.
      "a two-pointer loop",
      Buffer.concat([
        header(1, 0, 0, 1),
        QNAME_A_IN,
        Buffer.from([0xc0, 23, 0xc0, 21, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
      ]),
    ],
    ["trailing bytes", Buffer.concat([header(1), QNAME_A_IN, Buffer.from([1, 2, 3])])],
    [
      "a name over 255 bytes",
      Buffer.concat([
        header(1),
        ...Array.from({ length: 5 }, () => Buffer.from([63, ...Buffer.alloc(63, 0x61)])),
        Buffer.from([0, 0, 1, 0, 1]),
      ]),
    ],
  ];

  for (const [what, msg] of formerr) {
    test(`${what}: FORMERR with the id, QR and RD`, async () => {
      const reply = await udpAsk(port, msg);
      assert.ok(reply, "expected FORMERR");
      assert.equal(reply.readUInt16BE(0), 0xbeef);
      assert.equal(rcodeOf(reply), FORMERR);
      assert.ok(reply.readUInt16BE(2) & 0x8000, "QR");
      assert.ok(reply.readUInt16BE(2) & 0x0100, "RD copied");
    });
  }

  test("an opcode other than QUERY: NOTIMP", async () => {
    const status = Buffer.concat([header(1, 0, 0, 0, 2 << 11), QNAME_A_IN]);
    const reply = await udpAsk(port, status);
    assert.ok(reply);
    assert.equal(rcodeOf(reply), NOTIMP);
    assert.equal((reply.readUInt16BE(2) >> 11) & 0xf, 2, "opcode copied");
  });

  test("less than a header, or a response: dropped", async () => {
    assert.equal(await udpAsk(port, Buffer.from([1, 2, 3]), 300), undefined);
    assert.equal(await udpAsk(port, Buffer.alloc(0), 300), undefined);
    assert.equal(await udpAsk(port, Buffer.concat([header(1, 0, 0, 0, 0x8100), QNAME_A_IN]), 300), undefined);
  });

  test("garbage: no crash, and the server answers afterwards", async () => {
    // A fixed-seed generator: the same garbage every run.
    let seed = 0x2545f491;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x100000000;
    };
    const sends: Promise<Buffer | undefined>[] = [];
    for (let i = 0; i < 300; i++) {
      const junk = Buffer.alloc(Math.floor(rand() * 120));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(rand() * 256);
      // Half of them: a plausible header on top, so that decoding gets further.
      if (i % 2 === 0 && junk.length >= 12)
        header(1, rand() < 0.5 ? 0 : 1, 0, rand() < 0.5 ? 0 : 1).copy(junk);
      sends.push(udpAsk(port, junk, 300));
    }
    for (const reply of await Promise.all(sends)) {
      if (!reply) continue;
      assert.ok(reply.length >= 12);
      assert.ok(reply.readUInt16BE(2) & 0x8000, "anything that answers is a response");
    }
    const { p } = await ask(query("web.sockswitch.local", "A"));
    assert.deepEqual(addrs(p), ["10.77.1.1"]);
  });

  test("over TCP: FORMERR keeps the connection; an unanswerable frame closes it", async () => {
    const bad = Buffer.concat([header(2), QNAME_A_IN, QNAME_A_IN]);
    const good = query("web", "A", { id: 77 });
    const first = await tcpAsk(port, Buffer.concat([frame(bad), frame(good)]), 2);
    assert.equal(first.replies.length, 2);
    const ids = first.replies.map((r) => [r.readUInt16BE(0), rcodeOf(r)]);
    assert.deepEqual(
      ids.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0)),
      [
        [77, NOERROR],
        [0xbeef, FORMERR],
      ],
    );
    const garbage = await tcpAsk(port, frame(Buffer.from([1, 2, 3])), 1);
    assert.equal(garbage.closed, true);
    assert.equal(garbage.replies.length, 0);
    const again = await tcpAsk(port, frame(good), 1);
    assert.equal(again.replies.length, 1);
  });
});

describe("answer() without a socket", () => {
  test("the same service for a query the caller already holds", async () => {
    const reply = await server.answer(query("web", "AAAA"), "udp");
    assert.ok(reply);
    assert.deepEqual(addrs(decode(reply)), ["fd77::1"]);
    assert.equal(await server.answer(Buffer.from("x"), "tcp"), undefined);
    const r = await server.answer(dnsPacket.encode({ type: "query", id: 5, questions: [] }), "udp");
    assert.ok(r);
    assert.equal(rcodeOf(r), FORMERR);
  });
});
