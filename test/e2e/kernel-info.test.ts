// End-to-end: the kernel feature probe. The daemon logs it once, `sockswitch info` and
// GET /v1/info show it, and it agrees with the same questions asked independently (a python
// program, findmnt, uname); a kernel without a required feature (hidden for the test) makes
// the daemon refuse to start with one sentence naming it (several at once, and a name that
// is not a feature: unit tests).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, FIXTURES, PYTHON, TestHost, TIME_SCALE } from "./harness.js";
import { daemonInfo, HIDE } from "./kernel-helpers.js";

describe("kernel feature probe", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("kinfo");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("logged once at start; info and GET /v1/info show it; it matches the kernel asked directly", () => {
    const lines = (host.daemon?.stdout ?? "")
      .split("\n")
      .filter((l) => l.includes('"msg":"kernel features"'));
    assert.equal(lines.length, 1, host.daemon?.stdout);
    const info = daemonInfo(host);
    const k = info.kernel;
    assert.equal(k.release, host.exec(["uname", "-r"]).stdout.trim());
    assert.equal(k.machine, host.exec(["uname", "-m"]).stdout.trim());
    // The daemon's mount namespace is the one `ip netns exec` makes: ask findmnt there too.
    const mnt = (type: string) =>
      host.exec(["findmnt", "-n", "-t", type, "-o", "TARGET"]).stdout.split("\n")[0];
    const logged = JSON.parse(lines[0] as string) as {
      cgroup2: string | null;
      bpffs: string | null;
      features: Record<string, boolean | null>;
    };
    assert.equal(logged.cgroup2, mnt("cgroup2") || null);
    assert.equal(logged.bpffs, mnt("bpf") || null);
    // info shows what is in use: what the probe found, or what the daemon set up after it
    // (its datapath mounts cgroup2 and bpffs where they are missing, or pins in an outer
    // namespace's bpffs), with the feature's note saying so.
    for (const [name, column] of [
      ["cgroup2", "cgroup2"],
      ["bpffs", "bpffs"],
    ] as const) {
      const f = k.features.find((x) => x.name === name);
      if (logged[column] !== null) assert.equal(k[column], logged[column], name);
      else if (k[column] !== null) {
        assert.equal(f?.available, true, name);
        assert.equal(f?.reason, `set up by the daemon: ${k[column]}`, name);
      } else assert.equal(f?.available, false, name);
    }
    const facts = JSON.parse(host.exec([PYTHON, `${FIXTURES}/kernel-facts.py`]).stdout) as Record<
      string,
      boolean
    >;
    for (const [name, has] of Object.entries(facts)) {
      assert.equal(k.features.find((f) => f.name === name)?.available, has, name);
    }
    for (const name of [
      "SECCOMP_USER_NOTIF",
      "SECCOMP_IOCTL_NOTIF_ADDFD",
      "SECCOMP_ADDFD_FLAG_SEND",
      "pidfd_getfd",
    ])
      assert.equal(k.features.find((f) => f.name === name)?.available, true, name);
    for (const f of k.features)
      if (f.reason?.startsWith("set up by the daemon: "))
        assert.equal(logged.features[f.name], false, f.name);
      else assert.equal(logged.features[f.name], f.available, f.name);

    const table = host.cli(["info"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NODE\s+VERSION\s+KERNEL\s+MACHINE\s+CGROUP2\s+BPFFS$/m);
    assert.match(table.stdout, /^FEATURE\s+SINCE\s+NEED\s+AVAILABLE\s+NOTE$/m);
    assert.match(
      table.stdout,
      new RegExp(`^PIDFD_THREAD\\s+6\\.9\\s+optional\\s+${facts.PIDFD_THREAD ? "yes" : "no"}`, "m"),
    );

    const http = host.exec(["curl", "-sS", "--unix-socket", host.socket, "http://x/v1/info"]);
    assert.deepEqual(JSON.parse(http.stdout), info);
  });

  test("a kernel without a required feature: the daemon refuses to start with one sentence naming it", () => {
    const r = spawnSync(
      "ip",
      [
        "netns",
        "exec",
        host.ns,
        process.execPath,
        CLI,
        "--socket",
        join(host.dir, "x.sock"),
        "daemon",
      ].concat(["--state-dir", join(host.dir, "state-x")]),
      {
        encoding: "utf8",
        timeout: 30_000 * TIME_SCALE,
        env: { ...process.env, [HIDE]: "SECCOMP_ADDFD_FLAG_SEND" },
      },
    );
    assert.equal(r.status, 1, r.stderr + r.stdout);
    assert.match(
      r.stderr,
      /^sockswitch: this kernel \(Linux \S+\) lacks SECCOMP_ADDFD_FLAG_SEND \(Linux 5\.14\), which sockswitch needs; run the daemon on Linux 5\.14 or later\n$/,
    );
  });
});
