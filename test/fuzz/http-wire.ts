// Bad-input fuzzing of the REST API, the wire: plays a case (http-cases.ts) on the daemon
// socket with every wait bounded, parses the answers by hand (they may be anything), and
// judges them against docs/api.md: complete HTTP/1.1 answers, JSON bodies, every error in
// the documented {"error":{"code","message"}} shape, no 5xx, no stack trace, no hang.
// RFC 9112 (HTTP/1.1 message syntax).

import { connect, type Socket } from "node:net";
import type { HttpCase } from "./http-cases.js";

const WRITE_PIECE = 64 * 1024;

/** Resolves on 'drain' or 'close', whichever comes first, and leaves no listener behind. */
function drained(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sock.off("drain", done).off("close", done);
      resolve();
    };
    sock.on("drain", done).on("close", done);
  });
}

export interface HttpResult {
  readonly raw: Buffer;
  /** The daemon closed (or reset) the connection. */
  readonly closed: boolean;
  /** The bound passed with no answer and no close. */
  readonly timedOut: boolean;
  /** The connection ended before every byte of the case was written. */
  readonly unsent: boolean;
  readonly error: string | null;
  readonly ms: number;
}

/** How long a "respond-or-wait" case waits, once sent, for the answers it may get. */
const WAIT_MS = 1_000;

/**
 * Plays a case on the daemon socket; every wait is bounded by timeoutMs (held cases:
 * holdMs; cases that may leave the daemon waiting: WAIT_MS after the last byte).
 */
export function sendHttp(path: string, c: HttpCase, timeoutMs: number, holdMs = 300): Promise<HttpResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    let finished = false;
    let sentAll = false;
    const sock = connect({ path, allowHalfOpen: true });
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ raw, closed, timedOut, unsent: !sentAll, error, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false, true), c.expect === "hold" ? holdMs : timeoutMs);
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      // Answers are complete before the daemon closes; nothing waits for keep-alive here.
      if (c.expect !== "hold" && c.methods.length > 0) {
        const parsed = parseResponses(Buffer.concat(chunks), c.methods);
        if (parsed.complete >= c.methods.length && parsed.trailing === 0) finish(false, false);
      }
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    // The daemon's FIN: with allowHalfOpen there is no 'close' until this side ends too.
    sock.on("end", () => finish(true, false));
    sock.on("close", () => finish(true, false));
    // Stop sending once the daemon has said it closes (a body over the limit, a bad request):
    // a write after its close fails with EPIPE, and Node then drops what was not read yet.
    const refused = (): boolean =>
      /\r\nconnection: *close\r\n/i.test(Buffer.concat(chunks).toString("latin1"));
    sock.on("connect", async () => {
      for (const [i, chunk] of c.chunks.entries()) {
        if (i > 0 && c.pauseMs > 0) await new Promise((r) => setTimeout(r, c.pauseMs));
        for (let off = 0; off < chunk.length; off += WRITE_PIECE) {
          if (finished || !sock.writable || refused()) return;
          if (!sock.write(chunk.subarray(off, off + WRITE_PIECE))) await drained(sock);
        }
      }
      sentAll = true;
      if (c.shutdown && sock.writable) sock.end();
      if (c.expect === "respond-or-wait") setTimeout(() => finish(false, true), WAIT_MS).unref();
    });
  });
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface Parsed {
  readonly responses: HttpResponse[];
  /** Final (non-1xx) responses complete. */
  readonly complete: number;
  /** Bytes after the last complete response (a partial one). */
  readonly trailing: number;
  /** Set when the bytes are not HTTP/1.1 responses. */
  readonly malformed: string | null;
}

/** Parses the answers in raw; methods[i] is the method of the i-th request (for HEAD). */
export function parseResponses(raw: Buffer, methods: readonly string[]): Parsed {
  const responses: HttpResponse[] = [];
  let off = 0;
  let complete = 0;
  while (off < raw.length) {
    const end = raw.indexOf("\r\n\r\n", off);
    if (end === -1) {
      if (!"HTTP/1.1 ".startsWith(raw.subarray(off, off + 9).toString("latin1")))
        return { responses, complete, trailing: raw.length - off, malformed: "not an HTTP/1.1 status line" };
      break;
    }
    const lines = raw.subarray(off, end).toString("latin1").split("\r\n");
    const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0] ?? "");
    if (!m)
      return {
        responses,
        complete,
        trailing: raw.length - off,
        malformed: `status line ${JSON.stringify(lines[0])}`,
      };
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i <= 0)
        return {
          responses,
          complete,
          trailing: raw.length - off,
          malformed: `header line ${JSON.stringify(l)}`,
        };
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let bodyStart = end + 4;
    if (status < 200) {
      off = bodyStart;
      continue;
    }
    const method = methods[complete] ?? "GET";
    // A HEAD answer has no body, but a request refused before its method was read (400)
    // gets one: tell them apart by what follows.
    const headNoBody =
      method === "HEAD" &&
      (raw.length === bodyStart || raw.subarray(bodyStart, bodyStart + 5).toString("latin1") === "HTTP/");
    let body: Buffer;
    if (headNoBody || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (!Number.isInteger(n) || n < 0)
        return {
          responses,
          complete,
          trailing: raw.length - off,
          malformed: `content-length ${headers["content-length"]}`,
        };
      if (raw.length < bodyStart + n) break;
      body = raw.subarray(bodyStart, bodyStart + n);
      bodyStart += n;
    } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      let done = false;
      for (;;) {
        const le = raw.indexOf("\r\n", p);
        if (le === -1) break;
        const size = Number.parseInt(raw.subarray(p, le).toString("latin1"), 16);
        if (Number.isNaN(size))
          return { responses, complete, trailing: raw.length - off, malformed: "chunk size" };
        if (size === 0) {
          const te = raw.indexOf("\r\n\r\n", le - 2);
          if (te === -1) break;
          p = te + 4;
          done = true;
          break;
        }
        if (raw.length < le + 2 + size + 2) break;
        parts.push(raw.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!done) break;
      body = Buffer.concat(parts);
      bodyStart = p;
    } else {
      // Delimited by the close.
      body = raw.subarray(bodyStart);
      bodyStart = raw.length;
    }
    responses.push({ status, headers, body });
    complete++;
    off = bodyStart;
  }
  return { responses, complete, trailing: raw.length - off, malformed: null };
}

const STACK = /\n\s+at |node:internal|\(\/[^)]*\.[jt]s:\d+|TypeError|ReferenceError/;

export interface HttpVerdict {
  /** What is wrong (empty: nothing). */
  readonly problems: string[];
  readonly statuses: number[];
}

/** The documented error shape, with a code of docs/errors.md and a sentence. */
function isClearError(body: unknown): boolean {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return (
    typeof e === "object" &&
    e !== null &&
    typeof e.code === "string" &&
    e.code.startsWith("SOCKSWITCH_ERR_") &&
    typeof e.message === "string" &&
    e.message.length >= 10
  );
}

/** Judges one answer against docs/api.md: JSON everywhere, clear JSON errors, no 5xx, no stack. */
export function checkHttp(c: HttpCase, r: HttpResult): HttpVerdict {
  const problems: string[] = [];
  const p = parseResponses(r.raw, c.methods);
  if (p.malformed) problems.push(`malformed answer: ${p.malformed}`);
  const due = c.expect === "respond-or-wait" ? (c.waitsAt ?? 0) : c.methods.length;
  if (r.timedOut && c.expect !== "hold" && p.complete < due)
    problems.push(`${p.complete}/${due} answers and no close within the bound (${r.ms} ms)`);
  // Refusing a request (a body over the limit, a bad request line) before it has all
  // arrived is right; the client's next write then fails (EPIPE), and Node drops the answer
  // it had not read yet.
  const cutShort = r.error !== null && ["EPIPE", "ECONNRESET"].includes(r.error) && r.unsent;
  const answerDue = c.expect === "respond" || c.expect === "respond-or-wait";
  if (answerDue && p.complete === 0 && !r.timedOut && !cutShort) problems.push("closed without an answer");
  for (const [i, res] of p.responses.entries()) {
    const text = res.body.toString("utf8");
    if (res.status >= 500) problems.push(`status ${res.status}: ${text.slice(0, 200)}`);
    if (STACK.test(text)) problems.push(`a stack trace or internal error in the body: ${text.slice(0, 200)}`);
    if (res.body.length === 0 && c.methods[i] === "HEAD") continue;
    if (res.body.length === 0) {
      if (res.status >= 400) problems.push(`status ${res.status} without a body`);
      continue;
    }
    const type = res.headers["content-type"] ?? "";
    if (!type.includes("application/json")) problems.push(`status ${res.status} with content-type "${type}"`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      problems.push(`status ${res.status} with a body that is not JSON: ${text.slice(0, 120)}`);
      continue;
    }
    if (res.status >= 400 && !isClearError(body))
      problems.push(`status ${res.status} not in the documented error shape: ${text.slice(0, 160)}`);
  }
  if (problems.length > 0)
    problems.push(
      `statuses [${p.responses.map((x) => x.status).join(",")}], ${r.closed ? "closed" : "open"}` +
        `${r.error ? ` (${r.error})` : ""}, answer ${JSON.stringify(r.raw.subarray(0, 160).toString("latin1"))}`,
    );
  return { problems, statuses: p.responses.map((x) => x.status) };
}

/** A short printable form of a case's first bytes, for failure messages. */
export function describeHttp(c: HttpCase): string {
  const first = Buffer.concat(c.chunks).subarray(0, 160).toString("latin1");
  const size = c.chunks.reduce((s, b) => s + b.length, 0);
  return `#${c.index} ${c.kind} (${size} bytes${c.shutdown ? ", half-closed" : ""}): ${JSON.stringify(first)}`;
}
