// Helpers for the DNS tests (dns-server, dns-forward): a client that speaks to a server on
// 127.0.0.1 over UDP and TCP, and a fake upstream DNS server on 127.0.0.1. Loopback only:
// nothing here sends a packet anywhere else.

import { createSocket } from "node:dgram";
import { createServer, type Server, Socket } from "node:net";
import dnsPacket, { type DecodedPacket, type Packet, type RecordType } from "dns-packet";

export const HOST = "127.0.0.1";

export interface QueryOptions {
  readonly id?: number;
  /** EDNS UDP payload size; no OPT record when absent. */
  readonly edns?: number;
  readonly ednsVersion?: number;
  readonly rd?: boolean;
}

export function query(name: string, type: RecordType, o: QueryOptions = {}): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: o.id ?? 0x1234,
    flags: o.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
    additionals:
      o.edns === undefined
        ? []
        : [
            {
              type: "OPT",
              name: ".",
              udpPayloadSize: o.edns,
              extendedRcode: 0,
              ednsVersion: o.ednsVersion ?? 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  });
}

/** The rcode in a response's header (dns-packet's decode leaves it out of its type). */
export function rcodeOf(msg: Buffer): number {
  return msg.readUInt16BE(2) & 0xf;
}

export function decode(msg: Buffer): DecodedPacket & { rcode?: string } {
  return dnsPacket.decode(msg);
}

/** One datagram to the server; undefined when nothing came back within waitMs. */
export function udpAsk(port: number, msg: Buffer, waitMs = 1500): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = createSocket("udp4");
    const timer = setTimeout(() => {
      sock.close();
      resolve(undefined);
    }, waitMs);
    sock.on("error", (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.on("message", (reply) => {
      clearTimeout(timer);
      sock.close();
      resolve(reply);
    });
    sock.send(msg, port, HOST);
  });
}

export function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

export interface TcpResult {
  readonly replies: Buffer[];
  /** Whether the server closed the connection. */
  readonly closed: boolean;
}

/**
 * Writes `bytes` on one connection and collects replies until `expect` came, the server
 * closed, or waitMs passed.
 */
export function tcpAsk(port: number, bytes: Buffer, expect: number, waitMs = 1500): Promise<TcpResult> {
  return new Promise((resolve, reject) => {
    const sock = new Socket();
    const replies: Buffer[] = [];
    let buffered: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ replies, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    sock.on("error", (err) => {
      if ((err as NodeJS.ErrnoException).code === "ECONNRESET") finish(true);
      else reject(err);
    });
    sock.on("close", () => finish(true));
    sock.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const len = buffered.readUInt16BE(0);
        replies.push(Buffer.from(buffered.subarray(2, 2 + len)));
        buffered = buffered.subarray(2 + len);
      }
      if (replies.length >= expect) finish(false);
    });
    sock.connect(port, HOST, () => sock.write(bytes));
  });
}

export interface Seen {
  readonly transport: "udp" | "tcp";
  readonly id: number;
  readonly packet: DecodedPacket;
}

/** What the fake upstream sends back: a packet, raw bytes, or nothing at all. */
export type FakeReply = Packet | Buffer | undefined;

export interface FakeUpstream {
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/**
 * A tiny DNS server on 127.0.0.1 (UDP and TCP on one port) that answers with `reply`.
 * A Packet reply gets the query's id and question unless it sets its own.
 */
export async function fakeUpstream(
  reply: (q: DecodedPacket, transport: "udp" | "tcp") => FakeReply,
): Promise<FakeUpstream> {
  const seen: Seen[] = [];
  const render = (q: DecodedPacket, transport: "udp" | "tcp"): Buffer | undefined => {
    seen.push({ transport, id: q.id ?? -1, packet: q });
    const r = reply(q, transport);
    if (r === undefined || Buffer.isBuffer(r)) return r;
    return dnsPacket.encode({ id: q.id, questions: q.questions, type: "response", ...r });
  };
  const udp = createSocket("udp4");
  await new Promise<void>((resolve) => udp.bind(0, HOST, () => resolve()));
  const port = udp.address().port;
  udp.on("message", (msg, rinfo) => {
    const out = render(dnsPacket.decode(msg), "udp");
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  const conns = new Set<Socket>();
  const tcp = createServer((sock) => {
    conns.add(sock);
    sock.on("close", () => conns.delete(sock));
    let buffered: Buffer = Buffer.alloc(0);
    sock.on("error", () => {});
    sock.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const len = buffered.readUInt16BE(0);
        const out = render(dnsPacket.decode(buffered.subarray(2, 2 + len)), "tcp");
        buffered = buffered.subarray(2 + len);
        if (out) sock.write(frame(out));
      }
    });
  });
  await new Promise<void>((resolve) => tcp.listen(port, HOST, () => resolve()));
  return {
    port,
    seen,
    close: async () => {
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        closeServer(tcp, conns),
      ]);
    },
  };
}

function closeServer(s: Server, conns: Set<Socket>): Promise<void> {
  for (const c of conns) c.destroy();
  return new Promise((resolve) => s.close(() => resolve()));
}

/**
 * An upstream that is down: a UDP port on 127.0.0.1 that is bound and never answers, and
 * a TCP listener on the same port that accepts and never answers.
 */
export async function silentUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sock = createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(0, HOST, () => resolve()));
  sock.on("message", () => {});
  const port = sock.address().port;
  const conns = new Set<Socket>();
  const tcp = createServer((c) => {
    conns.add(c);
    c.on("error", () => {});
    c.on("close", () => conns.delete(c));
  });
  await new Promise<void>((resolve) => tcp.listen(port, HOST, () => resolve()));
  return {
    port,
    close: async () => {
      await Promise.all([
        new Promise<void>((resolve) => sock.close(() => resolve())),
        closeServer(tcp, conns),
      ]);
    },
  };
}
