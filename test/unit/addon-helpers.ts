// Shared helpers of the native addon's unit tests (addon.test.ts, addon-processes.test.ts):
// the loaded addon, sockaddr encoding, watchers, TCP pairs, /proc status fields.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { loadAddon } from "../../src/native/addon.js";

export const addon = loadAddon();
export const C = addon.constants;
export const E = osConstants.errno;
export const FD_CLOEXEC = 1;
export const loose = addon as unknown as Record<string, (...args: unknown[]) => unknown>;

export const scratch = mkdtempSync(join(tmpdir(), "sockswitch-addon-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

export function sockaddrIn(ip: string, port: number): Uint8Array {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint16(0, C.AF_INET, true); // sa_family: host order
  new DataView(b.buffer).setUint16(2, port, false); // sin_port: network order
  b.set(ip.split(".").map(Number), 4);
  return b;
}

export function decodeSockaddrIn(b: Uint8Array, len: number): { family: number; ip: string; port: number } {
  assert.equal(len, 16);
  const v = new DataView(b.buffer, b.byteOffset, len);
  return {
    family: v.getUint16(0, true),
    ip: Array.from(b.subarray(4, 8)).join("."),
    port: v.getUint16(2, false),
  };
}

/** Resolves with the first callback of a fresh watcher on fd, which is then unwatched. */
export function nextEvent(fd: number, events: number): Promise<{ status: number; events: number }> {
  return new Promise((resolve) => {
    const id = addon.watch(fd, events, (status, ev) => {
      assert.equal(addon.unwatch(id), 0);
      resolve({ status, events: ev });
    });
    assert.ok(id > 0, `watch(${fd}, ${events}) = ${id}`);
  });
}

export function ok(rc: number, what: string): number {
  assert.ok(rc >= 0, `${what} = ${rc}`);
  return rc;
}

export function tcpListener(): { fd: number; addr: Uint8Array; port: number } {
  const fd = ok(addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0), "socket");
  assert.equal(addon.bind(fd, sockaddrIn("127.0.0.1", 0), 16), 0);
  assert.equal(addon.listen(fd, 16), 0);
  const addr = new Uint8Array(128);
  const len = addon.getsockname(fd, addr);
  return { fd, addr: addr.slice(0, len), port: decodeSockaddrIn(addr, len).port };
}

/** A connected non-blocking TCP pair: [client, server]. */
export async function tcpPair(): Promise<[number, number]> {
  const l = tcpListener();
  try {
    const c = ok(addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0), "socket");
    const rc = addon.connect(c, l.addr, l.addr.byteLength);
    assert.ok(rc === 0 || rc === -E.EINPROGRESS, `connect = ${rc}`);
    await nextEvent(l.fd, 1);
    return [c, ok(addon.accept4(l.fd, C.SOCK_NONBLOCK), "accept4")];
  } finally {
    addon.close(l.fd);
  }
}

export function procStatus(pid: number | "self", field: string): bigint {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  assert.ok(line, `${field} in /proc/${pid}/status`);
  return BigInt(`0x${line.split(/\s+/)[1]}`);
}
