// Unit tests of src/net/sock-diag.ts with the real addon (sockDiag, native/addon/diag.c):
// listening TCP and bound UDP sockets of this process are listed with their address, port
// and inode (the same as /proc/net's), connected TCP sockets are filtered out by the kernel,
// and a buffer too small for the dump grows instead of losing sockets.

import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { type AddressInfo, createConnection, createServer, type Server } from "node:net";
import { after, before, describe, test } from "node:test";
import { loadAddon } from "../../src/native/addon.js";
import { kernelSockets } from "../../src/net/proc-net.js";
import { SockDiag } from "../../src/net/sock-diag.js";

const addon = loadAddon();

describe("SockDiag", () => {
  const servers: Server[] = [];
  const udp = createSocket("udp6");
  let tcpPort = 0;
  let tcp6Port = 0;
  let udpPort = 0;
  let client: ReturnType<typeof createConnection> | null = null;

  const listen = async (host: string): Promise<number> => {
    const srv = createServer((c) => c.on("error", () => {}));
    srv.listen(0, host);
    await once(srv, "listening");
    servers.push(srv);
    return (srv.address() as AddressInfo).port;
  };

  before(async () => {
    tcpPort = await listen("127.0.0.1");
    await listen("127.0.0.1"); // two of one family: more than one record per dump
    tcp6Port = await listen("::1");
    udp.bind(0, "::1");
    await once(udp, "listening");
    udpPort = udp.address().port;
    client = createConnection(tcpPort, "127.0.0.1");
    await once(client, "connect");
  });

  after(() => {
    client?.destroy();
    udp.close();
    for (const s of servers) s.close();
  });

  test("lists listening TCP (both families) and UDP sockets, with the inodes /proc/net shows", async () => {
    const list = new SockDiag(addon).listeningAndUdp();
    const proc = await kernelSockets();
    const find = (proto: string, ip: string, port: number) =>
      list.find((s) => s.proto === proto && s.localIp === ip && s.localPort === port);
    const inodeInProc = (proto: string, ip: string, port: number) =>
      proc.find(
        (s) => s.proto === proto && s.localIp === ip && s.localPort === port && s.state !== "ESTABLISHED",
      )?.inode;
    const v4 = find("tcp", "127.0.0.1", tcpPort);
    assert.equal(v4?.state, "LISTEN");
    assert.equal(v4?.inode, inodeInProc("tcp", "127.0.0.1", tcpPort));
    assert.equal(find("tcp", "::1", tcp6Port)?.state, "LISTEN");
    const u = find("udp", "::1", udpPort);
    assert.equal(u?.state, "BOUND");
    assert.equal(u?.inode, inodeInProc("udp", "::1", udpPort));
    assert.ok((v4?.inode ?? 0) > 0);
  });

  test("leaves out connected TCP sockets (filtered in the kernel)", () => {
    const list = new SockDiag(addon).listeningAndUdp();
    const local = client?.localPort;
    assert.ok(local);
    assert.equal(
      list.some((s) => s.proto === "tcp" && s.localPort === local),
      false,
    );
    assert.ok(list.every((s) => s.proto === "udp" || s.state === "LISTEN"));
  });

  test("a buffer too small for the dump: ENOBUFS from the addon, and SockDiag grows its own", () => {
    assert.equal(addon.sockDiag(10, 17, 0xffffffff, new Uint8Array(47)), -105);
    const diag = new SockDiag(addon);
    (diag as unknown as { buf: Uint8Array }).buf = new Uint8Array(48);
    const list = diag.listeningAndUdp();
    assert.ok(list.filter((s) => s.proto === "tcp" && s.localIp === "127.0.0.1").length >= 2);
    assert.ok(list.some((s) => s.proto === "tcp" && s.localPort === tcp6Port));
  });
});
