// The DNS message handling that the server needs around the codec (dns-packet): reading a
// query defensively, and laying out our own responses. A query is judged from its bytes,
// never trusted: counts are checked against the length before anything is decoded, the
// question is walked by hand (its exact bytes are echoed back, so the case a client chose,
// DNS 0x20, and a type the codec does not know survive), and the codec decodes the rest.
// RFC 1035 §4 (message format), RFC 6891 (EDNS0), RFC 2181 §9 (TC), RFC 7766 (TCP).

import dnsPacket, { type Answer, type OptAnswer } from "dns-packet";

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export const QTYPE = { A: 1, NS: 2, SOA: 6, AAAA: 28, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const;
export const QCLASS = { IN: 1, ANY: 255 } as const;

// Header flag bits (the second 16-bit word).
const QR = 0x8000;
const OPCODE_MASK = 0x7800;
export const AA = 0x0400;
export const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;

const HEADER = 12;
/** Plain DNS over UDP (RFC 1035 §4.2.1); the floor of any EDNS size. */
export const UDP_PLAIN = 512;
/** The most a client's EDNS size is honoured up to, and what we advertise. */
export const UDP_MAX = 4096;
/** What one DNS message over TCP can hold (the 2-byte length prefix). */
export const TCP_MAX = 65535;
/** BADVERS (RFC 6891 §6.1.3): extended rcode 16 = upper bits 1, header bits 0. */
const BADVERS_UPPER = 1;

export interface Header {
  readonly id: number;
  readonly flags: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

/** The one question of a query, as received. */
export interface Question {
  /** Labels as sent (case kept); a label that held a '.' makes the name unusable to us. */
  readonly labels: readonly string[];
  /** The name as dns-packet writes it: labels joined with '.', "." for the root. */
  readonly name: string;
  readonly qtype: number;
  readonly qclass: number;
  /** The question's exact bytes (name, type, class), echoed in every response. */
  readonly bytes: Buffer;
}

export interface Edns {
  /** The client's UDP payload size, clamped to [UDP_PLAIN, UDP_MAX]. */
  readonly udpSize: number;
  readonly version: number;
}

export type ParsedQuery =
  /** Not even a header, or a response: no answer at all (never answer a response: loops). */
  | { readonly kind: "drop" }
  /** A header we can answer with this rcode and nothing else. */
  | { readonly kind: "error"; readonly header: Header; readonly rcode: number; readonly edns?: Edns }
  | { readonly kind: "query"; readonly header: Header; readonly question: Question; readonly edns?: Edns };

export function readHeader(buf: Buffer): Header | undefined {
  if (buf.length < HEADER) return undefined;
  return {
    id: buf.readUInt16BE(0),
    flags: buf.readUInt16BE(2),
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
    nscount: buf.readUInt16BE(8),
    arcount: buf.readUInt16BE(10),
  };
}

export function opcodeOf(h: Header): number {
  return (h.flags & OPCODE_MASK) >> 11;
}

/**
 * Walks the question at offset 12. A name there has nothing before it to point at, so a
 * compression pointer is malformed, as is a label past the end or a name over 255 bytes.
 */
export function readQuestion(buf: Buffer): Question | undefined {
  const labels: string[] = [];
  let at = HEADER;
  for (;;) {
    const len = buf[at];
    if (len === undefined) return undefined;
    if (len === 0) break;
    if (len > 63) return undefined; // 0xC0 pointers and the reserved 0x40/0x80 forms
    if (at + 1 + len > buf.length) return undefined;
    labels.push(buf.toString("latin1", at + 1, at + 1 + len));
    at += 1 + len;
    if (at - HEADER > 254) return undefined;
  }
  at += 1;
  if (at + 4 > buf.length) return undefined;
  return {
    labels,
    name: labels.length === 0 ? "." : labels.join("."),
    qtype: buf.readUInt16BE(at),
    qclass: buf.readUInt16BE(at + 2),
    bytes: buf.subarray(HEADER, at + 4),
  };
}

/**
 * Judges a query's bytes. FORMERR for anything malformed whose header we could read:
 * counts that the length cannot hold, a record the codec cannot decode (truncated data,
 * pointers forward or in loops — dns-packet only follows pointers backwards, so a loop
 * cannot spin), trailing bytes, a question count other than 1, a misplaced or second OPT.
 * NOTIMP for an opcode other than QUERY.
 */
export function parseQuery(buf: Buffer): ParsedQuery {
  const header = readHeader(buf);
  if (!header || header.flags & QR) return { kind: "drop" };
  const formerr = { kind: "error", header, rcode: RCODE.FORMERR } as const;
  if (opcodeOf(header) !== 0) return { kind: "error", header, rcode: RCODE.NOTIMP };
  // Cheapest possible sizes: a question is at least 5 bytes, a record at least 11.
  const records = header.ancount + header.nscount + header.arcount;
  if (HEADER + header.qdcount * 5 + records * 11 > buf.length) return formerr;
  if (header.qdcount !== 1) return formerr;
  let decoded: ReturnType<typeof dnsPacket.decode>;
  try {
    decoded = dnsPacket.decode(buf);
  } catch {
    return formerr;
  }
  if (dnsPacket.decode.bytes !== buf.length) return formerr;
  const question = readQuestion(buf);
  if (!question) return formerr;
  const misplaced = [...(decoded.answers ?? []), ...(decoded.authorities ?? [])];
  if (misplaced.some((r) => r.type === "OPT")) return formerr;
  const opts = (decoded.additionals ?? []).filter((r): r is OptAnswer => r.type === "OPT");
  if (opts.length > 1) return formerr;
  const opt = opts[0];
  if (!opt) return { kind: "query", header, question };
  if (opt.name !== ".") return formerr;
  const edns = {
    udpSize: Math.min(UDP_MAX, Math.max(UDP_PLAIN, opt.udpPayloadSize)),
    version: opt.ednsVersion,
  };
  return { kind: "query", header, question, edns };
}

/** The largest response this transport may carry back to this client. */
export function responseLimit(transport: "udp" | "tcp", edns: Edns | undefined): number {
  if (transport === "tcp") return TCP_MAX;
  return edns ? edns.udpSize : UDP_PLAIN;
}

export interface ResponseParts {
  readonly header: Header;
  readonly question?: Question;
  readonly edns?: Edns;
  readonly rcode: number;
  /** AA for our own zone's answers. */
  readonly authoritative?: boolean;
  readonly answers?: Answer[];
  readonly authorities?: Answer[];
  /** Bytes the whole message may take; past that the answers go and TC is set. */
  readonly limit: number;
  /** Set TC with no answers whatever the size (a relayed reply that was too big). */
  readonly truncated?: boolean;
}

/**
 * Lays out a response: id, opcode and RD copied from the query, QR and RA set, the
 * question echoed byte for byte, an OPT record when the query had one (RFC 6891 §7).
 * When it does not fit `limit`, the answer and authority sections are dropped whole and
 * TC is set, so that the client asks again over TCP (RFC 2181 §9).
 */
export function buildResponse(p: ResponseParts): Buffer {
  const full = p.truncated ? undefined : layout(p, p.answers ?? [], p.authorities ?? [], 0);
  if (full && full.length <= p.limit) return full;
  return layout(p, [], [], TC);
}

function layout(p: ResponseParts, answers: Answer[], authorities: Answer[], extra: number): Buffer {
  const badvers = p.edns !== undefined && p.edns.version !== 0;
  const rcode = badvers ? 0 : p.rcode;
  const flags =
    (p.header.flags & (OPCODE_MASK | RD)) | RA | (p.authoritative ? AA : 0) | extra | (rcode & 0xf);
  const additionals: Answer[] = [];
  if (p.edns) {
    additionals.push({
      type: "OPT",
      name: ".",
      udpPayloadSize: UDP_MAX,
      extendedRcode: badvers ? BADVERS_UPPER : 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    });
  }
  const rest = dnsPacket.encode({
    type: "response",
    id: p.header.id,
    flags,
    questions: [],
    answers: badvers ? [] : answers,
    authorities: badvers ? [] : authorities,
    additionals,
  });
  // dns-packet never compresses names, so the echoed question can be spliced in as is.
  const q = p.question?.bytes ?? Buffer.alloc(0);
  const out = Buffer.concat([rest.subarray(0, HEADER), q, rest.subarray(HEADER)]);
  out.writeUInt16BE(p.question ? 1 : 0, 4);
  return out;
}

/** A copy of a message with another id. */
export function withId(msg: Buffer, id: number): Buffer {
  const out = Buffer.from(msg);
  out.writeUInt16BE(id, 0);
  return out;
}

export function isTruncated(msg: Buffer): boolean {
  return msg.length >= HEADER && (msg.readUInt16BE(2) & TC) !== 0;
}

export function rcodeOf(msg: Buffer): number {
  return msg.length >= HEADER ? msg.readUInt16BE(2) & 0xf : -1;
}

/**
 * Whether an upstream's reply answers our query: a response, with our id, one question
 * that matches ours (the name compared without regard to ASCII case, RFC 4343).
 */
export function replyMatches(reply: Buffer, id: number, question: Question): boolean {
  const h = readHeader(reply);
  if (!h || !(h.flags & QR) || h.id !== id || h.qdcount !== 1) return false;
  const q = readQuestion(reply);
  if (!q || q.qtype !== question.qtype || q.qclass !== question.qclass) return false;
  if (q.bytes.length !== question.bytes.length) return false;
  for (let i = 0; i < q.bytes.length; i++) {
    if (asciiLower(q.bytes[i] ?? 0) !== asciiLower(question.bytes[i] ?? 0)) return false;
  }
  return true;
}

function asciiLower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}
