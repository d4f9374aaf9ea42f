// `sockswitch run [options] -- COMMAND [ARGS...]`: validates the options, then replaces this
// process with the static launcher (execve through the addon) as
// `sockswitch-launch --socket PATH run [the same options] -- COMMAND [ARGS...]`, which
// registers the app with the daemon and execs the command. `sockswitch run` therefore has
// the launcher's pid: signals sent to it are forwarded to the app and its exit status is the
// app's. The launcher is also the entry point of container images, with the same options.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolvConfPath } from "../core/config.js";
import { NativeError } from "../core/errors.js";
import { loadAddon } from "../native/addon.js";
import { buildSpec, type RunOptions as SpecOptions } from "../table/app-spec.js";
import { resolveUser } from "./users.js";

export interface RunOptions extends SpecOptions {
  newNetns: boolean;
  /** undefined: when the daemon serves DNS; true: required; false: leave resolv.conf alone. */
  dnsOverride?: boolean;
}

export function launcherPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  return join(root, "build", "sockswitch-launch");
}

/** The launcher's command line for these options (validated already). */
export function launcherArgv(socket: string, opts: RunOptions, command: readonly string[]): string[] {
  const argv = [launcherPath(), "--socket", socket, "run"];
  for (const ip of opts.ip ?? []) argv.push("--ip", ip);
  if (opts.name !== undefined) argv.push("--name", opts.name);
  if (opts.labels !== undefined) argv.push("--labels", opts.labels);
  for (const e of opts.expose ?? []) argv.push("--expose", e);
  for (const p of opts.publish ?? []) argv.push("--publish", p);
  if (opts.user !== undefined) argv.push("--user", opts.user);
  if (opts.lb !== undefined) argv.push("--lb", opts.lb);
  if (!opts.newNetns) argv.push("--new-netns=false");
  if (opts.dnsOverride !== undefined) argv.push(`--dns-override=${opts.dnsOverride}`);
  if (opts.rm) argv.push("--rm");
  argv.push("--", ...command);
  return argv;
}

export function run(socket: string, opts: RunOptions, command: string[]): never {
  buildSpec(opts, command);
  if (opts.dnsOverride === true && !existsSync(resolvConfPath(socket)))
    throw new NativeError(
      `--dns-override: the daemon at ${socket} serves no DNS (${resolvConfPath(socket)} is missing); start it without --dns=false`,
    );
  if (opts.user !== undefined) resolveUser(opts.user);
  const argv = launcherArgv(socket, opts, command);
  const launcher = argv[0] as string;
  if (!existsSync(launcher))
    throw new NativeError(`the launcher ${launcher} is missing; run \`npm install\` to build it`);
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ""}`);
  return loadAddon().execve(launcher, argv, env);
}
