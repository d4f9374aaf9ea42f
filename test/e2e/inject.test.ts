// End-to-end: `sockswitch inject` as a user runs it: a file, standard input (-f -), its
// mistakes (exit 2, one sentence), and arguments the real launcher accepts: every injected
// container's args are read by build/sockswitch-launch without a usage error.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { CLI, FIXTURES, ROOT, sh } from "./harness.js";

const STACK = join(FIXTURES, "kube", "web-stack.yaml");

describe("sockswitch inject", () => {
  test("reads a file, or standard input with -f -, and writes the same manifests", () => {
    const fromFile = sh(CLI, ["inject", "-f", STACK]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const fromStdin = sh(CLI, ["inject", "-f", "-"], { input: readFileSync(STACK, "utf8") });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout, fromFile.stdout);
    assert.equal(parseAllDocuments(fromFile.stdout).length, 6);
  });

  test("options: the node's paths and the daemon's DNS", () => {
    const r = sh(CLI, [
      "inject",
      "-f",
      STACK,
      "--launcher",
      "/usr/local/lib/sockswitch-launch",
      "--socket-dir",
      "/var/run/ssw",
      "--vip-cidr",
      "10.99.0.0/16",
      "--dns-domain",
      "corp.example",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /path: \/usr\/local\/lib\/sockswitch-launch\n\s+type: File/);
    assert.match(r.stdout, /path: \/var\/run\/ssw\n\s+type: Directory/);
    assert.match(r.stdout, /nameservers:\n\s+- 10\.99\.0\.53\n\s+searches:\n\s+- corp\.example/);
  });

  test("mistakes get one sentence and exit 2", () => {
    const cases: Array<[string[], string | undefined, RegExp]> = [
      [["inject"], undefined, /^sockswitch: required option '-f, --filename <file>' not specified$/],
      [["inject", "-f", "/no/such.yaml"], undefined, /^sockswitch: -f \/no\/such\.yaml: no such file$/],
      [["inject", "-f", "-"], "a: [1\n", /^sockswitch: standard input is not valid YAML: /],
      [
        ["inject", "-f", "-"],
        "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n",
        /^sockswitch: Pod "p", container "c": has no command/,
      ],
      [["inject", "-f", STACK, "--launcher", "bin/x"], undefined, /must be an absolute path on the nodes/],
      [["inject", "-f", STACK, "--dns-ip", "nope"], undefined, /--dns-ip "nope" is not a usable virtual IP/],
    ];
    for (const [args, input, re] of cases) {
      const r = sh(CLI, args, { input });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr.trim(), re);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(r.stdout, "");
    }
  });

  test("every injected container's args are accepted by the launcher", () => {
    const out = sh(CLI, ["inject", "-f", STACK]);
    const launcher = join(ROOT, "build", "sockswitch-launch");
    let containers = 0;
    for (const d of parseAllDocuments(out.stdout)) {
      // biome-ignore lint/suspicious/noExplicitAny: a manifest, free-form here
      const o = d.toJS() as Record<string, any>;
      const spec =
        o.kind === "Pod"
          ? o.spec
          : o.kind === "CronJob"
            ? o.spec.jobTemplate.spec.template.spec
            : o.spec?.template?.spec;
      for (const c of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
        containers++;
        // No daemon at that path: the launcher gets past its options, then says so.
        const r = sh(launcher, ["--socket", "/nonexistent/sockswitch.sock", ...c.args]);
        assert.equal(r.code, 125, `${c.name}: ${r.stderr}`);
        assert.match(r.stderr, /cannot reach the daemon at \/nonexistent\/sockswitch\.sock/);
      }
    }
    assert.equal(containers, 6);
  });
});
