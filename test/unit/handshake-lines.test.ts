// Unit tests of src/daemon/handshake-lines.ts: the launcher's lines and which fds came with
// which line (fuzzer finding "fd-line-in-one-read": a HELLO and an FD line read at once
// gave the FD line's fd to the HELLO line).

import assert from "node:assert/strict";
import { test } from "node:test";
import { LineAssembler } from "../../src/daemon/handshake-lines.js";

const b = (s: string): Uint8Array => Buffer.from(s);

test("lines split across reads come out whole", () => {
  const a = new LineAssembler(100);
  assert.deepEqual(a.push(b("SSW1 HEL"), []), []);
  assert.deepEqual(a.push(b("LO {}\nSSW1 F"), []), [{ line: "SSW1 HELLO {}", fds: [] }]);
  assert.equal(a.buffered, 6);
  assert.deepEqual(a.push(b("D 7\n"), []), [{ line: "SSW1 FD 7", fds: [] }]);
  assert.deepEqual(a.drain(), []);
});

test("the fds of a read go to the line that holds its last byte", () => {
  const a = new LineAssembler(100);
  assert.deepEqual(a.push(b("SSW1 HELLO {}\nSSW1 FD 7\n"), [9]), [
    { line: "SSW1 HELLO {}", fds: [] },
    { line: "SSW1 FD 7", fds: [9] },
  ]);
});

test("fds of a read that ends mid-line wait for that line", () => {
  const a = new LineAssembler(100);
  assert.deepEqual(a.push(b("SSW1 HELLO {}\nSSW1 FD"), [9, 10]), [{ line: "SSW1 HELLO {}", fds: [] }]);
  assert.deepEqual(a.push(b(" 7\n"), []), [{ line: "SSW1 FD 7", fds: [9, 10] }]);
});

test("an overlong line gives every fd back through drain()", () => {
  const a = new LineAssembler(10);
  assert.deepEqual(a.push(b("short\n"), []), [{ line: "short", fds: [] }]);
  assert.equal(a.push(b("ok\nxxxxxxxxxxxxxxxxxxx"), [3]), null);
  assert.deepEqual(a.drain(), [3]);
  assert.equal(a.buffered, 0);
});

test("drain() returns the fds of an unfinished line", () => {
  const a = new LineAssembler(100);
  assert.deepEqual(a.push(b("SSW1 FD"), [4]), []);
  assert.deepEqual(a.drain(), [4]);
  assert.deepEqual(a.drain(), []);
});
