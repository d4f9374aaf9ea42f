// A daemon started the way an operator (or systemd) starts it, for the service tests: its
// own network namespace, and a private mount namespace whose /run and /var/lib are empty
// tmpfs (a fresh host: no /run/sockswitch, no /var/lib/sockswitch), with default paths
// unless told otherwise. Commands run "on that host" with nsenter into the daemon's (or
// any of its processes') mount and network namespaces.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, must, Proc, type Result, sh, waitFor } from "./harness.js";

export class FreshHost {
  readonly ns = `ssw-fresh-${process.pid}-${randomBytes(3).toString("hex")}`;
  /** A directory of the real file system (outside the tmpfs), for test files. */
  readonly dir = mkdtempSync(join(tmpdir(), "ssw-fresh-"));
  readonly procs: Proc[] = [];
  /** A process that holds the host's namespaces (its network and private mount namespace). */
  private holder: Proc | null = null;

  constructor() {
    must("ip", ["netns", "add", this.ns]);
    must("ip", ["-n", this.ns, "link", "set", "lo", "up"]);
  }

  /** Makes the mount namespace with empty /run and /var/lib, held by a sleeping process. */
  async start(): Promise<void> {
    const setup =
      "mount -t tmpfs -o mode=0755 tmpfs /run && mount -t tmpfs -o mode=0755 tmpfs /var/lib && echo ready && exec sleep 100000";
    const h = new Proc(
      spawn(
        "ip",
        ["netns", "exec", this.ns, "unshare", "-m", "--propagation", "private", "sh", "-c", setup],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
    this.holder = h;
    this.procs.push(h);
    await waitFor("the fresh host", () => {
      if (!h.running) throw new Error(h.stderr);
      return h.stdout.includes("ready");
    });
  }

  private enter(): string[] {
    if (!this.holder) throw new Error("FreshHost.start() first");
    return ["--target", String(this.holder.pid), "--mount", "--net"];
  }

  /** Starts a command on the fresh host (its pid is the command's: nsenter execs it). */
  spawn(cmd: string[], env: Record<string, string> = {}): Proc {
    const p = new Proc(
      spawn("nsenter", [...this.enter(), ...cmd], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...env },
      }),
    );
    this.procs.push(p);
    return p;
  }

  /** `sockswitch daemon ARGS` on the fresh host, with default paths unless ARGS say otherwise. */
  startDaemon(args: string[] = [], env: Record<string, string> = {}): Proc {
    return this.spawn([process.execPath, CLI, "daemon", ...args], env);
  }

  /** Runs a command on the fresh host. */
  at(cmd: string[]): Result {
    return sh("nsenter", [...this.enter(), ...cmd]);
  }

  /** `sockswitch ARGS` (default socket) on the fresh host. */
  cli(args: string[]): Result {
    return this.at([process.execPath, CLI, ...args]);
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill("SIGKILL");
    await Promise.all(this.procs.map((p) => p.wait(5000)));
    for (const pid of sh("ip", ["netns", "pids", this.ns]).stdout.split("\n").filter(Boolean))
      sh("kill", ["-9", pid]);
    sh("ip", ["netns", "del", this.ns]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function ready(p: Proc, ms = 20_000): Promise<void> {
  await waitFor(
    "the daemon to be ready",
    () => {
      if (!p.running) throw new Error(`daemon exited: ${p.stderr}${p.stdout.slice(-2000)}`);
      return p.stdout.includes("sockswitch daemon ready");
    },
    ms,
  );
}

/** The error output is one sentence after "sockswitch: ", no stack. */
export function oneSentence(stderr: string): boolean {
  const lines = stderr.trim().split("\n");
  return (
    lines.length === 1 &&
    /^sockswitch: /.test(lines[0] as string) &&
    !/\n\s+at .*\(|node:internal/.test(stderr)
  );
}
