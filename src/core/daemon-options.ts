// Every option of `sockswitch daemon`, in one table: the command line (--KEY), the
// configuration file (KEY: value, /etc/sockswitch/config.yaml), shell completion and
// docs/cli.md all come from it. Data only: the values are parsed by daemon-config.ts.
// Each option says whether SIGHUP applies a new value at once ("live") or only the next
// start ("restart").

import { DEFAULT_LIMITS } from "./limits.js";

export type OptionKind = "string" | "bool" | "list";

export interface DaemonOption {
  /** The long flag without "--", and the key in the configuration file. */
  readonly key: string;
  /** The value's placeholder in the help text ("" for a flag without a value). */
  readonly arg: string;
  readonly help: string;
  readonly kind: OptionKind;
  /** The default as the command line would spell it; undefined: computed or none. */
  readonly default?: string | boolean;
  /** Whether SIGHUP applies a changed value without a restart. */
  readonly reload: "live" | "restart";
}

export const DEFAULT_CONFIG_FILE = "/etc/sockswitch/config.yaml";

export const DAEMON_OPTIONS: readonly DaemonOption[] = [
  {
    key: "socket",
    arg: "<path>",
    help: "the daemon's UNIX socket (default /run/sockswitch/sockswitch.sock)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "state-dir",
    arg: "<dir>",
    help: "where the store keeps its state",
    kind: "string",
    default: "/var/lib/sockswitch",
    reload: "restart",
  },
  {
    key: "node-ip",
    arg: "<ip[,ip6]>",
    help: "host address(es) managed listeners bind to (default: first non-loopback, else 127.0.0.1)",
    kind: "list",
    reload: "restart",
  },
  {
    key: "node-name",
    arg: "<name>",
    help: "this node's name (default: the host name)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "ports",
    arg: "<range>",
    help: "host port pool for managed listeners",
    kind: "string",
    default: "40000-60000",
    reload: "restart",
  },
  {
    key: "vip-cidr",
    arg: "<cidr>",
    help: "pool of automatically assigned virtual IPs",
    kind: "string",
    default: "10.77.0.0/16",
    reload: "restart",
  },
  {
    key: "egress",
    arg: "<mode>",
    help: "connections to addresses that are not virtual: allow or deny",
    kind: "string",
    default: "allow",
    reload: "live",
  },
  {
    key: "lb",
    arg: "<mode>",
    help: "default load balancing: round-robin or random",
    kind: "string",
    default: "round-robin",
    reload: "live",
  },
  {
    key: "datapath",
    arg: "<mode>",
    help: "how decisions reach the kernel: auto (bpf where it can run, else seccomp), seccomp or bpf",
    kind: "string",
    default: "auto",
    reload: "restart",
  },
  {
    key: "clean",
    arg: "",
    help: "start with an empty state (forget stored apps and services)",
    kind: "bool",
    default: false,
    reload: "restart",
  },
  {
    key: "log-level",
    arg: "<level>",
    help: "trace, debug, info, warn or error",
    kind: "string",
    default: "info",
    reload: "live",
  },
  {
    key: "dns",
    arg: "[bool]",
    help: "serve DNS for managed apps' names (--dns=false: off)",
    kind: "bool",
    default: true,
    reload: "restart",
  },
  {
    key: "dns-domain",
    arg: "<domain>",
    help: "the domain of managed apps' names",
    kind: "string",
    default: "sockswitch.local",
    reload: "restart",
  },
  {
    key: "dns-ip",
    arg: "<ip>",
    help: "the resolver's virtual IP (default: the 53rd address of --vip-cidr)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "dns-servers",
    arg: "<ip[:port],...>",
    help: "upstream DNS servers (default: the host's /etc/resolv.conf)",
    kind: "list",
    reload: "live",
  },
  {
    key: "socket-group",
    arg: "<group>",
    help: "group of the daemon socket, mode 0660 (default: root's)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "api-listen",
    arg: "<[host:]port>",
    help: "also serve the REST API over TCP (loopback unless a host is given)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "api-token-file",
    arg: "<file>",
    help: "the token TCP API clients must send (Authorization: Bearer)",
    kind: "string",
    reload: "live",
  },
  {
    key: "store",
    arg: "<store>",
    help: "embedded (one host), or etcd://HOST:PORT[,HOST:PORT...] for a cluster",
    kind: "string",
    default: "embedded",
    reload: "restart",
  },
  {
    key: "etcd-ca",
    arg: "<file>",
    help: "CA certificate for etcd client TLS (PEM)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "etcd-cert",
    arg: "<file>",
    help: "client certificate for etcd client TLS (PEM)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "etcd-key",
    arg: "<file>",
    help: "client key for etcd client TLS (PEM)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "cluster",
    arg: "<name>",
    help: "the cluster's name, its key prefix in etcd (default sockswitch)",
    kind: "string",
    reload: "restart",
  },
  {
    key: "lease-ttl",
    arg: "<seconds>",
    help: "seconds after which a dead node leaves the cluster",
    kind: "string",
    default: "5",
    reload: "restart",
  },
  {
    key: "client-ports",
    arg: "<range>",
    help: "host ports of apps' connections to other nodes",
    kind: "string",
    default: "32768-39999",
    reload: "restart",
  },
  {
    key: "client-block",
    arg: "<n>",
    help: "ports per app in --client-ports",
    kind: "string",
    default: "64",
    reload: "restart",
  },
  {
    key: "prefer-local",
    arg: "",
    help: "pick backends on this node when a service has some here",
    kind: "bool",
    default: false,
    reload: "restart",
  },
  {
    key: "strict-unix-sockets",
    arg: "",
    help: "refuse (EPERM) bind, connect and sends on UNIX and netlink sockets of multithreaded apps where the kernel guard is not available (closes the fd-swap window of docs/security.md; MariaDB, Java and other multithreaded apps that use UNIX sockets then fail)",
    kind: "bool",
    default: false,
    reload: "restart",
  },
  {
    key: "roles",
    arg: "<list>",
    help: "this node's roles, shown by get nodes",
    kind: "list",
    default: "worker",
    reload: "restart",
  },
  // Per-app and per-peer bounds (core/limits.ts; docs/security.md, promise 14).
  {
    key: "max-waits-per-app",
    arg: "<n>",
    help: "trapped calls one app may have waiting at once (more: ENOBUFS)",
    kind: "string",
    default: String(DEFAULT_LIMITS.waitsPerApp),
    reload: "restart",
  },
  {
    key: "max-ports-per-app",
    arg: "<n>",
    help: "host ports one app may hold (more: EADDRINUSE)",
    kind: "string",
    default: String(DEFAULT_LIMITS.portsPerApp),
    reload: "restart",
  },
  {
    key: "dns-max-queries-per-app",
    arg: "<n>",
    help: "DNS queries one app may have in flight (more are dropped)",
    kind: "string",
    default: String(DEFAULT_LIMITS.dnsQueriesPerApp),
    reload: "restart",
  },
  {
    key: "dns-max-tcp-per-app",
    arg: "<n>",
    help: "DNS-over-TCP connections one app may hold (more are closed)",
    kind: "string",
    default: String(DEFAULT_LIMITS.dnsTcpPerApp),
    reload: "restart",
  },
  {
    key: "api-max-connections-per-peer",
    arg: "<n>",
    help: "connections one address may hold to --api-listen (more are closed)",
    kind: "string",
    default: String(DEFAULT_LIMITS.apiConnectionsPerPeer),
    reload: "restart",
  },
];

/** Values by key: strings (lists joined with ","), booleans for bool options. */
export type OptionValues = Record<string, string | boolean | undefined>;

/** Where a value came from, for error messages. */
export type OptionOrigins = Record<string, string>;
