// The differential conformance suite (issue "Kernel fidelity"): every hand-written case and a
// fixed seed's generated sequences, run in the reference world (the kernel decides) and under
// sockswitch on an IPv4-only and a dual-stack node; any difference not documented in
// docs/errors.md fails. `npm run conformance -- --count N --seed S` runs more.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CASES } from "./cases.js";
import { generate } from "./generator.js";
import { conform } from "./run.js";

const SEED = 20261130;
const COUNT = Number(process.env.SSW_CONFORMANCE_COUNT ?? 300);

test("hand-written cases (the handed fidelity examples and their siblings) answer as the kernel", async () => {
  const r = await conform(CASES);
  assert.deepEqual(r.failures, [], r.failures.join("\n\n"));
});

test(`${COUNT} generated sequences (seed ${SEED}) answer as the kernel on both node shapes`, async () => {
  const r = await conform(Array.from({ length: COUNT }, (_, i) => generate(SEED, i)));
  console.log(
    `conformance: ${r.sequences} sequences, ${r.differing} runs differed, ${r.documented} only in documented ways`,
  );
  assert.deepEqual(r.failures, [], r.failures.slice(0, 5).join("\n\n"));
});
