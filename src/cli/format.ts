// Output for people: tables in the style of `kubectl get` (upper-case headers, no borders,
// columns separated by spaces) and ages like 5s, 3m, 2h, 4d.

import { createRequire } from "node:module";

type TableCtor = typeof import("cli-table3");
let TableClass: TableCtor | null = null;

export function table(head: string[], rows: string[][]): string {
  // Loaded on first use: commands that print no table (errors included) start faster.
  TableClass ??= createRequire(import.meta.url)("cli-table3") as TableCtor;
  const t = new TableClass({
    head,
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "   ",
    },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  for (const r of rows) t.push(r);
  return t
    .toString()
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n");
}

/**
 * A table printed a row at a time (`sockswitch events`): the same columns as table(), each
 * but the last padded to the widest of its header, the minimum widths given and every value
 * so far, so that rows line up while values keep to those widths (a wider one widens its
 * column from that row on, as `kubectl get -w` does).
 */
export class StreamTable {
  private readonly widths: number[];

  constructor(
    private readonly head: string[],
    minWidths: number[] = [],
  ) {
    this.widths = head.slice(0, -1).map((h, i) => Math.max(h.length, minWidths[i] ?? 0));
  }

  /** The header line. */
  header(): string {
    return this.line(this.head);
  }

  /** One row's line. */
  row(cells: string[]): string {
    return this.line(cells);
  }

  private line(cells: string[]): string {
    return cells
      .map((c, i) => {
        if (i >= this.widths.length) return c;
        this.widths[i] = Math.max(this.widths[i] as number, c.length);
        return c.padEnd(this.widths[i] as number);
      })
      .join("   ")
      .trimEnd();
  }
}

export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function labelsText(labels: Record<string, string>): string {
  const t = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return t === "" ? "<none>" : t;
}
/**
 * A publish rule as `docker ps` shows one, [HOST_IP:]HOST_PORT->APP_PORT[/proto], from the
 * API's --expose order APP_PORT:[HOST_IP:]HOST_PORT[/proto] ("8080:127.0.0.1:18080" →
 * "127.0.0.1:18080->8080").
 */
export function publishText(expose: string): string {
  const slash = expose.lastIndexOf("/");
  const rule = slash >= 0 ? expose.slice(0, slash) : expose;
  const first = rule.indexOf(":");
  return `${rule.slice(first + 1)}->${rule.slice(0, first)}${slash >= 0 ? expose.slice(slash) : ""}`;
}
