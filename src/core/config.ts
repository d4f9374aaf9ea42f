// Daemon configuration: defaults, validation of every option (one clear sentence per
// mistake), and detection of this host's node addresses.

import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { Upstream } from "../dns/index.js";
import { type Cidr, cidrNth, parseCidr } from "../net/cidr.js";
import { isLoopback, isUnspecified, parseIp } from "../net/ip.js";
import { type PortRange, parsePortRange } from "../net/port-pool.js";
import type { LbMode } from "../table/types.js";
import type { StoreConfig } from "./cluster-config.js";
import { InvalidArgumentError } from "./errors.js";
import type { Limits } from "./limits.js";

export const DEFAULT_SOCKET = "/run/sockswitch/sockswitch.sock";
export const DEFAULT_STATE_DIR = "/var/lib/sockswitch";
export const DEFAULT_PORTS = "40000-60000";
export const DEFAULT_VIP_CIDR = "10.77.0.0/16";

export interface DaemonConfig {
  readonly socket: string;
  readonly stateDir: string;
  readonly nodeIp: string;
  readonly nodeIp6: string | null;
  readonly nodeName: string;
  readonly ports: PortRange;
  readonly vipCidr: Cidr;
  readonly egress: "allow" | "deny";
  /** How decisions reach the kernel: trapped calls (seccomp), socket hooks (bpf), or the best this host allows. */
  readonly datapath: DatapathMode;
  readonly lb: LbMode;
  readonly clean: boolean;
  readonly logLevel: string;
  readonly dns: DnsConfig;
  /** Group of the daemon socket (mode 0660); null: root's. */
  readonly socketGroup: number | null;
  /** The optional TCP API: address and the token every request must carry. */
  readonly api: { readonly host: string; readonly port: number; readonly token: string } | null;
  /** Where apps and services are kept: embedded (one host) or etcd (a cluster). */
  readonly store: StoreConfig;
  /** Host ports that apps' connections to other nodes come from, a block per app. */
  readonly clientPorts: PortRange;
  /** Ports per app in clientPorts. */
  readonly clientBlock: number;
  /** Pick backends on this node when a service has some here. */
  readonly preferLocal: boolean;
  /** --strict-unix-sockets: refuse unguarded continues of multithreaded apps (trap/continue.ts). */
  readonly strictUnixSockets: boolean;
  readonly roles: readonly string[];
  /** Per-app and per-peer bounds (core/limits.ts). */
  readonly limits: Limits;
}

/** --api-listen [HOST:]PORT: loopback unless a host is given. */
export function parseApiListen(text: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(text);
  const host = m?.[1] ? m[1].replace(/^\[(.*)\]$/, "$1") : "127.0.0.1";
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535 || !parseIp(host))
    throw new InvalidArgumentError(
      `--api-listen "${text}" is not [HOST:]PORT; write it like 7070 or 127.0.0.1:7070`,
    );
  return { host: parseIp(host)?.text as string, port };
}

/** The token in --api-token-file: its first line, at least 16 characters. */
export function readApiToken(path: string | undefined): string {
  if (path === undefined)
    throw new InvalidArgumentError(
      "--api-listen needs --api-token-file FILE (a secret of at least 16 characters)",
    );
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`--api-token-file ${path} cannot be read: ${(err as Error).message}`);
  }
  const token = text.split("\n")[0]?.trim() ?? "";
  if (token.length < 16 || /\s/.test(token))
    throw new InvalidArgumentError(
      `--api-token-file ${path}: the token (first line) must be at least 16 characters, no spaces`,
    );
  return token;
}

export interface DnsConfig {
  /** --dns=false turns the server off. */
  readonly enabled: boolean;
  /** The resolver's virtual IP (port 53). */
  readonly ip: string;
  readonly domain: string;
  /** --dns-servers; null: the host's /etc/resolv.conf. */
  readonly upstreams: readonly Upstream[] | null;
}

/** Where the daemon on `socket` writes the resolv.conf that apps get (absent: DNS is off). */
export function resolvConfPath(socket: string): string {
  return `${socket.replace(/\.sock$/, "")}.resolv.conf`;
}

export const DEFAULT_DNS_DOMAIN = "sockswitch.local";

/** The resolver's default virtual IP: the 53rd address of the virtual IP pool. */
export function defaultDnsIp(vipCidr: Cidr): string {
  const ip = cidrNth(vipCidr, 53);
  if (!ip)
    throw new InvalidArgumentError(
      `--vip-cidr ${vipCidr.text} is too small to hold the resolver; give --dns-ip`,
    );
  return ip.text;
}

export function parseDnsIp(text: string): string {
  const ip = parseIp(text);
  if (!ip || isUnspecified(ip.text) || isLoopback(ip.text))
    throw new InvalidArgumentError(`--dns-ip "${text}" is not a usable virtual IP; write it like 10.77.0.53`);
  return ip.text;
}

/** A DNS domain: dot-separated labels of letters, digits and hyphens. */
export function parseDnsDomain(text: string): string {
  const d = text.toLowerCase().replace(/\.$/, "");
  if (
    !/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(d) ||
    d.length > 200
  )
    throw new InvalidArgumentError(
      `--dns-domain "${text}" is not a DNS domain; write it like sockswitch.local`,
    );
  return d;
}

/** The socket path every command uses: --socket, else $SOCKSWITCH_SOCKET, else the default. */
export function socketPath(flag: string | undefined): string {
  return flag ?? process.env.SOCKSWITCH_SOCKET ?? DEFAULT_SOCKET;
}

/** First non-loopback address of the family on this host (null when there is none). */
export function detectNodeIp(family: 4 | 6): string | null {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      if (family === 4 && a.family === "IPv4") return a.address;
      if (family === 6 && a.family === "IPv6" && !a.address.toLowerCase().startsWith("fe80"))
        return a.address;
    }
  }
  return null;
}

export function parseNodeIps(text: string | undefined): { nodeIp: string; nodeIp6: string | null } {
  if (text === undefined) {
    const v4 = detectNodeIp(4);
    const v6 = detectNodeIp(6);
    return { nodeIp: v4 ?? "127.0.0.1", nodeIp6: v6 ?? (v4 === null ? "::1" : null) };
  }
  let nodeIp: string | null = null;
  let nodeIp6: string | null = null;
  for (const part of text.split(",")) {
    const ip = parseIp(part.trim());
    if (!ip || ip.text === "0.0.0.0" || ip.text === "::") {
      throw new InvalidArgumentError(
        `--node-ip "${part}" is not a host address; give this host's IPv4 (and optionally IPv6) address, e.g. 192.0.2.10`,
      );
    }
    if ((ip.family === 4 ? nodeIp : nodeIp6) !== null) {
      throw new InvalidArgumentError(
        `--node-ip has two IPv${ip.family} addresses; give one IPv4 and at most one IPv6`,
      );
    }
    if (ip.family === 4) nodeIp = ip.text;
    else nodeIp6 = ip.text;
  }
  if (nodeIp === null) {
    throw new InvalidArgumentError("--node-ip needs an IPv4 address (an IPv6 one may follow after a comma)");
  }
  return { nodeIp, nodeIp6 };
}

export function parseEgress(text: string): "allow" | "deny" {
  if (text === "allow" || text === "deny") return text;
  throw new InvalidArgumentError(`--egress "${text}" is not a mode; use allow or deny`);
}

export type DatapathMode = "auto" | "seccomp" | "bpf";

export function parseDatapath(text: string): DatapathMode {
  if (text === "auto" || text === "seccomp" || text === "bpf") return text;
  throw new InvalidArgumentError(`--datapath "${text}" is not a datapath; use auto, seccomp or bpf`);
}

export function parseLb(text: string, flag = "--lb"): LbMode {
  if (text === "random" || text === "round-robin") return text;
  throw new InvalidArgumentError(`${flag} "${text}" is not a mode; use round-robin or random`);
}

export function parseVipCidr(text: string): Cidr {
  const c = parseCidr(text);
  const max = c.family === 4 ? 32 : 128;
  if (max - c.prefix < 2)
    throw new InvalidArgumentError(`--vip-cidr ${text} is too small; give a block of at least 4 addresses`);
  return c;
}

export { parsePortRange };
