// Bad-input fuzzing of the command line (docs/cli.md): argv drawn from the real vocabulary
// (subcommands, options, good and bad values) mixed with random strings, run against a
// test host's daemon, and judged: a failure is one "sockswitch: …" sentence (and at most a
// "did you mean" line) with no stack trace, a success is exit 0, and nothing hangs.
//
// Safety (../shared/TESTING.md): every run happens inside the test's network namespace;
// PATH is empty, so a random word can never start a real program (the only commands are
// absolute and harmless); `daemon` always gets a scratch socket and state dir, and is
// stopped as soon as it is ready.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { caseRng, type Rng } from "./prng.js";

export interface CliCase {
  readonly index: number;
  /** The arguments after `sockswitch` (the runner adds --socket and, for daemon, --state-dir). */
  readonly argv: string[];
  readonly sub: string;
}

/** Commands an app may be: absolute (PATH is empty), harmless, quick. */
const COMMANDS: string[][] = [
  ["/bin/true"],
  ["/bin/false"],
  ["/no/such/program"],
  ["/etc/hostname"],
  ["/"],
  ["/bin/true", "--help", "x y"],
];

type Values = (rng: Rng) => string;

const pick =
  (...xs: string[]): Values =>
  (rng) =>
    rng.pick(xs);

const IPS = pick(
  "10.77.0.10",
  "fd77::10",
  "10.1.1",
  "0.0.0.0",
  "::1",
  "224.0.0.1",
  "10.77.0.53",
  "1.2.3.4,fd77::1",
  "x",
);
const PORTS = pick("40000-40100", "5-1", "0-10", "1-65535", "70000", "a-b", "40000");
const BOOL = pick("true", "false", "maybe", "", "1");

const RUN_OPTIONS: Record<string, Values | null> = {
  "--ip": IPS,
  "--name": pick("web", "Not A Name!", "a".repeat(64), "-web", "db-1", ""),
  "--labels": pick("zone=default", "zone", "=x", "a=b,c=d", "a=b,a=c", "k=", ",", "ZONE=Default"),
  "--expose": pick("8080:18080", "80:x", "70000:80", "80:[::1]:8080", "80:1.2.3:80", ":", "8080"),
  "--user": pick(
    "nobody",
    "0",
    "65534:65534",
    "nobody:nogroup",
    "no-such-user-here",
    "root:no-such-group",
    ":",
  ),
  "--lb": pick("random", "round-robin", "fastest", ""),
  "--new-netns": null,
  "--dns-override": null,
};

const DAEMON_OPTIONS: Record<string, Values | null> = {
  "--node-ip": pick("127.0.0.1", "1.2.3", "::1", "127.0.0.1,::1", "10.0.0.1,10.0.0.2", "fe80::1%lo"),
  "--node-name": pick("n1", "", "a b", "x".repeat(300)),
  "--ports": PORTS,
  "--vip-cidr": pick(
    "10.77.0.0/16",
    "10.0.0.0/33",
    "10.0.0.1/8",
    "fd77::/64",
    "0.0.0.0/0",
    "x/1",
    "10.78.0.0/30",
  ),
  "--egress": pick("allow", "deny", "maybe"),
  "--lb": pick("random", "round-robin", "fastest"),
  "--clean": null,
  "--log-level": pick("trace", "info", "error", "verbose", ""),
  "--dns": null,
  "--dns-domain": pick("sockswitch.local", "local", "a..b", "-x.y", "", "x".repeat(70)),
  "--dns-ip": pick("10.77.0.53", "10.78.0.53", "1.2.3", "fd77::53", "224.0.0.53"),
  "--dns-servers": pick("127.0.0.1", "127.0.0.1:5353", "1.2.3", "[::1]:53", "127.0.0.1:99999", ","),
};

const GET_RESOURCES = pick("apps", "services", "sockets", "svc", "app", "pods", "", "APPS");
const GET_OUTPUT = pick("table", "json", "yaml", "", "JSON");

function random(rng: Rng): string {
  return rng.weighted<() => string>([
    [5, () => rng.token(20)],
    [2, () => `--${rng.string(rng.int(1, 12), "abcdefghijklmnopqrstuvwxyz-")}`],
    [1, () => `-${rng.string(rng.int(1, 3), "abcdefghijklmnopqrstuvwxyzOVhv")}`],
    [1, () => "x".repeat(rng.int(1000, 20_000))],
    [1, () => rng.pick(["", "-", "--", "=", "--=", "-o", "--socket", "--help", "-h", "--version"])],
  ])();
}

/** One option of a table, as `--opt value`, `--opt=value`, the bare flag or with a missing value. */
function option(rng: Rng, table: Record<string, Values | null>): string[] {
  const name = rng.pick(Object.keys(table));
  const values = table[name] ?? BOOL;
  const bare = table[name] === null;
  const value = rng.chance(0.85) ? values(rng) : random(rng);
  return rng.weighted<() => string[]>([
    [bare ? 4 : 0, () => [name]],
    [bare ? 2 : 6, () => [name, value]],
    [3, () => [`${name}=${value}`]],
    [1, () => [name]],
  ])();
}

function options(rng: Rng, table: Record<string, Values | null>, max: number): string[] {
  const out: string[] = [];
  for (let n = rng.int(0, max); n > 0; n--)
    out.push(...(rng.chance(0.9) ? option(rng, table) : [random(rng)]));
  return out;
}

function draw(rng: Rng, index: number): CliCase {
  const sub = rng.weighted<string>([
    [6, "run"],
    [4, "get"],
    [2, "daemon"],
    [1, "version"],
    [1, "help"],
    [1, "none"],
    [1, "random"],
  ]);
  const global: string[] = [];
  if (rng.chance(0.15)) global.push(rng.pick(["-v", "--version", "-h", "--help", "--bogus", "--socket"]));
  let argv: string[];
  switch (sub) {
    case "run": {
      argv = ["run", ...options(rng, RUN_OPTIONS, 5)];
      const cmd = rng.pick(COMMANDS);
      argv.push(
        ...rng.weighted<string[]>([
          [6, ["--", ...cmd]],
          [2, cmd],
          [1, ["--"]],
          [1, []],
        ]),
      );
      break;
    }
    case "get":
      argv = ["get"];
      if (rng.chance(0.9)) argv.push(GET_RESOURCES(rng));
      if (rng.chance(0.5)) argv.push(...rng.pick([["-o"], ["--output"], ["-o="]]), GET_OUTPUT(rng));
      if (rng.chance(0.2)) argv.push(random(rng));
      break;
    case "daemon":
      argv = ["daemon", ...options(rng, DAEMON_OPTIONS, 5)];
      break;
    case "version":
      argv = ["version", ...(rng.chance(0.3) ? [random(rng)] : [])];
      break;
    case "help":
      argv = ["help", ...(rng.chance(0.7) ? [rng.pick(["run", "get", "daemon", "nope"])] : [])];
      break;
    case "none":
      argv = [];
      break;
    default:
      argv = Array.from({ length: rng.int(1, 4) }, () => random(rng));
  }
  // An argument cannot hold a NUL byte (execve(2) strings end there).
  return { index, argv: [...global, ...argv].map((a) => a.replaceAll("\0", "")), sub };
}

/** Case `index` of a run. */
export function cliCase(seed: number, index: number): CliCase {
  return draw(caseRng(seed, "cli/0", index), index);
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** A `daemon` that started and was stopped by the runner. */
  readonly daemonReady: boolean;
  readonly timedOut: boolean;
  readonly ms: number;
}

export interface CliTarget {
  /** `ip netns exec NS` prefix, as argv. */
  readonly exec: string[];
  readonly cli: string;
  /** The daemon under test. */
  readonly socket: string;
  /** A scratch directory (cwd of every run; `daemon` gets its socket and state in it). */
  readonly scratch: string;
}

const EMPTY_PATH = "/nonexistent-ssw-fuzz-path";

/** cmd as an absolute path, looked up in this process's PATH (the runs' PATH is empty). */
function absolute(cmd: string): string {
  if (cmd.includes("/")) return cmd;
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return cmd;
}

/**
 * Runs one case. `daemon` runs get a scratch --socket and --state-dir (given last, so they
 * win over generated ones) and are stopped with SIGTERM once ready.
 */
export function runCli(t: CliTarget, c: CliCase, timeoutMs: number): Promise<CliRun> {
  const started = Date.now();
  const isDaemon = c.argv.includes("daemon");
  const argv = isDaemon
    ? [
        "--socket",
        `${t.scratch}/d${c.index}.sock`,
        ...c.argv.filter((a) => a !== "--socket" && !a.startsWith("--state-dir")),
        "--state-dir",
        `${t.scratch}/state-${c.index}`,
      ]
    : ["--socket", t.socket, ...c.argv];
  return new Promise((resolve) => {
    const child = spawn(
      absolute(t.exec[0] as string),
      [...t.exec.slice(1), process.execPath, t.cli, ...argv],
      {
        cwd: t.scratch,
        env: { PATH: EMPTY_PATH, LANG: "C.UTF-8", HOME: t.scratch },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    let daemonReady = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (!daemonReady && stdout.includes("sockswitch daemon ready")) {
        daemonReady = true;
        child.kill("SIGTERM");
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, daemonReady, timedOut, ms: Date.now() - started });
    });
  });
}

const STACK = /\n\s+at |node:internal|\.[jt]s:\d+:\d+|^\s*at /m;

/** Judges one run; returns what is wrong (empty: nothing). */
export function checkCli(c: CliCase, r: CliRun): string[] {
  const problems: string[] = [];
  if (r.timedOut) return [`no exit within the bound (${r.ms} ms)`];
  if (STACK.test(r.stderr)) problems.push("a stack trace on stderr");
  if (r.daemonReady) {
    if (r.code !== 0) problems.push(`the daemon exited ${r.code ?? r.signal} after SIGTERM`);
    return problems;
  }
  if (r.signal) return [...problems, `killed by ${r.signal}`];
  // /etc/hostname is not a program, but where it is executable execvp(3) runs it with
  // /bin/sh (ENOEXEC), and the shell's complaint is the app's own stderr.
  if (c.sub === "run" && c.argv.includes("/etc/hostname") && r.code !== 2 && r.code !== 125) return problems;
  // An argument with line breaks is echoed as given (commander quotes it, unescaped): count
  // it as part of its sentence.
  let stderr = r.stderr;
  for (const a of c.argv.flatMap((x) => [x, x.slice(x.indexOf("=") + 1)]))
    if (/[\r\n]/.test(a) && stderr.includes(a)) stderr = stderr.replaceAll(a, JSON.stringify(a));
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  const usage = /^Usage: sockswitch/m.test(r.stderr) || /^Usage: sockswitch/m.test(r.stdout);
  if (r.code === 0) {
    if (lines.length > 0 && !usage) problems.push(`exit 0 with stderr: ${r.stderr.slice(0, 200)}`);
    return problems;
  }
  if (lines.length === 0) {
    // The app's own failure (its exit status is passed on), or usage on stdout.
    const appFailed = c.argv.includes("/bin/false");
    if (!appFailed && !(usage && r.code === 2)) problems.push(`exit ${r.code} without a word on stderr`);
    return problems;
  }
  if (usage && r.code === 2) return problems;
  if (!(lines[0] as string).startsWith("sockswitch: "))
    problems.push(`stderr does not start with "sockswitch: "`);
  const extra = lines.slice(1).filter((l) => !/^\(Did you mean .*\?\)$/.test(l));
  if (extra.length > 0) problems.push(`${lines.length} lines on stderr`);
  return problems;
}

export function describeCli(c: CliCase): string {
  return `#${c.index} sockswitch ${c.argv.map((a) => (a.length > 60 ? `${JSON.stringify(a.slice(0, 40))}…(${a.length})` : JSON.stringify(a))).join(" ")}`;
}
