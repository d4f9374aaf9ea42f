// Runs conformance sequences in the reference world and in sockswitch worlds (IPv4-only and
// dual-stack node) and reports every difference that docs/errors.md does not document.
// Used by conformance.test.ts (npm test) and by `npm run conformance -- --count N --seed S`.

import { undocumented } from "./documented.js";
import { describe, differences, runSequence, type Sequence, type Trace } from "./sequence.js";
import { referenceWorld, sockswitchWorld, type World } from "./world.js";

export interface Report {
  sequences: number;
  /** Runs (sequence × node shape) with at least one difference. */
  differing: number;
  /** Of those, runs whose every difference is documented. */
  documented: number;
  /** Undocumented differences, one text block each. */
  failures: string[];
}

/** Runs every sequence in every world; onProgress gets the count done so far. */
export async function conform(
  seqs: readonly Sequence[],
  onProgress?: (done: number) => void,
): Promise<Report> {
  const worlds: World[] = [];
  const report: Report = { sequences: seqs.length, differing: 0, documented: 0, failures: [] };
  try {
    worlds.push(await referenceWorld(), await sockswitchWorld("ipv4"), await sockswitchWorld("dual-stack"));
    const [ref, ...under] = worlds as [World, ...World[]];
    let done = 0;
    for (const seq of seqs) {
      const [expected, ...got] = await Promise.all([ref, ...under].map((w) => runSequence(w, seq)));
      for (const [i, w] of under.entries()) {
        const diffs = differences(seq, expected as Trace, got[i] as Trace);
        if (diffs.length === 0) continue;
        report.differing++;
        const open = undocumented(seq, expected as Trace, got[i] as Trace, diffs);
        if (open.length === 0) {
          report.documented++;
          continue;
        }
        report.failures.push(
          `${seq.name} on ${w.name}:\n${describe(seq)}\n` +
            open
              .map((d) => `  step ${d.step}: kernel ${d.expected}\n          sockswitch ${d.got}`)
              .join("\n") +
            `\n${w.diagnostics()}`,
        );
      }
      onProgress?.(++done);
    }
  } finally {
    await Promise.all(worlds.map((w) => w.close()));
  }
  return report;
}

/** One sequence's answers in every world, step by step (for looking at a difference). */
export async function show(seq: Sequence): Promise<string> {
  const worlds: World[] = [];
  try {
    worlds.push(await referenceWorld(), await sockswitchWorld("ipv4"), await sockswitchWorld("dual-stack"));
    const traces = await Promise.all(worlds.map((w) => runSequence(w, seq)));
    const lines = seq.steps.map((st, i) => {
      const answers = traces.map((t, k) => `    ${(worlds[k] as World).name}: ${JSON.stringify(t[i])}`);
      return `${i}. ${st.app} ${JSON.stringify(st.call)}\n${answers.join("\n")}`;
    });
    return `${seq.name}\n${lines.join("\n")}\n${worlds.map((w) => w.diagnostics()).join("\n")}`;
  } finally {
    await Promise.all(worlds.map((w) => w.close()));
  }
}
