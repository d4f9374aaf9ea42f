// `sockswitch run [options] -- COMMAND [ARGS...]`: validates the options, then replaces this
// process with the static launcher (execve through the addon), which registers the app
// with the daemon and execs the command. `sockswitch run` therefore has the launcher's pid:
// signals sent to it are forwarded to the app and its exit status is the app's.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseLb, resolvConfPath } from "../core/config.js";
import { InvalidArgumentError, NativeError } from "../core/errors.js";
import { loadAddon } from "../native/addon.js";
import {
  type AppSpec,
  exposeText,
  parseAppIps,
  parseExpose,
  parsePublish,
  validateName,
} from "../table/app-spec.js";
import { DEFAULT_LABELS, parseLabels } from "../table/policy.js";
import { resolveUser } from "./users.js";

export interface RunOptions {
  ip?: string[];
  name?: string;
  labels?: string;
  expose?: string[];
  /** Docker's order: [HOST_IP:]HOST_PORT:APP_PORT. */
  publish?: string[];
  user?: string;
  lb?: string;
  newNetns: boolean;
  /** undefined: when the daemon serves DNS; true: required; false: leave resolv.conf alone. */
  dnsOverride?: boolean;
  /** Not kept as a finished app when it ends. */
  rm?: boolean;
}

export function launcherPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  return join(root, "build", "sockswitch-launch");
}

/** The registration the launcher carries to the daemon (validated again there). */
export function buildSpec(opts: RunOptions, command: string[]): AppSpec {
  if (command.length === 0) {
    throw new InvalidArgumentError(
      "sockswitch run needs a command: sockswitch run [options] -- COMMAND [ARGS...]",
    );
  }
  const expose = [...(opts.expose ?? []).map(parseExpose), ...(opts.publish ?? []).map(parsePublish)];
  return {
    ...(opts.rm ? { rm: true } : {}),
    name: opts.name === undefined ? "" : validateName(opts.name),
    ips: parseAppIps(opts.ip ?? []),
    labels: opts.labels === undefined ? DEFAULT_LABELS : parseLabels(opts.labels),
    expose,
    lb: opts.lb === undefined ? null : parseLb(opts.lb),
    command,
    user: opts.user ?? null,
  };
}

export function run(socket: string, opts: RunOptions, command: string[]): never {
  const spec = buildSpec(opts, command);
  const meta = JSON.stringify({ ...spec, expose: spec.expose.map(exposeText) });
  const argv = [launcherPath(), "--socket", socket, "--meta", meta];
  if (!opts.newNetns) argv.push("--no-netns");
  const resolv = resolvConfPath(socket);
  if (opts.dnsOverride !== false) {
    if (existsSync(resolv)) argv.push("--resolv-conf", resolv);
    else if (opts.dnsOverride === true)
      throw new NativeError(
        `--dns-override: the daemon at ${socket} serves no DNS (${resolv} is missing); start it without --dns=false`,
      );
  }
  if (opts.user !== undefined) {
    const u = resolveUser(opts.user);
    argv.push("--user", `${u.uid}:${u.gid}${u.groups.length > 0 ? `:${u.groups.join(",")}` : ""}`);
  }
  argv.push("--", ...command);
  const launcher = argv[0] as string;
  if (!existsSync(launcher))
    throw new NativeError(`the launcher ${launcher} is missing; run \`npm install\` to build it`);
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ""}`);
  return loadAddon().execve(launcher, argv, env);
}
