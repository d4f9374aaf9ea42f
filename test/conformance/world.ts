// The worlds the conformance suite compares (../shared/TESTING.md, "The kernel is the
// oracle"). Each world runs two apps, A and B, each a repl.py that makes one socket call per
// request:
// - reference: two network namespaces joined by a veth pair, each app's virtual addresses
//   real on its side (the kernel decides everything);
// - sockswitch: one test host (a namespace with a daemon), both apps under `sockswitch run`
//   with the same addresses as virtual IPs; the node IPv4-only (--node-ip 127.0.0.1) or
//   dual-stack (with fd99::1 on the host's lo).
// Everything a world makes is removed by close(), also after a failure.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { CLI, must, PYTHON, sh, TestHost } from "../e2e/harness.js";

export type AppName = "A" | "B";
export type Call = Record<string, unknown> & { op: string };
export type Answer = Record<string, unknown>;

export const APPS: Record<AppName, { v4: string; v6: string }> = {
  A: { v4: "10.77.0.10", v6: "fd77::10" },
  B: { v4: "10.77.0.20", v6: "fd77::20" },
};

/** Address symbols the calls use; repl.py answers with them too. */
export const SYMBOLS: Record<string, string> = {
  A4: APPS.A.v4,
  A6: APPS.A.v6,
  A4m: `::ffff:${APPS.A.v4}`,
  B4: APPS.B.v4,
  B6: APPS.B.v6,
  B4m: `::ffff:${APPS.B.v4}`,
  any4: "0.0.0.0",
  any6: "::",
  any4m: "::ffff:0.0.0.0",
  lo4: "127.0.0.1",
  lo4b: "127.0.0.5",
  lo6: "::1",
  lo4m: "::ffff:127.0.0.1",
};

const REPL = new URL("./repl.py", import.meta.url).pathname;
const CALL_MS = 8_000;

/** One repl.py process, called one line at a time. */
class Repl {
  private readonly queue: Array<(line: string) => void> = [];
  private readonly child: ChildProcess;
  stderr = "";
  exited = false;

  constructor(cmd: string, args: string[]) {
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.child.on("exit", () => {
      this.exited = true;
      for (const r of this.queue.splice(0)) r('{"err":"exited"}');
    });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      this.queue.shift()?.(line);
    });
  }

  /** Waits for the first line (the program is ready). */
  ready(ms = 20_000): Promise<Answer> {
    return this.next(ms);
  }

  call(c: Call): Promise<Answer> {
    if (this.exited) return Promise.resolve({ err: "exited" });
    const p = this.next(CALL_MS);
    this.child.stdin?.write(`${JSON.stringify(c)}\n`);
    return p;
  }

  private next(ms: number): Promise<Answer> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        const i = this.queue.indexOf(done);
        if (i !== -1) this.queue.splice(i, 1);
        this.kill();
        resolve({ err: "hang" });
      }, ms);
      const done = (line: string): void => {
        clearTimeout(t);
        try {
          resolve(JSON.parse(line) as Answer);
        } catch {
          resolve({ err: `bad answer: ${line}` });
        }
      };
      this.queue.push(done);
    });
  }

  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }

  async closed(): Promise<void> {
    if (this.exited) return;
    await new Promise((r) => this.child.once("exit", r));
  }
}

export interface World {
  readonly name: string;
  call(app: AppName, c: Call): Promise<Answer>;
  /** Restarts an app whose program died or hung (its sockets are gone). */
  revive(app: AppName): Promise<void>;
  /** Diagnostics for a failure (e.g. the daemon's warnings). */
  diagnostics(): string;
  close(): Promise<void>;
}

const env = JSON.stringify(SYMBOLS);

/** Two namespaces joined by a veth pair; each app's addresses real on its side. */
export async function referenceWorld(): Promise<World> {
  const tag = `${process.pid}-${randomBytes(2).toString("hex")}`;
  const ns: Record<AppName, string> = { A: `cf-ra-${tag}`, B: `cf-rb-${tag}` };
  const made: string[] = [];
  try {
    for (const app of ["A", "B"] as const) {
      must("ip", ["netns", "add", ns[app]]);
      made.push(ns[app]);
      for (const k of ["all", "default"])
        must("ip", ["netns", "exec", ns[app], "sysctl", "-qw", `net.ipv6.conf.${k}.accept_dad=0`]);
      // Ephemeral ports above every fixed port of the sequences (generator.ts: 20000-28999 and
      // 41000-49999): a client's port of an earlier sequence, still in TIME_WAIT, would
      // otherwise refuse a later sequence's bind to that fixed port (EADDRINUSE) in this world
      // only (under sockswitch those are host ports; the fixed ones are virtual).
      must("ip", ["netns", "exec", ns[app], "sysctl", "-qw", "net.ipv4.ip_local_port_range=50000 60999"]);
      must("ip", ["-n", ns[app], "link", "set", "lo", "up"]);
    }
    must("ip", ["-n", ns.A, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns.B]);
    for (const app of ["A", "B"] as const) {
      const n = ns[app];
      must("ip", ["-n", n, "addr", "add", `${APPS[app].v4}/32`, "dev", "eth0"]);
      must("ip", ["-n", n, "addr", "add", `${APPS[app].v6}/128`, "dev", "eth0", "nodad"]);
      must("ip", ["-n", n, "link", "set", "eth0", "up"]);
      must("ip", ["-n", n, "route", "add", "10.77.0.0/16", "dev", "eth0"]);
      must("ip", ["-n", n, "-6", "route", "add", "fd77::/64", "dev", "eth0"]);
    }
  } catch (err) {
    for (const n of made) sh("ip", ["netns", "del", n]);
    throw err;
  }
  const start = (app: AppName) => new Repl("ip", ["netns", "exec", ns[app], PYTHON, REPL, env]);
  const repls: Record<AppName, Repl> = { A: start("A"), B: start("B") };
  await Promise.all([repls.A.ready(), repls.B.ready()]);
  return {
    name: "reference",
    call: (app, c) => repls[app].call(c),
    async revive(app) {
      repls[app].kill();
      repls[app] = start(app);
      await repls[app].ready();
    },
    diagnostics: () => `A: ${repls.A.stderr}\nB: ${repls.B.stderr}`,
    async close() {
      for (const r of Object.values(repls)) r.kill();
      await Promise.all(Object.values(repls).map((r) => r.closed()));
      for (const n of Object.values(ns)) sh("ip", ["netns", "del", n]);
    },
  };
}

/** A test host with a daemon; A and B under `sockswitch run`. */
export async function sockswitchWorld(
  shape: "ipv4" | "dual-stack",
  daemonArgs: string[] = [],
): Promise<World> {
  const host = new TestHost(shape === "ipv4" ? "cf4" : "cf6");
  const nodeIp = shape === "ipv4" ? "127.0.0.1" : "127.0.0.1,fd99::1";
  try {
    if (shape === "dual-stack")
      must("ip", ["-n", host.ns, "addr", "add", "fd99::1/128", "dev", "lo", "nodad"]);
    await host.start({ daemonArgs: ["--node-ip", nodeIp, "--dns-servers", "127.0.0.1:5399", ...daemonArgs] });
  } catch (err) {
    await host.cleanup();
    throw err;
  }
  const start = (app: AppName) =>
    new Repl("ip", [
      "netns",
      "exec",
      host.ns,
      CLI,
      "--socket",
      host.socket,
      "run",
      "--ip",
      APPS[app].v4,
      "--ip",
      APPS[app].v6,
      "--",
      PYTHON,
      REPL,
      env,
    ]);
  const repls: Record<AppName, Repl> = { A: start("A"), B: start("B") };
  await Promise.all([repls.A.ready(), repls.B.ready()]);
  return {
    name: `sockswitch (${shape} node)`,
    call: (app, c) => repls[app].call(c),
    async revive(app) {
      repls[app].kill();
      await repls[app].closed();
      repls[app] = start(app);
      await repls[app].ready();
    },
    diagnostics: () => {
      const warn = (host.daemon?.stdout ?? "")
        .split("\n")
        .filter((l) => /"level":(40|50|60)/.test(l))
        .slice(-8);
      return `daemon:\n${warn.join("\n")}\nA: ${repls.A.stderr}\nB: ${repls.B.stderr}`;
    },
    async close() {
      for (const r of Object.values(repls)) r.kill();
      await Promise.all(Object.values(repls).map((r) => r.closed()));
      await host.cleanup();
    },
  };
}
