// Writes docs/openapi.yaml from the API's route schemas (npm run openapi).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { openApiDocument } from "../src/api/openapi.js";

const HEADER = "# Generated from the route schemas (src/api/schemas.ts) by `npm run openapi`; do not edit.\n";
const file = join(import.meta.dirname, "..", "docs", "openapi.yaml");
writeFileSync(file, HEADER + stringify(await openApiDocument(), { lineWidth: 0 }));
process.stdout.write(`wrote ${file}\n`);
