// `stop`, `rm` and `logs`: an app's life cycle, by id or name, over the REST API.
// Registration and implementation in one file: both are small and need only the client.

import type { Command } from "commander";
import { print, socketOf, withGlobals } from "./shared.js";

interface AppRef {
  id: string;
  name: string;
}

function seconds(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 3600) throw new Error(`-t "${text}" must be whole seconds from 0 to 3600`);
  return n;
}

export function registerAppCommands(program: Command): void {
  withGlobals(
    program
      .command("stop")
      .description("stop running apps: SIGTERM, then SIGKILL after the grace period")
      .argument("<apps...>", "ids or names")
      .option("-t, --time <seconds>", "grace period before SIGKILL", "10"),
  ).action(async (apps: string[], o, c: Command) => {
    const { apiRequest } = await import("../api/client.js");
    const { InvalidArgumentError } = await import("../core/errors.js");
    let t: number;
    try {
      t = seconds(o.time);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    for (const app of apps) {
      const a = await apiRequest<AppRef>(
        socketOf(c),
        `/v1/apps/${encodeURIComponent(app)}/stop?timeout=${t}`,
        { method: "POST", timeoutMs: (t + 10) * 1000 },
      );
      print(a.name || a.id);
    }
  });

  withGlobals(
    program
      .command("rm")
      .description("remove finished apps (with -f: stop running ones first, with SIGKILL)")
      .argument("<apps...>", "ids or names")
      .option("-f, --force", "stop the app first if it runs"),
  ).action(async (apps: string[], o, c: Command) => {
    const { apiRequest } = await import("../api/client.js");
    for (const app of apps) {
      const a = await apiRequest<AppRef>(
        socketOf(c),
        `/v1/apps/${encodeURIComponent(app)}${o.force ? "?force=true" : ""}`,
        { method: "DELETE", timeoutMs: 20_000 },
      );
      print(a.name || a.id);
    }
  });

  withGlobals(
    program
      .command("logs")
      .description("print the output of an app started with run -d")
      .argument("<app>", "id or name")
      .option("-f, --follow", "keep printing new output until the app ends")
      .option("--tail <lines>", "only the last lines"),
  ).action(async (app: string, o, c: Command) => {
    const { apiStream } = await import("../api/client.js");
    const { InvalidArgumentError } = await import("../core/errors.js");
    const q = new URLSearchParams();
    if (o.follow) q.set("follow", "true");
    if (o.tail !== undefined) {
      if (!/^\d{1,9}$/.test(o.tail))
        throw new InvalidArgumentError(`--tail "${o.tail}" must be a number of lines`);
      q.set("tail", o.tail);
    }
    const qs = q.toString();
    await apiStream(socketOf(c), `/v1/apps/${encodeURIComponent(app)}/logs${qs ? `?${qs}` : ""}`, (text) =>
      process.stdout.write(text),
    );
  });
}
