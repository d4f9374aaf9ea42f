// The embedded DNS server: names of managed apps answered from the daemon's name table
// (zone.ts), everything else forwarded upstream (forward.ts). It serves UDP and TCP on
// the same address and port; answer() is the same service without a socket, for callers
// that already hold a query (e.g. a trapped sendto to port 53).
//
// Who is served is the caller's choice (admit): the daemon serves its managed apps only,
// and says which app asks, so that the name table answers each app what it may see.
//
// Invariants: nothing a client sends can throw out of a socket handler or crash the
// process; every query is answered or dropped within the forwarding budget (timeoutMs);
// memory is bounded (queries in flight, TCP connections, bytes buffered per connection),
// and so is each client's share of it (queries in flight, TCP connections per client).
// udp(7), tcp(7), RFC 1035, RFC 7766 (TCP: several queries a connection, replies in any
// order, idle timeout).

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIPv6, type Server, type Socket } from "node:net";
import pino, { type Logger } from "pino";
import { messageOf, SockswitchError, StateError } from "../core/errors.js";
import {
  DEFAULT_QUERIES_PER_CLIENT,
  DEFAULT_TCP_PER_CLIENT,
  DnsClients,
  type DnsPeer,
  type DnsTransport,
} from "./clients.js";
import { forward, type Upstream } from "./forward.js";
import { buildResponse, parseQuery, RCODE, rcodeOf, responseLimit, TCP_MAX } from "./wire.js";
import { type DnsLookup, decide, normalizeDomain, type Zone } from "./zone.js";

export type DnsLog = Pick<Logger, "debug" | "info" | "warn">;

export interface DnsServerOptions {
  /** Our zone; default "sockswitch.local". */
  readonly domain?: string;
  /** The daemon's name table; called with a bare, lower-case name. */
  readonly lookup: DnsLookup;
  /** Where other names go, tried in order; none: they get SERVFAIL. */
  readonly upstreams?: readonly Upstream[];
  /** Total time one forwarded query may take before SERVFAIL; default 2000 ms. */
  readonly timeoutMs?: number;
  /** TTL of our answers (and of their negative caching); default 5 s. */
  readonly ttl?: number;
  readonly log?: DnsLog;
  /**
   * Who may ask: a key naming the client (the daemon: the app's id), passed on to lookup
   * and used to share out the limits; null refuses the peer (a UDP query is dropped, a
   * TCP connection closed). Default: everyone, as one client per peer address.
   */
  readonly admit?: (peer: DnsPeer) => string | null;
  /** Queries one client may have in flight; more are dropped (UDP) or end the connection (TCP). Default 64. */
  readonly maxQueriesPerClient?: number;
  /** TCP connections one client may hold; more are closed at once. Default 8. */
  readonly maxTcpPerClient?: number;
}

export interface DnsListenOptions {
  readonly host: string;
  /** 0 picks a free port, the same for UDP and TCP. */
  readonly port: number;
}

/** Queries being answered at once, all sockets together; more are dropped (UDP) or wait (TCP). */
const MAX_INFLIGHT = 1024;
const MAX_TCP_CONNECTIONS = 256;
/** Queries of one TCP connection in flight before we stop reading it. */
const TCP_PIPELINE = 32;
/** A TCP connection with no bytes either way for this long is closed (RFC 7766 §6.2.3). */
const TCP_IDLE_MS = 10_000;
/** Unparsed bytes one connection may hold: a full frame and then some. */
const TCP_BUFFER_MAX = 2 * (2 + TCP_MAX);
/** A free port for UDP may be taken for TCP: how often port 0 picks again. */
const PORT_ATTEMPTS = 10;

export class DnsServer {
  readonly domain: string;
  private readonly zone: Zone;
  private upstreams: readonly Upstream[];
  private readonly timeoutMs: number;
  private readonly log: DnsLog;
  private readonly udp = new Set<UdpSocket>();
  private readonly tcp = new Set<Server>();
  private readonly connections = new Set<Socket>();
  private readonly closing = new AbortController();
  private inflight = 0;
  private readonly clients: DnsClients;

  constructor(opts: DnsServerOptions) {
    this.domain = normalizeDomain(opts.domain ?? "sockswitch.local");
    this.zone = { domain: this.domain, ttl: opts.ttl ?? 5, lookup: opts.lookup };
    this.upstreams = [...(opts.upstreams ?? [])];
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.log = opts.log ?? pino({ level: "silent" });
    this.clients = new DnsClients(
      opts.admit ?? ((p: DnsPeer) => p.address),
      opts.maxQueriesPerClient ?? DEFAULT_QUERIES_PER_CLIENT,
      opts.maxTcpPerClient ?? DEFAULT_TCP_PER_CLIENT,
      this.log,
    );
  }

  /** Replaces the upstreams (e.g. after resolv.conf changed); queries in flight keep theirs. */
  setUpstreams(upstreams: readonly Upstream[]): void {
    this.upstreams = [...upstreams];
  }

  /** Serves UDP and TCP on host:port; resolves to the port (the one picked, for port 0). */
  async listen(opts: DnsListenOptions): Promise<number> {
    if (this.closing.signal.aborted) throw new StateError("the DNS server is closed; make a new one");
    for (let attempt = 1; ; attempt++) {
      const udp = createSocket({ type: isIPv6(opts.host) ? "udp6" : "udp4" });
      try {
        await bindUdp(udp, opts.host, opts.port);
      } catch (err) {
        udp.close();
        throw listenError(opts.host, opts.port, err);
      }
      const port = udp.address().port;
      const tcp = createServer({ allowHalfOpen: true }, (sock) => this.serveTcp(sock));
      try {
        await listenTcp(tcp, opts.host, port);
      } catch (err) {
        udp.close();
        if (opts.port === 0 && codeOf(err) === "EADDRINUSE" && attempt < PORT_ATTEMPTS) continue;
        throw listenError(opts.host, port, err);
      }
      this.serveUdp(udp);
      tcp.maxConnections = MAX_TCP_CONNECTIONS;
      tcp.on("error", (err) => this.log.warn({ err: messageOf(err) }, "dns tcp server error"));
      this.tcp.add(tcp);
      this.log.info({ host: opts.host, port, domain: this.domain }, "dns listening");
      return port;
    }
  }

  /** Stops serving: sockets closed, forwards in flight abandoned (their clients get nothing). */
  async close(): Promise<void> {
    this.closing.abort();
    for (const sock of this.connections) sock.destroy();
    const waits: Promise<void>[] = [];
    for (const udp of this.udp) waits.push(new Promise((resolve) => udp.close(() => resolve())));
    for (const tcp of this.tcp) waits.push(new Promise((resolve) => tcp.close(() => resolve())));
    this.udp.clear();
    this.tcp.clear();
    await Promise.all(waits);
  }

  /**
   * The response to one DNS message, or undefined when it deserves none (no header, or
   * it is itself a response). Never throws.
   */
  async answer(
    query: Buffer,
    transport: DnsTransport,
    client: string | null = null,
  ): Promise<Buffer | undefined> {
    try {
      return await this.respond(query, transport, client);
    } catch (err) {
      // A bug of ours, not the client's: log it, answer nothing rather than crash.
      this.log.warn({ err: messageOf(err) }, "dns query failed");
      return undefined;
    }
  }

  private async respond(
    query: Buffer,
    transport: DnsTransport,
    client: string | null,
  ): Promise<Buffer | undefined> {
    const parsed = parseQuery(query);
    if (parsed.kind === "drop") return undefined;
    const limit = responseLimit(transport, parsed.edns);
    const { header, edns } = parsed;
    if (parsed.kind === "error") return buildResponse({ header, edns, rcode: parsed.rcode, limit });
    const base = { header, edns, question: parsed.question, limit };
    // An EDNS version we do not speak: buildResponse answers BADVERS.
    if (edns && edns.version !== 0) return buildResponse({ ...base, rcode: RCODE.NOERROR });

    let decision: ReturnType<typeof decide>;
    try {
      decision = decide(parsed.question, this.zone, client);
    } catch (err) {
      this.log.warn({ err: messageOf(err), name: parsed.question.name }, "dns name lookup failed");
      return buildResponse({ ...base, rcode: RCODE.SERVFAIL });
    }
    if (decision.kind === "answer") return buildResponse({ ...base, ...decision });

    const reply = await forward(
      { query, question: parsed.question, transport, limit },
      { upstreams: this.upstreams, timeoutMs: this.timeoutMs, log: this.log, signal: this.closing.signal },
    );
    if (!reply) return buildResponse({ ...base, rcode: RCODE.SERVFAIL });
    // An upstream that ignored the client's size: hand the client a TC, it retries over TCP.
    if (reply.length > limit) return buildResponse({ ...base, rcode: rcodeOf(reply), truncated: true });
    return reply;
  }

  /** answer() counted against MAX_INFLIGHT; the client's share was taken (startQuery). */
  private async serve(query: Buffer, transport: DnsTransport, client: string): Promise<Buffer | undefined> {
    this.inflight++;
    try {
      return await this.answer(query, transport, client);
    } finally {
      this.inflight--;
      this.clients.queryDone(client);
    }
  }

  private serveUdp(udp: UdpSocket): void {
    this.udp.add(udp);
    udp.on("error", (err) => this.log.warn({ err: messageOf(err) }, "dns udp socket error"));
    udp.on("message", (msg, rinfo) => {
      if (this.inflight >= MAX_INFLIGHT) {
        this.log.debug({ from: rinfo.address }, "dns busy: query dropped");
        return;
      }
      const local = udp.address();
      const client = this.clients.clientOf({
        address: rinfo.address,
        port: rinfo.port,
        localAddress: local.address,
        localPort: local.port,
        transport: "udp",
      });
      if (client === null || !this.clients.startQuery(client, `${rinfo.address}:${rinfo.port}`)) return;
      void this.serve(msg, "udp", client).then((reply) => {
        if (!reply || !this.udp.has(udp)) return;
        udp.send(reply, rinfo.port, rinfo.address, (err) => {
          if (err) this.log.debug({ err: messageOf(err), to: rinfo.address }, "dns udp send failed");
        });
      });
    });
  }

  /**
   * One TCP connection: 2-byte length, message; as many as the client likes, answered
   * as they complete. Reading pauses while TCP_PIPELINE queries are in flight. A message
   * that gets no answer (garbage) ends the connection: its framing cannot be trusted.
   */
  private serveTcp(sock: Socket): void {
    if (this.closing.signal.aborted) {
      sock.destroy();
      return;
    }
    const client = this.clients.clientOf({
      address: sock.remoteAddress ?? "",
      port: sock.remotePort ?? 0,
      localAddress: sock.localAddress ?? "",
      localPort: sock.localPort ?? 0,
      transport: "tcp",
    });
    if (client === null) {
      sock.destroy();
      return;
    }
    if (!this.clients.startTcp(client)) {
      sock.destroy();
      return;
    }
    sock.once("close", () => this.clients.tcpDone(client));
    this.connections.add(sock);
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    let ended = false;
    sock.setNoDelay(true);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on("error", (err) => this.log.debug({ err: messageOf(err) }, "dns tcp connection error"));
    sock.on("close", () => this.connections.delete(sock));

    const pump = (): void => {
      while (pending < TCP_PIPELINE && buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + len));
        buffered = buffered.subarray(2 + len);
        if (
          this.inflight >= MAX_INFLIGHT ||
          !this.clients.startQuery(client, `${sock.remoteAddress}:${sock.remotePort}`)
        ) {
          sock.destroy();
          return;
        }
        pending++;
        void this.serve(msg, "tcp", client).then((reply) => {
          pending--;
          if (sock.destroyed) return;
          if (!reply) {
            sock.destroy();
            return;
          }
          const frame = Buffer.alloc(2 + reply.length);
          frame.writeUInt16BE(reply.length, 0);
          reply.copy(frame, 2);
          sock.write(frame);
          pump();
          if (ended && pending === 0) sock.end();
        });
      }
      if (pending >= TCP_PIPELINE) sock.pause();
      else if (sock.isPaused()) sock.resume();
    };

    sock.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (buffered.length > TCP_BUFFER_MAX) {
        sock.destroy();
        return;
      }
      pump();
    });
    // The client is done sending: finish what it asked, then close our side too.
    sock.on("end", () => {
      ended = true;
      if (pending === 0) sock.end();
    });
  }
}

function bindUdp(udp: UdpSocket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    udp.once("error", reject);
    udp.bind({ address: host, port, exclusive: true }, () => {
      udp.off("error", reject);
      resolve();
    });
  });
}

function listenTcp(tcp: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen({ host, port, exclusive: true }, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function listenError(host: string, port: number, err: unknown): SockswitchError {
  const code = codeOf(err);
  const hint =
    code === "EADDRINUSE"
      ? "another DNS server holds that port; pick another address or port"
      : code === "EACCES"
        ? "ports below 1024 need root or CAP_NET_BIND_SERVICE"
        : code === "EADDRNOTAVAIL"
          ? "that address is not on this host"
          : messageOf(err);
  return new SockswitchError("SOCKSWITCH_ERR_SOCKET", `cannot serve DNS on ${host}:${port}: ${hint}.`, 500);
}
