// What an app asks for when it starts: the options of `sockswitch run` (and of
// `sockswitch-launch run`, which takes the same), carried to the daemon as given in the
// launcher's handshake: name, virtual IPs, labels, published ports, load-balancing mode.
// Parsed by the Node CLI for early, clear errors, and by the daemon (which trusts nothing
// that arrives on its socket) with the same functions, so that both say the same sentence
// for the same mistake.

import { parseLb } from "../core/config.js";
import { InvalidArgumentError } from "../core/errors.js";
import { isLoopback, isUnspecified, parseIp } from "../net/ip.js";
import { parsePort } from "../net/port-pool.js";
import { DEFAULT_LABELS, parseLabels } from "./policy.js";
import type { ExposeRule, Labels, LbMode } from "./types.js";

export interface AppSpec {
  readonly name: string;
  readonly ips: string[];
  readonly labels: Labels;
  readonly expose: ExposeRule[];
  readonly lb: LbMode | null;
  readonly command: string[];
  readonly user: string | null;
  /** run --rm: not kept as a finished app when it ends. */
  readonly rm?: boolean;
  /** run --new-netns=false: the app runs in its launcher's network namespace (default true). */
  readonly newNetns?: boolean;
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function validateName(name: string): string {
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(
      `--name "${name}" is not a valid name; use lower-case letters, digits and '-' (a DNS label, up to 63 characters)`,
    );
  }
  return name;
}

/** Parses --ip values: at most one IPv4 and one IPv6, each a unicast address. */
export function parseAppIps(values: readonly string[]): string[] {
  const out: string[] = [];
  const families = new Set<number>();
  for (const v of values.flatMap((x) => x.split(","))) {
    const ip = parseIp(v.trim());
    if (!ip)
      throw new InvalidArgumentError(
        `--ip "${v}" is not an IP address; write it like 10.77.0.10 or fd77::10`,
      );
    if (isUnspecified(ip.text) || isLoopback(ip.text)) {
      throw new InvalidArgumentError(
        `--ip ${ip.text} cannot be an app's address; pick a unicast address such as 10.77.0.10`,
      );
    }
    const first = ip.bytes[0] as number;
    if ((ip.family === 4 && first >= 224) || (ip.family === 6 && first === 0xff)) {
      throw new InvalidArgumentError(
        `--ip ${ip.text} is a multicast or reserved address; pick a unicast address`,
      );
    }
    if (families.has(ip.family)) {
      throw new InvalidArgumentError(
        `--ip is given twice for IPv${ip.family}; an app has at most one IPv4 and one IPv6 address`,
      );
    }
    families.add(ip.family);
    out.push(ip.text);
  }
  return out;
}

/** An optional "/tcp" or "/udp" at the end of a port rule, and the rest. */
function splitProto(text: string, flag: string): { rule: string; proto?: "tcp" | "udp" } {
  const m = /^(.*)\/([a-z]+)$/.exec(text);
  if (!m) return { rule: text };
  if (m[2] !== "tcp" && m[2] !== "udp")
    throw new InvalidArgumentError(`${flag} "${text}": the protocol must be tcp or udp`);
  return { rule: m[1] as string, proto: m[2] };
}

/**
 * Parses --publish [HOST_IP:]HOST_PORT:APP_PORT[/tcp|/udp], Docker's order (docker run -p),
 * into the same rule as --expose.
 */
export function parsePublish(text: string): ExposeRule {
  const { rule, proto } = splitProto(text, "--publish");
  const last = rule.lastIndexOf(":");
  if (last === -1)
    throw new InvalidArgumentError(
      `--publish "${text}" needs HOST_PORT:APP_PORT (e.g. 18080:8080, as docker run -p) or HOST_IP:HOST_PORT:APP_PORT`,
    );
  const appPort = parsePort(rule.slice(last + 1), `--publish "${text}": app port`);
  const host = rule.slice(0, last);
  const hostColon = host.lastIndexOf(":");
  const hostPort = parsePort(host.slice(hostColon + 1), `--publish "${text}": host port`);
  let hostIp: string | null = null;
  if (hostColon !== -1) {
    const raw = host.slice(0, hostColon).replace(/^\[(.*)\]$/, "$1");
    const ip = parseIp(raw);
    if (!ip) throw new InvalidArgumentError(`--publish "${text}": "${raw}" is not an IP address`);
    hostIp = ip.text;
  }
  return proto ? { appPort, hostIp, hostPort, proto } : { appPort, hostIp, hostPort };
}

/** A rule as text in --expose's order (APP_PORT:[HOST_IP:]HOST_PORT[/proto]), as the API shows it. */
export function exposeText(e: ExposeRule): string {
  const ip = e.hostIp === null ? "" : e.hostIp.includes(":") ? `[${e.hostIp}]:` : `${e.hostIp}:`;
  return `${e.appPort}:${ip}${e.hostPort}${e.proto ? `/${e.proto}` : ""}`;
}

/** Parses APP_PORT:HOST_PORT or APP_PORT:HOST_IP:HOST_PORT (an optional /tcp or /udp after it). */
export function parseExpose(input: string): ExposeRule {
  const { rule: text, proto } = splitProto(input, "--expose");
  const first = text.indexOf(":");
  const last = text.lastIndexOf(":");
  if (first === -1) {
    throw new InvalidArgumentError(
      `--expose "${text}" needs APP_PORT:HOST_PORT (e.g. 8080:18080) or APP_PORT:HOST_IP:HOST_PORT`,
    );
  }
  const appPort = parsePort(text.slice(0, first), `--expose "${text}": app port`);
  const hostPort = parsePort(text.slice(last + 1), `--expose "${text}": host port`);
  let hostIp: string | null = null;
  if (first !== last) {
    const raw = text.slice(first + 1, last).replace(/^\[(.*)\]$/, "$1");
    const ip = parseIp(raw);
    if (!ip) throw new InvalidArgumentError(`--expose "${text}": "${raw}" is not an IP address`);
    hostIp = ip.text;
  }
  return proto ? { appPort, hostIp, hostPort, proto } : { appPort, hostIp, hostPort };
}

/** The options of `sockswitch run` as written on its command line (before any parsing). */
export interface RunOptions {
  readonly ip?: readonly string[];
  readonly name?: string;
  readonly labels?: string;
  readonly expose?: readonly string[];
  readonly publish?: readonly string[];
  readonly user?: string;
  readonly lb?: string;
  /** run --rm: not kept as a finished app when it ends. */
  readonly rm?: boolean;
  readonly newNetns?: boolean;
}

/**
 * The app's registration from the options of `sockswitch run` and its command; throws an
 * InvalidArgumentError with the sentence for the first bad option (in this order: command,
 * --expose, --publish, --name, --ip, --labels, --lb). --user is kept as written: it is
 * resolved where the app runs.
 */
export function buildSpec(opts: RunOptions, command: readonly string[]): AppSpec {
  if (command.length === 0) {
    throw new InvalidArgumentError(
      "sockswitch run needs a command: sockswitch run [options] -- COMMAND [ARGS...]",
    );
  }
  const expose = [...(opts.expose ?? []).map(parseExpose), ...(opts.publish ?? []).map(parsePublish)];
  return {
    ...(opts.rm ? { rm: true } : {}),
    ...(opts.newNetns === false ? { newNetns: false } : {}),
    name: opts.name === undefined ? "" : validateName(opts.name),
    ips: parseAppIps(opts.ip ?? []),
    labels: opts.labels === undefined ? DEFAULT_LABELS : parseLabels(opts.labels),
    expose,
    lb: opts.lb === undefined ? null : parseLb(opts.lb),
    command: [...command],
    user: opts.user ?? null,
  };
}

function fail(what: string): never {
  throw new InvalidArgumentError(`bad app registration: ${what}`);
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) fail(`${what} must be a list of strings`);
  return v as string[];
}

function text(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") fail(`${what} must be a string`);
  return v;
}

function flag(v: unknown, what: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") fail(`${what} must be true or false`);
  return v;
}

const REGISTRATION_KEYS = new Set([
  "ip",
  "name",
  "labels",
  "expose",
  "publish",
  "user",
  "lb",
  "rm",
  "newNetns",
  "command",
]);

/**
 * Validates a registration that arrived on the daemon's socket: a JSON object of the run
 * options as written (`ip`, `expose`, `publish`: lists of strings; `name`, `labels`,
 * `user`, `lb`: strings; `rm`, `newNetns`: booleans; each optional) and the `command` (a list of strings). Throws an
 * InvalidArgumentError: `bad app registration: …` for a malformed object, else the
 * sentence `sockswitch run` gives for the same option.
 */
export function specFromRegistration(v: unknown): AppSpec {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail("not a JSON object");
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !REGISTRATION_KEYS.has(k));
  if (unknown.length > 0) fail(`unknown field(s) ${unknown.join(", ")}`);
  const opts: RunOptions = {
    ip: o.ip === undefined ? undefined : strings(o.ip, "ip"),
    name: text(o.name, "name"),
    labels: text(o.labels, "labels"),
    expose: o.expose === undefined ? undefined : strings(o.expose, "expose"),
    publish: o.publish === undefined ? undefined : strings(o.publish, "publish"),
    user: text(o.user, "user"),
    lb: text(o.lb, "lb"),
    rm: flag(o.rm, "rm"),
    newNetns: flag(o.newNetns, "newNetns"),
  };
  return buildSpec(opts, strings(o.command ?? [], "command"));
}
