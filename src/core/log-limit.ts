// Log lines for events a peer can repeat at will (a bound reached, a refused peer): the
// first of a kind is logged at once, then at most one line per kind per interval, which
// says how many were left out. So a flood costs the daemon a counter, not a log line each.

import type { Logger } from "pino";

/** The interval of one kind's lines. */
const INTERVAL_MS = 10_000;
/** Kinds remembered at once; the oldest are forgotten first (their next line is logged). */
const MAX_KINDS = 1024;

interface Seen {
  at: number;
  dropped: number;
}

export class LogLimiter {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly log: Pick<Logger, "warn" | "info">,
    private readonly intervalMs = INTERVAL_MS,
  ) {}

  /**
   * Logs `msg` with `fields` at warn, unless a line of the same kind (`kind`: e.g. the
   * message and the app) went out less than an interval ago; then it only counts it.
   */
  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const s = this.seen.get(kind);
    if (s && now - s.at < this.intervalMs) {
      s.dropped++;
      return;
    }
    const dropped = s?.dropped ?? 0;
    if (s) this.seen.delete(kind);
    this.seen.set(kind, { at: now, dropped: 0 });
    if (this.seen.size > MAX_KINDS) this.seen.delete(this.seen.keys().next().value as string);
    this.log.warn(dropped > 0 ? { ...fields, repeated: dropped } : fields, msg);
  }
}
