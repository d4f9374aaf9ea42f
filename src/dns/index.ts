// The DNS feature's public surface: the server, its options, and the upstream helpers.

export type { Upstream } from "./forward.js";
export {
  DEFAULT_QUERIES_PER_CLIENT,
  DEFAULT_TCP_PER_CLIENT,
  type DnsListenOptions,
  type DnsLog,
  type DnsPeer,
  DnsServer,
  type DnsServerOptions,
  type DnsTransport,
} from "./server.js";
export { parseDnsServers, readResolvConf } from "./upstreams.js";
export type { DnsAddresses, DnsLookup } from "./zone.js";
