// `-o table|wide|json|yaml`: one renderer for every resource. Tables use the columns of
// columns.ts; json and yaml print the API's shape ({"items": [...]}); yaml comes from the
// `yaml` package, loaded only when asked for.

import { InvalidArgumentError } from "../core/errors.js";
import { COLUMNS, type Resource } from "./columns.js";
import { table } from "./format.js";

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

/** Rows of a table (no header when header is false: -w prints rows as they change). */
export function renderRows(
  resource: Resource,
  items: readonly unknown[],
  wide: boolean,
  header = true,
): string {
  const cols = COLUMNS[resource].filter((c) => wide || !c.wide);
  const rows = items.map((i) => cols.map((c) => c.value(i as never)));
  const text = table(
    cols.map((c) => c.header),
    rows,
  );
  return header ? text : text.split("\n").slice(1).join("\n");
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
