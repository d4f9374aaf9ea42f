// The benchmark's plumbing: running commands (bounded in time), children that are always
// killed, network namespaces that are always removed (../../shared/TESTING.md: every
// namespace is the harness's own, its name carries the pid and a random suffix), building
// the C tools into bench/build/, and what machine this is. Cleanup is synchronous so that
// it also runs from an exit or signal handler, after a failure half-way.

import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH, "..");
export const BUILD = join(BENCH, "build");
export const PYTHON = "/usr/bin/python3";
/** A tag shared by everything one harness run makes. */
export const TAG = `${process.pid}-${randomBytes(2).toString("hex")}`;

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], timeoutMs = 60_000): Result {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function must(cmd: string, args: string[], timeoutMs = 60_000): string {
  const r = sh(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls check until it returns something other than undefined/false, or throws on timeout. */
export async function waitFor<T>(what: string, check: () => T, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

// ---- Everything made here, undone by cleanup() -------------------------------------------

const children = new Set<Proc>();
/** Process groups of every child started (a group outlives its leader while a member lives). */
const groups: number[] = [];
let logDir: string | null = null;

/** Every child's output is appended to DIR/<what>.log when it exits (the dir is emptied first). */
export function keepLogs(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  logDir = dir;
}
const namespaces: string[] = [];
const dirs: string[] = [];

/** A child process whose output is collected; killed by cleanup() if still running. */
export class Proc {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly what: string,
    readonly child: ChildProcess,
  ) {
    children.add(this);
    if (child.pid) groups.push(child.pid);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      this.stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        children.delete(this);
        if (logDir) {
          const name = what.replace(/[^\w.-]+/g, "-").replace(/^-|-$/g, "");
          const text = `--- exit ${code ?? signal}\n${this.stderr}${this.stdout}`;
          appendFileSync(join(logDir, `${name}.log`), text);
        }
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Signals the child's whole process group (a launcher's forked child is in it too). */
  kill(sig: NodeJS.Signals = "SIGKILL"): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      this.child.kill(sig);
    }
  }

  /** Waits for the exit; kills the process after ms. Resolves to the exit code. */
  async wait(ms: number): Promise<number | null> {
    const t = setTimeout(() => this.kill("SIGKILL"), ms);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  /** Stops the process (SIGTERM, then SIGKILL after a grace time). */
  async stop(graceMs = 3000): Promise<void> {
    this.kill("SIGTERM");
    await this.wait(graceMs);
  }
}

/** Starts argv (in namespace ns when given) with piped output. */
export function start(what: string, ns: string | null, argv: string[], stdin = false): Proc {
  const [cmd, ...args] = ns ? ["ip", "netns", "exec", ns, ...argv] : argv;
  // Detached: its own process group, so that kill() reaches everything it forked.
  const child = spawn(cmd as string, args, {
    stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
    detached: true,
  });
  return new Proc(what, child);
}

/** Runs argv to its end within ms; throws with its output when it fails. */
export async function runToEnd(what: string, ns: string | null, argv: string[], ms: number): Promise<string> {
  const p = start(what, ns, argv);
  const code = await p.wait(ms);
  if (code !== 0) {
    throw new Error(`${what} failed (exit ${code}): ${p.stderr.trim() || p.stdout.trim().slice(-500)}`);
  }
  return p.stdout;
}

/** Makes a network namespace with lo up and TIME_WAIT reuse on; cleanup() removes it. */
export function makeNetns(role: string): string {
  const ns = `sswb-${role}-${TAG}`;
  must("ip", ["netns", "add", ns]);
  namespaces.push(ns);
  must("ip", ["-n", ns, "link", "set", "lo", "up"]);
  // Connection-rate loops would otherwise run out of ports (a per-namespace setting).
  must("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
  return ns;
}

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "sswb-"));
  dirs.push(d);
  return d;
}

let cleaned = false;

/** Kills every child, then everything left in our namespaces, removes them and temp dirs. */
export function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const p of children) p.kill("SIGKILL");
  for (const g of groups) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // the group is empty: nothing left of that child
    }
  }
  for (const ns of namespaces.reverse()) {
    for (const pid of sh("ip", ["netns", "pids", ns]).stdout.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // already gone
      }
    }
    // Veths, the bridge and the nft table live in these namespaces and go with them.
    sh("ip", ["netns", "del", ns]);
  }
  removePins();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/**
 * Removes the BPF pins of our bpf daemons (a directory of /sys/fs/bpf/sockswitch holding
 * `owner=` + its state dir, URI-encoded: src/bpf/system.ts): a stopped daemon leaves its
 * programs attached for the next one, and no next one comes.
 */
function removePins(): void {
  const root = "/sys/fs/bpf/sockswitch";
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    return; // no bpf daemon ran
  }
  for (const e of entries) {
    try {
      const owner = readdirSync(join(root, e)).find((n) => n.startsWith("owner="));
      const stateDir = owner === undefined ? "" : decodeURIComponent(owner.slice("owner=".length));
      if (dirs.some((d) => stateDir.startsWith(`${d}/`)))
        rmSync(join(root, e), { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
  }
}

/** Runs cleanup() on exit and on SIGINT/SIGTERM/SIGHUP. */
export function cleanupOnExit(): void {
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
      cleanup();
      process.exit(130);
    });
  }
}

// ---- Tools and the machine ---------------------------------------------------------------

export const TOOLS = {
  netbench: join(BUILD, "netbench"),
  trap: join(BUILD, "trap-latency"),
  rtt: join(BUILD, "notif-rtt"),
  flood: join(BUILD, "flood"),
};
const DEBIAN = ["iperf3", "redis-server", "redis-benchmark", "nft", "ip"];

/** Checks the prerequisites and builds the C tools (when their source is newer). */
export function prepare(productRoot: string): void {
  if (process.getuid?.() !== 0) throw new Error("the benchmark needs root (network namespaces)");
  for (const t of DEBIAN) {
    if (sh("sh", ["-c", `command -v ${t}`]).code !== 0)
      throw new Error(`${t} is missing; install the Debian packages listed in bench/README.md`);
  }
  for (const f of [join(productRoot, "dist", "index.js"), join(productRoot, "build", "sockswitch-launch")]) {
    try {
      statSync(f);
    } catch {
      throw new Error(`${f} is missing; run \`npm run build\` first`);
    }
  }
  buildTools();
}

/** What the C tools include from bench/tools/ (a change to it rebuilds them all). */
const SHARED_HEADER = join(BENCH, "tools", "timing.h");

/** Builds the C tools into bench/build/ (when their source or the shared header is newer). */
export function buildTools(): void {
  mkdirSync(BUILD, { recursive: true });
  for (const [name, out] of [
    ["netbench", TOOLS.netbench],
    ["trap-latency", TOOLS.trap],
    ["notif-rtt", TOOLS.rtt],
    ["flood", TOOLS.flood],
  ] as const) {
    const src = join(BENCH, "tools", `${name}.c`);
    let fresh = false;
    try {
      const built = statSync(out).mtimeMs;
      fresh = built >= statSync(src).mtimeMs && built >= statSync(SHARED_HEADER).mtimeMs;
    } catch {
      // not built yet
    }
    if (!fresh) must("cc", ["-O2", "-Wall", "-Wextra", "-o", out, src]);
  }
}

function version(cmd: string, args: string[], pattern: RegExp): string {
  const r = sh(cmd, args);
  const m = pattern.exec(`${r.stdout}\n${r.stderr}`);
  return m ? (m[1] as string) : "unknown";
}

/**
 * How idle CPUs sleep. It decides what waking a task on another CPU costs: on a VM whose
 * idle vCPUs halt at once (haltpoll with guest_halt_poll_ns 0) such a wake-up takes tens of
 * microseconds, which the trap measure shows (bench/README.md).
 */
function cpuidle(): Record<string, string> {
  const read = (f: string): string => {
    try {
      return readFileSync(f, "utf8").trim();
    } catch {
      return "unknown";
    }
  };
  return {
    driver: read("/sys/devices/system/cpu/cpuidle/current_driver"),
    governor: read("/sys/devices/system/cpu/cpuidle/current_governor"),
    guest_halt_poll_ns: read("/sys/module/haltpoll/parameters/guest_halt_poll_ns"),
  };
}

export function machine(): Record<string, unknown> {
  const os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"));
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os: os ? os[1] : "unknown",
    node: process.version,
    virtualization: sh("systemd-detect-virt", []).stdout.trim() || "unknown",
    cpuidle: cpuidle(),
    tools: {
      iperf3: version("iperf3", ["--version"], /iperf (\S+)/),
      redis: version("redis-server", ["--version"], /v=(\S+)/),
      nft: version("nft", ["--version"], /nftables v(\S+)/),
      cc: execFileSync("cc", ["-dumpfullversion"], { encoding: "utf8" }).trim(),
    },
  };
}
