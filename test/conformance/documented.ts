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

/**
 * docs/errors.md, "TIME_WAIT on a rebind": a server's connections it closed first wait in
 * TIME_WAIT on its host port, not on its virtual port. Accounted for: a bind that the kernel
 * refused with EADDRINUSE and sockswitch allowed, after the app accepted a connection on that
 * port and closed it.
 */
const timeWaitRebind: Explainer = (seq, _reference, _got, diffs) =>
  diffs.filter((d) => {
    if (d.call.op !== "bind" || !d.expected.includes("EADDRINUSE") || d.got !== '{"ok":true}') return true;
    const earlier = seq.steps.slice(0, d.step);
    const listeners = new Set(
      earlier
        .filter((x) => x.app === d.app && x.call.op === "bind" && x.call.port === d.call.port)
        .map((x) => x.call.s),
    );
    const accepted = earlier
      .filter((x) => x.call.op === "accept" && listeners.has(x.call.s))
      .map((x) => x.call.as);
    return !earlier.some((x) => x.app === d.app && x.call.op === "close" && accepted.includes(x.call.s));
  });

const EXPLAINERS: readonly Explainer[] = [reusePortGroup, timeWaitRebind];

/** The differences that no documented difference accounts for. */
export function undocumented(seq: Sequence, reference: Trace, got: Trace, diffs: Difference[]): Difference[] {
  return EXPLAINERS.reduce(
    (left, explain) => (left.length === 0 ? left : explain(seq, reference, got, left)),
    diffs,
  );
}
