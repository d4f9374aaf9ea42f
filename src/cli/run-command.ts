// `sockswitch run [options] -- COMMAND [ARGS...]`: registration only; run.ts (in the
// foreground: this process becomes the launcher) and run-detached.ts (-d: the daemon starts
// it) are imported when the command runs.

import { type Command, Option } from "commander";
import { collect, parseBool, print, socketOf, withGlobals } from "./shared.js";

export const RESTART_POLICIES = ["no", "on-failure", "always", "unless-stopped"] as const;

export function registerRun(program: Command): void {
  const cmd = program
    .command("run")
    .description("run a program with its own network identity")
    .usage("[options] -- COMMAND [ARGS...]")
    .argument("<command...>", "the program and its arguments")
    .option(
      "--ip <ip>",
      "virtual IP (IPv4 and/or IPv6; repeat for both); assigned from --vip-cidr if absent",
      collect,
    )
    .option("--name <name>", "the app's name")
    .option(
      "--labels <k=v,...>",
      "labels; a client reaches a service only if they share one (default zone=default)",
    )
    .option(
      "-p, --publish <[ip:]host:app>",
      "publish APP_PORT on HOST_PORT, as docker run -p (HOST_PORT:APP_PORT[/tcp|/udp]); repeatable",
      collect,
    )
    .option(
      "--expose <app:host>",
      "publish APP_PORT on HOST_PORT (or APP_PORT:HOST_IP:HOST_PORT); repeatable",
      collect,
    )
    .option("--user <user[:group]>", "run the program as this user")
    .option("--lb <mode>", "load balancing for the services this app provides: round-robin or random")
    .addOption(
      new Option("--new-netns [bool]", "give the app its own empty network namespace")
        .default(true)
        .argParser(parseBool("--new-netns")),
    )
    .addOption(
      new Option(
        "--dns-override [bool]",
        "point the app's /etc/resolv.conf at sockswitch's DNS (default: when the daemon serves it)",
      ).argParser(parseBool("--dns-override")),
    )
    .option("-d, --detach", "run in the background: the daemon starts the app and keeps its output")
    .option("--rm", "forget the app when it ends (get apps -a does not list it)")
    .addOption(
      new Option("--restart <policy>", "with -d: restart the app when it ends").choices(RESTART_POLICIES),
    )
    .passThroughOptions();
  withGlobals(cmd).action(async (command: string[], o, c: Command) => {
    const socket = socketOf(c);
    const opts = { ...o, newNetns: o.newNetns !== false };
    if (o.detach) {
      const { runDetached } = await import("./run-detached.js");
      print(await runDetached(socket, opts, command));
      return;
    }
    const { InvalidArgumentError } = await import("../core/errors.js");
    if (o.restart !== undefined && o.restart !== "no")
      throw new InvalidArgumentError("--restart needs -d: only the daemon can start an app again");
    const { run } = await import("./run.js");
    run(socket, opts, command);
  });
}
