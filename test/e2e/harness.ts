// Test hosts for end-to-end tests (../shared/TESTING.md): each host is a network namespace
// the test creates (only `lo`, up), with its own daemon on its own socket and state dir.
// Apps run under `sockswitch run` inside that host, each in its own empty namespace.
// Everything is removed afterwards, also on failure; names carry the pid and a random suffix.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pinDirOf } from "../../src/bpf/system.js";

/**
 * True when the suites run against the bpf datapath (SSW_DATAPATH=bpf, TestHost.start): a
 * test of a mechanism only the seccomp datapath has asserts the same promise in the bpf
 * datapath's terms (e.g. a pool port drops an unmanaged peer's SYN, so its connect times out,
 * instead of resetting the connection after the handshake: docs/errors.md).
 */
export const BPF_DATAPATH = process.env.SSW_DATAPATH === "bpf";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(ROOT, "bin", "sockswitch");
export const FIXTURES = join(ROOT, "test", "fixtures");
/** Debian's python3: the same on every machine and readable by any user. */
export const PYTHON = "/usr/bin/python3";

/**
 * Every bound on a wait is multiplied by SOCKSWITCH_TEST_TIME_SCALE (default 1): the kernel VM run
 * (`npm run test:kernels`) is emulated, several times slower than the host.
 */
export const TIME_SCALE = Math.max(1, Number(process.env.SOCKSWITCH_TEST_TIME_SCALE) || 1);

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): Result {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: opts.input, timeout: 60_000 * TIME_SCALE });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls check until it returns a value (not undefined/false) or the time runs out. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
): Promise<Exclude<T, false | undefined>> {
  const end = Date.now() + timeoutMs * TIME_SCALE;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as Exclude<T, false | undefined>;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** A running child with its output collected. */
export class Proc {
  stdout = "";
  stderr = "";
  readonly exited: Promise<Result>;
  private done: Result | null = null;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      this.stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        // Let the pipes drain.
        setTimeout(() => {
          this.done = { code, signal, stdout: this.stdout, stderr: this.stderr };
          resolve(this.done);
        }, 20);
      });
    });
  }

  get running(): boolean {
    return this.done === null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  kill(sig: NodeJS.Signals = "SIGTERM"): void {
    if (this.running) this.child.kill(sig);
  }

  /** Waits for the exit, killing the process if it takes longer than ms. */
  async wait(ms = 15_000): Promise<Result> {
    const t = setTimeout(() => this.kill("SIGKILL"), ms * TIME_SCALE);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

export interface HostOptions {
  daemonArgs?: string[];
  /** Bound on the daemon's start (default 10 s). */
  readyTimeoutMs?: number;
  /** Extra environment for the daemon (e.g. SOCKSWITCH_TEST_HIDE_FEATURES). */
  env?: Record<string, string>;
}

/** One test host: a network namespace with a daemon in it. */
export class TestHost {
  readonly ns: string;
  readonly dir: string;
  readonly socket: string;
  daemon: Proc | null = null;
  private readonly procs: Proc[] = [];

  constructor(tag: string) {
    this.ns = `ssw-${tag}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.dir = mkdtempSync(join(tmpdir(), "ssw-"));
    this.socket = join(this.dir, "sockswitch.sock");
    must("ip", ["netns", "add", this.ns]);
    must("ip", ["-n", this.ns, "link", "set", "lo", "up"]);
  }

  /** Starts the daemon and waits until it is ready. */
  async start(opts: HostOptions = {}): Promise<void> {
    const args = [
      "netns",
      "exec",
      this.ns,
      process.execPath,
      CLI,
      "--socket",
      this.socket,
      "daemon",
      "--state-dir",
      join(this.dir, "state"),
      "--log-level",
      "debug",
      // SSW_DATAPATH=bpf runs the suites against the bpf datapath; seccomp when unset (the
      // daemon's own default, auto, picks bpf where it can: daemon-service.test.ts checks it).
      "--datapath",
      process.env.SSW_DATAPATH ?? "seccomp",
      ...(opts.daemonArgs ?? []),
    ];
    const env = { ...process.env, ...opts.env };
    const p = new Proc(spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"], env }));
    this.daemon = p;
    // Bounded, but generous: on a loaded 2-vCPU machine, several daemons starting at once
    // (the cluster tests) each compile the API's route schemas.
    await waitFor(
      "the daemon to be ready",
      () => {
        if (!p.running) throw new Error(`daemon exited: ${p.stderr}${p.stdout}`);
        return p.stdout.includes("sockswitch daemon ready");
      },
      opts.readyTimeoutMs ?? 30_000,
    );
  }

  /** Stops the daemon (SIGTERM) and waits for it. */
  async stopDaemon(sig: NodeJS.Signals = "SIGTERM"): Promise<Result | null> {
    if (!this.daemon) return null;
    const d = this.daemon;
    this.daemon = null;
    d.kill(sig);
    return d.wait();
  }

  /** Starts `sockswitch run OPTS -- CMD...` inside this host. */
  run(opts: string[], cmd: string[]): Proc {
    const p = new Proc(
      spawn("ip", ["netns", "exec", this.ns, CLI, "--socket", this.socket, "run", ...opts, "--", ...cmd], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    this.procs.push(p);
    return p;
  }

  /**
   * Starts `sockswitch run OPTS -- CMD...` with its stdin open: go() writes a line to it, so
   * that the test tells the app when to go on (never a sleep).
   */
  steered(opts: string[], cmd: string[]): Proc & { go(): void } {
    const child = spawn(
      "ip",
      ["netns", "exec", this.ns, CLI, "--socket", this.socket, "run", ...opts, "--", ...cmd],
      {
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    const p = new Proc(child) as Proc & { go(): void };
    p.go = () => child.stdin?.write("go\n");
    this.procs.push(p);
    return p;
  }

  /** Runs `sockswitch run` to completion. */
  async runToEnd(opts: string[], cmd: string[], ms = 20_000): Promise<Result> {
    return this.run(opts, cmd).wait(ms);
  }

  /** Runs a sockswitch CLI command (get …) inside this host. */
  cli(args: string[]): Result {
    return sh("ip", ["netns", "exec", this.ns, CLI, "--socket", this.socket, ...args]);
  }

  getJson<T>(resource: string): T[] {
    const r = this.cli(["get", resource, "-o", "json"]);
    if (r.code !== 0) throw new Error(`get ${resource} failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { items: T[] }).items;
  }

  /** Starts a long-running command in the host namespace itself (not managed). */
  spawnInHost(cmd: string[]): Proc {
    const p = new Proc(
      spawn("ip", ["netns", "exec", this.ns, ...cmd], { stdio: ["ignore", "pipe", "pipe"] }),
    );
    this.procs.push(p);
    return p;
  }

  /** Runs a command in the host namespace itself (not managed). */
  exec(cmd: string[]): Result {
    return sh("ip", ["netns", "exec", this.ns, ...cmd]);
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill("SIGKILL");
    await Promise.all(this.procs.map((p) => p.wait(5000)));
    await this.stopDaemon("SIGKILL");
    // Apps' own namespaces die with their processes; the host namespace is ours to remove.
    for (const pid of sh("ip", ["netns", "pids", this.ns]).stdout.split("\n").filter(Boolean)) {
      sh("kill", ["-9", pid]);
    }
    sh("ip", ["netns", "del", this.ns]);
    // The daemon's BPF pins (in the host's bpffs: bpf/system.ts), so its programs detach now.
    rmSync(pinDirOf(join(this.dir, "state")), { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A port-ready probe: true once something in the service table matches. */
export function hasService(
  host: TestHost,
  match: (s: { address: string; app: string; name: string }) => boolean,
): boolean {
  return host.getJson<{ address: string; app: string; name: string }>("services").some(match);
}
