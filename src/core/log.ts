// Structured logging: one JSON line per event on stdout (pino), the level set by
// --log-level. The CLI does not log; it prints sentences.

import pino, { type Logger } from "pino";

/** Sees every line logged at warn and above (the daemon turns refusals into events); must not throw. */
export type LogTap = (fields: Record<string, unknown>, msg: string) => void;

export function createLogger(level: string, tap?: LogTap): Logger {
  return pino({
    level,
    base: { svc: "sockswitch" },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: tap
      ? {
          logMethod(args, method, lvl) {
            if (lvl >= 40) {
              const [a, b] = args as unknown[];
              if (typeof a === "object" && a !== null && typeof b === "string")
                tap(a as Record<string, unknown>, b);
            }
            return method.apply(this, args);
          },
        }
      : undefined,
  });
}
