// docs/openapi.yaml is what the route schemas generate (npm run openapi writes it), and the
// document names every route the API registers.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { openApiDocument } from "../../src/api/openapi.js";

test("docs/openapi.yaml is up to date with the route schemas (run `npm run openapi`)", async () => {
  const file = parse(readFileSync(join(import.meta.dirname, "..", "..", "docs", "openapi.yaml"), "utf8"));
  const generated = await openApiDocument();
  assert.deepEqual(file, JSON.parse(JSON.stringify(generated)));
  const paths = Object.keys(generated.paths as object).sort();
  for (const p of [
    "/healthz",
    "/readyz",
    "/v1/apps",
    "/v1/apps/{id}",
    "/v1/apps/{id}/stop",
    "/v1/apps/{id}/logs",
    "/v1/events",
  ])
    assert.ok(paths.includes(p), p);
});
