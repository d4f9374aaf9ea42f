// `npm run bench`: builds the paths (host, bridge, sockswitch, and its two bpf paths) on this machine,
// measures each, alternating between paths, and writes the results:
//   <out>.json  (default bench/results/latest.json)   every run's values, medians, ratios
//   <out>.svg   the ratios chart, drawn from the JSON
//   <out>.md    the table in Markdown, for READMEs
// and prints the table. Options:
//   --quick           about two minutes (3 runs of 2 s) instead of the full run
//   --out FILE        where the JSON goes
//   --runs N          runs per path
//   --only a,b        some of: throughput, rr, crr, redis, trap, fairness, daemon_rss, cluster
//   --commit REF      measure a clean build of that commit (made in bench/build/), not the work tree
//   --cpu-prof DIR    run the sockswitch daemon under `node --cpu-prof` (profile in DIR; summary:
//                     npx tsx bench/profile.ts DIR/*.cpuprofile); the profiler's ticks slow it
//   --daemon-node-options "..."  more node options for the daemon (e.g. --perf-basic-prof)
//   --from-json FILE  measure nothing: redraw table, chart and Markdown from a JSON file
//   --smoke           tiny counts, to check that the harness still works (bench/smoke.test.ts)
// The output of every process it ran is kept in bench/results/tmp/ (not committed).
// Everything it makes (namespaces, veths, bridge, nft table, processes, temp dirs) is
// removed at the end, also on failure or Ctrl-C.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ratiosSvg } from "./chart.js";
import { type ClusterResult, measureCluster } from "./cluster.js";
import { BENCH, cleanup, cleanupOnExit, keepLogs, machine, prepare, tempDir } from "./env.js";
import { type FairnessRun, runFairness } from "./fairness.js";
import {
  type Failure,
  type PairResult,
  pairMeasures,
  runPair,
  runTrap,
  type Settings,
  type TrapResult,
} from "./measures.js";
import { buildLab } from "./paths.js";
import { ofCommit, workTree } from "./product.js";
import { buildReport, markdownTable, type PairKey, type Report, terminalTable } from "./report.js";
import { measureRss, type RssStep } from "./rss.js";

const ALL = ["throughput", "rr", "crr", "redis", "trap", "daemon_rss", "cluster", "fairness"];

const MODES: Record<string, Settings> = {
  full: {
    runs: 5,
    seconds: 5,
    crrMax: 1_000_000,
    redisRequests: 200_000, // about 5 s per test at this machine's rate, as long as the other measures' runs
    trapCount: 20_000,
    rssSteps: [0, 1000, 10_000],
    clusterSamples: 100,
  },
  quick: {
    runs: 3,
    seconds: 2,
    crrMax: 1_000_000,
    redisRequests: 20_000,
    trapCount: 5_000,
    rssSteps: [0, 1000, 10_000],
    clusterSamples: 30,
  },
  smoke: {
    runs: 1,
    seconds: 0.3,
    crrMax: 200,
    redisRequests: 200,
    trapCount: 50,
    rssSteps: [0, 10],
    clusterSamples: 3,
  },
};

function outputs(report: Report, out: string): void {
  mkdirSync(dirname(out), { recursive: true });
  const base = out.replace(/\.json$/, "");
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.svg`, ratiosSvg(report));
  writeFileSync(`${base}.md`, markdownTable(report));
  process.stdout.write(`${terminalTable(report)}\n\nwrote ${out}, ${base}.svg, ${base}.md\n`);
}

async function main(): Promise<number> {
  const { values: o } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      out: { type: "string", default: join(BENCH, "results", "latest.json") },
      runs: { type: "string" },
      only: { type: "string" },
      commit: { type: "string" },
      "cpu-prof": { type: "string" },
      "daemon-node-options": { type: "string" },
      "from-json": { type: "string" },
    },
  });
  const out = resolve(o.out);
  if (o["from-json"]) {
    outputs(JSON.parse(readFileSync(o["from-json"], "utf8")) as Report, out);
    return 0;
  }
  const mode = o.smoke ? "smoke" : o.quick ? "quick" : "full";
  const settings = { ...(MODES[mode] as Settings) };
  if (o.runs) settings.runs = Math.max(1, Number.parseInt(o.runs, 10) || 1);
  const only = o.only ? o.only.split(",").map((s) => s.trim()) : ALL;
  const unknown = only.filter((m) => !ALL.includes(m));
  if (unknown.length)
    throw new Error(`--only: unknown measure(s) ${unknown.join(", ")}; use ${ALL.join(", ")}`);

  const t0 = Date.now();
  const progress = (line: string): void => {
    process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  };
  cleanupOnExit();
  keepLogs(join(BENCH, "results", "tmp"));
  const product = o.commit ? ofCommit(o.commit, progress) : workTree();
  prepare(product.root);
  const info = machine();
  const failures: Failure[] = [];
  const pairs: Partial<Record<PairKey, PairResult>> = {};
  let trap: TrapResult | null = null;
  let rss: RssStep[] | null = null;
  let cluster: ClusterResult | null = null;
  let fairness: FairnessRun[] | null = null;
  const skipped: string[] = [];
  try {
    const nodeFlags = (o["daemon-node-options"] ?? "").split(" ").filter(Boolean);
    if (o["cpu-prof"]) {
      const dir = resolve(o["cpu-prof"]);
      mkdirSync(dir, { recursive: true });
      nodeFlags.push("--cpu-prof", "--cpu-prof-dir", dir);
    }
    const pairsWanted = only.some((k) => k !== "cluster" && k !== "daemon_rss");
    const lab = pairsWanted ? await buildLab(product.cli, nodeFlags) : null;
    progress(`paths ready (${mode}: ${settings.runs} runs per path)`);
    for (const why of lab?.skipped ?? []) {
      skipped.push(why);
      progress(`not measured: ${why}`);
    }
    // trap before crr: crr leaves tens of thousands of TIME_WAIT sockets behind, which slow
    // down the port search of every connect() in that namespace for a minute.
    const measures = new Map(pairMeasures(tempDir()).map((m) => [m.key, m]));
    for (const key of ["throughput", "rr", "trap", "fairness", "crr", "redis"].filter((k) =>
      only.includes(k),
    )) {
      if (!lab) break;
      const m = measures.get(key);
      if (m) pairs[key as PairKey] = await runPair(m, lab, settings, failures, progress);
      else if (key === "fairness") fairness = await runFairness(lab, settings, failures, progress);
      else trap = await runTrap(lab, settings, failures, progress);
    }
    // A clean exit (SIGTERM) lets `node --cpu-prof` write its profile.
    await lab?.daemon.proc.stop(15_000);
    await lab?.bpfDaemon?.proc.stop(15_000);
    if (only.includes("daemon_rss")) rss = await measureRss(product.cli, settings.rssSteps, progress);
    if (only.includes("cluster")) {
      try {
        cluster = await measureCluster(settings.clusterSamples, progress);
      } catch (err) {
        failures.push({ measure: "cluster", path: "sockswitch", run: 0, error: String(err) });
      }
    }
  } finally {
    cleanup();
  }
  const sockswitch = { commit: product.commit, dirty: product.dirty };
  const report = buildReport({
    machine: info,
    sockswitch,
    mode,
    settings,
    pairs,
    trap,
    rss,
    cluster,
    fairness,
    failures,
    skipped,
  });
  outputs(report, out);
  progress("done");
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    cleanup();
    process.exit(1);
  },
);
