// Cluster options of the daemon: the store (--store embedded | etcd://HOST:PORT,…, with
// etcd client TLS), the cluster and node names, the lease TTL, and the block of host
// ports that apps' connections to other nodes come from (--client-ports). Each mistake
// gets one sentence that says what to do.

import { readFileSync } from "node:fs";
import { parseIp } from "../net/ip.js";
import { type PortRange, parsePortRange } from "../net/port-pool.js";
import { InvalidArgumentError } from "./errors.js";

export const DEFAULT_CLUSTER = "sockswitch";
export const DEFAULT_LEASE_TTL = 5;
export const DEFAULT_CLIENT_PORTS = "32768-39999";
/** Ports per app in --client-ports (--client-block). */
export const DEFAULT_CLIENT_BLOCK = 64;

export function parseClientBlock(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 8 || n > 4096)
    throw new InvalidArgumentError(`--client-block "${text}" must be a number of ports from 8 to 4096`);
  return n;
}

export type StoreConfig =
  | { readonly kind: "embedded" }
  | {
      readonly kind: "etcd";
      readonly endpoints: readonly string[];
      readonly tls: { readonly ca: Buffer; readonly cert: Buffer | null; readonly key: Buffer | null } | null;
      readonly cluster: string;
      readonly ttl: number;
    };

export interface ClusterFlags {
  store?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  cluster?: string;
  leaseTtl?: string;
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/;

/** A cluster or node name: it becomes part of etcd keys. */
export function parseClusterName(text: string, flag: string): string {
  if (!NAME.test(text))
    throw new InvalidArgumentError(
      `${flag} "${text}" is not a usable name; use letters, digits, '.', '_' and '-' (up to 63, no '/')`,
    );
  return text;
}

/** etcd://HOST:PORT[,HOST:PORT…] → ["HOST:PORT", …]. */
export function parseEtcdUrl(text: string): string[] {
  const bad = () =>
    new InvalidArgumentError(
      `--store "${text}" is not a store; use embedded, or etcd://HOST:PORT[,HOST:PORT...] (e.g. etcd://10.0.0.1:2379)`,
    );
  if (!text.startsWith("etcd://")) throw bad();
  const out: string[] = [];
  for (const part of text.slice("etcd://".length).replace(/\/$/, "").split(",")) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(part.trim());
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) throw bad();
    const host = (m[1] as string).replace(/^\[(.*)\]$/, "$1");
    if (!parseIp(host) && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad();
    out.push(host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);
  }
  return out;
}

function readPem(path: string | undefined, flag: string): Buffer | null {
  if (path === undefined) return null;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InvalidArgumentError(`${flag} ${path} cannot be read: ${(err as Error).message}`);
  }
}

export function parseStore(f: ClusterFlags): StoreConfig {
  const text = f.store ?? "embedded";
  const tlsGiven = f.etcdCa !== undefined || f.etcdCert !== undefined || f.etcdKey !== undefined;
  if (text === "embedded") {
    if (tlsGiven || f.cluster !== undefined)
      throw new InvalidArgumentError("--cluster and --etcd-* need --store etcd://HOST:PORT");
    return { kind: "embedded" };
  }
  const endpoints = parseEtcdUrl(text);
  if ((f.etcdCert === undefined) !== (f.etcdKey === undefined))
    throw new InvalidArgumentError(
      "--etcd-cert and --etcd-key go together (the client certificate and its key)",
    );
  if (tlsGiven && f.etcdCa === undefined)
    throw new InvalidArgumentError("etcd TLS needs --etcd-ca FILE (the CA that signed etcd's certificate)");
  const ca = readPem(f.etcdCa, "--etcd-ca");
  const ttl = Number(f.leaseTtl ?? DEFAULT_LEASE_TTL);
  if (!Number.isInteger(ttl) || ttl < 2 || ttl > 300)
    throw new InvalidArgumentError(`--lease-ttl "${f.leaseTtl}" must be whole seconds from 2 to 300`);
  return {
    kind: "etcd",
    endpoints,
    tls: ca ? { ca, cert: readPem(f.etcdCert, "--etcd-cert"), key: readPem(f.etcdKey, "--etcd-key") } : null,
    cluster: parseClusterName(f.cluster ?? DEFAULT_CLUSTER, "--cluster"),
    ttl,
  };
}

/**
 * --client-ports: inside the kernel's ephemeral range (IP_LOCAL_PORT_RANGE can only narrow
 * it) and apart from the listener pool (--ports).
 */
export function parseClientPorts(
  text: string,
  pool: PortRange,
  ephemeral: PortRange | null,
  block = DEFAULT_CLIENT_BLOCK,
): PortRange {
  const r = parsePortRange(text);
  if (r.last - r.first + 1 < block)
    throw new InvalidArgumentError(
      `--client-ports ${text} is too small; give at least one --client-block (${block} ports)`,
    );
  if (r.first <= pool.last && pool.first <= r.last)
    throw new InvalidArgumentError(
      `--client-ports ${text} overlaps --ports ${pool.first}-${pool.last}; give two separate ranges`,
    );
  if (ephemeral && (r.first < ephemeral.first || r.last > ephemeral.last))
    throw new InvalidArgumentError(
      `--client-ports ${text} must lie inside net.ipv4.ip_local_port_range (${ephemeral.first}-${ephemeral.last})`,
    );
  return r;
}

/** The kernel's ephemeral port range in this network namespace, or null if unreadable. */
export function ephemeralRange(): PortRange | null {
  try {
    const [a, b] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    return { first: Number(a), last: Number(b) };
  } catch {
    return null;
  }
}

export function parseRoles(text: string): string[] {
  const roles = text
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  for (const r of roles) parseClusterName(r, "--roles");
  if (roles.length === 0) throw new InvalidArgumentError("--roles needs at least one role, e.g. worker");
  return roles;
}
