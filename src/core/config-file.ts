// The daemon's configuration file: YAML (the `yaml` package), one mapping whose keys are
// the daemon's long options without "--" (daemon-options.ts), e.g.
//
//   node-ip: [192.0.2.10, "2001:db8::10"]
//   ports: 40000-60000
//   dns-servers: [192.0.2.53]
//   log-level: info
//
// A value is a string or number, a boolean for an on/off option, or a list where the
// option takes several (joined with "," as on the command line). An unknown key, a value
// of the wrong type, or a file that is not YAML is one sentence naming the file and the
// key. The default file (/etc/sockswitch/config.yaml) may be missing; a file given with
// --config must exist. Values are checked like flags, by daemon-config.ts.

import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { DAEMON_OPTIONS, DEFAULT_CONFIG_FILE, type OptionValues } from "./daemon-options.js";
import { InvalidArgumentError } from "./errors.js";

const MAX_BYTES = 1024 * 1024;

function closest(key: string): string | undefined {
  const keys = DAEMON_OPTIONS.map((o) => o.key);
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, "");
  return keys.find((k) => norm(k) === norm(key));
}

/**
 * Reads the configuration file. `path` undefined: the default file, if it exists.
 * Returns the values it sets (keys as in DAEMON_OPTIONS) and the path read (null: none).
 */
export function readConfigFile(path: string | undefined): { values: OptionValues; file: string | null } {
  const file = path ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (path === undefined && code === "ENOENT") return { values: {}, file: null };
    throw new InvalidArgumentError(
      `cannot read the configuration file ${file}: ${code ?? String(err)}${code === "ENOENT" ? "; check --config" : ""}`,
    );
  }
  return { values: parseConfigText(text, file), file };
}

/** The values of a configuration file's text; `file` names it in errors. */
export function parseConfigText(text: string, file: string): OptionValues {
  if (Buffer.byteLength(text) > MAX_BYTES)
    throw new InvalidArgumentError(`${file}: the configuration file is larger than 1 MiB`);
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e?.linePos?.[0]?.line;
    throw new InvalidArgumentError(
      `${file}${line ? ` line ${line}` : ""}: not valid YAML (${e?.message.split("\n")[0]}); write one "key: value" per line`,
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data))
    throw new InvalidArgumentError(
      `${file}: the configuration must be a mapping of option names to values (e.g. "ports: 40000-60000")`,
    );
  const out: OptionValues = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    const opt = DAEMON_OPTIONS.find((o) => o.key === key);
    if (!opt) {
      const near = closest(key);
      throw new InvalidArgumentError(
        `${file}: unknown key "${key}"${near ? `; did you mean "${near}"?` : "; the keys are the daemon's long options (see sockswitch daemon --help)"}`,
      );
    }
    out[key] = configValue(file, key, opt.kind, value);
  }
  return out;
}

function configValue(file: string, key: string, kind: string, value: unknown): string | boolean {
  const bad = (want: string) =>
    new InvalidArgumentError(`${file}: "${key}" must be ${want}, not ${describe(value)}`);
  if (kind === "bool") {
    if (typeof value !== "boolean") throw bad("true or false");
    return value;
  }
  if (typeof value === "string" || (typeof value === "number" && Number.isFinite(value)))
    return String(value);
  if (kind === "list" && Array.isArray(value)) {
    if (value.length === 0) throw bad("a non-empty list");
    const items = value.map((v) => {
      if (typeof v !== "string" && typeof v !== "number") throw bad("a list of strings");
      return String(v);
    });
    return items.join(",");
  }
  throw bad(kind === "list" ? "a string or a list of strings" : "a string");
}

function describe(value: unknown): string {
  if (value === null) return "empty";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}
