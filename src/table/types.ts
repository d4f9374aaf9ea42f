// The records of the service table. Apps and services are what the store keeps (and, in a
// cluster, what every node sees); sockets are this daemon's runtime view and are not stored.

export type Proto = "tcp" | "udp";
export type LbMode = "random" | "round-robin";
export type Labels = Readonly<Record<string, string>>;

export interface ExposeRule {
  /** The port the app listens on (its virtual port). */
  readonly appPort: number;
  /** Host address to listen on; null means the node IP. */
  readonly hostIp: string | null;
  readonly hostPort: number;
  /**
   * The protocol named in the rule (`--publish 53:53/udp`), which `run` checks the host port
   * for; the rule itself applies to whichever protocol the app binds on appPort.
   */
  readonly proto?: Proto;
}

export interface App {
  readonly id: string;
  /** DNS-style name; "" when the app has none. */
  readonly name: string;
  /** Canonical virtual IPs (at most one IPv4 and one IPv6). */
  readonly ips: readonly string[];
  readonly labels: Labels;
  readonly expose: readonly ExposeRule[];
  /** Load-balancing mode for services this app registers; null = the daemon's default. */
  readonly lb: LbMode | null;
  readonly node: string;
  /** Main process id, in the daemon's pid namespace. */
  readonly pid: number;
  /** The main process's start time (/proc/PID/stat), to tell it from a reused pid. */
  readonly pidStart: number;
  readonly command: readonly string[];
  readonly user: string | null;
  readonly createdAt: string;
  /**
   * The block of host ports this app's connections to other nodes come from (set with
   * IP_LOCAL_PORT_RANGE), so that a server on another node can tell which app a peer
   * (node IP, port) is: published once with the app, never per connection. Absent on
   * records written before clusters existed.
   */
  readonly srcPorts?: { readonly first: number; readonly last: number } | null;
}

/** A cluster member, as it registers itself (on its lease, in the etcd store). */
export interface NodeInfo {
  readonly name: string;
  readonly cluster: string;
  /** The node IP its managed listeners bind to. */
  readonly ip: string;
  readonly ip6: string | null;
  readonly roles: readonly string[];
  /** How many apps run on it. */
  readonly apps: number;
  /**
   * Its --client-ports: every managed connection from it to another node leaves from a
   * port in this range (a block per app). Absent on one host.
   */
  readonly clientPorts?: { readonly first: number; readonly last: number };
  readonly version: string;
  readonly startedAt: string;
}

export interface Service {
  /** Unique: proto, host address and virtual address. */
  readonly id: string;
  readonly appId: string;
  readonly name: string;
  readonly proto: Proto;
  readonly vip: string;
  readonly vport: number;
  readonly hostIp: string;
  readonly hostPort: number;
  readonly labels: Labels;
  readonly lb: LbMode | null;
  readonly node: string;
  /** True when the host port is an --expose port (reachable by unmanaged clients). */
  readonly exposed: boolean;
  /**
   * True when the socket is bound to a wildcard: the app's sockets bound to this very
   * virtual IP are picked before it, as the kernel's socket lookup does. Absent: false.
   */
  readonly wildcard?: boolean;
  /** True when the socket is in an SO_REUSEPORT group (see table.ts). Absent: false. */
  readonly reusePort?: boolean;
  readonly createdAt: string;
}

export function serviceId(
  proto: Proto,
  hostIp: string,
  hostPort: number,
  vip: string,
  vport: number,
): string {
  return `${proto}/${hostIp}/${hostPort}/${vip}/${vport}`;
}

export function serviceKey(proto: Proto, vip: string, vport: number): string {
  return `${proto}/${vip}/${vport}`;
}
