// The daemon's configuration from its three sources: the command line overrides the
// configuration file, which overrides the defaults (daemon-options.ts). Every value is
// checked by the same parser whichever source it came from; a mistake in the file is
// reported with the file's name and the key.

import { hostname } from "node:os";
import { resolveGroup } from "../cli/users.js";
import { parseDnsServers } from "../dns/upstreams.js";
import {
  ephemeralRange,
  parseClientBlock,
  parseClientPorts,
  parseClusterName,
  parseRoles,
  parseStore,
} from "./cluster-config.js";
import {
  type DaemonConfig,
  defaultDnsIp,
  parseApiListen,
  parseDatapath,
  parseDnsDomain,
  parseDnsIp,
  parseEgress,
  parseLb,
  parseNodeIps,
  parsePortRange,
  parseVipCidr,
  readApiToken,
  socketPath,
} from "./config.js";
import { DAEMON_OPTIONS, type OptionOrigins, type OptionValues } from "./daemon-options.js";
import { InvalidArgumentError } from "./errors.js";
import { parseLimit } from "./limits.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

/** File values under command-line values, with where each came from. */
export function mergeValues(
  file: OptionValues,
  fileName: string | null,
  cli: OptionValues,
): { values: OptionValues; origins: OptionOrigins } {
  const values: OptionValues = {};
  const origins: OptionOrigins = {};
  for (const o of DAEMON_OPTIONS) {
    if (cli[o.key] !== undefined) {
      values[o.key] = cli[o.key];
      origins[o.key] = "flag";
    } else if (file[o.key] !== undefined) {
      values[o.key] = file[o.key];
      origins[o.key] = fileName ?? "file";
    } else if (o.default !== undefined) {
      values[o.key] = o.default;
      origins[o.key] = "default";
    }
  }
  return { values, origins };
}

/** The checked configuration; throws InvalidArgumentError with one sentence. */
export function daemonConfigFrom(values: OptionValues, origins: OptionOrigins = {}): DaemonConfig {
  const str = (key: string): string | undefined => {
    const v = values[key];
    return v === undefined || typeof v === "boolean" ? undefined : v;
  };
  const bool = (key: string): boolean => values[key] === true;
  // A value from the file: its errors name the file and key.
  const at = <T>(keys: string[], parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      const from = keys.map((k) => origins[k]).find((o) => o && o !== "flag" && o !== "default");
      if (err instanceof InvalidArgumentError && from)
        throw new InvalidArgumentError(`${from}: ${keys[0]}: ${err.message}`);
      throw err;
    }
  };
  const logLevel = str("log-level") ?? "info";
  at(["log-level"], () => {
    if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
      throw new InvalidArgumentError(`--log-level "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  });
  const vipCidr = at(["vip-cidr"], () => parseVipCidr(str("vip-cidr") as string));
  const ports = at(["ports"], () => parsePortRange(str("ports") as string));
  const clientBlock = at(["client-block"], () => parseClientBlock(str("client-block") as string));
  const store = at(["store", "etcd-ca", "etcd-cert", "etcd-key", "cluster", "lease-ttl"], () =>
    parseStore({
      store: str("store"),
      etcdCa: str("etcd-ca"),
      etcdCert: str("etcd-cert"),
      etcdKey: str("etcd-key"),
      cluster: str("cluster"),
      leaseTtl: str("lease-ttl"),
    }),
  );
  const apiListen = str("api-listen");
  const dnsIp = str("dns-ip");
  const dnsServers = str("dns-servers");
  const socketGroup = str("socket-group");
  return {
    socket: socketPath(str("socket")),
    stateDir: str("state-dir") as string,
    ...at(["node-ip"], () => parseNodeIps(str("node-ip"))),
    nodeName: at(["node-name"], () => parseClusterName(str("node-name") ?? hostname(), "--node-name")),
    ports,
    store,
    // Checked only for a cluster: on one host the range is not used.
    clientPorts: at(["client-ports"], () =>
      store.kind === "etcd"
        ? parseClientPorts(str("client-ports") as string, ports, ephemeralRange(), clientBlock)
        : parsePortRange(str("client-ports") as string),
    ),
    clientBlock,
    preferLocal: bool("prefer-local"),
    strictUnixSockets: bool("strict-unix-sockets"),
    roles: at(["roles"], () => parseRoles(str("roles") as string)),
    limits: {
      waitsPerApp: at(["max-waits-per-app"], () =>
        parseLimit(str("max-waits-per-app") as string, "--max-waits-per-app"),
      ),
      portsPerApp: at(["max-ports-per-app"], () =>
        parseLimit(str("max-ports-per-app") as string, "--max-ports-per-app", 65535),
      ),
      dnsQueriesPerApp: at(["dns-max-queries-per-app"], () =>
        parseLimit(str("dns-max-queries-per-app") as string, "--dns-max-queries-per-app"),
      ),
      dnsTcpPerApp: at(["dns-max-tcp-per-app"], () =>
        parseLimit(str("dns-max-tcp-per-app") as string, "--dns-max-tcp-per-app"),
      ),
      apiConnectionsPerPeer: at(["api-max-connections-per-peer"], () =>
        parseLimit(str("api-max-connections-per-peer") as string, "--api-max-connections-per-peer"),
      ),
    },
    vipCidr,
    socketGroup:
      socketGroup === undefined
        ? null
        : at(["socket-group"], () => resolveGroup(socketGroup, "--socket-group")),
    api:
      apiListen === undefined
        ? null
        : at(["api-listen", "api-token-file"], () => ({
            ...parseApiListen(apiListen),
            token: readApiToken(str("api-token-file")),
          })),
    dns: {
      enabled: values.dns !== false,
      ip: at(["dns-ip", "vip-cidr"], () => (dnsIp === undefined ? defaultDnsIp(vipCidr) : parseDnsIp(dnsIp))),
      domain: at(["dns-domain"], () => parseDnsDomain(str("dns-domain") as string)),
      upstreams: dnsServers === undefined ? null : at(["dns-servers"], () => parseDnsServers(dnsServers)),
    },
    egress: at(["egress"], () => parseEgress(str("egress") as string)),
    lb: at(["lb"], () => parseLb(str("lb") as string)),
    datapath: at(["datapath"], () => parseDatapath(str("datapath") as string)),
    clean: bool("clean"),
    logLevel,
  };
}

/** The keys whose values differ between two sets of values. */
export function changedKeys(a: OptionValues, b: OptionValues): string[] {
  return DAEMON_OPTIONS.map((o) => o.key).filter((k) => a[k] !== b[k]);
}
