// daemon_rss: the resident memory of a sockswitch daemon holding 0, 1,000 and 10,000
// services. A fresh daemon in a namespace of its own; the services are registered the
// real way: one app under `sockswitch run` (tools/listeners.py) opens that many TCP
// listeners, and every listen() is trapped and registers a service. Each step is checked
// against the daemon's own API (`sockswitch get services`) before memory is read
// (VmRSS from /proc/PID/status, after the daemon has been idle for a moment).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH, type Proc, PYTHON, sh, sleep, start, waitFor } from "./env.js";
import { runArgv, startDaemon } from "./paths.js";

const FIRST_PORT = 20000;
const SETTLE_MS = 2000;

export interface RssStep {
  services: number;
  rss_mb: number;
  /** Seconds the app took to open this step's listeners (all trapped). */
  register_s: number;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) / 1024;
}

/** Median of a few samples taken once the daemon has settled. */
async function settledRss(pid: number): Promise<number> {
  await sleep(SETTLE_MS);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssMb(pid));
    await sleep(200);
  }
  samples.sort((a, b) => a - b);
  return samples[2] as number;
}

export async function measureRss(
  cli: string,
  steps: number[],
  progress: (line: string) => void,
): Promise<RssStep[]> {
  // One app holds every service: lift the per-app bound on host ports (1024 by default).
  const d = await startDaemon(cli, "rss", [], ["--max-ports-per-app", "20000"]);
  const comm = readFileSync(`/proc/${d.proc.pid}/comm`, "utf8").trim();
  if (comm !== "node") throw new Error(`daemon pid ${d.proc.pid} is ${comm}, not node`);
  const count = (): number => {
    const r = sh("ip", [
      "netns",
      "exec",
      d.ns,
      process.execPath,
      d.cli,
      "--socket",
      d.socket,
      "get",
      "services",
      "-o",
      "json",
    ]);
    if (r.code !== 0) throw new Error(`get services failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { items: unknown[] }).items.length;
  };
  const out: RssStep[] = [];
  let app: Proc | null = null;
  try {
    for (const n of [...steps].sort((a, b) => a - b)) {
      let took = 0;
      if (n > 0) {
        if (!app) {
          const cmd = [PYTHON, join(BENCH, "tools", "listeners.py"), String(FIRST_PORT)];
          app = start("listeners app", d.ns, runArgv(d, ["--ip", "10.77.9.1", "--name", "many"], cmd), true);
          const a = app;
          await waitFor("the listeners app", () => {
            if (!a.running) throw new Error(`listeners app exited: ${a.stderr}`);
            return a.stdout.includes("ready");
          });
        }
        const a = app;
        const t0 = performance.now();
        a.child.stdin?.write(`${n}\n`);
        await waitFor(
          `${n} listeners`,
          () => {
            if (/^error /m.test(a.stdout))
              throw new Error(`listeners app: ${a.stdout.trim().split("\n").pop()}`);
            if (!a.running) throw new Error(`listeners app exited: ${a.stderr}`);
            return a.stdout.includes(`ok ${n}\n`);
          },
          300_000,
        );
        took = (performance.now() - t0) / 1000;
      }
      await waitFor(`${n} services in the daemon`, () => count() === n, 30_000);
      const rss = await settledRss(d.proc.pid);
      out.push({ services: n, rss_mb: Math.round(rss * 10) / 10, register_s: took });
      progress(
        `daemon_rss ${n} services: ${rss.toFixed(1)} MB${n > 0 ? ` (registered in ${took.toFixed(1)} s)` : ""}`,
      );
    }
  } finally {
    if (app) {
      app.child.stdin?.end();
      await app.wait(30_000);
    }
    await d.proc.stop();
  }
  return out;
}
