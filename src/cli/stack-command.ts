// `sockswitch up -f FILE` and `sockswitch down -f FILE`: stacks of apps (stack.ts, imported
// when the command runs).

import type { Command } from "commander";
import { print, socketOf, withGlobals } from "./shared.js";

export function registerStackCommands(program: Command): void {
  withGlobals(
    program
      .command("up")
      .description("start a stack's apps (a compose-like file) in the background")
      .requiredOption("-f, --file <file>", "the stack file (YAML)"),
  ).action(async (o, c: Command) => {
    const { readStack, up } = await import("./stack.js");
    for (const line of await up(socketOf(c), readStack(o.file))) print(line);
  });

  withGlobals(
    program
      .command("down")
      .description("stop and remove a stack's apps")
      .requiredOption("-f, --file <file>", "the stack file (YAML)")
      .option("-t, --time <seconds>", "grace period before SIGKILL", "10"),
  ).action(async (o, c: Command) => {
    const { readStack, down } = await import("./stack.js");
    const { InvalidArgumentError } = await import("../core/errors.js");
    if (!/^\d{1,4}$/.test(o.time) || Number(o.time) > 3600)
      throw new InvalidArgumentError(`-t "${o.time}" must be whole seconds from 0 to 3600`);
    for (const line of await down(socketOf(c), readStack(o.file), Number(o.time))) print(line);
  });
}
