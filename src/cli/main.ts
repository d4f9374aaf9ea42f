// The `sockswitch` command line. Every mistake a user can make ends in one sentence on
// stderr that says what to do and a non-zero exit (2 for usage, 1 for everything else);
// never a stack trace.
//
// Start-up is kept close to `node -e 0`: this file and the command registrations import
// only commander; each command's implementation (and the daemon's modules, for `daemon`
// only) is imported when that command runs. A command registers itself from its own file
// with a `register…(program)` function listed in COMMANDS below; keep such a file light
// and import the implementation lazily in the action.
//
// Global options (--socket) are accepted before or after the command name.

import { Command, CommanderError } from "commander";
import { registerAppCommands } from "./app-commands.js";
import { registerCompletion } from "./completion.js";
import { registerDaemon } from "./daemon-command.js";
import { registerInject } from "./inject.js";
import { registerInspectCommands } from "./inspect-commands.js";
import { registerRun } from "./run-command.js";
import { CLI_VERSION, isUsageError, sentenceOf } from "./shared.js";
import { registerStackCommands } from "./stack-command.js";

/** Each adds its command(s) to the program. */
const COMMANDS: ((program: Command) => void)[] = [
  registerDaemon,
  registerRun,
  registerInspectCommands,
  registerAppCommands,
  registerStackCommands,
  registerInject,
  registerCompletion,
];

export function buildProgram(): Command {
  const program = new Command("sockswitch")
    .description("Serverless SDN: app networking at the socket API, without veth, bridges or iptables")
    .version(CLI_VERSION, "-v, --version", "print the version")
    .option(
      "--socket <path>",
      "daemon socket (env SOCKSWITCH_SOCKET; default /run/sockswitch/sockswitch.sock)",
    )
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith("error: ") ? `sockswitch: ${s.slice(7)}` : s),
    });
  for (const register of COMMANDS) register(program);
  // Subcommands inherit the program's output and error handling.
  for (const c of program.commands) {
    c.exitOverride().configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith("error: ") ? `sockswitch: ${s.slice(7)}` : s),
    });
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 2;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0)
        return 0;
      return 2;
    }
    process.stderr.write(`sockswitch: ${sentenceOf(err)}\n`);
    return isUsageError(err) ? 2 : 1;
  }
}
