// Label policy: a client reaches a service only if the two share at least one label
// (the same key with the same value). Pure.

import { InvalidArgumentError } from "../core/errors.js";
import type { Labels } from "./types.js";

export const DEFAULT_LABELS: Labels = Object.freeze({ zone: "default" });

export function sharesLabel(client: Labels, service: Labels): boolean {
  for (const key in client) {
    if (Object.hasOwn(service, key) && service[key] === client[key]) return true;
  }
  return false;
}

const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9_.-]{0,63}$/;

/** Parses "k=v,k2=v2"; throws a sentence that says what is wrong. */
export function parseLabels(text: string): Labels {
  const trimmed = text.trim();
  if (trimmed === "") throw new InvalidArgumentError("--labels is empty; write it like zone=web,tier=front");
  return validateLabels(
    trimmed.split(",").map((part): [string, string] => {
      const eq = part.indexOf("=");
      if (eq === -1) throw malformed(part);
      return [part.slice(0, eq), part.slice(eq + 1)];
    }),
  );
}

/** Checks each key and value against the label grammar; throws a sentence on the first bad one. */
export function validateLabels(entries: ReadonlyArray<readonly [string, string]>): Labels {
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) throw malformed(`${key}=${value}`);
    if (Object.hasOwn(out, key)) throw new InvalidArgumentError(`label key "${key}" is given twice`);
    out[key] = value;
  }
  return out;
}

function malformed(part: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `label "${part}" is malformed; write key=value with letters, digits, '-', '_' or '.' (e.g. zone=web)`,
  );
}

export function formatLabels(labels: Labels): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}
