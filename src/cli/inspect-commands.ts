// `get`, `info`, `describe`, `events` and `version`: registration only (see main.ts); the
// implementations are imported when a command runs.

import type { Command } from "commander";
import { print, socketOf, withGlobals } from "./shared.js";

export function registerInspectCommands(program: Command): void {
  withGlobals(
    program
      .command("get")
      .description("list apps, services, sockets, nodes or proxies")
      .argument("<resource>", "apps, services, sockets, nodes or proxies")
      .argument("[names...]", "only these (ids or names)")
      .option("-o, --output <format>", "table, wide, json or yaml", "table")
      .option("-l, --selector <k=v,...>", "only those whose labels match (apps, services)")
      .option("-a, --all", "apps: also those that have finished, with their exit status")
      .option("-w, --watch", "after the list, print each change as it happens"),
  ).action(async (resource: string, names: string[], o, c: Command) => {
    const { get } = await import("./get.js");
    await get(socketOf(c), resource, names, o);
  });

  withGlobals(
    program
      .command("info")
      .description("show the daemon's node and version and what its kernel offers")
      .option("-o, --output <format>", "table or json", "table"),
  ).action(async (o, c: Command) => {
    const { info } = await import("./info.js");
    print(await info(socketOf(c), o.output));
  });

  withGlobals(
    program
      .command("describe")
      .description("show one app, service or node in detail")
      .argument("<kind>", "app, service or node")
      .argument("<name>", "its id or name (a service: also its address, e.g. 10.77.0.10:8080)"),
  ).action(async (kind: string, name: string, _o, c: Command) => {
    const { describe } = await import("./describe.js");
    print(await describe(socketOf(c), kind, name));
  });

  withGlobals(
    program
      .command("events")
      .description("print changes (apps, services, nodes) and refused connections as they happen")
      .option("--kinds <list>", "only these kinds: app, service, node, denial (comma-separated)")
      .option("-o, --output <format>", "table or json (one JSON object a line)", "table"),
  ).action(async (o, c: Command) => {
    const { events } = await import("./events.js");
    await events(socketOf(c), o);
  });

  withGlobals(
    program
      .command("version")
      .description("print the CLI's version and the daemon's")
      .option("-o, --output <format>", "table or json", "table"),
  ).action(async (o, c: Command) => {
    const { version } = await import("./events.js");
    await version(socketOf(c), o.output);
  });
}
