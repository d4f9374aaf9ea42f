// Unit test of src/store/tls-warning.ts: only Node's DEP0123 (TLS server name set to an IP)
// is dropped, in both forms of process.emitWarning; other warnings still reach listeners.

import assert from "node:assert/strict";
import { test } from "node:test";
import { silenceIpServernameWarning } from "../../src/store/tls-warning.js";

test("DEP0123 is dropped, other warnings are not", async () => {
  silenceIpServernameWarning();
  silenceIpServernameWarning(); // installing twice changes nothing
  const seen: unknown[] = [];
  const listener = (w: Error & { code?: string }) => seen.push(w.code ?? w.message);
  process.on("warning", listener);
  process.emitWarning("ip servername", "DeprecationWarning", "DEP0123");
  process.emitWarning("ip servername", { type: "DeprecationWarning", code: "DEP0123" });
  process.emitWarning("another one", { type: "Warning", code: "SSW_TEST_1" });
  process.emitWarning("and a plain one");
  await new Promise((r) => setImmediate(r));
  process.off("warning", listener);
  assert.deepEqual(seen, ["SSW_TEST_1", "and a plain one"]);
});
