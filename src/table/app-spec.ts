// What an app asks for when it starts (`sockswitch run` options, carried to the daemon in
// the launcher's handshake): name, virtual IPs, labels, exposed ports, load-balancing mode.
// Parsed on the CLI for early, clear errors, and validated again by the daemon, which
// trusts nothing that arrives on its socket.

import { InvalidArgumentError } from "../core/errors.js";
import { isLoopback, isUnspecified, parseIp } from "../net/ip.js";
import { parsePort } from "../net/port-pool.js";
import { DEFAULT_LABELS, validateLabels } from "./policy.js";
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

function fail(what: string): never {
  throw new InvalidArgumentError(`bad app registration: ${what}`);
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) fail(`${what} must be a list of strings`);
  return v as string[];
}

/** Validates a registration that arrived on the daemon's socket. */
export function specFromJson(v: unknown): AppSpec {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail("not a JSON object");
  const o = v as Record<string, unknown>;
  const name = o.name ?? "";
  if (typeof name !== "string") fail("name must be a string");
  if (name !== "") validateName(name);
  const ips = parseAppIps(strings(o.ips ?? [], "ips"));
  let labels: Labels = DEFAULT_LABELS;
  if (o.labels !== undefined) {
    if (typeof o.labels !== "object" || o.labels === null || Array.isArray(o.labels))
      fail("labels must be an object");
    const entries = Object.entries(o.labels as Record<string, unknown>);
    if (entries.some(([, val]) => typeof val !== "string")) fail("label values must be strings");
    labels = entries.length === 0 ? DEFAULT_LABELS : validateLabels(entries as Array<[string, string]>);
  }
  const expose = strings(o.expose ?? [], "expose").map(parseExpose);
  const lb = o.lb ?? null;
  if (lb !== null && lb !== "random" && lb !== "round-robin") fail("lb must be random or round-robin");
  const command = strings(o.command ?? [], "command");
  const user = o.user ?? null;
  if (user !== null && typeof user !== "string") fail("user must be a string");
  const rm = o.rm ?? false;
  if (typeof rm !== "boolean") fail("rm must be true or false");
  const known = new Set(["name", "ips", "labels", "expose", "lb", "command", "user", "rm"]);
  const unknown = Object.keys(o).filter((k) => !known.has(k));
  if (unknown.length > 0) fail(`unknown field(s) ${unknown.join(", ")}`);
  return rm
    ? { name, ips, labels, expose, lb, command, user, rm }
    : { name, ips, labels, expose, lb, command, user };
}
