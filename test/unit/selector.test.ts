// Unit tests of label selectors (src/table/selector.ts), as kubectl -l reads them.

import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { matchesSelector, parseSelector } from "../../src/table/selector.js";

const labels = { tier: "back", zone: "default" };
const m = (sel: string) => matchesSelector(labels, parseSelector(sel));

test("equality, inequality, existence and absence, all of them", () => {
  assert.ok(m("tier=back"));
  assert.ok(m("tier==back"));
  assert.ok(!m("tier=front"));
  assert.ok(m("tier!=front"));
  assert.ok(m("team!=x"), "!= holds when the key is absent");
  assert.ok(m("zone"));
  assert.ok(!m("team"));
  assert.ok(m("!team"));
  assert.ok(!m("!zone"));
  assert.ok(m("tier=back,zone=default"));
  assert.ok(!m("tier=back,zone=other"));
  assert.ok(m(""), "an empty selector selects everything");
  assert.ok(matchesSelector({ e: "" }, parseSelector("e=")), "an empty value");
});

test("a bad requirement is one sentence", () => {
  for (const bad of ["a=b=c", "=x", "!a=b", "a b", "-a=b", "a=b c"])
    assert.throws(
      () => parseSelector(bad),
      (e: unknown) => e instanceof InvalidArgumentError && /is not a label requirement/.test(e.message),
      bad,
    );
});
