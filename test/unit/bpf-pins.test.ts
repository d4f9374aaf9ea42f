// Unit tests of the BPF pin directory's bookkeeping (src/bpf/system.ts): the entry that names
// a pin directory's state dir must be a valid bpffs name (bpffs refuses names with a dot).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ownerName } from "../../src/bpf/system.js";

describe("ownerName", () => {
  test("a state dir with dots (mktemp's, a version) gives a name without a dot that decodes back", () => {
    for (const dir of ["/tmp/ssw-demo.t4YJtu/state", "/var/lib/sockswitch-1.2", "/var/lib/sockswitch"]) {
      const name = ownerName(dir);
      assert.ok(!name.includes("."), name);
      assert.ok(!name.includes("/"), name);
      assert.equal(decodeURIComponent(name.slice("owner=".length)), dir);
    }
  });
});
