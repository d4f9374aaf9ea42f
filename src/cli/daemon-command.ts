// `sockswitch daemon [--config FILE] [options]`: the per-host daemon in the foreground.
// Its options come from core/daemon-options.ts (the same table as the configuration
// file); the daemon's modules are imported only here, when the command runs. The process
// ends when the daemon does: exit 0 after SIGTERM/SIGINT, exit 1 with one sentence when it
// cannot start (open handles never keep a failed daemon alive).

import { type Command, Option } from "commander";
import { DAEMON_OPTIONS, DEFAULT_CONFIG_FILE, type OptionValues } from "../core/daemon-options.js";
import { isUsageError, parseBool, sentenceOf } from "./shared.js";

/** The values given on the command line (not defaults), by option key. */
function cliValues(cmd: Command): OptionValues {
  const opts = cmd.opts();
  const out: OptionValues = {};
  for (const o of DAEMON_OPTIONS) {
    const name = camel(o.key);
    if (cmd.getOptionValueSource(name) === "cli") out[o.key] = opts[name];
  }
  // The program's own --socket (before the command name) counts as given too.
  const parentSocket = cmd.parent?.opts().socket;
  if (out.socket === undefined && parentSocket !== undefined) out.socket = parentSocket;
  if (out.socket === undefined && process.env.SOCKSWITCH_SOCKET) out.socket = process.env.SOCKSWITCH_SOCKET;
  return out;
}

function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function registerDaemon(program: Command): void {
  const cmd = program
    .command("daemon")
    .description("run the per-host daemon in the foreground")
    .option("--config <file>", `configuration file (default ${DEFAULT_CONFIG_FILE}, if it exists)`);
  for (const o of DAEMON_OPTIONS) {
    const flags = o.arg ? `--${o.key} ${o.arg}` : `--${o.key}`;
    const opt = new Option(flags, o.help);
    if (o.key === "dns") opt.argParser(parseBool("--dns"));
    if (o.default !== undefined && o.key !== "dns") opt.default(o.default);
    if (o.key === "dns") opt.default(true);
    cmd.addOption(opt);
  }
  cmd.action(async (_o, command: Command) => {
    const code = await daemon(command);
    // The daemon is done (stopped, or failed to start): nothing it opened may keep the process.
    process.exit(code);
  });
}

async function daemon(cmd: Command): Promise<number> {
  try {
    const [{ readConfigFile }, { mergeValues, changedKeys, daemonConfigFrom }, { runDaemon }] =
      await Promise.all([
        import("../core/config-file.js"),
        import("../core/daemon-config.js"),
        import("../daemon/daemon.js"),
      ]);
    const { DAEMON_OPTIONS: options } = await import("../core/daemon-options.js");
    const given = cliValues(cmd);
    const path: string | undefined = cmd.opts().config;
    const load = () => {
      const file = readConfigFile(path);
      const merged = mergeValues(file.values, file.file, given);
      return { merged, config: daemonConfigFrom(merged.values, merged.origins) };
    };
    const first = load();
    await runDaemon(first.config, {
      reload: () => {
        const next = load();
        // Compared with the start: a change that needs a restart is named at every SIGHUP.
        const restartNeeded = changedKeys(first.merged.values, next.merged.values).filter(
          (k) => options.find((o) => o.key === k)?.reload === "restart",
        );
        return { config: next.config, restartNeeded };
      },
    });
    return 0;
  } catch (err) {
    process.stderr.write(`sockswitch: ${sentenceOf(err)}\n`);
    return isUsageError(err) ? 2 : 1;
  }
}
