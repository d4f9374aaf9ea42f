// Unit tests of closeShared (native/addon/closer.c): the last close of a TCP socket with
// SO_LINGER {1, 30} and data the peer never reads would sleep 30 s in close(2); through
// closeShared the caller returns at once and the closer thread cuts the close short (2 ms).
// UDP and plain TCP sockets close at once; anything that is not a socket is closed by the
// closer thread. Loopback only.

import assert from "node:assert/strict";
import { existsSync, openSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { describe, test } from "node:test";
import { loadAddon } from "../../src/native/addon.js";

const addon = loadAddon();
const C = addon.constants;
const E = osConstants.errno;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_LINGER = 13;

function sockaddrIn(port: number): Uint8Array {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint16(0, C.AF_INET, true);
  new DataView(b.buffer).setUint16(2, port, false);
  b.set([127, 0, 0, 1], 4);
  return b;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const open = (fd: number): boolean => existsSync(`/proc/self/fd/${fd}`);

describe("closeShared", () => {
  for (const tcp of [0, 1] as const)
    test(`a lingering last close does not hold the caller, and is cut short${tcp ? " (told it is TCP)" : ""}`, async () => {
      const listener = addon.socket(C.AF_INET, C.SOCK_STREAM, 0);
      assert.ok(listener >= 0);
      addon.setsockoptInt(listener, C.SOL_SOCKET, SO_RCVBUF, 2048);
      assert.equal(addon.bind(listener, sockaddrIn(0), 16), 0);
      assert.equal(addon.listen(listener, 8), 0);
      const name = new Uint8Array(16);
      addon.getsockname(listener, name);
      const port = new DataView(name.buffer).getUint16(2, false);

      const client = addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0);
      addon.setsockoptInt(client, C.SOL_SOCKET, SO_SNDBUF, 2048);
      const c = addon.connect(client, sockaddrIn(port), 16);
      assert.ok(c === 0 || c === -E.EINPROGRESS, String(c));
      await until("the connection", () => addon.getpeername(client, new Uint8Array(16)) >= 0);
      const chunk = new Uint8Array(4096);
      let sent = 0;
      for (let i = 0; i < 10_000; i++) {
        const r = addon.send(client, chunk, chunk.length);
        if (r < 0) break;
        sent += r;
      }
      assert.ok(sent > 0, "nothing could be sent");
      // {l_onoff 1, l_linger 30}: a plain close() would now wait 30 s for the peer to read.
      const linger = new Uint8Array(8);
      new DataView(linger.buffer).setInt32(0, 1, true);
      new DataView(linger.buffer).setInt32(4, 30, true);
      assert.equal(addon.setsockoptBytes(client, C.SOL_SOCKET, SO_LINGER, linger), 0);

      const t0 = Date.now();
      assert.equal(addon.closeShared(client, tcp), 0);
      assert.ok(Date.now() - t0 < 1000, `closeShared waited ${Date.now() - t0} ms`);
      await until("the closer to close it", () => !open(client) && addon.closesPending() === 0);
      // Far below the 30 s linger (the closer's bound is 2 ms; the margin is for a busy machine).
      assert.ok(Date.now() - t0 < 10_000, `the close took ${Date.now() - t0} ms`);
      addon.close(listener);
    });

  test("UDP sockets and TCP sockets without SO_LINGER are closed at once, on the caller's thread", () => {
    for (const type of [C.SOCK_DGRAM, C.SOCK_STREAM]) {
      const fd = addon.socket(C.AF_INET, type, 0);
      assert.ok(fd >= 0);
      assert.equal(addon.closeShared(fd), 0);
      assert.equal(open(fd), false);
    }
  });

  test("a descriptor that is not a socket goes to the closer thread", async () => {
    const fd = openSync("/dev/null", "r");
    assert.equal(addon.closeShared(fd), 0);
    await until("the closer to close it", () => !open(fd) && addon.closesPending() === 0);
  });

  test("a bad descriptor is EBADF", () => {
    assert.equal(addon.closeShared(-1), -E.EBADF);
  });
});
