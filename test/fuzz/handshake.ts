// Bad-input fuzzing of the launcher handshake (docs/how-it-works.md#the-launcher-handshake):
// sessions of "SSW1 …" lines, valid and mutated HELLO registrations, overlong lines,
// binary garbage, FD lines without fds, with too many or with fds of the wrong kind, a
// real pidfd of a process that is no launcher's app, lines in the wrong order, early closes
// and slow sends. Node cannot send SCM_RIGHTS, so the sessions are played by
// handshake-client.py (one python3 process per batch), and judged here: every session ends
// in "ERR <sentence>" (or "USAGE <sentence>" for a bad option value) and a close, in a
// well-formed OK…END or GO, or in a close when the session itself stopped early.

import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { caseRng, type Rng } from "./prng.js";

const HELPER = join(dirname(fileURLToPath(import.meta.url)), "handshake-client.py");
const PYTHON = "/usr/bin/python3";

/** pidfd: of the session's child (of the helper itself without one). */
export type FdKind = "null" | "pipe" | "socket" | "eventfd" | "file" | "memfd" | "pidfd";

export interface Step {
  /** Bytes as code points 0-255; "{child}" becomes the pid of the session's child. */
  data?: string;
  fds?: FdKind[];
  pause?: number;
  /** Before sending, wait for the daemon's answer to what was sent so far. */
  await?: boolean;
  shutdown?: boolean;
  close?: boolean;
}

/** What a correct daemon does with a session. */
export type SessionExpect =
  /** ERR <sentence> and a close. */
  | "err"
  /** OK/IP/FILTER/END, GO, or ERR: a registration that may or may not be valid. */
  | "answer"
  /** Nothing, or a close: the session stopped before a complete line. */
  | "quiet";

export interface Session {
  readonly index: number;
  readonly kind: string;
  readonly steps: Step[];
  readonly child: boolean;
  /** Bound on the wait for the reply after the last step, ms. */
  readonly wait: number;
  readonly expect: SessionExpect;
}

export interface SessionResult {
  readonly reply: string;
  readonly eof: boolean;
  readonly reset: boolean;
  readonly timeout: boolean;
  readonly sendError: string | null;
  readonly ms: number;
}

const NAMES = ["web", "db", "a", "x-1", "fuzz", "f".repeat(63)];

/** A registration the daemon accepts (before mutation): run options as written, and a command. */
function validSpec(rng: Rng): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    name: rng.pick(NAMES),
    ip: [],
    labels: "zone=default",
    expose: [],
    publish: [],
    lb: "round-robin",
    user: "nobody",
  };
  if (rng.chance(0.3)) spec.labels = `tier=${rng.pick(["a", "b"])},zone=fuzz`;
  if (rng.chance(0.3)) spec.lb = rng.pick(["random", "round-robin"]);
  for (const k of Object.keys(spec)) if (rng.chance(0.3)) delete spec[k];
  spec.command = ["/bin/true"];
  return spec;
}

function weird(rng: Rng, depth = 0): unknown {
  return rng.weighted<() => unknown>([
    [2, () => null],
    [2, () => rng.pick([0, -1, 1.5, 1e308, 2 ** 53 + 1, true, false])],
    [3, () => rng.token(30)],
    [1, () => "x".repeat(rng.int(1000, 30_000))],
    [
      2,
      () => rng.pick(["10.77.0.10", "fd77::10", "224.0.0.1", "127.0.0.1", "0.0.0.0", "10.77.0.53", "1.2.3"]),
    ],
    [
      2,
      () =>
        rng.pick(["random", "round-robin", "8080:18080", "70000:1", "80:[::1]:80", "zone=default", "nobody"]),
    ],
    [1, () => (depth > 2 ? [] : Array.from({ length: rng.int(0, 5) }, () => weird(rng, depth + 1)))],
    [1, () => (depth > 2 ? {} : Object.fromEntries([[rng.token(10), weird(rng, depth + 1)]]))],
  ])();
}

/** A registration with wrong types, unknown fields, odd values; sometimes still valid. */
function mutatedSpec(rng: Rng): string {
  const spec = validSpec(rng);
  for (let n = rng.int(1, 3); n > 0; n--) {
    const field = rng.pick([
      "name",
      "ip",
      "labels",
      "expose",
      "publish",
      "lb",
      "command",
      "user",
      rng.token(12),
    ]);
    rng.weighted<() => void>([
      [4, () => (spec[field] = weird(rng))],
      [2, () => (spec[field] = [weird(rng), weird(rng)])],
      [1, () => (spec[field] = { [rng.token(8)]: weird(rng) })],
      [1, () => delete spec[field]],
    ])();
  }
  const text = JSON.stringify(spec);
  return rng.weighted<() => string>([
    [6, () => text],
    [1, () => JSON.stringify(rng.pick([[], 42, "spec", null, true, [spec]]))],
    [2, () => text.slice(0, rng.int(0, text.length - 1))],
    [
      1,
      () =>
        text.replace(/[{}[\]:,"]/g, (ch) => (rng.chance(0.1) ? rng.pick(["", "'", ";", "\\", ch + ch]) : ch)),
    ],
    [1, () => '{"__proto__":{"x":1},"name":"web"}'],
    [1, () => `${"[".repeat(rng.int(10, 5000))}`],
    [1, () => rng.bytes(rng.int(1, 200)).toString("latin1").replace(/\n/g, " ")],
    [1, () => `${text} trailing`],
  ])();
}

const hello = (json: string): string => `SSW1 HELLO ${json}\n`;

function fdLine(rng: Rng): { line: string; child: boolean } {
  const tail = rng.weighted<string>([
    [6, ""],
    [2, " {child}"],
    [1, " 1"],
    [1, " 0"],
    [1, " -5"],
    [1, " abc"],
    [1, " "],
    [1, " {child} {child}"],
    [1, "  "],
  ]);
  return { line: `SSW1 FD${tail}\n`, child: true };
}

function draw(rng: Rng, index: number): Session {
  const kind = rng.weighted<string>([
    [5, "hello"],
    [8, "mutated-hello"],
    [4, "full"],
    [4, "fd-variants"],
    [2, "wrong-order"],
    [2, "overlong"],
    [2, "garbage"],
    [2, "early-close"],
    [1, "slow"],
    [1, "many-lines"],
    [1, "fds-on-hello"],
    [1, "fd-in-one-read"],
    [1, "short-prefix"],
  ]);
  const base = { index, kind, child: false, wait: 2000 };
  switch (kind) {
    case "hello":
      return { ...base, steps: [{ data: hello(JSON.stringify(validSpec(rng))) }], expect: "answer" };
    case "mutated-hello": {
      const line = hello(mutatedSpec(rng));
      return {
        ...base,
        steps: [{ data: rng.chance(0.1) ? line.replace("\n", "\r\n") : line }],
        expect: "answer",
      };
    }
    case "full": {
      // A complete handshake, but with a first fd that is not a seccomp listener (Python
      // cannot make one for a child of its own) and a real pidfd of its child: refused, and
      // no app is left listed.
      const fd = rng.pick<FdKind>(["pipe", "socket"]);
      const steps: Step[] = [
        { data: hello(JSON.stringify(validSpec(rng))) },
        { data: "SSW1 FD\n", fds: [fd, "pidfd"], await: true },
      ];
      if (rng.chance(0.3)) steps.push({ data: rng.pick([hello("{}"), "SSW1 FD\n", "junk\n"]), await: true });
      return { ...base, steps, child: true, expect: "err" };
    }
    case "fd-variants": {
      const f = fdLine(rng);
      const fds = rng.weighted<FdKind[]>([
        [3, []],
        [2, ["null", "null"]],
        [1, Array.from({ length: rng.int(3, 8) }, () => "null" as const)],
        [3, [rng.pick<FdKind>(["pipe", "socket", "pidfd"])]],
        [2, [rng.pick<FdKind>(["null", "eventfd", "file", "memfd"]), "pidfd"]],
        [2, ["pidfd", rng.pick<FdKind>(["null", "pipe", "pidfd"])]],
      ]);
      // No fd, one, too many, or fds that are no seccomp listener (it once made a ghost
      // app), or a pidfd of a process that is not a launcher's app: every variant is refused.
      return {
        ...base,
        steps: [{ data: hello(JSON.stringify(validSpec(rng))) }, { data: f.line, fds, await: true }],
        child: f.child,
        expect: "err",
      };
    }
    case "wrong-order": {
      const v = hello(JSON.stringify(validSpec(rng)));
      const steps = rng.pick<Step[]>([
        [{ data: "SSW1 FD\n", fds: ["pipe", "pidfd"] }],
        [{ data: "SSW1 FD\n" }, { data: v }],
        [{ data: v }, { data: v, await: true }],
        [{ data: v }, { data: "SSW1 GO\n", await: true }],
        [{ data: v }, { data: "OK\n", await: true }],
        [{ data: "SSW1 \n" }],
        [{ data: "SSW1\n" }],
        [{ data: "SSW1 hello {}\n" }],
      ]);
      return { ...base, steps, child: true, expect: "err" };
    }
    case "overlong": {
      const n = rng.int(64 * 1024 + 1, 300 * 1024);
      const body = rng.chance(0.5) ? "x".repeat(n) : rng.bytes(n).toString("latin1").replace(/\n/g, "y");
      return {
        ...base,
        steps: [{ data: `SSW1 HELLO ${body}${rng.chance(0.5) ? "\n" : ""}` }],
        expect: "err",
      };
    }
    case "garbage": {
      const tail = rng.bytes(rng.int(1, 2000)).toString("latin1");
      return { ...base, steps: [{ data: `SSW1${tail}\n` }], expect: "err" };
    }
    case "early-close": {
      const full = hello(JSON.stringify(validSpec(rng)));
      const cut = full.slice(0, rng.int(4, full.length - 1));
      return {
        ...base,
        steps: [{ data: cut, [rng.pick(["close", "shutdown"])]: true }],
        expect: "quiet",
      };
    }
    case "slow": {
      const full = hello(JSON.stringify(validSpec(rng)));
      const steps: Step[] = [{ data: full.slice(0, 4) }];
      for (let i = 4; i < full.length; i += 16)
        steps.push({ data: full.slice(i, i + 16), pause: rng.int(1, 15) });
      return { ...base, steps, expect: "answer" };
    }
    case "many-lines": {
      const lines = Array.from({ length: rng.int(2, 50) }, () =>
        rng.pick([hello("{}"), "\n", "SSW1 FD\n", `${rng.token(20).replace(/\n/g, "")}\n`]),
      );
      return { ...base, steps: [{ data: `SSW1 ${lines.join("")}` }], expect: "err" };
    }
    case "fds-on-hello":
      return {
        ...base,
        steps: [
          { data: hello(rng.chance(0.5) ? JSON.stringify(validSpec(rng)) : mutatedSpec(rng)), fds: ["null"] },
        ],
        expect: "err",
      };
    case "fd-in-one-read":
      return {
        ...base,
        steps: [{ data: `${hello(JSON.stringify(validSpec(rng)))}SSW1 FD\n`, fds: ["pipe", "pidfd"] }],
        child: true,
        expect: "err",
      };
    default:
      return {
        ...base,
        kind: "short-prefix",
        steps: [{ data: rng.pick(["S", "SS", "SSW"]), close: true }],
        expect: "quiet",
      };
  }
}

/** Session `index` of a run. */
export function handshakeSession(seed: number, index: number): Session {
  return draw(caseRng(seed, "handshake/0", index), index);
}

/** The helper takes bytes as code points 0-255: text with other characters goes as UTF-8. */
function asBytes(step: Step): Step {
  const data = step.data;
  if (data === undefined || Array.from(data).every((ch) => (ch.codePointAt(0) as number) <= 0xff))
    return step;
  return { ...step, data: Buffer.from(data, "utf8").toString("latin1") };
}

/** Plays sessions through the python helper, in order; the whole batch is bounded by timeoutMs. */
export function playSessions(
  path: string,
  sessions: readonly Session[],
  timeoutMs: number,
): Promise<SessionResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [HELPER, path], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const results = out
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SessionResult);
      if (code !== 0 || results.length !== sessions.length) {
        reject(
          new Error(
            `handshake-client.py ${signal ? `killed (${signal}) after ${timeoutMs} ms` : `exited ${code}`}, ` +
              `${results.length}/${sessions.length} sessions: ${err.slice(-2000)}`,
          ),
        );
        return;
      }
      resolve(results);
    });
    const input = sessions
      .map((s) => JSON.stringify({ steps: s.steps.map(asBytes), child: s.child, wait: s.wait }))
      .join("\n");
    child.stdin.on("error", () => {});
    child.stdin.end(`${input}\n`);
  });
}

/** The daemon's lines; other upper-case kinds are allowed (launchers ignore kinds they do not know). */
const LINE =
  /^(OK|END|GO|IP [0-9a-f.:]+|FILTER [0-9a-f]+|(ERR|USAGE) [^\n]+|[A-Z][A-Z0-9-]*( [\x20-\x7e]*)?)$/;
const INTERNAL =
  /Cannot read|is not a function|is not iterable|undefined|\bnull\b \(|\n\s+at |TypeError|RangeError|Maximum call stack/;

/** Judges one session; returns what is wrong (empty: nothing). */
export function checkSession(s: Session, r: SessionResult): string[] {
  const problems: string[] = [];
  if (r.reply.startsWith("HTTP/1.1 ")) return problems; // not a launcher after all: the API answered
  const lines = r.reply.split("\n");
  const partial = lines.pop() ?? "";
  if (partial !== "") problems.push(`an unterminated line: ${JSON.stringify(partial.slice(0, 80))}`);
  for (const l of lines)
    if (!LINE.test(l)) problems.push(`an unknown line: ${JSON.stringify(l.slice(0, 80))}`);
  const errAt = lines.findIndex((l) => l.startsWith("ERR ") || l.startsWith("USAGE "));
  const last = lines[lines.length - 1];
  if (errAt !== -1) {
    const sentence = (lines[errAt] as string).replace(/^[A-Z]+ /, "");
    if (errAt !== lines.length - 1) problems.push("lines after ERR");
    if (sentence.length < 10) problems.push(`an unclear error: ${JSON.stringify(sentence)}`);
    if (INTERNAL.test(sentence))
      problems.push(`an internal error text: ${JSON.stringify(sentence.slice(0, 160))}`);
    if (!(r.eof || r.reset)) problems.push(`no close after ERR within ${s.wait} ms`);
    return problems;
  }
  const waiting = last === "END" || last === "GO";
  switch (s.expect) {
    case "err":
      problems.push(
        waiting
          ? `accepted instead of refused (${JSON.stringify(last)})`
          : `no ERR (${r.timeout ? `no answer within ${s.wait} ms` : "closed without a word"})`,
      );
      break;
    case "answer":
      if (!waiting) problems.push(r.timeout ? `no answer within ${s.wait} ms` : "closed without a word");
      break;
    case "quiet":
      if (r.reply !== "")
        problems.push(`an answer to an incomplete line: ${JSON.stringify(r.reply.slice(0, 80))}`);
      break;
  }
  return problems;
}

export function describeSession(s: Session): string {
  const first = (s.steps[0]?.data ?? "").slice(0, 140);
  const fds = s.steps.flatMap((st) => st.fds ?? []);
  return `#${s.index} ${s.kind} (${s.steps.length} step(s)${fds.length ? `, fds ${fds.join(",")}` : ""}): ${JSON.stringify(first)}`;
}
