// Forwarding a query upstream, for every name that is not ours. The client's query goes
// out as it came, under a fresh random id, from a fresh socket (a random source port): an
// off-path spoofer must guess both. A reply counts only if it carries that id and our
// question; a UDP datagram that does not is ignored and the wait goes on. The reply's
// bytes are relayed unchanged but for the id, which becomes the client's again.
//
// Upstreams are tried in order, each for a share of a total budget (timeoutMs), so a dead
// upstream costs at most its share and the whole forward is bounded: the caller answers
// SERVFAIL when this gives up. A UDP reply with TC set is asked again over TCP of the same
// upstream; a query that reached us over TCP goes out over TCP. An upstream that answers
// SERVFAIL or REFUSED is passed over for the next one; the last such answer is relayed
// if no upstream does better. udp(7), RFC 5452 (spoofing), RFC 7766 (TCP).

import { randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { isIPv6, Socket } from "node:net";
import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import { isTruncated, type Question, RCODE, rcodeOf, replyMatches, TCP_MAX, withId } from "./wire.js";

export interface Upstream {
  readonly host: string;
  readonly port: number;
}

export interface ForwardRequest {
  /** The client's query bytes (its id is replaced on the way out). */
  readonly query: Buffer;
  readonly question: Question;
  readonly transport: "udp" | "tcp";
  /** The largest reply the client can take over its transport. */
  readonly limit: number;
}

export interface ForwardOptions {
  readonly upstreams: readonly Upstream[];
  /** Total time for one forwarded query, all upstreams and retries included. */
  readonly timeoutMs: number;
  readonly log: Pick<Logger, "debug">;
  /** Aborted when the server closes: pending exchanges end at once. */
  readonly signal: AbortSignal;
}

/** A try is never given less than this, however many upstreams share the budget. */
const MIN_TRY_MS = 200;

/** The upstream's reply with the client's id, or undefined: every upstream failed. */
export async function forward(req: ForwardRequest, opts: ForwardOptions): Promise<Buffer | undefined> {
  const clientId = req.query.readUInt16BE(0);
  const deadline = Date.now() + opts.timeoutMs;
  const share = Math.max(MIN_TRY_MS, Math.floor(opts.timeoutMs / Math.max(1, opts.upstreams.length)));
  let fallback: Buffer | undefined;
  for (const up of opts.upstreams) {
    const left = deadline - Date.now();
    if (left <= 0 || opts.signal.aborted) break;
    const tryEnd = Date.now() + Math.min(share, left);
    try {
      const reply = await ask(up, req, tryEnd, deadline, opts.signal);
      const rcode = rcodeOf(reply);
      if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
        opts.log.debug({ upstream: `${up.host}:${up.port}`, rcode }, "dns upstream declined");
        fallback = reply;
        continue;
      }
      return withId(reply, clientId);
    } catch (err) {
      opts.log.debug({ upstream: `${up.host}:${up.port}`, err: messageOf(err) }, "dns upstream failed");
    }
  }
  return fallback && withId(fallback, clientId);
}

/** One upstream: UDP, then TCP if the UDP reply was truncated; TCP only for TCP clients. */
async function ask(up: Upstream, req: ForwardRequest, tryEnd: number, deadline: number, signal: AbortSignal) {
  if (req.transport === "tcp") {
    return exchangeTcp(up, req.query, req.question, tryEnd - Date.now(), signal);
  }
  const short = await exchangeUdp(up, req.query, req.question, tryEnd - Date.now(), signal);
  if (!isTruncated(short)) return short;
  // The retry may use what is left of the whole budget: the upstream has shown it is alive.
  try {
    const full = await exchangeTcp(up, req.query, req.question, deadline - Date.now(), signal);
    // Too big for the client's UDP all the same: the truncated reply sends it to TCP.
    return full.length <= req.limit ? full : short;
  } catch {
    return short;
  }
}

function randomId(): number {
  return randomInt(0, 0x10000);
}

/** One query and its reply over a connected UDP socket of its own. */
export function exchangeUdp(
  up: Upstream,
  query: Buffer,
  question: Question,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Buffer> {
  const id = randomId();
  const out = withId(query, id);
  return new Promise<Buffer>((resolve, reject) => {
    const sock = createSocket(isIPv6(up.host) ? "udp6" : "udp4");
    let done = false;
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      sock.close();
      if (err) reject(err);
      else resolve(reply as Buffer);
    };
    const onAbort = () => finish(new Error("closed"));
    const timer = setTimeout(() => finish(new Error(`no reply in ${timeoutMs} ms`)), Math.max(0, timeoutMs));
    signal.addEventListener("abort", onAbort);
    // A connected socket takes datagrams from the upstream only, and hears its ICMP
    // port-unreachable as ECONNREFUSED: a closed port fails at once, not at the timeout.
    sock.on("error", (err) => finish(err));
    sock.on("message", (msg) => {
      if (replyMatches(msg, id, question)) finish(undefined, msg);
    });
    // A connect that fails (ENETUNREACH: no route to the upstream) comes back here as err;
    // sending on the unconnected socket then would throw out of the event loop.
    sock.connect(up.port, up.host, (err?: Error) => {
      if (err) return finish(err);
      sock.send(out, (sendErr) => {
        if (sendErr) finish(sendErr);
      });
    });
  });
}

/** One query and its reply over a TCP connection of its own (RFC 7766 framing). */
export function exchangeTcp(
  up: Upstream,
  query: Buffer,
  question: Question,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Buffer> {
  const id = randomId();
  const out = withId(query, id);
  return new Promise<Buffer>((resolve, reject) => {
    const sock = new Socket();
    let buffered: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply as Buffer);
    };
    const onAbort = () => finish(new Error("closed"));
    const timer = setTimeout(() => finish(new Error(`no reply in ${timeoutMs} ms`)), Math.max(0, timeoutMs));
    signal.addEventListener("abort", onAbort);
    sock.on("error", (err) => finish(err));
    sock.on("close", () => finish(new Error("connection closed before a reply")));
    sock.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // One reply is all we wait for: at most 2 + 65535 bytes are kept.
      if (buffered.length > 2 + TCP_MAX) buffered = buffered.subarray(0, 2 + TCP_MAX);
      if (buffered.length < 2) return;
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) return;
      const reply = buffered.subarray(2, 2 + len);
      if (replyMatches(reply, id, question)) finish(undefined, Buffer.from(reply));
      else finish(new Error("reply does not match the query"));
    });
    sock.connect(up.port, up.host, () => {
      const frame = Buffer.alloc(2 + out.length);
      frame.writeUInt16BE(out.length, 0);
      out.copy(frame, 2);
      sock.write(frame);
    });
  });
}
