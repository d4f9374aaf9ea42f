// Kubernetes manifests as text: YAML with any number of documents, read from a file or
// standard input, each document rewritten by injectDocument (inject.ts) and written back.
// Comments are not kept. Parse errors name the input (the yaml library's first message).

import { readFileSync } from "node:fs";
import { parseAllDocuments, stringify } from "yaml";
import { InvalidArgumentError, messageOf } from "../core/errors.js";
import { type InjectOptions, injectDocument } from "./inject.js";

/** The manifests in text (YAML documents), rewritten; source names the input in errors. */
export function injectText(text: string, source: string, o: InjectOptions): string {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return text; // no document at all
  const out: string[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) throw new InvalidArgumentError(`${source} is not valid YAML: ${err.message.split("\n")[0]}`);
    const value = injectDocument(doc.toJS(), o);
    if (value === null || value === undefined) continue;
    out.push(stringify(value, { lineWidth: 0 }));
  }
  return out.join("---\n");
}

/** The text of -f FILE ("-": standard input); a sentence when it cannot be read. */
export function readManifests(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(
      code === "ENOENT" ? `-f ${file}: no such file` : `cannot read -f ${file}: ${messageOf(err)}`,
    );
  }
}
