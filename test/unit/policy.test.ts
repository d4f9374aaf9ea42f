// Unit tests of src/table/policy.ts: the shared-label rule and --labels parsing.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { DEFAULT_LABELS, formatLabels, parseLabels, sharesLabel } from "../../src/table/policy.js";

describe("sharesLabel", () => {
  test("one common key with the same value is enough", () => {
    assert.equal(sharesLabel({ zone: "web", tier: "a" }, { tier: "a", x: "y" }), true);
  });

  test("same key with another value is not shared", () => {
    assert.equal(sharesLabel({ zone: "web" }, { zone: "db" }), false);
  });

  test("same value under different keys is not shared", () => {
    assert.equal(sharesLabel({ zone: "web" }, { tier: "web" }), false);
  });

  test("empty label sets share nothing", () => {
    assert.equal(sharesLabel({}, { zone: "web" }), false);
    assert.equal(sharesLabel({ zone: "web" }, {}), false);
    assert.equal(sharesLabel({}, {}), false);
  });

  test("empty values match each other", () => {
    assert.equal(sharesLabel({ flag: "" }, { flag: "" }), true);
    assert.equal(sharesLabel({ flag: "" }, { flag: "x" }), false);
  });

  test("symmetric", () => {
    const a = { zone: "web", tier: "1" };
    const b = { tier: "1" };
    assert.equal(sharesLabel(a, b), sharesLabel(b, a));
  });

  test("inherited properties of the service do not count", () => {
    const service = Object.create({ zone: "web" }) as Record<string, string>;
    assert.equal(sharesLabel({ zone: "web" }, service), false);
    assert.equal(sharesLabel({ toString: "x" }, {}), false);
  });

  test("DEFAULT_LABELS is zone=default and frozen", () => {
    assert.deepEqual(DEFAULT_LABELS, { zone: "default" });
    assert.equal(Object.isFrozen(DEFAULT_LABELS), true);
    assert.equal(sharesLabel(DEFAULT_LABELS, { zone: "default" }), true);
  });
});

describe("parseLabels", () => {
  test("k=v,k2=v2", () => {
    assert.deepEqual(parseLabels("zone=web,tier=front"), { zone: "web", tier: "front" });
  });

  test("allowed characters in keys and values", () => {
    assert.deepEqual(parseLabels("app.kubernetes.io/name=my_app-1.2"), {
      "app.kubernetes.io/name": "my_app-1.2",
    });
    assert.deepEqual(parseLabels("a=Z"), { a: "Z" });
  });

  test("an empty value is allowed", () => {
    assert.deepEqual(parseLabels("flag="), { flag: "" });
  });

  test("surrounding whitespace of the whole text is trimmed", () => {
    assert.deepEqual(parseLabels("  zone=web  "), { zone: "web" });
  });

  test("key and value length limits (63)", () => {
    const k63 = `a${"b".repeat(61)}c`;
    const v63 = "v".repeat(63);
    assert.deepEqual(parseLabels(`${k63}=${v63}`), { [k63]: v63 });
    assert.throws(() => parseLabels(`${k63}d=x`), InvalidArgumentError);
    assert.throws(() => parseLabels(`k=${v63}v`), InvalidArgumentError);
  });

  test("empty text is an error that shows an example", () => {
    for (const t of ["", "   "]) {
      assert.throws(
        () => parseLabels(t),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.message === "--labels is empty; write it like zone=web,tier=front",
      );
    }
  });

  for (const bad of [
    "zone",
    "=web",
    "zone=web,",
    ",zone=web",
    "zone=we b",
    "zone=web=x",
    "-zone=web",
    "zone-=web",
    "zo ne=web",
    "zone=web;tier=x",
    "zone=wéb",
    "zone=a/b",
  ]) {
    test(`malformed ${JSON.stringify(bad)} is an InvalidArgumentError with a helpful sentence`, () => {
      assert.throws(
        () => parseLabels(bad),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.code === "SOCKSWITCH_ERR_INVALID_ARGUMENT" &&
          e.status === 400 &&
          /^label ".*" is malformed; write key=value with letters, digits/.test(e.message) &&
          e.message.includes("e.g. zone=web"),
      );
    });
  }

  test("the malformed part is quoted in the message", () => {
    assert.throws(() => parseLabels("zone=web,bad"), /label "bad" is malformed/);
  });

  test("a key given twice is an error", () => {
    assert.throws(
      () => parseLabels("zone=web,zone=db"),
      (e: unknown) => e instanceof InvalidArgumentError && e.message === 'label key "zone" is given twice',
    );
  });

  test("keys that are Object.prototype names are plain own labels", () => {
    const l = parseLabels("constructor=x,toString=y");
    assert.equal(Object.hasOwn(l, "constructor"), true);
    assert.equal(l.constructor, "x");
    assert.equal(l.toString, "y");
  });
});

describe("formatLabels", () => {
  test("k=v joined with commas, in insertion order", () => {
    assert.equal(formatLabels({ zone: "web", tier: "front" }), "zone=web,tier=front");
    assert.equal(formatLabels({}), "");
  });

  test("round trip with parseLabels", () => {
    const text = "zone=web,tier=front,flag=";
    assert.equal(formatLabels(parseLabels(text)), text);
  });
});
