// Turns the TAP output of the real-application suite into the README's table: one row per
// application with its Debian package versions (from the tests' "packages:" diagnostics)
// and its result on the IPv4-only and the dual-stack node.
//
//   sudo npm run test:apps > apps.tap; npx tsx scripts/apps-table.ts apps.tap

import { readFileSync } from "node:fs";

interface Row {
  packages: string;
  ipv4?: string;
  dual?: string;
}

const file = process.argv[2];
if (!file) {
  console.error("usage: tsx scripts/apps-table.ts TAP-FILE (the output of npm run test:apps)");
  process.exit(2);
}
const rows = new Map<string, Row>();
let last: Row | undefined;
for (const line of readFileSync(file, "utf8").split("\n")) {
  // node's TAP reporter prints a test's diagnostics after its result line.
  const diag = /^\s*# packages: (.*)$/.exec(line);
  if (diag && last) last.packages = diag[1] as string;
  const result = /^(not ok|ok) \d+ - (.+) \((IPv4-only|dual-stack) node\)(?: # SKIP (.*))?$/.exec(line);
  if (!result) continue;
  const [, status, app, shape, skip] = result as unknown as [string, string, string, string, string?];
  const row = rows.get(app) ?? { packages: "" };
  const cell = skip !== undefined ? `skipped: ${skip}` : status === "ok" ? "pass" : "**FAIL**";
  if (shape === "IPv4-only") row.ipv4 = cell;
  else row.dual = cell;
  rows.set(app, row);
  last = row;
}
console.log("| application | Debian packages | IPv4-only node | dual-stack node |");
console.log("| --- | --- | --- | --- |");
for (const [app, r] of rows) console.log(`| ${app} | ${r.packages} | ${r.ipv4 ?? "–"} | ${r.dual ?? "–"} |`);
