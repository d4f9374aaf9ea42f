// `-o table|wide|json|yaml`: one renderer for every resource. Tables use the columns of
// columns.ts; json and yaml print the API's shape ({"items": [...]}); yaml comes from the
// `yaml` package, loaded only when asked for.

import { InvalidArgumentError } from "../core/errors.js";
import { COLUMNS, type Resource } from "./columns.js";
import { StreamTable, table } from "./format.js";

export const FORMATS = ["table", "wide", "json", "yaml"] as const;
export type Format = (typeof FORMATS)[number];

export function parseFormat(text: string): Format {
  if ((FORMATS as readonly string[]).includes(text)) return text as Format;
  throw new InvalidArgumentError(`-o "${text}" is not an output format; use ${FORMATS.join(", ")}`);
}

/** A value as a document of the format (json: indented; yaml: a YAML document). */
export async function renderDocument(value: unknown, format: "json" | "yaml"): Promise<string> {
  if (format === "json") return JSON.stringify(value, null, 2);
  const { stringify } = await import("yaml");
  return stringify(value).trimEnd();
}

/** Rows of a table, header first. */
export function renderRows(resource: Resource, items: readonly unknown[], wide: boolean): string {
  const cols = COLUMNS[resource].filter((c) => wide || !c.wide);
  return table(
    cols.map((c) => c.header),
    items.map((i) => cols.map((c) => c.value(i as never))),
  );
}

/**
 * `get -w`: the list as it is, then a row per change under the same columns (StreamTable:
 * the widths of the list's rows, widened by a wider value from that row on, as `kubectl
 * get -w` does). list(): the first output (the header with the rows, or "No … found.");
 * row(item): one changed item's line (the header before it if the list was empty).
 */
export function watchRows(
  resource: Resource,
  items: readonly unknown[],
  wide: boolean,
): { list(): string; row(item: unknown): string } {
  const cols = COLUMNS[resource].filter((c) => wide || !c.wide);
  const cells = (i: unknown): string[] => cols.map((c) => c.value(i as never));
  const rows = items.map(cells);
  const t = new StreamTable(
    cols.map((c) => c.header),
    cols.map((_, k) => rows.reduce((w, r) => Math.max(w, (r[k] as string).length), 0)),
  );
  let headed = items.length > 0;
  return {
    list: () =>
      items.length === 0 ? `No ${resource} found.` : [t.header(), ...rows.map((r) => t.row(r))].join("\n"),
    row: (item) => {
      const line = t.row(cells(item));
      if (headed) return line;
      headed = true;
      return `${t.header()}\n${line}`;
    },
  };
}

export async function renderList(
  resource: Resource,
  items: readonly unknown[],
  format: Format,
): Promise<string> {
  if (format === "json" || format === "yaml") return renderDocument({ items }, format);
  if (items.length === 0) return `No ${resource} found.`;
  return renderRows(resource, items, format === "wide");
}
