// The real-application suite's test node (../shared/TESTING.md, "Real applications"): one
// network namespace with a daemon in it (test/e2e/harness.ts's TestHost), shaped as an
// IPv4-only node (`--node-ip 127.0.0.1`) or a dual-stack one (`fd99::1/128` on the
// namespace's lo, `--node-ip 127.0.0.1,fd99::1`). Servers run under `sockswitch run` with an
// IPv4 and an IPv6 virtual IP and a name; clients run under `sockswitch run` with one
// virtual IP each. Every wait is bounded; a failure carries the servers' output and logs and
// the daemon's warnings; close() removes everything the test made, also after a failure,
// including processes an app left behind in its own namespace (nginx's workers outlive a
// killed master).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parseIp } from "../../src/net/ip.js";
import { CLI, must, Proc, type Result, sleep, TestHost, waitFor } from "../e2e/harness.js";

export type Shape = "ipv4" | "dual";
export const SHAPES: readonly Shape[] = ["ipv4", "dual"];

/** The virtual IPs every test uses (each test has its own daemon, so they never collide). */
export const VIP = {
  server4: "10.77.1.10",
  server6: "fd77::1:10",
  client4: "10.77.1.20",
  client6: "fd77::1:20",
  /** A second server app (a backend behind a proxy). */
  backend4: "10.77.1.30",
  backend6: "fd77::1:30",
} as const;

/** The dual-stack node's IPv6 address, on its namespace's lo. */
const NODE_IP6 = "fd99::1";

/**
 * Where per-test files go: a root-owned directory that is not group- or world-writable, as
 * sshd's StrictModes demands of every directory above an authorized_keys file (not /tmp).
 */
const FILES_BASE = "/run";

export interface AppOptions {
  /** Virtual IPs (default: the server's two). */
  ips?: string[];
  /** `sockswitch run --user`. */
  user?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Files whose tails a failure message shows (the server's own logs). */
  logs?: string[];
}

interface Started {
  label: string;
  proc: Proc;
  logs: string[];
}

export class AppNode {
  readonly host: TestHost;
  /** A directory for the test's files, readable by every user (postgres, www-data). */
  readonly dir: string;
  private readonly started: Started[] = [];
  private readonly notes: string[] = [];

  private constructor(
    tag: string,
    readonly shape: Shape,
  ) {
    this.host = new TestHost(`app-${tag}`);
    this.dir = mkdtempSync(join(FILES_BASE, `ssw-apps-${tag}-`));
    chmodSync(this.dir, 0o755);
  }

  /** Makes the namespace, gives it the node's addresses and starts the daemon. */
  static async open(tag: string, shape: Shape): Promise<AppNode> {
    const node = new AppNode(tag, shape);
    try {
      let nodeIp = "127.0.0.1";
      if (shape === "dual") {
        must("ip", ["-n", node.host.ns, "addr", "add", `${NODE_IP6}/128`, "dev", "lo", "nodad"]);
        nodeIp += `,${NODE_IP6}`;
      }
      // Upstream DNS on the namespace's own loopback, where nothing listens: names the
      // daemon does not know fail at once and nothing leaves the test host.
      // A daemon starts in about a second; the bound is for a machine busy with other tests.
      await node.host.start({
        daemonArgs: ["--node-ip", nodeIp, "--dns-servers", "127.0.0.1:5399"],
        readyTimeoutMs: 30_000,
      });
    } catch (err) {
      const d = node.host.daemon;
      const e = err as Error;
      if (d) e.message += `\ndaemon output:\n${tail(d.stdout + d.stderr, 3000)}`;
      await node.close();
      throw e;
    }
    return node;
  }

  /** `sockswitch run OPTS -- CMD` in this node, with a working directory and environment. */
  private spawnRun(runOpts: string[], cmd: string[], opts: AppOptions): Proc {
    const child: ChildProcess = spawn(
      "ip",
      ["netns", "exec", this.host.ns, CLI, "--socket", this.host.socket, "run", ...runOpts, "--", ...cmd],
      { cwd: opts.cwd ?? this.dir, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    return new Proc(child);
  }

  /** Starts a server app with a name and (by default) both server VIPs. */
  server(label: string, name: string, cmd: string[], opts: AppOptions = {}): Proc {
    const ips = opts.ips ?? [VIP.server4, VIP.server6];
    const runOpts = [...ips.flatMap((ip) => ["--ip", ip]), "--name", name];
    if (opts.user) runOpts.push("--user", opts.user);
    const proc = this.spawnRun(runOpts, cmd, opts);
    this.started.push({ label, proc, logs: opts.logs ?? [] });
    return proc;
  }

  /**
   * Waits until the daemon lists a service at each of `addresses` ("ip:port", "[ip6]:port")
   * for proto: the server is listening (TCP) or bound (UDP) on them.
   */
  async waitServices(
    proc: Proc,
    proto: "tcp" | "udp",
    addresses: string[],
    timeoutMs = 30_000,
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    let have: string[] = [];
    for (;;) {
      have = this.host
        .getJson<{ address: string; proto: string }>("services")
        .filter((s) => s.proto === proto)
        .map((s) => s.address);
      if (addresses.every((a) => have.includes(a))) return;
      const why = !proc.running
        ? `the server exited (${proc.child.exitCode ?? proc.child.signalCode})`
        : Date.now() > end
          ? `timed out after ${timeoutMs} ms`
          : null;
      if (why) {
        throw new Error(
          `${why} before serving ${proto} ${addresses.join(", ")}; services: [${have.join(", ")}]`,
        );
      }
      await sleep(100);
    }
  }

  /** Runs a client app to its end (killed after timeoutMs) with the given virtual IP. */
  async client(ip: string, cmd: string[], opts: AppOptions & { timeoutMs?: number } = {}): Promise<Result> {
    const runOpts = ["--ip", ip];
    if (opts.user) runOpts.push("--user", opts.user);
    const proc = this.spawnRun(runOpts, cmd, opts);
    const started = Date.now();
    const r = await proc.wait(opts.timeoutMs ?? 30_000);
    this.note(
      `client ${ip}: ${cmd.join(" ")} → exit ${r.code ?? r.signal} after ${Date.now() - started} ms\n` +
        indent(`stdout: ${tail(r.stdout, 1500)}\nstderr: ${tail(r.stderr, 1500)}`),
    );
    return r;
  }

  /** Adds a line to what a failure message shows. */
  note(text: string): void {
    this.notes.push(text);
  }

  /** What a failure message shows: clients run, servers' output and logs, daemon warnings. */
  context(): string {
    const out: string[] = [`node: ${this.shape} (namespace ${this.host.ns})`];
    out.push(...this.notes);
    for (const s of this.started) {
      const st = s.proc.running ? "running" : `exited ${s.proc.child.exitCode ?? s.proc.child.signalCode}`;
      out.push(
        `server ${s.label} (${st}):\n${indent(`stdout: ${tail(s.proc.stdout, 3000)}\nstderr: ${tail(s.proc.stderr, 3000)}`)}`,
      );
      for (const f of s.logs) {
        let text: string;
        try {
          text = readFileSync(f, "utf8");
        } catch (err) {
          text = `(unreadable: ${(err as Error).message})`;
        }
        out.push(`${s.label} log ${f}:\n${indent(tail(text, 3000))}`);
      }
    }
    const warnings = (this.host.daemon?.stdout ?? "").split("\n").filter((l) => /"level":(40|50|60)/.test(l));
    out.push(`daemon warnings (${warnings.length}):\n${indent(tail(warnings.join("\n"), 4000))}`);
    return out.join("\n");
  }

  /** Stops every app (TERM, then KILL), sweeps their namespaces, removes the node. */
  async close(): Promise<void> {
    const appNetns = new Set<string>();
    try {
      const hostNs = netnsOfPid(this.daemonPid());
      for (const app of this.host.daemon ? this.host.getJson<{ pid: number }>("apps") : []) {
        const ns = netnsOfPid(app.pid);
        if (ns && ns !== hostNs) appNetns.add(ns);
      }
    } catch {
      // The daemon is gone: the apps' launchers still die below, and with them the apps.
    }
    for (const s of this.started) s.proc.kill("SIGTERM");
    await Promise.all(this.started.map((s) => s.proc.wait(10_000)));
    // What an app left behind in its own namespace (workers of a killed master).
    for (let round = 0; round < 20 && appNetns.size > 0; round++) {
      const left = pidsInNetns(appNetns);
      if (left.length === 0) break;
      for (const pid of left) spawnSync("kill", ["-9", String(pid)]);
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.host.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private daemonPid(): number {
    return this.host.daemon?.pid ?? 0;
  }
}

/** The network namespace of pid ("net:[4026532…]"), or null. */
function netnsOfPid(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

function pidsInNetns(set: Set<string>): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ns = netnsOfPid(Number(entry));
    if (ns && set.has(ns)) out.push(Number(entry));
  }
  return out;
}

export function tail(text: string, max: number): string {
  const t = text.trimEnd();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

function indent(text: string): string {
  return text.replace(/^/gm, "    ");
}

/** Throws with the client's output unless it exited 0. */
export function expectOk(r: Result, what: string): string {
  if (r.code !== 0) {
    throw new Error(
      `${what}: exit ${r.code ?? r.signal}\nstdout: ${tail(r.stdout, 1500)}\nstderr: ${tail(r.stderr, 1500)}`,
    );
  }
  return r.stdout;
}

/** Waits until a file contains every string (the server logged the clients). */
export async function waitForLog(file: string, needles: string[], timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `${file} to show ${needles.join(", ")}`,
    () => {
      let text = "";
      try {
        text = readFileSync(file, "utf8");
      } catch {
        return false;
      }
      return needles.every((n) => text.includes(n));
    },
    timeoutMs,
  );
}

/** Waits until a process's output contains every string. */
export async function waitForOutput(proc: Proc, needles: string[], timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `the server's output to show ${needles.join(", ")}`,
    () => needles.every((n) => proc.stdout.includes(n) || proc.stderr.includes(n)),
    timeoutMs,
  );
}

/** The first of paths that exists, for programs Debian installs outside PATH. */
export function findBinary(name: string, extraDirs: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", ...extraDirs]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/**
 * Copies a stock configuration file with only the given edits (paths, log targets), each of
 * which must match: a changed stock file fails loudly instead of testing something else.
 * Returns the new file's path.
 */
export function editedCopy(src: string, dest: string, edits: Array<[RegExp, string]>, append = ""): string {
  let text = readFileSync(src, "utf8");
  for (const [re, to] of edits) {
    if (!re.test(text)) throw new Error(`${src} has no line matching ${re}: the stock file changed`);
    text = text.replace(re, to);
  }
  writeFileSync(dest, text + append);
  return dest;
}

/**
 * An address as eight 16-bit groups without "::" (an IPv4 address IPv4-mapped), as socat
 * (pad: 4 digits each) and Java's Inet6Address.getHostAddress() (no padding) print them.
 */
export function v6Groups(ip: string, pad: boolean): string {
  const p = parseIp(ip);
  if (!p) throw new Error(`not an IP address: ${ip}`);
  const b =
    p.family === 6 ? p.bytes : Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...p.bytes]);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    const g = (((b[i] as number) << 8) | (b[i + 1] as number)).toString(16);
    groups.push(pad ? g.padStart(4, "0") : g);
  }
  return groups.join(":");
}
