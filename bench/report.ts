// From measured runs to the results: medians, ratios against the host path, the JSON file
// (bench/results/latest.json, shaped as the issue asks: metrics with medians and every
// run's values, ratios), a table on the terminal and the same table in Markdown for READMEs.

import Table from "cli-table3";
import type { ClusterResult } from "./cluster.js";
import type { FairnessRun } from "./fairness.js";
import type { Failure, FloorRun, PairResult, PerPath, Settings, TrapResult, TrapRun } from "./measures.js";
import { PATH_NAMES } from "./paths.js";
import type { RssStep } from "./rss.js";

export const PAIR_KEYS = ["throughput", "rr", "crr", "redis"] as const;
export type PairKey = (typeof PAIR_KEYS)[number];
const TRAP_KEYS = ["connect_p50_us", "connect_p99_us", "socket_p50_us", "socket_p99_us"] as const;

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Rounds to 4 significant digits (enough for noisy measurements, readable in JSON). */
export function round(x: number | null): number | null {
  return x === null || !Number.isFinite(x) ? null : Number(x.toPrecision(4));
}

const ratio = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : round(a / b);

export interface PairMetric {
  unit: string;
  host: number | null;
  bridge: number | null;
  sockswitch: number | null;
  "sockswitch-bpf": number | null;
  "sockswitch-bpf-host": number | null;
  per_run: PerPath<number[]>;
  [extra: string]: unknown;
}

export interface Report {
  machine: Record<string, unknown>;
  /** The commit measured; dirty when the work tree had changes of its own. */
  sockswitch: { commit: string; dirty: boolean };
  date: string;
  mode: string;
  runs: number;
  settings: Settings;
  metrics: Partial<Record<PairKey, PairMetric>> & {
    trap?: Record<string, unknown>;
    daemon_rss?: Record<string, unknown>;
    cluster?: Record<string, unknown>;
    fairness?: Record<string, unknown>;
  };
  ratios: Partial<Record<PairKey, Record<string, number | null>>>;
  failures: Failure[];
  /** Paths this machine could not build, and why (the bpf ones without BPF). */
  skipped?: string[];
}

function pairMetric(r: PairResult): PairMetric {
  const med = (p: (typeof PATH_NAMES)[number]): number | null => round(median(r.runs[p]));
  const m: PairMetric = {
    unit: r.unit,
    host: med("host"),
    bridge: med("bridge"),
    sockswitch: med("sockswitch"),
    "sockswitch-bpf": med("sockswitch-bpf"),
    "sockswitch-bpf-host": med("sockswitch-bpf-host"),
    per_run: Object.fromEntries(
      PATH_NAMES.map((p) => [p, r.runs[p].map((x) => round(x) as number)]),
    ) as PerPath<number[]>,
  };
  // Sub-results (redis: set and get) get medians of their own.
  const keys = new Set(PATH_NAMES.flatMap((p) => r.detail[p].flatMap((d) => Object.keys(d))));
  for (const k of keys) {
    if (k === "count" || k === "bytes") continue;
    m[k] = Object.fromEntries(
      PATH_NAMES.map((p) => [p, round(median(r.detail[p].map((d) => d[k] as number)))]),
    );
  }
  return m;
}

function trapMetric(t: TrapResult): Record<string, unknown> {
  const med = (runs: TrapRun[], k: keyof TrapRun): number | null => median(runs.map((r) => r[k]));
  const out: Record<string, unknown> = {
    unit: "µs",
    note: "added latency: trapped (under sockswitch) minus plain, medians over runs",
  };
  for (const k of TRAP_KEYS) {
    const a = med(t.trapped, k);
    const b = med(t.plain, k);
    out[k] = a === null || b === null ? null : round(a - b);
  }
  const side = (runs: TrapRun[]): Record<string, number | null> =>
    Object.fromEntries(
      [...TRAP_KEYS, "socket_mean_us", "connect_mean_us"].map((k) => [
        k,
        round(med(runs, k as keyof TrapRun)),
      ]),
    );
  out.plain = side(t.plain);
  out.trapped = side(t.trapped);
  if (t.floor.length) {
    const fm = (k: keyof FloorRun): number | null => round(median(t.floor.map((r) => r[k] as number)));
    out.floor = {
      note: "one trapped socket() answered by a minimal C supervisor (bench/tools/notif-rtt.c): SEND, and ADDFD+SEND",
      sync_wake_up: t.floor.every((r) => r.sync_wake_up),
      send_p50_us: fm("send_p50_us"),
      send_p99_us: fm("send_p99_us"),
      addfd_p50_us: fm("addfd_p50_us"),
      addfd_p99_us: fm("addfd_p99_us"),
    };
  }
  out.per_run = { plain: t.plain, trapped: t.trapped, floor: t.floor };
  return out;
}

function rssMetric(steps: RssStep[]): Record<string, unknown> {
  const out: Record<string, unknown> = { unit: "MB" };
  for (const s of steps) out[`services_${s.services}_mb`] = s.rss_mb;
  out.steps = steps;
  return out;
}

/** The q-quantile (nearest rank) of xs, or null. */
function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

function clusterMetric(c: ClusterResult): Record<string, unknown> {
  return {
    note: "propagation to the other nodes of a 3-host cluster on etcd, ms (see bench/cluster.ts)",
    hosts: c.hosts,
    samples: c.samples,
    register_p50_ms: quantile(c.register_ms, 0.5),
    register_p99_ms: quantile(c.register_ms, 0.99),
    remove_p50_ms: quantile(c.remove_ms, 0.5),
    remove_p99_ms: quantile(c.remove_ms, 0.99),
    per_sample: { register_ms: c.register_ms, remove_ms: c.remove_ms },
  };
}

function fairnessMetric(runs: FairnessRun[]): Record<string, unknown> {
  const med = (k: keyof FairnessRun): number | null => round(median(runs.map((r) => r[k])));
  const alone = med("alone_p99_us");
  const flood = med("flood_p99_us");
  return {
    unit: "µs",
    note:
      "a victim app's socket()+connect() p99 alone and while another app floods the daemon with " +
      "socket()+close() (bench/fairness.ts); ratio = flood_p99_us / alone_p99_us of the medians",
    alone_p99_us: alone,
    flood_p99_us: flood,
    ratio: ratio(flood, alone),
    alone_p50_us: med("alone_p50_us"),
    flood_p50_us: med("flood_p50_us"),
    flood_rate_per_s: med("flood_rate"),
    per_run: runs.map((r) => ({ ...r, ratio: round(r.ratio) })),
  };
}

export function buildReport(input: {
  machine: Record<string, unknown>;
  sockswitch: { commit: string; dirty: boolean };
  mode: string;
  settings: Settings;
  pairs: Partial<Record<PairKey, PairResult>>;
  trap: TrapResult | null;
  rss: RssStep[] | null;
  cluster?: ClusterResult | null;
  fairness?: FairnessRun[] | null;
  failures: Failure[];
  skipped?: string[];
}): Report {
  const report: Report = {
    machine: input.machine,
    sockswitch: input.sockswitch,
    date: new Date().toISOString(),
    mode: input.mode,
    runs: input.settings.runs,
    settings: input.settings,
    metrics: {},
    ratios: {},
    failures: input.failures,
    ...(input.skipped?.length ? { skipped: input.skipped } : {}),
  };
  for (const k of PAIR_KEYS) {
    const r = input.pairs[k];
    if (!r) continue;
    const m = pairMetric(r);
    report.metrics[k] = m;
    report.ratios[k] = {
      sockswitch_vs_host: ratio(m.sockswitch, m.host),
      bridge_vs_host: ratio(m.bridge, m.host),
      sockswitch_vs_bridge: ratio(m.sockswitch, m.bridge),
      sockswitch_bpf_vs_host: ratio(m["sockswitch-bpf"], m.host),
      sockswitch_bpf_host_vs_host: ratio(m["sockswitch-bpf-host"], m.host),
    };
  }
  if (input.trap) report.metrics.trap = trapMetric(input.trap);
  if (input.rss) report.metrics.daemon_rss = rssMetric(input.rss);
  if (input.cluster) report.metrics.cluster = clusterMetric(input.cluster);
  if (input.fairness?.length) report.metrics.fairness = fairnessMetric(input.fairness);
  return report;
}

const fmt = (x: unknown): string => {
  if (typeof x !== "number") return "–";
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return String(round(x));
};
const fmtRatio = (x: unknown): string => (typeof x === "number" ? `${x.toFixed(2)}×` : "–");

/** Rows of the main table: measure, unit, three medians, two ratios. */
function rows(r: Report): string[][] {
  const out: string[][] = [];
  for (const k of PAIR_KEYS) {
    const m = r.metrics[k];
    if (!m) continue;
    const q = r.ratios[k] ?? {};
    out.push([
      k,
      m.unit,
      fmt(m.host),
      fmt(m.bridge),
      fmt(m.sockswitch),
      fmt(m["sockswitch-bpf"]),
      fmt(m["sockswitch-bpf-host"]),
      fmtRatio(q.bridge_vs_host),
      fmtRatio(q.sockswitch_vs_host),
      fmtRatio(q.sockswitch_bpf_vs_host),
      fmtRatio(q.sockswitch_bpf_host_vs_host),
    ]);
  }
  return out;
}

function extraLines(r: Report): string[] {
  const lines: string[] = [];
  for (const path of ["sockswitch", "sockswitch-bpf", "sockswitch-bpf-host"] as const) {
    const cpu = PAIR_KEYS.flatMap((k) => {
      const v = (r.metrics[k]?.daemon_cpu_pct as Partial<Record<string, number>> | undefined)?.[path];
      return typeof v === "number" ? [`${k} ${v}%`] : [];
    });
    if (cpu.length)
      lines.push(`${path} daemon CPU during the client runs (100% = one core): ${cpu.join(", ")}`);
  }
  const t = r.metrics.trap as Record<string, Record<string, number> | number> | undefined;
  if (t) {
    const p = t.plain as Record<string, number>;
    const s = t.trapped as Record<string, number>;
    lines.push(
      `trap, added by sockswitch: connect() p50 ${fmt(t.connect_p50_us)} µs, p99 ${fmt(t.connect_p99_us)} µs; ` +
        `socket() p50 ${fmt(t.socket_p50_us)} µs, p99 ${fmt(t.socket_p99_us)} µs ` +
        `(plain connect p50 ${fmt(p.connect_p50_us)} µs → trapped ${fmt(s.connect_p50_us)} µs; ` +
        `plain socket p50 ${fmt(p.socket_p50_us)} µs → trapped ${fmt(s.socket_p50_us)} µs)`,
    );
    const f = t.floor as Record<string, number> | undefined;
    if (f)
      lines.push(
        `trap floor, the kernel's round trip with a C supervisor: answer p50 ${fmt(f.send_p50_us)} µs, ` +
          `answer with an fd (ADDFD) p50 ${fmt(f.addfd_p50_us)} µs`,
      );
  }
  const fa = r.metrics.fairness as Record<string, number> | undefined;
  if (fa)
    lines.push(
      `fairness: a victim app's socket()+connect() p99 ${fmt(fa.alone_p99_us)} µs alone, ` +
        `${fmt(fa.flood_p99_us)} µs while another app floods the daemon ` +
        `(${fmt(fa.flood_rate_per_s)} calls/s): ${fmtRatio(fa.ratio)}`,
    );
  const cl = r.metrics.cluster as Record<string, number> | undefined;
  if (cl) {
    lines.push(
      `cluster (3 hosts, etcd): registration reaches the other nodes in p50 ${fmt(cl.register_p50_ms)} ms, ` +
        `p99 ${fmt(cl.register_p99_ms)} ms; removal (app killed → gone everywhere) p50 ${fmt(cl.remove_p50_ms)} ms, ` +
        `p99 ${fmt(cl.remove_p99_ms)} ms (${cl.samples} cycles)`,
    );
  }
  const rss = r.metrics.daemon_rss as { steps?: RssStep[] } | undefined;
  if (rss?.steps) {
    lines.push(
      `daemon RSS: ${rss.steps.map((s) => `${s.services.toLocaleString("en-US")} services ${s.rss_mb} MB`).join(", ")}`,
    );
  }
  return lines;
}

/** The commit measured, "+changes" when the work tree differed from it. */
export function commitOf(r: Report): string {
  return r.sockswitch ? `${r.sockswitch.commit.slice(0, 12)}${r.sockswitch.dirty ? "+changes" : ""}` : "?";
}

export function machineLine(r: Report): string {
  const m = r.machine as Record<string, unknown>;
  const idle = m.cpuidle as Record<string, string> | undefined;
  const halt =
    idle && idle.guest_halt_poll_ns !== "unknown" ? `, guest_halt_poll_ns ${idle.guest_halt_poll_ns}` : "";
  return `${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB, Linux ${m.kernel}${halt}, ${m.os}, Node ${m.node}`;
}

const HEAD = [
  "measure",
  "unit",
  "host",
  "bridge",
  "sockswitch",
  "sockswitch-bpf",
  "sockswitch-bpf-host",
  "bridge ÷ host",
  "sockswitch ÷ host",
  "bpf ÷ host",
  "bpf-host ÷ host",
];

export function terminalTable(r: Report): string {
  const t = new Table({ head: HEAD, style: { head: [], border: [] } });
  for (const row of rows(r)) t.push(row);
  const fails = r.failures.length ? [`${r.failures.length} failed run(s): see "failures" in the JSON`] : [];
  for (const s of r.skipped ?? []) fails.push(`not measured: ${s}`);
  return [
    `medians of ${r.runs} runs (${r.mode}), sockswitch ${commitOf(r)}; ${machineLine(r)}`,
    t.toString(),
    ...extraLines(r),
    ...fails,
  ].join("\n");
}

export function markdownTable(r: Report): string {
  const lines = [
    `| ${HEAD.join(" | ")} |`,
    `|${HEAD.map((_, i) => (i < 2 ? " --- " : " ---: ")).join("|")}|`,
  ];
  for (const row of rows(r)) lines.push(`| ${row.join(" | ")} |`);
  return [
    `Medians of ${r.runs} runs, ${r.date.slice(0, 10)}, sockswitch ${commitOf(r)}, on ${machineLine(r)}.`,
    "",
    ...lines,
    "",
    ...extraLines(r).map((l) => `- ${l}`),
    "",
  ].join("\n");
}
