// Structured logging: one JSON line per event on stdout (pino), the level set by
// --log-level. The CLI does not log; it prints sentences.

import pino, { type Logger } from "pino";

export function createLogger(level: string): Logger {
  return pino({ level, base: { svc: "sockswitch" }, timestamp: pino.stdTimeFunctions.isoTime });
}
