// Differences from the kernel that stay, each documented in docs/errors.md ("Documented
// differences"), with a matcher that recognizes it in a conformance run. A difference that
// matches none of these fails the suite.

import type { Difference, Sequence } from "./sequence.js";

interface Documented {
  /** The heading in docs/errors.md. */
  readonly id: string;
  readonly matches: (seq: Sequence, d: Difference, world: string) => boolean;
}

const DOCUMENTED: readonly Documented[] = [];

/** True when the difference is a documented one. */
export function documented(seq: Sequence, d: Difference, world: string): boolean {
  return DOCUMENTED.some((x) => x.matches(seq, d, world));
}
