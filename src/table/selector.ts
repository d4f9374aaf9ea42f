// Label selectors, as kubectl's -l (equality-based, Kubernetes "Labels and Selectors"):
// comma-separated requirements that must all hold: `key=value` (or `key==value`),
// `key!=value` (also true when the key is absent), `key` (the key is present) and `!key`
// (absent). Keys and values follow the --labels rules (policy.ts). Pure.

import { InvalidArgumentError } from "../core/errors.js";
import type { Labels } from "./types.js";

export type Requirement =
  | { readonly op: "eq" | "ne"; readonly key: string; readonly value: string }
  | { readonly op: "exists" | "absent"; readonly key: string };

const KEY = /^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9_.-]{0,63})$/;

/** Parses a selector; "" selects everything. Throws one sentence on a bad requirement. */
export function parseSelector(text: string): Requirement[] {
  const out: Requirement[] = [];
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const m = /^(!?)([^!=]+)(?:(==|=|!=)(.*))?$/.exec(part);
    const bad = () =>
      new InvalidArgumentError(
        `-l "${text}": "${part}" is not a label requirement; write key=value, key!=value, key or !key`,
      );
    if (!m) throw bad();
    const [, not, key, op, value] = m as unknown as [
      string,
      string,
      string,
      string | undefined,
      string | undefined,
    ];
    if (!KEY.test(key)) throw bad();
    if (op === undefined) {
      out.push({ op: not ? "absent" : "exists", key });
      continue;
    }
    if (not || !VALUE.test(value ?? "")) throw bad();
    out.push({ op: op === "!=" ? "ne" : "eq", key, value: value ?? "" });
  }
  return out;
}

/** Whether labels satisfy every requirement. */
export function matchesSelector(labels: Labels, reqs: readonly Requirement[]): boolean {
  for (const r of reqs) {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case "eq":
        if (!has || labels[r.key] !== r.value) return false;
        break;
      case "ne":
        if (has && labels[r.key] === r.value) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "absent":
        if (has) return false;
        break;
    }
  }
  return true;
}
