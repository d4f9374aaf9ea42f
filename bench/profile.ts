// Summarises a V8 CPU profile (`node --cpu-prof`, e.g. the daemon's from
// `npm run bench -- --only crr --cpu-prof DIR`): the functions with the most self time.
//   npx tsx bench/profile.ts FILE.cpuprofile [TOP]

import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { ROOT } from "./env.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function topSelf(p: CpuProfile, top: number): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id)?.callFrame;
    const where = f?.url ? `${relative(ROOT, f.url.replace(/^file:\/\//, ""))}:${f.lineNumber + 1}` : "";
    const key = `${f?.functionName || "(anonymous)"}${where ? `  ${where}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  const idle = self.get("(idle)") ?? 0;
  const busy = total - idle;
  const rows = [...self.entries()].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]);
  const lines = [
    `profile: ${(total / 1e6).toFixed(1)} s sampled, busy ${(busy / 1e6).toFixed(1)} s (${((100 * busy) / total).toFixed(0)}%)`,
    "self ms   % busy  function",
  ];
  for (const [k, us] of rows.slice(0, top)) {
    lines.push(`${(us / 1000).toFixed(0).padStart(7)}  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`);
  }
  return lines.join("\n");
}

if (process.argv[1]?.endsWith("profile.ts")) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: tsx bench/profile.ts FILE.cpuprofile [TOP]\n");
    process.exit(2);
  }
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  process.stdout.write(`${topSelf(p, Number(process.argv[3] ?? 25))}\n`);
}
