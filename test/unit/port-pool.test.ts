// Unit tests of src/net/port-pool.ts: --ports parsing, the pool's bookkeeping, parsePort.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidArgumentError, PoolExhaustedError } from "../../src/core/errors.js";
import { PortPool, parsePort, parsePortRange } from "../../src/net/port-pool.js";

describe("parsePortRange", () => {
  test("low-high", () => {
    assert.deepEqual(parsePortRange("40000-60000"), { first: 40000, last: 60000 });
    assert.deepEqual(parsePortRange("1-65535"), { first: 1, last: 65535 });
    assert.deepEqual(parsePortRange("5000-5000"), { first: 5000, last: 5000 });
  });

  test("surrounding spaces are ignored", () => {
    assert.deepEqual(parsePortRange(" 100-200 "), { first: 100, last: 200 });
  });

  for (const bad of [
    "",
    "40000",
    "0-100",
    "100-65536",
    "200-100",
    "a-b",
    "1-2-3",
    "-100",
    "100-",
    "100 - 200",
    "123456-123457",
    "40000:60000",
  ]) {
    test(`rejects ${JSON.stringify(bad)} with an example`, () => {
      assert.throws(
        () => parsePortRange(bad),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.message.includes(`"${bad}" is not a port range`) &&
          e.message.includes("40000-60000"),
      );
    });
  }
});

describe("parsePort", () => {
  test("numbers 1 to 65535", () => {
    assert.equal(parsePort("1", "port"), 1);
    assert.equal(parsePort("8080", "port"), 8080);
    assert.equal(parsePort("65535", "port"), 65535);
  });

  for (const bad of ["0", "65536", "", "-1", "1.5", "80a", " 80", "0x50", "123456", "1e3"]) {
    test(`rejects ${JSON.stringify(bad)} and names what it was`, () => {
      assert.throws(
        () => parsePort(bad, "--expose app port"),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.message.startsWith(`--expose app port "${bad}" is not a port`) &&
          e.message.includes("1 to 65535"),
      );
    });
  }
});

describe("PortPool", () => {
  test("size, inUse and contains", () => {
    const p = new PortPool({ first: 100, last: 109 });
    assert.equal(p.size, 10);
    assert.equal(p.inUse, 0);
    assert.equal(p.contains(100), true);
    assert.equal(p.contains(109), true);
    assert.equal(p.contains(99), false);
    assert.equal(p.contains(110), false);
  });

  test("take hands out ports in order, each once", () => {
    const p = new PortPool({ first: 100, last: 103 });
    assert.deepEqual([p.take(), p.take(), p.take(), p.take()], [100, 101, 102, 103]);
    assert.equal(p.inUse, 4);
  });

  test("exhaustion throws PoolExhaustedError with a sentence that says what to do", () => {
    const p = new PortPool({ first: 100, last: 102 });
    p.take();
    p.take();
    p.take();
    assert.throws(
      () => p.take(),
      (e: unknown) =>
        e instanceof PoolExhaustedError &&
        e.code === "SOCKSWITCH_ERR_POOL_EXHAUSTED" &&
        e.status === 503 &&
        e.message === "all 3 host ports of the pool 100-102 are in use; widen --ports",
    );
  });

  test("release makes a port available again", () => {
    const p = new PortPool({ first: 100, last: 101 });
    p.take();
    const b = p.take();
    p.release(b);
    assert.equal(p.inUse, 1);
    assert.equal(p.take(), b);
    assert.throws(() => p.take(), PoolExhaustedError);
  });

  test("round-robin: a just-released port is not handed back immediately", () => {
    const p = new PortPool({ first: 100, last: 104 });
    const a = p.take(); // 100
    p.release(a);
    const next = p.take();
    assert.notEqual(next, a);
    assert.equal(next, 101);
    // The freed port comes back only after the rest of the range went by.
    assert.deepEqual([p.take(), p.take(), p.take()], [102, 103, 104]);
    assert.equal(p.take(), 100);
  });

  test("take skips ports in use and wraps around", () => {
    const p = new PortPool({ first: 100, last: 104 });
    for (let i = 0; i < 5; i++) p.take();
    p.release(102);
    p.release(100);
    assert.equal(p.take(), 100);
    assert.equal(p.take(), 102);
    assert.throws(() => p.take(), PoolExhaustedError);
  });

  test("claim marks a port used so take skips it", () => {
    const p = new PortPool({ first: 100, last: 103 });
    assert.equal(p.claim(100), true);
    assert.equal(p.claim(101), true);
    assert.equal(p.inUse, 2);
    assert.equal(p.take(), 102);
    assert.equal(p.take(), 103);
    assert.throws(() => p.take(), PoolExhaustedError);
  });

  test("claim outside the pool is refused and changes nothing", () => {
    const p = new PortPool({ first: 100, last: 103 });
    assert.equal(p.claim(99), false);
    assert.equal(p.claim(104), false);
    assert.equal(p.inUse, 0);
  });

  test("claiming twice or releasing an unknown port keeps the count right", () => {
    const p = new PortPool({ first: 100, last: 103 });
    p.claim(101);
    p.claim(101);
    assert.equal(p.inUse, 1);
    p.release(102);
    p.release(5);
    assert.equal(p.inUse, 1);
  });

  test("a one-port pool", () => {
    const p = new PortPool({ first: 7000, last: 7000 });
    assert.equal(p.take(), 7000);
    assert.throws(() => p.take(), /all 1 host ports of the pool 7000-7000 are in use/);
    p.release(7000);
    assert.equal(p.take(), 7000);
  });
});

describe("PortPool.tryClaim", () => {
  test("takes a free port of the pool once; a taken one or one outside the pool is refused", () => {
    const pool = new PortPool({ first: 100, last: 102 });
    assert.equal(pool.tryClaim(101), true);
    assert.equal(pool.tryClaim(101), false);
    assert.equal(pool.tryClaim(99), false);
    assert.equal(pool.tryClaim(103), false);
    assert.equal(pool.inUse, 1);
    pool.release(101);
    assert.equal(pool.tryClaim(101), true);
  });

  test("a port it claimed is not handed out by take()", () => {
    const pool = new PortPool({ first: 100, last: 101 });
    assert.equal(pool.tryClaim(100), true);
    assert.equal(pool.take(), 101);
    assert.equal(pool.tryTake(), null);
  });
});
