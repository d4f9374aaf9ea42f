// The soak test of issue 6 (not in `npm test`; run it with `npm run soak -- --minutes N`).
// One daemon in a network namespace of the script's own (bench/env.ts: removed on exit, on
// failure and on Ctrl-C). Under `sockswitch run`, each in its own empty namespace:
//   - a server app: netbench's epoll echo server on a virtual IP;
//   - a client app: `netbench pace`, connect + 1-byte request and reply + close, at --rate
//     connections per second for --minutes; every failed round is counted;
//   - app churn: every --churn seconds a small app starts, opens a listener (a service is
//     registered), lives a second and exits (the service and the app are withdrawn).
// Every --sample seconds the daemon's open fds (/proc/PID/fd) and RSS (VmRSS) are sampled;
// the summary gives them over the whole run and under load (after the first minute).
// Afterwards: the client's counts, the churn apps that failed, apps left listed, and the
// figures in bench/results/soak.json (samples and a summary). Exit 1 when anything failed.
// Man pages: proc(5) (/proc/PID/fd, /proc/PID/status).

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  BENCH,
  buildTools,
  cleanup,
  cleanupOnExit,
  machine,
  PYTHON,
  ROOT,
  sh,
  sleep,
  start,
  TOOLS,
  waitFor,
} from "../bench/env.js";
import { runArgv, startDaemon } from "../bench/paths.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    churn: { type: "string", default: "3" },
    sample: { type: "string", default: "10" },
    out: { type: "string", default: join(BENCH, "results", "soak.json") },
  },
});
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const CHURN_S = Number(values.churn);
const SAMPLE_S = Number(values.sample);
for (const [name, v, max] of [
  ["--minutes", MINUTES, 120],
  ["--rate", RATE, 100_000],
  ["--churn", CHURN_S, 3600],
  ["--sample", SAMPLE_S, 3600],
] as const) {
  if (!Number.isFinite(v) || v <= 0 || v > max) {
    console.error(`soak: ${name} must be a number above 0 and at most ${max}`);
    process.exit(2);
  }
}

const CLI = join(ROOT, "bin", "sockswitch");
const VIP = "10.77.9.1";
const PORT = "7001";
const SECONDS = Math.round(MINUTES * 60);
/** A churn app: a listener (one service registered, then withdrawn) for a second. */
const CHURN_APP = [
  PYTHON,
  "-c",
  "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',9000))\ns.listen()\ntime.sleep(1)",
];

interface Sample {
  t_s: number;
  fds: number;
  rss_mb: number;
  connections: number;
  failures: number;
  churn_apps: number;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
}

/** The last JSON line netbench printed (a progress line or its report). */
function lastCounts(stdout: string): { count: number; errors: number; rate?: number; errno?: string } {
  const lines = stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"));
  const last = lines.at(-1);
  return last ? JSON.parse(last) : { count: 0, errors: 0 };
}

function stats(xs: number[]): { first: number; last: number; min: number; max: number } {
  return {
    first: xs[0] ?? Number.NaN,
    last: xs.at(-1) ?? Number.NaN,
    min: Math.min(...xs),
    max: Math.max(...xs),
  };
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length === 0 ? Number.NaN : (v[Math.floor((v.length - 1) / 2)] as number);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error("the soak needs root (network namespaces)");
  buildTools();
  const commit = sh("git", ["-C", ROOT, "rev-parse", "--short=12", "HEAD"]).stdout.trim();
  const d = await startDaemon(CLI, "soak");
  const pid = d.proc.pid;
  const server = start(
    "soak server",
    d.ns,
    runArgv(d, ["--ip", VIP, "--name", "soak-server"], [TOOLS.netbench, "server", PORT]),
  );
  await waitFor("the soak server", () => {
    if (!server.running) throw new Error(`the server exited: ${server.stderr}`);
    return /^listening/m.test(server.stdout);
  });
  await sleep(1000);
  const samples: Sample[] = [];
  let churned = 0;
  const churnFailures: string[] = [];
  const take = (t0: number): void => {
    const c = lastCounts(client.stdout);
    samples.push({
      t_s: Math.round((Date.now() - t0) / 100) / 10,
      fds: fdCount(pid),
      rss_mb: rssMb(pid),
      connections: c.count,
      failures: c.errors,
      churn_apps: churned,
    });
    const s = samples.at(-1) as Sample;
    console.log(
      `${String(s.t_s).padStart(6)} s  fds ${s.fds}  rss ${s.rss_mb} MB  connections ${s.connections}` +
        `  failed ${s.failures}  churn apps ${s.churn_apps}`,
    );
  };

  const t0 = Date.now();
  const client = start(
    "soak client",
    d.ns,
    runArgv(d, ["--name", "soak-client"], [TOOLS.netbench, "pace", VIP, PORT, String(SECONDS), String(RATE)]),
  );
  take(t0);
  const sampler = setInterval(() => take(t0), SAMPLE_S * 1000);
  const clientDone = client.wait((SECONDS + 60) * 1000);
  let clientFinished = false;
  void clientDone.then(() => {
    clientFinished = true;
  });
  while (!clientFinished) {
    const n = ++churned;
    const app = start(`churn ${n}`, d.ns, runArgv(d, ["--name", `churn-${n}`], CHURN_APP));
    void app.wait(30_000).then((code) => {
      if (code !== 0) churnFailures.push(`churn-${n}: exit ${code}: ${app.stderr.trim().slice(-300)}`);
    });
    await Promise.race([sleep(CHURN_S * 1000), clientDone]);
  }
  clearInterval(sampler);
  const code = await clientDone;
  const result = lastCounts(client.stdout);
  // Let the last churn app end, then the daemon settle, and take the final sample.
  await sleep(3000);
  take(t0);
  const apps = sh("ip", ["netns", "exec", d.ns, CLI, "--socket", d.socket, "get", "apps", "-o", "json"]);
  const listed = (JSON.parse(apps.stdout || '{"items":[]}') as { items: Array<{ name: string }> }).items.map(
    (a) => a.name,
  );
  const leftover = listed.filter((n) => n !== "soak-server");
  const fds = stats(samples.map((s) => s.fds));
  const rss = stats(samples.map((s) => s.rss_mb));
  // Under load, once V8's heap has grown to the work (the first minute, or the first tenth).
  const warm = Math.min(60, SECONDS / 10);
  const loaded = samples.slice(0, -1).filter((s) => s.t_s >= warm);
  const half = Math.floor(loaded.length / 2);
  const summary = {
    minutes: MINUTES,
    target_rate: RATE,
    achieved_rate: Math.round(result.rate ?? 0),
    connections: result.count,
    failed_connections: result.errors,
    first_errno: result.errno ?? null,
    client_exit: code,
    churn_apps: churned,
    churn_failures: churnFailures.length,
    apps_left_listed: leftover,
    daemon_fds: fds,
    daemon_rss_mb: rss,
    under_load_from_s: warm,
    daemon_fds_under_load: stats(loaded.map((s) => s.fds)),
    daemon_rss_mb_under_load: {
      ...stats(loaded.map((s) => s.rss_mb)),
      median_first_half: median(loaded.slice(0, half).map((s) => s.rss_mb)),
      median_second_half: median(loaded.slice(half).map((s) => s.rss_mb)),
    },
  };
  const out = {
    date: new Date().toISOString(),
    commit,
    machine: machine(),
    summary,
    churn_failures: churnFailures.slice(0, 20),
    samples,
  };
  writeFileSync(values.out, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nsoak: ${JSON.stringify(summary, null, 2)}\nwritten to ${values.out}`);
  const ok = code === 0 && result.errors === 0 && churnFailures.length === 0 && leftover.length === 0;
  if (!ok) console.error("soak: FAILED (see the summary above)");
  return ok ? 0 : 1;
}

cleanupOnExit();
main()
  .then((code) => {
    cleanup();
    process.exit(code);
  })
  .catch((err: unknown) => {
    console.error(`soak: ${err instanceof Error ? err.message : String(err)}`);
    cleanup();
    process.exit(1);
  });
