// The measures that compare paths: each starts its server on every path, then runs its
// client `runs` times per path, alternating between paths (the order rotates every run so
// that no path always goes first), and keeps every run's value. A client that fails or
// does not complete its count is retried once, then recorded as a failure. On the
// sockswitch path the daemon's CPU use over each client run is kept too (daemon_cpu_pct).
//
//   throughput  iperf3, one TCP stream, Gbit/s (receiver side)
//   rr          netbench rr: 1-byte request/reply on one open connection, per second
//   crr         netbench crr: connect, 1-byte request/reply, close; connections per second
//   redis       redis-benchmark SET and GET (50 clients), requests per second (their mean)
//   trap        trap-latency: socket() and connect() under sockswitch vs the same calls plain

import { readFileSync } from "node:fs";
import { type Proc, TOOLS } from "./env.js";
import { type Lab, PATH_NAMES, type Path, type PathName, PORTS } from "./paths.js";

export interface Settings {
  runs: number;
  /** Length of one timed client run (iperf3, rr, crr). */
  seconds: number;
  /** Upper bound on one crr run's connections. */
  crrMax: number;
  redisRequests: number;
  trapCount: number;
  /** Service counts for daemon_rss. */
  rssSteps: number[];
  /** Register/remove cycles of the cluster measure. */
  clusterSamples: number;
}

export type PerPath<T> = Record<PathName, T>;

/** A record with one value per path, each made by f. */
export function perPath<T>(f: () => T): PerPath<T> {
  return Object.fromEntries(PATH_NAMES.map((p) => [p, f()])) as PerPath<T>;
}

export interface PairResult {
  unit: string;
  runs: PerPath<number[]>;
  /** Extra numbers per run (e.g. redis SET and GET separately). */
  detail: PerPath<Array<Record<string, number>>>;
}

export interface Failure {
  measure: string;
  path: string;
  run: number;
  error: string;
}

interface Parsed {
  value: number;
  detail?: Record<string, number>;
}

export interface PairMeasure {
  key: string;
  unit: string;
  server: { argv: string[]; ready: RegExp };
  client(target: string, s: Settings): string[];
  parse(stdout: string): Parsed;
  timeoutMs(s: Settings): number;
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux architecture Node runs on. */
const CLK_TCK = 100;

function json(stdout: string): Record<string, unknown> {
  const line = stdout.trim().split("\n").filter(Boolean).pop() ?? "";
  return JSON.parse(line) as Record<string, unknown>;
}

/** netbench's result line, checked: no error, a real count. */
function netbench(stdout: string): Parsed {
  const r = json(stdout) as { count: number; rate: number; errors: number; errno?: string };
  if (r.errors !== 0 || r.count <= 0) throw new Error(`incomplete run: ${stdout.trim()}`);
  return { value: r.rate, detail: { count: r.count } };
}

const netbenchServer = { argv: [TOOLS.netbench, "server", String(PORTS.netbench)], ready: /^listening/m };

/** The measures; redisDir is the redis server's working directory (a temp dir). */
export function pairMeasures(redisDir: string): PairMeasure[] {
  return [
    {
      key: "throughput",
      unit: "Gbit/s",
      server: {
        argv: ["iperf3", "-s", "-p", String(PORTS.iperf), "--forceflush"],
        ready: /Server listening/,
      },
      client: (t, s) => [
        "iperf3",
        "-c",
        t,
        "-p",
        String(PORTS.iperf),
        "-t",
        String(Math.max(1, Math.round(s.seconds))),
        "-J",
      ],
      parse(stdout) {
        const r = JSON.parse(stdout) as {
          error?: string;
          end?: { sum_received?: { bits_per_second: number; bytes: number } };
        };
        const sum = r.end?.sum_received;
        if (r.error || !sum || sum.bytes <= 0) throw new Error(`iperf3: ${r.error ?? "no result"}`);
        return { value: sum.bits_per_second / 1e9, detail: { bytes: sum.bytes } };
      },
      timeoutMs: (s) => s.seconds * 1000 + 20_000,
    },
    {
      key: "rr",
      unit: "transactions/s",
      server: netbenchServer,
      client: (t, s) => [TOOLS.netbench, "rr", t, String(PORTS.netbench), String(s.seconds)],
      parse: netbench,
      timeoutMs: (s) => s.seconds * 1000 + 20_000,
    },
    {
      key: "crr",
      unit: "connections/s",
      server: netbenchServer,
      client: (t, s) => [
        TOOLS.netbench,
        "crr",
        t,
        String(PORTS.netbench),
        String(s.seconds),
        String(s.crrMax),
      ],
      parse: netbench,
      timeoutMs: (s) => s.seconds * 1000 + 20_000,
    },
    {
      key: "redis",
      unit: "requests/s",
      server: {
        argv: [
          "redis-server",
          "--port",
          String(PORTS.redis),
          "--bind",
          "0.0.0.0",
          "--protected-mode",
          "no",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          redisDir,
        ],
        ready: /Ready to accept connections/,
      },
      client: (t, s) => {
        const n = String(s.redisRequests);
        return [
          "redis-benchmark",
          "-h",
          t,
          "-p",
          String(PORTS.redis),
          "-t",
          "set,get",
          "-n",
          n,
          "-c",
          "50",
          "--csv",
        ];
      },
      parse(stdout) {
        const rps = (test: string): number => {
          const m = new RegExp(`^"${test}","([\\d.]+)"`, "m").exec(stdout);
          if (!m) throw new Error(`redis-benchmark printed no ${test} result: ${stdout.slice(-300)}`);
          return Number(m[1]);
        };
        const set = rps("SET");
        const get = rps("GET");
        return { value: (set + get) / 2, detail: { set, get } };
      },
      timeoutMs: (s) => 60_000 + s.redisRequests / 5,
    },
  ];
}

/** User+system CPU time of a process so far, in seconds (/proc/PID/stat, fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Rotates the path order by run number: run 0 host first, run 1 bridge first, … */
export function order<T>(items: readonly T[], run: number): T[] {
  const k = run % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function attempt<T>(f: () => Promise<T>, onFail: (err: unknown) => void): Promise<T | null> {
  for (let i = 0; i < 2; i++) {
    try {
      return await f();
    } catch (err) {
      if (i === 1) onFail(err);
    }
  }
  return null;
}

export type Progress = (line: string) => void;

export async function runPair(
  m: PairMeasure,
  lab: Lab,
  s: Settings,
  failures: Failure[],
  progress: Progress,
): Promise<PairResult> {
  const servers: Proc[] = [];
  const result: PairResult = {
    unit: m.unit,
    runs: perPath(() => []),
    detail: perPath(() => []),
  };
  const names = PATH_NAMES.filter((n) => lab.paths[n] !== undefined);
  try {
    for (const name of names) {
      const p = lab.paths[name] as Path;
      servers.push(await p.server(`${m.key} server (${name})`, m.server.argv, m.server.ready));
    }
    for (let run = 0; run < s.runs; run++) {
      for (const name of order(names, run)) {
        const p = lab.paths[name] as Path;
        const r = await attempt(
          async () => {
            const daemon = p.daemonPid;
            const cpu0 = daemon === undefined ? 0 : cpuSeconds(daemon);
            const t0 = performance.now();
            const out = await p.client(`${m.key} client (${name})`, m.client(p.target, s), m.timeoutMs(s));
            const parsed = m.parse(out);
            if (daemon !== undefined) {
              // How busy the daemon was over the client's run (its start-up included).
              const pct = (100 * (cpuSeconds(daemon) - cpu0)) / ((performance.now() - t0) / 1000);
              parsed.detail = { ...parsed.detail, daemon_cpu_pct: Math.round(pct) };
            }
            return parsed;
          },
          (err) => failures.push({ measure: m.key, path: name, run, error: String(err).slice(0, 500) }),
        );
        if (r) {
          result.runs[name].push(r.value);
          result.detail[name].push(r.detail ?? {});
        }
        progress(`${m.key} run ${run + 1}/${s.runs} ${name}: ${r ? r.value.toPrecision(4) : "failed"}`);
      }
    }
  } finally {
    await Promise.all(servers.map((p) => p.stop()));
  }
  return result;
}

export interface TrapRun {
  socket_p50_us: number;
  socket_p99_us: number;
  connect_p50_us: number;
  connect_p99_us: number;
  socket_mean_us: number;
  connect_mean_us: number;
}

/** notif-rtt: the kernel's round trip for a trapped call answered by a minimal C supervisor. */
export interface FloorRun {
  sync_wake_up: boolean;
  send_p50_us: number;
  send_p99_us: number;
  addfd_p50_us: number;
  addfd_p99_us: number;
}

export interface TrapResult {
  plain: TrapRun[];
  trapped: TrapRun[];
  floor: FloorRun[];
}

/** socket()+connect() latency: the same client, plain and under sockswitch, to one plain server. */
export async function runTrap(
  lab: Lab,
  s: Settings,
  failures: Failure[],
  progress: Progress,
): Promise<TrapResult> {
  const result: TrapResult = { plain: [], trapped: [], floor: [] };
  const sides = [
    { key: "plain", path: lab.trap.plain },
    { key: "trapped", path: lab.trap.trapped },
  ] as const;
  const servers: Proc[] = [];
  try {
    servers.push(await lab.trap.plain.server("trap server", netbenchServer.argv, netbenchServer.ready));
    for (let run = 0; run < s.runs; run++) {
      for (const { key, path } of order(sides, run)) {
        const argv = [TOOLS.trap, path.target, String(PORTS.netbench), String(s.trapCount)];
        const r = await attempt(
          async () => {
            const out = json(await path.client(`trap client (${key})`, argv, 120_000));
            if (out.errors !== 0 || out.count !== s.trapCount)
              throw new Error(`incomplete run: ${JSON.stringify(out)}`);
            return out as unknown as TrapRun;
          },
          (err) => failures.push({ measure: "trap", path: key, run, error: String(err).slice(0, 500) }),
        );
        if (r) result[key].push(r);
        progress(
          `trap run ${run + 1}/${s.runs} ${key}: ${r ? `connect p50 ${r.connect_p50_us} us` : "failed"}`,
        );
      }
      const f = await attempt(
        async () => {
          const argv = [TOOLS.rtt, String(s.trapCount)];
          const out = json(await lab.trap.plain.client("notif-rtt", argv, 120_000));
          return { ...out, sync_wake_up: out.sync_wake_up === 1 } as unknown as FloorRun;
        },
        (err) => failures.push({ measure: "trap", path: "floor", run, error: String(err).slice(0, 500) }),
      );
      if (f) result.floor.push(f);
      progress(`trap run ${run + 1}/${s.runs} floor: ${f ? `addfd p50 ${f.addfd_p50_us} us` : "failed"}`);
    }
  } finally {
    await Promise.all(servers.map((p) => p.stop()));
  }
  return result;
}
