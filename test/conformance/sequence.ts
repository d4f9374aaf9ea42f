// A conformance sequence (socket calls of apps A and B, in order), how it is run in a world,
// and how two runs are compared. Answers are normalized before the comparison: a port that
// no call named (one the kernel picked: port 0, autobind, a client's ephemeral port) becomes
// E1, E2, … in order of first appearance, so that two worlds agree when they pick different
// numbers with the same equalities; a port the sequence names stays as it is.

import type { AppName, Call, World } from "./world.js";

export interface Step {
  readonly app: AppName;
  readonly call: Call;
}

export interface Sequence {
  readonly name: string;
  readonly steps: readonly Step[];
}

export type Trace = readonly Record<string, unknown>[];

/** Runs a sequence in a world, then closes every socket the apps hold. */
export async function runSequence(world: World, seq: Sequence): Promise<Trace> {
  const out: Record<string, unknown>[] = [];
  const dead = new Set<AppName>();
  for (const step of seq.steps) {
    const a = dead.has(step.app) ? { err: "not run (the app died)" } : await world.call(step.app, step.call);
    if (a.err === "hang" || a.err === "exited") dead.add(step.app);
    out.push(a);
  }
  for (const app of ["A", "B"] as const) {
    if (dead.has(app) || (await world.call(app, { op: "reset" })).err !== undefined) await world.revive(app);
  }
  return out;
}

function fixedPorts(seq: Sequence): Set<number> {
  const ports = new Set<number>();
  for (const { call } of seq.steps)
    if (typeof call.port === "number" && call.port !== 0) ports.add(call.port);
  return ports;
}

/** The trace with kernel-picked ports renamed E1, E2, … (see the file's header). */
export function normalize(seq: Sequence, trace: Trace): string[] {
  const fixed = fixedPorts(seq);
  const names = new Map<number, string>();
  const port = (p: unknown): unknown => {
    if (typeof p !== "number" || fixed.has(p)) return p;
    let n = names.get(p);
    if (!n) {
      n = `E${names.size + 1}`;
      names.set(p, n);
    }
    return n;
  };
  return trace.map((a) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) {
      out[k] = Array.isArray(v) && v.length === 2 ? [v[0], port(v[1])] : v;
    }
    return JSON.stringify(out);
  });
}

export interface Difference {
  readonly step: number;
  readonly app: AppName;
  readonly call: Call;
  readonly expected: string;
  readonly got: string;
}

/** The steps where two normalized traces disagree. */
export function differences(seq: Sequence, reference: Trace, got: Trace): Difference[] {
  const r = normalize(seq, reference);
  const g = normalize(seq, got);
  const out: Difference[] = [];
  seq.steps.forEach((step, i) => {
    if (r[i] !== g[i])
      out.push({ step: i, app: step.app, call: step.call, expected: r[i] ?? "", got: g[i] ?? "" });
  });
  return out;
}

/** A sequence as text, for failure messages and for replaying by hand. */
export function describe(seq: Sequence): string {
  return seq.steps.map((s, i) => `  ${i}. ${s.app} ${JSON.stringify(s.call)}`).join("\n");
}
