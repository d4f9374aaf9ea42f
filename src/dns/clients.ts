// Who may ask the DNS server, and each client's share of it: the caller's admission
// (the daemon: managed apps only) names the client of each query or connection, and no
// client may have more than its share of queries in flight or TCP connections. Refusals
// are logged, rate-limited (a client can repeat them at will).

import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import { LogLimiter } from "../core/log-limit.js";

export type DnsTransport = "udp" | "tcp";

/** Who sends a query: the peer's address and ours (where it was received). */
export interface DnsPeer {
  readonly address: string;
  readonly port: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly transport: DnsTransport;
}

export const DEFAULT_QUERIES_PER_CLIENT = 64;
export const DEFAULT_TCP_PER_CLIENT = 8;

function decrement(m: Map<string, number>, key: string): void {
  const left = (m.get(key) ?? 1) - 1;
  if (left > 0) m.set(key, left);
  else m.delete(key);
}

export class DnsClients {
  /** Queries in flight and TCP connections, per client key (entries at zero are removed). */
  private readonly queries = new Map<string, number>();
  private readonly tcp = new Map<string, number>();
  private readonly limited: LogLimiter;

  constructor(
    private readonly admit: (peer: DnsPeer) => string | null,
    private readonly maxQueries: number,
    private readonly maxTcp: number,
    private readonly log: Pick<Logger, "warn" | "info">,
  ) {
    this.limited = new LogLimiter(log);
  }

  /** The client key of a peer, or null (refused, logged at most once per interval). */
  clientOf(peer: DnsPeer): string | null {
    let client: string | null;
    try {
      client = this.admit(peer);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, "dns admission failed; peer refused");
      client = null;
    }
    if (client === null)
      this.limited.warn(
        `refused|${peer.address}`,
        { peer: `${peer.address}:${peer.port}`, transport: peer.transport },
        "dns query from a peer that is not a managed app refused",
      );
    return client;
  }

  /** Starts a query of the client if its share allows (end it with queryDone); logs if not. */
  startQuery(client: string, peer: string): boolean {
    if ((this.queries.get(client) ?? 0) >= this.maxQueries) {
      this.limited.warn(
        `queries|${client}`,
        { client, peer, limit: this.maxQueries },
        "dns: the client has as many queries in flight as it may (--dns-max-queries-per-app); query dropped",
      );
      return false;
    }
    this.queries.set(client, (this.queries.get(client) ?? 0) + 1);
    return true;
  }

  queryDone(client: string): void {
    decrement(this.queries, client);
  }

  /** Takes a TCP connection for the client if its share allows (release with tcpDone); logs if not. */
  startTcp(client: string): boolean {
    const held = this.tcp.get(client) ?? 0;
    if (held >= this.maxTcp) {
      this.limited.warn(
        `tcp|${client}`,
        { client, limit: this.maxTcp },
        "dns: the client holds as many TCP connections as it may (--dns-max-tcp-per-app); connection closed",
      );
      return false;
    }
    this.tcp.set(client, held + 1);
    return true;
  }

  tcpDone(client: string): void {
    decrement(this.tcp, client);
  }
}
