// Unit tests of src/table/select.ts: round-robin and random backend selection.

import assert from "node:assert/strict";
import { afterEach, describe, mock, test } from "node:test";
import { Selector } from "../../src/table/select.js";
import type { LbMode, Service } from "../../src/table/types.js";

function svc(id: string, lb: LbMode | null = null): Service {
  return {
    id,
    appId: `app-${id}`,
    name: "",
    proto: "tcp",
    vip: "10.77.0.10",
    vport: 80,
    hostIp: "192.0.2.1",
    hostPort: 40000,
    labels: { zone: "default" },
    lb,
    node: "n1",
    exposed: false,
    createdAt: "2024-01-01T00:00:00.000Z",
  };
}

afterEach(() => mock.restoreAll());

describe("Selector round-robin", () => {
  test("cycles through the candidates in order", () => {
    const s = new Selector("round-robin");
    const c = [svc("a"), svc("b"), svc("c")];
    const picks = Array.from({ length: 7 }, () => s.pick("k", c).id);
    assert.deepEqual(picks, ["a", "b", "c", "a", "b", "c", "a"]);
  });

  test("keeps one counter per key", () => {
    const s = new Selector("round-robin");
    const c = [svc("a"), svc("b")];
    assert.equal(s.pick("k1", c).id, "a");
    assert.equal(s.pick("k1", c).id, "b");
    assert.equal(s.pick("k2", c).id, "a", "a new key starts at the first candidate");
    assert.equal(s.pick("k1", c).id, "a");
    assert.equal(s.pick("k2", c).id, "b");
  });

  test("forget restarts the key's cycle", () => {
    const s = new Selector("round-robin");
    const c = [svc("a"), svc("b"), svc("c")];
    s.pick("k", c);
    s.pick("k", c);
    s.forget("k");
    assert.equal(s.pick("k", c).id, "a");
  });

  test("a single candidate is returned without consuming the counter", () => {
    const s = new Selector("round-robin");
    const one = [svc("a")];
    assert.equal(s.pick("k", one).id, "a");
    assert.equal(s.pick("k", one).id, "a");
    assert.equal(s.pick("k", [svc("a"), svc("b")]).id, "a");
  });

  test("never calls Math.random", () => {
    const rnd = mock.method(Math, "random", () => 0.99);
    const s = new Selector("round-robin");
    s.pick("k", [svc("a"), svc("b")]);
    assert.equal(rnd.mock.callCount(), 0);
  });
});

describe("Selector random", () => {
  test("stays within the candidates and reaches each of them", () => {
    const s = new Selector("random");
    const c = [svc("a"), svc("b"), svc("c")];
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const p = s.pick("k", c);
      assert.ok(c.includes(p));
      seen.add(p.id);
    }
    assert.deepEqual([...seen].sort(), ["a", "b", "c"]);
  });

  test("maps Math.random uniformly onto the candidates, including the extremes", () => {
    const c = [svc("a"), svc("b"), svc("c"), svc("d")];
    const s = new Selector("random");
    const values = [0, 0.2499, 0.25, 0.5, 0.75, 0.999999];
    const expected = ["a", "a", "b", "c", "d", "d"];
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      mock.method(Math, "random", () => v);
      assert.equal(s.pick("k", c).id, expected[i], `Math.random() = ${v}`);
      mock.restoreAll();
    }
  });
});

describe("per-service lb overrides the default", () => {
  test("random service under a round-robin default uses Math.random", () => {
    mock.method(Math, "random", () => 0.99);
    const s = new Selector("round-robin");
    const c = [svc("a", "random"), svc("b", "random")];
    assert.equal(s.pick("k", c).id, "b");
    assert.equal(s.pick("k", c).id, "b", "round-robin would have moved on to a");
  });

  test("round-robin service under a random default cycles", () => {
    const rnd = mock.method(Math, "random", () => 0);
    const s = new Selector("random");
    const c = [svc("a", "round-robin"), svc("b", "round-robin")];
    assert.deepEqual([s.pick("k", c).id, s.pick("k", c).id, s.pick("k", c).id], ["a", "b", "a"]);
    assert.equal(rnd.mock.callCount(), 0);
  });

  test("null lb falls back to the default", () => {
    const rnd = mock.method(Math, "random", () => 0.99);
    const s = new Selector("random");
    const c = [svc("a", null), svc("b", null), svc("c", null)];
    assert.equal(s.pick("k", c).id, "c");
    assert.equal(rnd.mock.callCount(), 1);
  });
});
