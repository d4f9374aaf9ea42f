// Unit tests of the daemon's configuration: the file (core/config-file.ts), flags over file
// over defaults (core/daemon-config.ts), and that every daemon option is a key.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfigText } from "../../src/core/config-file.js";
import { changedKeys, daemonConfigFrom, mergeValues } from "../../src/core/daemon-config.js";
import { DAEMON_OPTIONS } from "../../src/core/daemon-options.js";
import { InvalidArgumentError } from "../../src/core/errors.js";

const F = "/etc/sockswitch/config.yaml";
const invalid = (re: RegExp) => (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message);

describe("configuration file", () => {
  test("keys are the long options; lists, numbers and booleans become flag values", () => {
    const v = parseConfigText(
      "node-ip: [192.0.2.10, '2001:db8::10']\nports: 40000-50000\nlease-ttl: 7\ndns: false\nroles: [a, b]\n",
      F,
    );
    assert.deepEqual(v, {
      "node-ip": "192.0.2.10,2001:db8::10",
      ports: "40000-50000",
      "lease-ttl": "7",
      dns: false,
      roles: "a,b",
    });
    assert.deepEqual(parseConfigText("", F), {});
    assert.deepEqual(parseConfigText("# only a comment\n", F), {});
  });

  test("mistakes are one sentence naming the file and the key", () => {
    assert.throws(
      () => parseConfigText("node_ip: 1.2.3.4\n", F),
      invalid(/config\.yaml: unknown key "node_ip"; did you mean "node-ip"\?/),
    );
    assert.throws(
      () => parseConfigText("frob: 1\n", F),
      invalid(/unknown key "frob"; the keys are the daemon's long options/),
    );
    assert.throws(
      () => parseConfigText("clean: yes please\n", F),
      invalid(/"clean" must be true or false, not string/),
    );
    assert.throws(
      () => parseConfigText("ports: {a: 1}\n", F),
      invalid(/"ports" must be a string, not a mapping/),
    );
    assert.throws(() => parseConfigText("roles: []\n", F), invalid(/"roles" must be a non-empty list/));
    assert.throws(() => parseConfigText("ports: [1\n", F), invalid(/not valid YAML/));
    assert.throws(() => parseConfigText("- a\n- b\n", F), invalid(/must be a mapping/));
    assert.throws(() => parseConfigText("ports: 1-2\nports: 3-4\n", F), invalid(/not valid YAML/));
  });

  test("every daemon option can be set in the file", () => {
    for (const o of DAEMON_OPTIONS) {
      const text = o.kind === "bool" ? `${o.key}: true\n` : `${o.key}: x\n`;
      assert.ok(o.key in parseConfigText(text, F), o.key);
    }
  });

  test("flags override the file, the file overrides defaults; file values are checked with the file named", () => {
    const m = mergeValues({ ports: "41000-42000", lb: "random", egress: "deny" }, F, { lb: "round-robin" });
    assert.equal(m.values.ports, "41000-42000");
    assert.equal(m.values.lb, "round-robin");
    assert.equal(m.values["vip-cidr"], "10.77.0.0/16");
    assert.equal(m.origins.lb, "flag");
    assert.equal(m.origins.ports, F);
    const c = daemonConfigFrom({ ...m.values, "node-ip": "127.0.0.1", "node-name": "n1" }, m.origins);
    assert.equal(c.egress, "deny");
    assert.equal(c.ports.first, 41000);
    const bad = mergeValues({ ports: "9-1" }, F, {});
    assert.throws(
      () => daemonConfigFrom({ ...bad.values, "node-name": "n1" }, bad.origins),
      invalid(/^\/etc\/sockswitch\/config\.yaml: ports: /),
    );
    assert.deepEqual(changedKeys({ ports: "1-2", lb: "random" }, { ports: "1-2", lb: "round-robin" }), [
      "lb",
    ]);
  });
});
