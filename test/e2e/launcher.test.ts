// End-to-end: the static launcher against the protocol stub (test/fixtures/launcher-smoke.sh
// with fake-daemon.py): addresses on lo, exit codes, signal forwarding, the app's own PID
// namespace and /proc, the registration it sends (the options as written), FD with the
// listener and a pidfd, USAGE and ERR answers, command-line mistakes, --new-netns, --user,
// the daemon's resolv.conf, no fd leaked. Each check prints ok/FAIL; all must pass.

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { FIXTURES, ROOT, sh } from "./harness.js";

test("the launcher's smoke checks all pass", () => {
  const r = sh("bash", [join(FIXTURES, "launcher-smoke.sh"), join(ROOT, "build", "sockswitch-launch")]);
  const failed = r.stdout.split("\n").filter((l) => l.startsWith("FAIL"));
  assert.deepEqual(failed, [], r.stdout + r.stderr);
  assert.match(r.stdout, /^\d+ passed, 0 failed$/m);
  assert.equal(r.code, 0, r.stderr);
});
