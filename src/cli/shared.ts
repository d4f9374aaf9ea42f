// What every command of the CLI shares: the global options (accepted after the command
// name too), the socket path, how an error becomes one sentence and an exit status.
// Light on purpose: it is loaded for every command (see main.ts).

import type { Command } from "commander";
import { InvalidArgumentError, messageOf, SockswitchError } from "../core/errors.js";
import { VERSION } from "../core/version.js";

export const CLI_VERSION = VERSION;
const DEFAULT_SOCKET = "/run/sockswitch/sockswitch.sock";

/** Adds the global options to a subcommand, so that they may follow its name. */
export function withGlobals(cmd: Command): Command {
  return cmd.option("--socket <path>", "daemon socket (also before the command; env SOCKSWITCH_SOCKET)");
}

/** The socket a command talks to: its --socket, the program's, $SOCKSWITCH_SOCKET, the default. */
export function socketOf(cmd: Command): string {
  let socket: string | undefined;
  for (let c: Command | null = cmd; c && socket === undefined; c = c.parent) socket = c.opts().socket;
  return socket ?? process.env.SOCKSWITCH_SOCKET ?? DEFAULT_SOCKET;
}

/** The sentence to print for an error: ours as they are, anything else by its message. */
export function sentenceOf(err: unknown): string {
  return err instanceof SockswitchError ? err.message : messageOf(err);
}

/** Usage errors exit 2; everything else 1. */
export function isUsageError(err: unknown): boolean {
  return err instanceof InvalidArgumentError;
}

/** Writes text and a newline to stdout. */
export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export const collect = (value: string, prev: string[] = []): string[] => [...prev, value];

export function parseBool(flag: string) {
  return (value: string | undefined): boolean => {
    if (value === undefined || value === "true") return true;
    if (value === "false") return false;
    throw new InvalidArgumentError(`${flag}="${value}" must be true or false`);
  };
}
