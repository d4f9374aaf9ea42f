// The DNS feature's public surface: the server, its options, and the upstream helpers.

export {
  DEFAULT_QUERIES_PER_CLIENT,
  DEFAULT_TCP_PER_CLIENT,
  type DnsPeer,
  type DnsTransport,
} from "./clients.js";
export type { Upstream } from "./forward.js";
export { type DnsListenOptions, type DnsLog, DnsServer, type DnsServerOptions } from "./server.js";
export { parseDnsServers, readResolvConf } from "./upstreams.js";
export type { DnsAddresses, DnsLookup } from "./zone.js";
