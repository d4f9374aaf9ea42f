// Unit tests of src/net/proc-net.ts: decoding /proc/net/{tcp,tcp6,udp,udp6} (proc(5)).

import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { describe, test } from "node:test";
import { kernelSockets, parseProcNet } from "../../src/net/proc-net.js";

const TCP_HEADER =
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const TCP6_HEADER =
  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const UDP_HEADER =
  "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";

const TCP_SAMPLE = [
  TCP_HEADER,
  "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0",
  "   1: 0A4D000A:9C41 0202000A:0050 01 00000000:00000000 02:000AFC80 00000000  1000        0 67890 2 0000000000000000 20 4 30 10 -1",
  "   2: 0100007F:A000 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000",
  "",
].join("\n");

const TCP6_SAMPLE = [
  TCP6_HEADER,
  "   0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0",
  "   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 34567 1 0000000000000000 100 0 0 10 0",
  "   2: B80D0120000000000000000001000000:01BB 0000FDFE000000000000000005000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 45678 1 0000000000000000 20 4 0 10 -1",
  "",
].join("\n");

describe("parseProcNet tcp", () => {
  const socks = parseProcNet(TCP_SAMPLE, "tcp");

  test("skips the header and blank lines", () => {
    assert.equal(socks.length, 3);
  });

  test("a listener on 127.0.0.1:8080", () => {
    assert.deepEqual(socks[0], {
      proto: "tcp",
      localIp: "127.0.0.1",
      localPort: 8080,
      remoteIp: "0.0.0.0",
      remotePort: 0,
      state: "LISTEN",
      inode: 12345,
    });
  });

  test("an established connection: little-endian words, big-endian ports", () => {
    const s = socks[1];
    assert.ok(s);
    assert.equal(s.localIp, "10.0.77.10");
    assert.equal(s.localPort, 0x9c41);
    assert.equal(s.remoteIp, "10.0.2.2");
    assert.equal(s.remotePort, 80);
    assert.equal(s.state, "ESTABLISHED");
    assert.equal(s.inode, 67890);
  });

  test("TIME_WAIT with inode 0", () => {
    assert.equal(socks[2]?.state, "TIME_WAIT");
    assert.equal(socks[2]?.inode, 0);
    assert.equal(socks[2]?.remotePort, 8080);
  });

  test("every TCP state number has its name; unknown numbers print as numbers", () => {
    const names: Record<number, string> = {
      1: "ESTABLISHED",
      2: "SYN_SENT",
      3: "SYN_RECV",
      4: "FIN_WAIT1",
      5: "FIN_WAIT2",
      6: "TIME_WAIT",
      7: "CLOSE",
      8: "CLOSE_WAIT",
      9: "LAST_ACK",
      10: "LISTEN",
      11: "CLOSING",
      12: "NEW_SYN_RECV",
      14: "14",
    };
    for (const [n, name] of Object.entries(names)) {
      const st = Number(n).toString(16).toUpperCase().padStart(2, "0");
      const line = `   0: 0100007F:0001 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0`;
      assert.equal(parseProcNet(`${TCP_HEADER}\n${line}\n`, "tcp")[0]?.state, name, `state ${st}`);
    }
  });

  test("lines with too few fields are ignored", () => {
    const text = `${TCP_HEADER}\n   0: 0100007F:1F90 00000000:0000 0A\n`;
    assert.deepEqual(parseProcNet(text, "tcp"), []);
    assert.deepEqual(parseProcNet("", "tcp"), []);
  });
});

describe("parseProcNet tcp6", () => {
  const socks = parseProcNet(TCP6_SAMPLE, "tcp");

  test("a v4-mapped address reads as IPv4", () => {
    assert.equal(socks[0]?.localIp, "127.0.0.1");
    assert.equal(socks[0]?.localPort, 8080);
    assert.equal(socks[0]?.remoteIp, "::");
    assert.equal(socks[0]?.state, "LISTEN");
    assert.equal(socks[0]?.inode, 23456);
  });

  test("::1 (each 32-bit word little-endian)", () => {
    assert.equal(socks[1]?.localIp, "::1");
    assert.equal(socks[1]?.localPort, 22);
  });

  test("global addresses in RFC 5952 text", () => {
    assert.equal(socks[2]?.localIp, "2001:db8::1");
    assert.equal(socks[2]?.localPort, 443);
    assert.equal(socks[2]?.remoteIp, "fefd::5");
    assert.equal(socks[2]?.remotePort, 0xd431);
    assert.equal(socks[2]?.state, "ESTABLISHED");
  });
});

describe("parseProcNet udp", () => {
  test("state 07 is BOUND, 01 is CONNECTED", () => {
    const text = [
      UDP_HEADER,
      "  123: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 11111 2 0000000000000000 0",
      "  124: 0100007F:A1B2 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1000        0 22222 2 0000000000000000 0",
      "",
    ].join("\n");
    const socks = parseProcNet(text, "udp");
    assert.equal(socks.length, 2);
    assert.deepEqual(socks[0], {
      proto: "udp",
      localIp: "0.0.0.0",
      localPort: 68,
      remoteIp: "0.0.0.0",
      remotePort: 0,
      state: "BOUND",
      inode: 11111,
    });
    assert.equal(socks[1]?.state, "CONNECTED");
    assert.equal(socks[1]?.remotePort, 53);
    assert.equal(socks[1]?.localPort, 0xa1b2);
  });
});

describe("parseProcNet on this host's /proc/net/tcp", () => {
  test("finds a listener this test opened, with its inode", async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const addr = server.address();
      assert.ok(addr && typeof addr === "object");
      const socks = parseProcNet(readFileSync("/proc/net/tcp", "utf8"), "tcp");
      const mine = socks.find((s) => s.localIp === "127.0.0.1" && s.localPort === addr.port);
      assert.ok(mine, `listener on port ${addr.port} not found`);
      assert.equal(mine.state, "LISTEN");
      assert.ok(mine.inode > 0);
      const all = await kernelSockets();
      assert.ok(all.some((s) => s.inode === mine.inode && s.proto === "tcp"));
      // The inode is the socket's: one of this process's fds links to socket:[inode].
      const links = readdirSync("/proc/self/fd").map((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return "";
        }
      });
      assert.ok(links.includes(`socket:[${mine.inode}]`));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
