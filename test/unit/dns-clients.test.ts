// Unit tests of the DNS server's admission and per-client shares (src/dns/clients.ts):
// a peer the caller's admit() refuses gets nothing (UDP dropped, TCP closed); the admitted
// client's key reaches the name table; a client gets at most its share of queries in
// flight (a silent upstream keeps them in flight) and of TCP connections. Loopback only.

import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { after, describe, test } from "node:test";
import { type DnsPeer, DnsServer } from "../../src/dns/index.js";
import { frame, HOST, query, silentUpstream, tcpAsk, udpAsk } from "./dns-client.js";

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function server(opts: Partial<ConstructorParameters<typeof DnsServer>[0]>): Promise<number> {
  const s = new DnsServer({ lookup: () => undefined, upstreams: [], timeoutMs: 400, ...opts });
  const port = await s.listen({ host: HOST, port: 0 });
  cleanups.push(() => s.close());
  return port;
}

describe("DNS admission and shares", () => {
  test("a refused peer gets no answer over UDP, and its TCP connection is closed", async () => {
    const seen: DnsPeer[] = [];
    const port = await server({
      admit: (p) => {
        seen.push(p);
        return null;
      },
    });
    assert.equal(await udpAsk(port, query("web.sockswitch.local", "A"), 500), undefined);
    const r = await tcpAsk(port, frame(query("web.sockswitch.local", "A")), 1, 1000);
    assert.deepEqual(r, { replies: [], closed: true });
    assert.deepEqual(
      seen.map((p) => [p.transport, p.address, p.localAddress, p.localPort === port]),
      [
        ["udp", HOST, HOST, true],
        ["tcp", HOST, HOST, true],
      ],
    );
  });

  test("the admitted client's key is what the name table is asked with", async () => {
    const asked: Array<[string, string | null]> = [];
    const port = await server({
      admit: () => "app-1",
      lookup: (name, client) => {
        asked.push([name, client]);
        return client === "app-1" ? { v4: ["10.77.0.1"], v6: [] } : undefined;
      },
    });
    const reply = await udpAsk(port, query("web.sockswitch.local", "A"));
    assert.ok(reply);
    assert.deepEqual(asked, [["web", "app-1"]]);
  });

  test("a client has at most its share of queries in flight; the rest are dropped", async () => {
    const up = await silentUpstream();
    cleanups.push(() => up.close());
    const port = await server({ upstreams: [{ host: HOST, port: up.port }], maxQueriesPerClient: 2 });
    // Forwarded names, held by the silent upstream until the 400 ms budget runs out.
    const replies = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => udpAsk(port, query(`n${i}.example.com`, "A"), 1500)),
    );
    assert.equal(replies.filter((r) => r !== undefined).length, 2);
  });

  test("a client holds at most its share of TCP connections", async () => {
    const port = await server({ maxTcpPerClient: 2 });
    const socks = [0, 1, 2].map(() => createConnection(port, HOST));
    cleanups.push(() => {
      for (const s of socks) s.destroy();
    });
    const closed = await Promise.all(
      socks.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), 700);
            s.on("close", () => {
              clearTimeout(t);
              resolve(true);
            });
            s.on("error", () => {});
          }),
      ),
    );
    assert.equal(closed.filter(Boolean).length, 1);
  });
});
