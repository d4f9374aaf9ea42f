// The last line of containment. Each subsystem (trap, DNS, store, API, gateways) handles
// its own failures: an error there is logged and that subsystem recovers or gives up, and
// the others keep serving. An exception that still reaches the process (an 'error' event
// nobody listens to, a throw in a callback, a rejected promise nobody awaits) is a bug: it
// is logged at `fatal` as "uncaught exception" with its stack, and the daemon keeps
// serving, since dying would take every app's network with it. The end-to-end tests drive
// the failure paths (an unroutable DNS upstream, etcd going away, bad clients) and fail
// when this line appears (test/e2e/daemon-faults.test.ts).

import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";

/** The message of the fatal log line; tests look for it. */
export const UNCAUGHT = "uncaught exception";

/** Installs the process-wide handlers; returns a function that removes them. */
export function containUncaught(log: Logger): () => void {
  let count = 0;
  const onError = (err: unknown, origin: string): void => {
    count++;
    log.fatal(
      { err: messageOf(err), stack: err instanceof Error ? err.stack : undefined, origin, count },
      UNCAUGHT,
    );
  };
  const onException = (err: Error, origin: string) => onError(err, origin);
  const onRejection = (reason: unknown) => onError(reason, "unhandledRejection");
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);
  return () => {
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
  };
}
