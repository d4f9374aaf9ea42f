// Per-app (and per-peer) bounds on what the daemon shares among apps and peers: the
// daemon options that set them, their defaults and ranges. A bound reached is the app's
// problem, never the daemon's or another app's: the app gets the errno the kernel gives
// for that resource and the daemon logs it (docs/errors.md, docs/security.md).

import { InvalidArgumentError } from "./errors.js";

export interface Limits {
  /**
   * --max-waits-per-app: trapped calls of one app the daemon waits on at once (a blocking
   * accept, connect, recvfrom/recvmsg or sendto/sendmsg on a full buffer). Each holds a
   * descriptor in the daemon; one more is refused with ENOBUFS.
   */
  readonly waitsPerApp: number;
  /** --max-ports-per-app: host ports (pool and --expose) one app may hold; one more: EADDRINUSE. */
  readonly portsPerApp: number;
  /** --dns-max-queries-per-app: DNS queries one app may have in flight; more are dropped. */
  readonly dnsQueriesPerApp: number;
  /** --dns-max-tcp-per-app: DNS-over-TCP connections one app may hold; more are closed. */
  readonly dnsTcpPerApp: number;
  /** --api-max-connections-per-peer: connections one address may hold to --api-listen. */
  readonly apiConnectionsPerPeer: number;
}

export const DEFAULT_LIMITS: Limits = {
  waitsPerApp: 1024,
  portsPerApp: 1024,
  dnsQueriesPerApp: 64,
  dnsTcpPerApp: 8,
  apiConnectionsPerPeer: 32,
};

/** A limit option's value: a whole number from 1 to max. */
export function parseLimit(text: string, flag: string, max = 1_000_000): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max)
    throw new InvalidArgumentError(`${flag} "${text}" must be a whole number from 1 to ${max}`);
  return n;
}
