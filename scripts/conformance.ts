// npm run conformance -- [--count N] [--seed S] [--from I]: runs N generated conformance
// sequences (default 300, seed 1) against the kernel and prints every undocumented difference.
// npm run conformance -- --seed S --show I: prints sequence I's answers in every world.
// Needs root (it makes network namespaces); see test/conformance/.

import { parseArgs } from "node:util";
import { generate } from "../test/conformance/generator.js";
import { conform, show } from "../test/conformance/run.js";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "300" },
    seed: { type: "string", default: "1" },
    from: { type: "string", default: "0" },
    show: { type: "string" },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
const from = Number(values.from);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || !Number.isInteger(from) || from < 0) {
  console.error("usage: npm run conformance -- [--count N] [--seed S] [--from I] (integers)");
  process.exit(2);
}
if (values.show !== undefined) {
  console.log(await show(generate(seed, Number(values.show))));
  process.exit(0);
}
const seqs = Array.from({ length: count }, (_, i) => generate(seed, from + i));
const started = Date.now();
const report = await conform(seqs, (done) => {
  if (done % 25 === 0) process.stderr.write(`${done}/${count}\n`);
});
for (const f of report.failures) console.log(`${f}\n`);
console.log(
  `${report.sequences} sequences × 2 node shapes in ${((Date.now() - started) / 1000).toFixed(0)} s: ` +
    `${report.differing} runs differed from the kernel, ${report.documented} only in documented ways, ` +
    `${report.failures.length} undocumented`,
);
process.exit(report.failures.length === 0 ? 0 : 1);
