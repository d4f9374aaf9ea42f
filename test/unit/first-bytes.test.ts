// Unit tests of src/daemon/first-bytes.ts: telling a launcher from an HTTP client by the
// first bytes of a connection, including the partial magic that once made the daemon spin
// (fuzzer finding "ssw-prefix-spin").

import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyFirstBytes } from "../../src/daemon/first-bytes.js";

const EAGAIN = 11;

function peek(text: string): [Uint8Array, number] {
  const b = new Uint8Array(4);
  const bytes = Buffer.from(text, "latin1");
  b.set(bytes.subarray(0, 4));
  return [b, Math.min(bytes.length, 4)];
}

test("the magic is a launcher, anything else HTTP", () => {
  assert.equal(classifyFirstBytes(...peek("SSW1"), false, EAGAIN), "launcher");
  assert.equal(classifyFirstBytes(...peek("SSW1 HELLO {}"), true, EAGAIN), "launcher");
  for (const t of ["GET ", "SEARCH", "SOURCE", "SUBSCRIBE", "SSW2", "SSX", "ssw1", "\x00\x01", "X"])
    assert.equal(classifyFirstBytes(...peek(t), false, EAGAIN), "http", t);
});

test("a prefix of the magic waits, unless the peer has closed", () => {
  for (const t of ["S", "SS", "SSW"]) {
    assert.equal(classifyFirstBytes(...peek(t), false, EAGAIN), "partial", t);
    assert.equal(classifyFirstBytes(...peek(t), true, EAGAIN), "gone", t);
  }
});

test("nothing to read: wait; EOF or an error: gone", () => {
  const b = new Uint8Array(4);
  assert.equal(classifyFirstBytes(b, -EAGAIN, false, EAGAIN), "wait");
  assert.equal(classifyFirstBytes(b, -EAGAIN, true, EAGAIN), "gone");
  assert.equal(classifyFirstBytes(b, 0, false, EAGAIN), "gone");
  assert.equal(classifyFirstBytes(b, -104, false, EAGAIN), "gone");
});
