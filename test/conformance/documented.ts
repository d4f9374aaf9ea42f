// Differences from the kernel that stay, each documented in docs/errors.md ("Documented
// differences") and recognized here, so that a conformance run passes them and fails on
// anything else. Each explainer returns the differences it does not account for.

import { type Difference, normalize, type Sequence, type Trace } from "./sequence.js";

type Explainer = (seq: Sequence, reference: Trace, got: Trace, diffs: Difference[]) => Difference[];

/**
 * docs/errors.md, "Which socket of an SO_REUSEPORT group gets a flow": the kernel picks by a
 * hash of the addresses (its hash: unknowable from outside); sockswitch by a hash of its own.
 * Both keep a flow on one socket. Accounted for: differences in what the group's sockets
 * received when, over the whole group, the same datagrams arrived from the same senders.
 */
const reusePortGroup: Explainer = (seq, reference, got, diffs) => {
  const group = new Set<string>();
  for (const { call } of seq.steps)
    if (call.op === "setsockopt" && call.opt === "reuseport" && call.val === 1) group.add(String(call.s));
  if (group.size < 2) return diffs;
  const received = (trace: Trace): string =>
    normalize(seq, trace)
      .filter((_, i) => {
        const c = seq.steps[i]?.call;
        return c?.op === "recvfrom" && group.has(String(c.s));
      })
      .filter((a) => !a.includes('"err"'))
      .sort()
      .join("\n");
  if (received(reference) !== received(got)) return diffs;
  return diffs.filter((d) => !(d.call.op === "recvfrom" && group.has(String(d.call.s))));
};

const EXPLAINERS: readonly Explainer[] = [reusePortGroup];

/** The differences that no documented difference accounts for. */
export function undocumented(seq: Sequence, reference: Trace, got: Trace, diffs: Difference[]): Difference[] {
  return EXPLAINERS.reduce(
    (left, explain) => (left.length === 0 ? left : explain(seq, reference, got, left)),
    diffs,
  );
}
