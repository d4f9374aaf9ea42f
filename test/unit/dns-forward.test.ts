// Unit tests of src/dns forwarding: a DnsServer on 127.0.0.1 whose upstreams are fake DNS
// servers that the test runs on 127.0.0.1 (port 0), or a bound UDP port that never
// answers. Relayed bytes, fresh ids, TC → TCP, TCP clients, upstream order and the time
// bound. Nothing leaves loopback.

import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, describe, test } from "node:test";
import dnsPacket, { type Packet } from "dns-packet";
import { DnsServer, type Upstream } from "../../src/dns/index.js";
import {
  decode,
  type FakeReply,
  fakeUpstream,
  frame,
  HOST,
  query,
  rcodeOf,
  silentUpstream,
  tcpAsk,
  udpAsk,
} from "./dns-client.js";

const SERVFAIL = 2;
const REFUSED = 5;
const NXDOMAIN = 3;

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function upstream(reply: Parameters<typeof fakeUpstream>[0]) {
  const up = await fakeUpstream(reply);
  cleanups.push(() => up.close());
  return up;
}

async function serve(upstreams: Upstream[], timeoutMs?: number) {
  const server = new DnsServer({
    lookup: (name) => (name === "web" ? { v4: ["10.77.1.1"], v6: [] } : undefined),
    upstreams,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  const port = await server.listen({ host: HOST, port: 0 });
  cleanups.push(() => server.close());
  return { server, port };
}

const example: Packet = {
  flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED,
  answers: [{ type: "A", name: "example.org", ttl: 300, data: "192.0.2.10" }],
};

/** An A answer of n records: about 16 bytes each. */
function bigAnswer(name: string, n: number): Packet {
  return {
    flags: dnsPacket.RECURSION_AVAILABLE,
    answers: Array.from({ length: n }, (_, i) => ({
      type: "A" as const,
      name,
      ttl: 60,
      data: `192.0.2.${i + 1}`,
    })),
  };
}

describe("forwarding", () => {
  test("a name outside our domain: relayed byte for byte, under a fresh id upstream", async () => {
    let sent: Buffer | undefined;
    const up = await upstream((q) => {
      sent = dnsPacket.encode({ id: q.id, type: "response", questions: q.questions, ...example });
      return sent;
    });
    const { port } = await serve([{ host: HOST, port: up.port }]);
    const ids: number[] = [];
    for (const id of [1111, 2222]) {
      const reply = await udpAsk(port, query("example.org", "A", { id }));
      assert.ok(reply && sent);
      assert.equal(reply.readUInt16BE(0), id);
      assert.deepEqual(reply.subarray(2), sent.subarray(2), "everything but the id unchanged");
      ids.push(up.seen.at(-1)?.id ?? -1);
    }
    assert.equal(up.seen.length, 2);
    assert.ok(ids[0] !== 1111 || ids[1] !== 2222, "the upstream saw fresh ids");
    assert.equal(up.seen[0]?.packet.questions?.[0]?.name, "example.org");
  });

  test("a bare name the table does not know goes upstream; one it knows never does", async () => {
    const up = await upstream(() => ({ flags: 0x8000 | NXDOMAIN }));
    const { port } = await serve([{ host: HOST, port: up.port }]);
    const unknown = await udpAsk(port, query("printer", "A"));
    assert.ok(unknown);
    assert.equal(rcodeOf(unknown), NXDOMAIN);
    assert.equal(up.seen.length, 1);
    const known = await udpAsk(port, query("web", "A"));
    assert.ok(known);
    assert.equal(decode(known).answers?.[0]?.type, "A");
    // An unknown name inside our domain is ours to deny: not forwarded either.
    await udpAsk(port, query("printer.sockswitch.local", "A"));
    assert.equal(up.seen.length, 1);
  });

  test("the client's EDNS record goes upstream as it was", async () => {
    const up = await upstream(() => example);
    const { port } = await serve([{ host: HOST, port: up.port }]);
    await udpAsk(port, query("example.org", "A", { edns: 1400 }));
    const opt = up.seen[0]?.packet.additionals?.[0] as { type: string; udpPayloadSize: number };
    assert.equal(opt.type, "OPT");
    assert.equal(opt.udpPayloadSize, 1400);
  });

  test("TC over UDP: asked again over TCP; the whole answer relayed when it fits", async () => {
    const up = await upstream((_q, transport) =>
      transport === "udp"
        ? { flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE }
        : bigAnswer("big.example.org", 60),
    );
    const { port } = await serve([{ host: HOST, port: up.port }]);
    const reply = await udpAsk(port, query("big.example.org", "A", { edns: 4096 }));
    assert.ok(reply);
    const p = decode(reply);
    assert.equal(p.flag_tc, false);
    assert.equal(p.answers?.length, 60);
    assert.deepEqual(
      up.seen.map((s) => s.transport),
      ["udp", "tcp"],
    );
  });

  test("TC over UDP and still too big for the client: the client gets TC, then TCP gets it all", async () => {
    const up = await upstream((_q, transport) =>
      transport === "udp"
        ? { flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE }
        : bigAnswer("big.example.org", 60),
    );
    const { port } = await serve([{ host: HOST, port: up.port }]);
    const reply = await udpAsk(port, query("big.example.org", "A", { id: 31 }));
    assert.ok(reply);
    assert.ok(reply.length <= 512);
    assert.equal(decode(reply).flag_tc, true);
    assert.equal(reply.readUInt16BE(0), 31);
    const { replies } = await tcpAsk(port, frame(query("big.example.org", "A", { id: 32 })), 1);
    assert.equal(replies[0]?.readUInt16BE(0), 32);
    assert.equal(decode(replies[0] as Buffer).answers?.length, 60);
  });

  test("an upstream that ignores the client's size: the client gets TC", async () => {
    const up = await upstream(() => bigAnswer("big.example.org", 60));
    const { port } = await serve([{ host: HOST, port: up.port }]);
    const reply = await udpAsk(port, query("big.example.org", "A"));
    assert.ok(reply);
    assert.ok(reply.length <= 512);
    assert.equal(decode(reply).flag_tc, true);
    assert.deepEqual(decode(reply).answers, []);
  });

  test("a query over TCP goes out over TCP", async () => {
    const up = await upstream(() => example);
    const { port } = await serve([{ host: HOST, port: up.port }]);
    const { replies } = await tcpAsk(port, frame(query("example.org", "A", { id: 7 })), 1);
    assert.equal(replies[0]?.readUInt16BE(0), 7);
    assert.deepEqual(
      up.seen.map((s) => s.transport),
      ["tcp"],
    );
  });

  test("a reply with the wrong id or question is not taken: SERVFAIL within the bound", async () => {
    const up = await upstream(
      (q): FakeReply => ({
        id: ((q.id ?? 0) + 1) & 0xffff,
        questions: [{ type: "A", name: "other.org", class: "IN" }],
        ...example,
      }),
    );
    const { port } = await serve([{ host: HOST, port: up.port }], 400);
    const started = Date.now();
    const reply = await udpAsk(port, query("example.org", "A"));
    assert.ok(reply);
    assert.equal(rcodeOf(reply), SERVFAIL);
    assert.ok(Date.now() - started < 1000);
  });

  test("a silent upstream is passed over for the next one", async () => {
    const silent = await silentUpstream();
    cleanups.push(() => silent.close());
    const up = await upstream(() => example);
    const { port } = await serve(
      [
        { host: HOST, port: silent.port },
        { host: HOST, port: up.port },
      ],
      600,
    );
    const started = Date.now();
    const reply = await udpAsk(port, query("example.org", "A"));
    assert.ok(reply);
    assert.equal(decode(reply).answers?.[0]?.type, "A");
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 1000, `the silent one cost its share, ${took} ms`);
  });

  test("a closed port fails at once (ICMP), and the next upstream answers", async () => {
    const closed = createSocket("udp4");
    await new Promise<void>((resolve) => closed.bind(0, HOST, () => resolve()));
    const deadPort = closed.address().port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const up = await upstream(() => example);
    const { port } = await serve([
      { host: HOST, port: deadPort },
      { host: HOST, port: up.port },
    ]);
    const started = Date.now();
    const reply = await udpAsk(port, query("example.org", "A"));
    assert.ok(reply);
    assert.equal(decode(reply).answers?.[0]?.type, "A");
    assert.ok(Date.now() - started < 500);
  });

  test("SERVFAIL or REFUSED from one upstream: the next is asked; the last word relayed if none does better", async () => {
    const refusing = await upstream(() => ({ flags: 0x8000 | REFUSED }));
    const good = await upstream(() => example);
    const a = await serve([
      { host: HOST, port: refusing.port },
      { host: HOST, port: good.port },
    ]);
    const reply = await udpAsk(a.port, query("example.org", "A"));
    assert.ok(reply);
    assert.equal(decode(reply).answers?.[0]?.type, "A");
    const b = await serve([{ host: HOST, port: refusing.port }]);
    const only = await udpAsk(b.port, query("example.org", "A", { id: 99 }));
    assert.ok(only);
    assert.equal(rcodeOf(only), REFUSED);
    assert.equal(only.readUInt16BE(0), 99);
  });

  test("no upstream reachable: SERVFAIL within the default bound (2 s)", async () => {
    const silent = await silentUpstream();
    cleanups.push(() => silent.close());
    const { port } = await serve([
      { host: HOST, port: silent.port },
      { host: HOST, port: silent.port },
    ]);
    const started = Date.now();
    const [udp, tcp] = await Promise.all([
      udpAsk(port, query("example.org", "A", { id: 5 }), 4000),
      tcpAsk(port, frame(query("example.org", "AAAA", { id: 6 })), 1, 4000),
    ]);
    const took = Date.now() - started;
    assert.ok(udp);
    assert.equal(rcodeOf(udp), SERVFAIL);
    assert.equal(udp.readUInt16BE(0), 5);
    assert.equal(rcodeOf(tcp.replies[0] as Buffer), SERVFAIL);
    assert.equal(decode(udp).questions?.[0]?.name, "example.org");
    assert.ok(took < 2500, `SERVFAIL after ${took} ms`);
    assert.ok(took >= 1500, `the whole budget was tried, ${took} ms`);
  });

  test("no upstreams at all: SERVFAIL at once", async () => {
    const { port } = await serve([]);
    const started = Date.now();
    const reply = await udpAsk(port, query("example.org", "A"));
    assert.ok(reply);
    assert.equal(rcodeOf(reply), SERVFAIL);
    assert.ok(Date.now() - started < 300);
  });

  test("setUpstreams takes effect for the next query", async () => {
    const up = await upstream(() => example);
    const { server, port } = await serve([]);
    server.setUpstreams([{ host: HOST, port: up.port }]);
    const reply = await udpAsk(port, query("example.org", "A"));
    assert.ok(reply);
    assert.equal(decode(reply).answers?.[0]?.type, "A");
  });

  test("close() while forwards are pending returns promptly", async () => {
    const silent = await silentUpstream();
    cleanups.push(() => silent.close());
    const server = new DnsServer({ lookup: () => undefined, upstreams: [{ host: HOST, port: silent.port }] });
    const port = await server.listen({ host: HOST, port: 0 });
    const pending = udpAsk(port, query("example.org", "A"), 500);
    const conn = tcpAsk(port, frame(query("example.org", "A")), 1, 3000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 300);
    assert.equal(await pending, undefined);
    assert.equal((await conn).closed, true);
    await assert.rejects(server.listen({ host: HOST, port: 0 }));
  });
});
