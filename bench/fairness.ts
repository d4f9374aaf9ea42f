// The fairness measure: does one app that floods the daemon slow down another?
//
// A victim app (trap-latency under `sockswitch run`: socket() + connect() to a plain
// server, one round at a time) runs alone, then while another app (flood: socket() +
// close() as fast as it can, also under `sockswitch run`) keeps the daemon busy. Both in
// the daemon's namespace, to the trap measure's plain server (an egress address: nothing
// trapped on the server side). Per run: the victim's p99 of one socket()+connect() alone
// and during the flood, and their ratio; the report takes medians over runs
// (metrics.fairness). The flood's own call rate is kept too, to show it was flooding.

import { type Proc, start, TOOLS, waitFor } from "./env.js";
import type { Failure, Progress, Settings } from "./measures.js";
import { type Lab, PORTS, runArgv } from "./paths.js";

export interface FairnessRun {
  alone_p50_us: number;
  alone_p99_us: number;
  flood_p50_us: number;
  flood_p99_us: number;
  ratio: number;
  /** The flooding app's socket()+close() rounds per second while the victim ran. */
  flood_rate: number;
}

interface VictimRun {
  pair_p50_us: number;
  pair_p99_us: number;
}

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n").filter(Boolean).pop() ?? "") as Record<string, unknown>;
}

async function victim(lab: Lab, count: number): Promise<VictimRun> {
  const argv = [TOOLS.trap, lab.trap.trapped.target, String(PORTS.netbench), String(count)];
  const out = lastJson(await lab.trap.trapped.client("fairness victim", argv, 120_000));
  if (out.errors !== 0 || out.count !== count)
    throw new Error(`incomplete victim run: ${JSON.stringify(out)}`);
  return out as unknown as VictimRun;
}

/** Victim alone, then during a flood; every run. */
export async function runFairness(
  lab: Lab,
  s: Settings,
  failures: Failure[],
  progress: Progress,
): Promise<FairnessRun[]> {
  const runs: FairnessRun[] = [];
  const count = s.trapCount;
  const server = await lab.trap.plain.server(
    "fairness server",
    [TOOLS.netbench, "server", String(PORTS.netbench)],
    /^listening/m,
  );
  try {
    for (let run = 0; run < s.runs; run++) await oneRun(lab, count, run, s.runs, runs, failures, progress);
  } finally {
    await server.stop();
  }
  return runs;
}

/** One run: the victim alone, then during a flood; its result in runs, or a failure. */
async function oneRun(
  lab: Lab,
  count: number,
  run: number,
  total: number,
  runs: FairnessRun[],
  failures: Failure[],
  progress: Progress,
): Promise<void> {
  let flood: Proc | null = null;
  try {
    const alone = await victim(lab, count);
    // Long enough for the victim's run; stopped (SIGTERM) as soon as it is done.
    const argv = runArgv(lab.daemon, ["--name", "flood"], [TOOLS.flood, "300"]);
    const f = start("fairness flood", lab.daemon.ns, argv);
    flood = f;
    await waitFor("the flood to start", () => {
      if (!f.running) throw new Error(`flood exited: ${f.stderr.trim()}`);
      return f.stdout.includes("flooding");
    });
    const during = await victim(lab, count);
    await f.stop();
    const rate = Number(lastJson(f.stdout).rate);
    const r: FairnessRun = {
      alone_p50_us: alone.pair_p50_us,
      alone_p99_us: alone.pair_p99_us,
      flood_p50_us: during.pair_p50_us,
      flood_p99_us: during.pair_p99_us,
      ratio: during.pair_p99_us / alone.pair_p99_us,
      flood_rate: rate,
    };
    runs.push(r);
    progress(
      `fairness run ${run + 1}/${total}: p99 alone ${r.alone_p99_us} µs, during a flood of ` +
        `${Math.round(rate)}/s ${r.flood_p99_us} µs (${r.ratio.toFixed(2)}×)`,
    );
  } catch (err) {
    failures.push({ measure: "fairness", path: "sockswitch", run, error: String(err).slice(0, 500) });
    progress(`fairness run ${run + 1}/${total}: failed`);
  } finally {
    await flood?.stop();
  }
}
