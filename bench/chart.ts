// The ratios chart (bench/results/ratios.svg), drawn from the report alone: for each
// measure, one horizontal bar per path (bridge, sockswitch and, where measured, its two bpf
// paths) ÷ host, on one scale with a
// line at 1.0 (the host path). Plain SVG text, no dependencies.

import { machineLine, PAIR_KEYS, type Report } from "./report.js";

const W = 760;
const LEFT = 150;
const RIGHT = 70;
const TOP = 76;
const BAR = 18;
const GAP = 4;
const BARS = ["bridge", "sockswitch", "sockswitch_bpf", "sockswitch_bpf_host"] as const;
const GROUP = BARS.length * (BAR + GAP) + 18;
const COLORS = {
  bridge: "#8c8c8c",
  sockswitch: "#2a7ab0",
  sockswitch_bpf: "#3f9d5a",
  sockswitch_bpf_host: "#a3d08a",
} as const;
const LEGEND = {
  bridge: "bridge (veth, Linux bridge, NAT: Docker's default)",
  sockswitch: "sockswitch (seccomp datapath)",
  sockswitch_bpf: "sockswitch --datapath bpf",
  sockswitch_bpf_host: "sockswitch --datapath bpf, --new-netns=false",
} as const;
const LABELS: Record<string, string> = {
  throughput: "throughput (1 stream)",
  rr: "request/response",
  crr: "connect/req/close",
  redis: "redis GET/SET",
};

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function ratiosSvg(r: Report): string {
  const keys = PAIR_KEYS.filter((k) => r.ratios[k]);
  const values = keys.flatMap((k) => BARS.map((b) => r.ratios[k]?.[`${b}_vs_host`]));
  const max = Math.max(1.2, ...values.map((v) => (typeof v === "number" ? v : 0))) * 1.05;
  const plot = W - LEFT - RIGHT;
  const x = (v: number): number => Math.round((LEFT + (v / max) * plot) * 10) / 10;
  const height = TOP + keys.length * GROUP + 30 + 18 * BARS.length + 20;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Paths compared with the host path (ratio of medians, higher is better)</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(`${r.runs} runs per path, alternating; ${r.date.slice(0, 10)}`)}</text>`,
  ];
  for (let t = 0; t <= max; t += max > 3 ? 1 : 0.25) {
    out.push(
      `<line x1="${x(t)}" y1="${TOP - 6}" x2="${x(t)}" y2="${TOP + keys.length * GROUP}" stroke="#eee"/>`,
      `<text x="${x(t)}" y="${TOP + keys.length * GROUP + 14}" text-anchor="middle" fill="#777">${t.toFixed(2)}</text>`,
    );
  }
  keys.forEach((k, i) => {
    const y0 = TOP + i * GROUP;
    out.push(`<text x="${LEFT - 8}" y="${y0 + BAR + 4}" text-anchor="end">${esc(LABELS[k] ?? k)}</text>`);
    BARS.forEach((path, j) => {
      const v = r.ratios[k]?.[`${path}_vs_host`];
      const y = y0 + j * (BAR + GAP);
      if (typeof v !== "number") {
        out.push(`<text x="${LEFT + 4}" y="${y + BAR - 5}" fill="#a00">${path}: no result</text>`);
        return;
      }
      out.push(
        `<rect x="${LEFT}" y="${y}" width="${Math.max(1, x(v) - LEFT)}" height="${BAR}" fill="${COLORS[path]}"/>`,
        `<text x="${x(v) + 4}" y="${y + BAR - 5}">${v.toFixed(2)}×</text>`,
      );
    });
  });
  const one = x(1);
  out.push(
    `<line x1="${one}" y1="${TOP - 10}" x2="${one}" y2="${TOP + keys.length * GROUP}" stroke="#c33" stroke-dasharray="4 3"/>`,
    `<text x="${one}" y="${TOP - 14}" text-anchor="middle" fill="#c33">host = 1.0</text>`,
  );
  const ly = TOP + keys.length * GROUP + 30;
  BARS.forEach((b, j) => {
    out.push(
      `<rect x="${LEFT}" y="${ly + 18 * j - 10}" width="12" height="12" fill="${COLORS[b]}"/>`,
      `<text x="${LEFT + 18}" y="${ly + 18 * j}">${esc(LEGEND[b])} ÷ host</text>`,
    );
  });
  out.push(
    `<text x="${W / 2}" y="${ly + 18 * BARS.length + 6}" text-anchor="middle" fill="#777" font-size="11">${esc(machineLine(r))}</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
