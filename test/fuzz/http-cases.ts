// Bad-input fuzzing of the REST API, the cases: raw HTTP/1.x requests for the daemon's UNIX
// socket (methods, paths known, unknown, long and badly encoded, headers, bodies that are
// malformed JSON, too large, of the wrong type or with unknown fields, truncated requests,
// pipelined requests, slow partial sends) and what a correct daemon does with each.
// http-wire.ts plays them and judges the answers. RFC 9112 (HTTP/1.1 message syntax);
// docs/api.md.

import { caseRng, type Rng } from "./prng.js";

/** What a correct daemon does with a case. */
export type HttpExpect =
  /** At least one complete answer. */
  | "respond"
  /** An answer, or a close without one (the request was cut short and half-closed). */
  | "respond-or-close"
  /** Nothing within the bound: an incomplete request on an open connection. */
  | "hold"
  /**
   * Answers to the requests before `waitsAt`, then maybe nothing more: request `waitsAt`
   * declares more body than it sends (a length or chunk size too large, or framing the
   * parser may read either way), so the daemon may rightly wait for the rest.
   */
  | "respond-or-wait";

export interface HttpCase {
  readonly index: number;
  readonly kind: string;
  /** Sent in this order, pauseMs apart. */
  readonly chunks: Buffer[];
  readonly pauseMs: number;
  /** Half-close (shutdown SHUT_WR) after the last chunk. */
  readonly shutdown: boolean;
  /** Methods of the complete requests, in order (HEAD answers have no body). */
  readonly methods: string[];
  readonly expect: HttpExpect;
  /** For "respond-or-wait": the index of the first request that may leave the daemon waiting. */
  readonly waitsAt?: number;
}

const ROUTES = ["/v1/health", "/v1/apps", "/v1/services", "/v1/sockets"];
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const ODD_METHODS = ["TRACE", "PROPFIND", "get", "Get", "M-SEARCH", "PURGE", "LINK", "QUERY", "SEARCH"];
const HEADER_NAMES = [
  "Accept",
  "Accept-Encoding",
  "Authorization",
  "Cookie",
  "Expect",
  "Origin",
  "Range",
  "Upgrade",
  "User-Agent",
  "X-Forwarded-For",
  "X-Request-Id",
];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/octet-stream",
  "application/json, text/plain",
  "",
  "json",
  "application/",
];

/** The app spec fields of docs/how-it-works.md, with values of every type. */
const FIELDS = ["name", "ips", "labels", "expose", "lb", "command", "user", "id", "pid", "services"];

function anyJson(rng: Rng, depth = 0): unknown {
  const kind = rng.int(0, depth > 3 ? 4 : 7);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 65536]);
    case 3:
      return rng.token();
    case 4:
      return rng.pick(["10.77.0.10", "web", "round-robin", "zone=default", "8080:18080", ""]);
    case 5:
      return Array.from({ length: rng.int(0, 4) }, () => anyJson(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(0, 4); i > 0; i--)
        o[rng.chance(0.7) ? rng.pick(FIELDS) : rng.token(12)] = anyJson(rng, depth + 1);
      return o;
    }
  }
}

function jsonBody(rng: Rng): Buffer {
  const text = rng.weighted<() => string>([
    [4, () => JSON.stringify(anyJson(rng))],
    [2, () => JSON.stringify({ name: "web", ips: ["10.77.0.10"], [rng.token(10)]: anyJson(rng) })],
    [1, () => JSON.stringify(rng.pick([42, "str", null, true, [], [1, 2]]))],
    [1, () => '{"__proto__":{"polluted":1}}'],
    [1, () => '{"constructor":{"prototype":{"polluted":1}}}'],
    [1, () => `${"[".repeat(rng.int(100, 20_000))}${"]".repeat(rng.int(0, 100))}`],
    [1, () => `{"a":${"1".repeat(rng.int(1, 5000))}e99999}`],
  ])();
  return Buffer.from(text);
}

function malformedJson(rng: Rng): Buffer {
  const good = JSON.stringify({ name: "web", labels: { zone: "default" }, ips: ["10.77.0.10"] });
  return rng.weighted<() => Buffer>([
    [3, () => Buffer.from(good.slice(0, rng.int(0, good.length - 1)))],
    [2, () => Buffer.from(good.replace(/"/g, () => (rng.chance(0.2) ? "'" : '"')).replace("}", ",}"))],
    [1, () => Buffer.from("{NaN: Infinity, // comment\n}")],
    [1, () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good)])],
    [1, () => Buffer.concat([Buffer.from('{"name":"'), rng.bytes(rng.int(1, 40)), Buffer.from('"}')])],
    [2, () => rng.bytes(rng.int(1, 300))],
    [1, () => Buffer.from(`{"a":"${"\\u".repeat(rng.int(1, 30))}"}`)],
  ])();
}

function bodyOf(rng: Rng): { body: Buffer; type: string | null } {
  return rng.weighted<() => { body: Buffer; type: string | null }>([
    [3, () => ({ body: jsonBody(rng), type: rng.pick(CONTENT_TYPES.slice(0, 3)) })],
    [3, () => ({ body: malformedJson(rng), type: "application/json" })],
    [1, () => ({ body: malformedJson(rng), type: rng.pick(CONTENT_TYPES) })],
    [1, () => ({ body: Buffer.from("a=1&b=%zz&&=&c"), type: "application/x-www-form-urlencoded" })],
    [
      1,
      () => ({
        body: Buffer.from("--xyz\r\nContent-Disposition: form-data\r\n\r\nx"),
        type: CONTENT_TYPES[5] as string,
      }),
    ],
    [1, () => ({ body: jsonBody(rng), type: null })],
  ])();
}

function pathOf(rng: Rng): string {
  return rng.weighted<() => string>([
    [5, () => rng.pick(ROUTES)],
    [2, () => `/v1/apps/${encodeURIComponent(rng.token(30)) || "x"}`],
    [1, () => `/v1/apps/${"a".repeat(rng.int(90, 400))}`],
    [
      1,
      () =>
        `/v1/apps/${rng.pick(["%zz", "%", "%00", "%2F..%2F..%2Fetc%2Fpasswd", "%E2%82", "%u1234", "..", "%25"])}`,
    ],
    [1, () => `${rng.pick(ROUTES)}?${rng.token(40).replace(/[\s#]/g, "")}`],
    [1, () => `${rng.pick(ROUTES)}${rng.pick(["/", "//", "/.", "#frag", ";a=b", "%20", "/../health"])}`],
    [
      1,
      () => rng.pick(["/", "*", "//v1//health", "/V1/HEALTH", "/v2/apps", "/v1", "/v1/", "/v1/apps/a/b/c"]),
    ],
    [1, () => rng.pick(["http://localhost/v1/health", "http://[::1]:99999/v1/apps", "v1/health", ""])],
    [
      1,
      () => `/${Array.from({ length: rng.int(1, 12) }, () => encodeURIComponent(rng.token(12))).join("/")}`,
    ],
    [1, () => `/${"x".repeat(rng.int(1_000, 20_000))}`],
    [1, () => `/v1/${rng.token(20).replace(/[\r\n]/g, "")}`],
  ])();
}

interface Req {
  bytes: Buffer;
  method: string;
  /** Its framing may declare more body than it sends. */
  mayWait: boolean;
}

/** One request, well-formed or not; `close` adds Connection: close. */
function request(rng: Rng, close: boolean): Req {
  const method = rng.weighted<() => string>([
    [10, () => rng.pick(METHODS)],
    [2, () => rng.pick(ODD_METHODS)],
    [1, () => rng.string(rng.int(1, 12), "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")],
    [1, () => rng.token(8)],
  ])();
  const version = rng.weighted<string>([
    [12, "HTTP/1.1"],
    [2, "HTTP/1.0"],
    [1, "HTTP/2.0"],
    [1, "HTTP/9.9"],
    [1, "HTTP/1.1x"],
    [1, ""],
  ]);
  const head: string[] = [`${method} ${pathOf(rng)}${version ? ` ${version}` : ""}`];
  if (rng.chance(0.9)) head.push("Host: localhost");
  for (
    let i = rng.weighted<number>([
      [6, 0],
      [3, rng.int(1, 6)],
      [1, rng.int(50, 3000)],
    ]);
    i > 0;
    i--
  ) {
    const name = rng.chance(0.7) ? rng.pick(HEADER_NAMES) : rng.token(16).replace(/[\r\n:]/g, "") || "X";
    const value = rng.weighted<() => string>([
      [6, () => rng.token(40).replace(/[\r\n]/g, "")],
      [1, () => rng.token(40)],
      [1, () => "v".repeat(rng.int(1_000, 20_000))],
    ])();
    head.push(rng.chance(0.97) ? `${name}: ${value}` : `${name}${value}`);
  }
  let body: Buffer = Buffer.alloc(0);
  let mayWait = false;
  const withBody = method !== "GET" && method !== "HEAD" ? rng.chance(0.7) : rng.chance(0.15);
  if (withBody) {
    const b = rng.weighted<() => { body: Buffer; type: string | null }>([
      [8, () => bodyOf(rng)],
      // Over bodyLimit (64 KiB), up to a few MB.
      [
        1,
        () => ({
          body: Buffer.alloc(rng.int(64 * 1024 + 1, 3 * 1024 * 1024), "x"),
          type: "application/json",
        }),
      ],
    ])();
    body = b.body;
    if (b.type !== null) head.push(`Content-Type: ${b.type}`);
    const framing = rng.weighted<string>([
      [10, "length"],
      [2, "chunked"],
      [1, "bad-length"],
      [1, "two-lengths"],
      [1, "both"],
      [1, "bad-chunks"],
      [1, "huge-length"],
    ]);
    mayWait = !["length", "chunked"].includes(framing);
    switch (framing) {
      case "length":
        head.push(`Content-Length: ${body.length}`);
        break;
      case "chunked":
      case "bad-chunks": {
        head.push("Transfer-Encoding: chunked");
        const size =
          framing === "chunked" ? body.length.toString(16) : rng.pick(["zz", "-1", "ffffffffffffffff", ""]);
        body = Buffer.concat([Buffer.from(`${size}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]);
        break;
      }
      case "bad-length":
        head.push(`Content-Length: ${rng.pick(["-1", "abc", "1e3", "0x10", " 5", "+5", "5,5"])}`);
        break;
      case "two-lengths":
        head.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
        break;
      case "both":
        head.push(`Content-Length: ${body.length}`, "Transfer-Encoding: chunked");
        break;
      case "huge-length":
        head.push(`Content-Length: ${rng.pick(["99999999999", "9007199254740993", "100000000"])}`);
        break;
    }
  }
  if (rng.chance(0.05)) head.push("Expect: 100-continue");
  if (close) head.push("Connection: close");
  const bytes = Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1"), body]);
  return { bytes, method, mayWait };
}

/** The expectation for requests sent whole, in order. */
function whole(reqs: readonly Req[]): { expect: HttpExpect; waitsAt?: number } {
  const at = reqs.findIndex((r) => r.mayWait);
  return at === -1 ? { expect: "respond" } : { expect: "respond-or-wait", waitsAt: at };
}

function splitChunks(rng: Rng, data: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < data.length && out.length < max - 1) {
    const n = rng.int(1, 12);
    out.push(data.subarray(i, i + n));
    i += n;
  }
  if (i < data.length) out.push(data.subarray(i));
  return out;
}

function draw(rng: Rng, index: number): HttpCase {
  const kind = rng.weighted<string>([
    [10, "single"],
    [2, "keep-alive"],
    [2, "pipelined"],
    [2, "truncated"],
    [1, "held"],
    [1, "slow"],
    [1, "garbage"],
    [1, "special"],
  ]);
  const base = { index, kind, pauseMs: 0, shutdown: false };
  switch (kind) {
    case "single": {
      const r = request(rng, true);
      return { ...base, chunks: [r.bytes], methods: [r.method], ...whole([r]) };
    }
    case "keep-alive": {
      const r = request(rng, false);
      // No Connection: close; the client stops reading once the answer is complete. (Not
      // half-closed: Node's HTTP server drops a request whose client half-closes, by design.)
      return { ...base, chunks: [r.bytes], methods: [r.method], ...whole([r]) };
    }
    case "pipelined": {
      const n = rng.int(2, 5);
      const reqs = Array.from({ length: n }, (_, i) => request(rng, i === n - 1));
      return {
        ...base,
        chunks: [Buffer.concat(reqs.map((r) => r.bytes))],
        methods: reqs.map((r) => r.method),
        ...whole(reqs),
      };
    }
    case "truncated": {
      const r = request(rng, true);
      const cut = r.bytes.subarray(0, rng.int(0, r.bytes.length - 1));
      return {
        ...base,
        chunks: [cut],
        methods: [r.method],
        shutdown: true,
        expect: "respond-or-close",
      };
    }
    case "held": {
      // A slowloris end state: part of a request, then nothing, on an open connection.
      const r = request(rng, true);
      const cut = r.bytes.subarray(0, rng.int(4, Math.max(4, r.bytes.length - 1)));
      return { ...base, chunks: [cut], methods: [r.method], expect: "hold" };
    }
    case "slow": {
      // Slowloris-style: the whole request in small pieces, bounded to about a second.
      const r = request(rng, true);
      const chunks = splitChunks(rng, r.bytes, 40);
      return {
        ...base,
        chunks,
        methods: [r.method],
        pauseMs: rng.int(2, 25),
        ...whole([r]),
      };
    }
    case "garbage": {
      const bytes = rng.bytes(rng.int(4, 4096));
      if (bytes.subarray(0, 4).toString("latin1") === "SSW1") bytes[0] = 0x58;
      return { ...base, chunks: [bytes], methods: [], shutdown: true, expect: "respond-or-close" };
    }
    default: {
      const text = rng.pick([
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET /v1/health\r\n\r\n",
        "GET /v1/health HTTP/1.1\n\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n",
        "\r\n\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\n folded: header\r\nConnection: close\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      ]);
      return {
        ...base,
        kind: "special",
        chunks: [Buffer.from(text, "latin1")],
        methods: [text.split(" ")[0] as string],
        shutdown: true,
        expect: "respond-or-close",
      };
    }
  }
}

/** Case `index` of a run. */
export function httpCase(seed: number, index: number): HttpCase {
  return draw(caseRng(seed, "http/0", index), index);
}
