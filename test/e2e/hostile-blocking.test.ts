// End-to-end: nothing an app controls stops the daemon (docs/security.md, promise 12).
// Hostile apps (as nobody, and as root where that is stronger) try to make the daemon's
// only thread wait: on the last close of a lingering socket (the handed case
// linger-daemon-hang), in a connect() whose socket the app makes blocking again while the
// daemon connects it, and on a page fault in their memory while it reads a trapped
// call's arguments (userfaultfd, FUSE in a user namespace of their own). After each
// attempt another app must still be served at once.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FIXTURES, must, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

/** Builds a C fixture into the test host's directory (readable by nobody). */
function compile(host: TestHost, name: string): string {
  const out = join(host.dir, name);
  must("cc", ["-O2", "-pthread", "-o", out, join(FIXTURES, `${name}.c`)]);
  must("chmod", ["755", host.dir, out]);
  return out;
}

/** An app of its own answers a trapped call (socket() and a refused connect) within 5 s. */
async function daemonAnswers(host: TestHost): Promise<void> {
  const probe = `import socket
s = socket.socket()
s.settimeout(5)
try: s.connect(("10.77.0.99", 9))
except OSError as e: print(type(e).__name__)`;
  const r = await host.runToEnd(["--user", "nobody"], [PYTHON, "-c", probe], 15_000);
  assert.equal(r.code, 0, `the daemon did not answer another app: ${r.stderr}`);
}

describe("the daemon never waits on an app", () => {
  let host: TestHost;
  let secret: Proc;

  before(async () => {
    host = new TestHost("blocking");
    await host.start();
    // The target the linger app hammers: its connects are refused by label policy.
    secret = host.run(
      ["--user", "nobody", "--ip", "10.77.0.99", "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "S"],
    );
    await waitFor("the secret server", () => secret.stdout.includes('"listening"'));
  });

  after(async () => {
    await host?.cleanup();
  });

  test("an app cannot make the daemon's close() of its socket linger (SO_LINGER, unsent data)", async () => {
    const app = compile(host, "hostile-linger");
    // 200 attempts, as the handed case: the bpf datapath's race (the app connects, fills and
    // closes its socket before the daemon's copy is closed) broke it at attempts 91 and 111.
    const r = await host.runToEnd(["--user", "nobody", "--labels", "zone=b"], [app, "200"], 300_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^no hang$/m, r.stdout);
    // `ip netns exec` execs the daemon: its pid is the daemon's.
    assert.doesNotMatch(must("cat", [`/proc/${host.daemon?.pid}/stack`]), /sk_stream_wait_close/);
    await daemonAnswers(host);
  });

  test("an app cannot make the daemon's connect() of its socket block (O_NONBLOCK cleared meanwhile)", async () => {
    const app = compile(host, "hostile-nonblock");
    const r = await host.runToEnd(["--user", "nobody", "--labels", "zone=b"], [app, "20"], 120_000);
    assert.equal(r.code, 0, r.stderr);
    // Every connect waited for the app's own alarm (the kernel's answer: EINTR), and the
    // daemon answered the socket() call after each at once.
    assert.deepEqual(JSON.parse(r.stdout), { attempts: 20, eintr: 20, stalled: 0 });
    await daemonAnswers(host);
  });

  for (const user of [[], ["--user", "nobody"]]) {
    test(`an app cannot make memory whose faults the daemon would wait on (${user.length ? "nobody" : "root"})`, async () => {
      const app = compile(host, "hostile-memory");
      const r = await host.runToEnd(user, [app], 30_000);
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout) as Record<string, string>;
      // /dev/userfaultfd: refused by the filter once open; where its mode (0600 root) or
      // its absence already stops the open, that errno.
      assert.ok(["EPERM", "EACCES", "ENOENT"].includes(got.dev_userfaultfd as string), r.stdout);
      assert.deepEqual(
        { ...got, dev_userfaultfd: undefined },
        { userfaultfd: "EPERM", dev_userfaultfd: undefined, unshare_newuser: "EPERM", clone3: "ENOSYS" },
      );
      if (!user.length) assert.equal(got.dev_userfaultfd, "EPERM", "root opens /dev/userfaultfd");
      await daemonAnswers(host);
    });
  }

  /** The daemon's descriptors in use, and its soft RLIMIT_NOFILE. */
  const daemonFds = (): number => readdirSync(`/proc/${host.daemon?.pid}/fd`).length;
  const softLimit = (): string =>
    /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${host.daemon?.pid}/limits`, "utf8"))?.[1] ?? "1024";

  test("a flood of lingering sockets keeps the daemon's descriptors bounded and other apps served", async () => {
    const app = compile(host, "hostile-linger-flood");
    const before = daemonFds();
    const soft = softLimit();
    must("prlimit", ["--pid", String(host.daemon?.pid), "--nofile=2048:"]);
    let most = before;
    const sample = setInterval(() => {
      most = Math.max(most, daemonFds());
    }, 50);
    try {
      const flood = host.run(["--user", "nobody", "--labels", "zone=b"], [app, "6", "8"]);
      await new Promise((r) => setTimeout(r, 2000));
      await daemonAnswers(host);
      const r = await flood.wait(60_000);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(JSON.parse(r.stdout).iterations > 100, r.stdout);
    } finally {
      clearInterval(sample);
      must("prlimit", ["--pid", String(host.daemon?.pid), `--nofile=${soft}:`]);
    }
    // Lingering closes wait for the closer thread in a queue of at most a quarter of the
    // descriptor limit (native/addon/closer.c), each bounded in time.
    assert.ok(most < before + 2048 / 4 + 100, `the daemon went from ${before} to ${most} descriptors`);
    await waitFor("the daemon's descriptors back", () => daemonFds() < before + 20, 20_000);
  });

  test("an app refused because the daemon is out of descriptors is told so", async () => {
    const soft = softLimit();
    // Room for the launcher's connection only: the daemon cannot read what it was handed.
    must("prlimit", ["--pid", String(host.daemon?.pid), `--nofile=${daemonFds() + 1}:`]);
    try {
      const r = await host.runToEnd([], [PYTHON, "-c", "pass"], 20_000);
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /the daemon is out of file descriptors/);
    } finally {
      must("prlimit", ["--pid", String(host.daemon?.pid), `--nofile=${soft}:`]);
    }
    await daemonAnswers(host);
  });
});
