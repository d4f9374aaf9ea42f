// End-to-end: every mistake a user can make on the command line ends in one clear sentence
// on stderr and a non-zero exit, never a stack trace. Cases that need a daemon use a test
// host (a network namespace made here).

import assert from "node:assert/strict";
import { chmodSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, type Result, sh, TestHost } from "./harness.js";

const NO_DAEMON = join("/tmp", `ssw-none-${process.pid}.sock`);

function cli(args: string[], env: Record<string, string> = {}): Result {
  const r = sh("env", [...Object.entries(env).map(([k, v]) => `${k}=${v}`), CLI, ...args]);
  return r;
}

/** One sentence, prefixed with the program name, and no JavaScript stack. */
function assertClearError(r: Result, pattern: RegExp, code?: number): void {
  assert.notEqual(r.code, 0, `expected a failure, got: ${r.stdout}`);
  if (code !== undefined) assert.equal(r.code, code, r.stderr);
  assert.match(r.stderr, /^sockswitch: /);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\(|Error: |node:internal/, r.stderr);
  assert.ok(r.stderr.trim().split("\n").length <= 2, r.stderr);
}

describe("command line without a daemon", () => {
  test("unknown options and commands are usage errors (exit 2)", () => {
    assertClearError(cli(["--bogus"]), /unknown option '--bogus'/, 2);
    assertClearError(cli(["daemon", "--no-such-flag"]), /unknown option/, 2);
    assertClearError(cli(["frobnicate"]), /unknown command 'frobnicate'/, 2);
    assertClearError(cli(["get", "pods"]), /choose one of: apps, services, sockets/, 2);
    assertClearError(cli(["run"]), /missing required argument|needs a command/, 2);
  });

  test("malformed IPs, labels, port maps and ranges are refused before anything starts", () => {
    const run = (...opts: string[]) => cli(["--socket", NO_DAEMON, "run", ...opts, "--", "true"]);
    assertClearError(run("--ip", "10.1.1"), /--ip "10.1.1" is not an IP address/, 2);
    assertClearError(run("--ip", "fd00::1", "--ip", "fd00::2"), /IPv6/, 2);
    assertClearError(run("--labels", "zone"), /label/, 2);
    assertClearError(run("--labels", "=x"), /label/, 2);
    assertClearError(run("--expose", "80:x"), /host port "x" is not a port/, 2);
    assertClearError(run("--expose", "70000:80"), /port/, 2);
    assertClearError(run("--name", "Not A Name!"), /name/, 2);
    assertClearError(run("--lb", "fastest"), /round-robin/, 2);
    assertClearError(run("--new-netns=maybe"), /must be true or false/, 2);
    assertClearError(run("--user", "no-such-user-here"), /user/);
    assertClearError(cli(["daemon", "--ports", "5-1"]), /not a port range/, 2);
    assertClearError(cli(["daemon", "--node-ip", "1.2.3"]), /not a host address/, 2);
    assertClearError(cli(["daemon", "--vip-cidr", "10.0.0.0/33"]), /CIDR|prefix/i, 2);
    assertClearError(cli(["daemon", "--egress", "maybe"]), /allow or deny/, 2);
  });

  test("no daemon running: get and run say so and how to start one", () => {
    assertClearError(cli(["--socket", NO_DAEMON, "get", "apps"]), /start one with `sockswitch daemon`/, 1);
    assertClearError(cli(["get", "apps"], { SOCKSWITCH_SOCKET: NO_DAEMON }), /ssw-none/, 1);
    const r = cli(["--socket", NO_DAEMON, "run", "--", "true"]);
    assertClearError(r, /cannot reach the daemon/, 125);
  });
});

describe("command line against a daemon", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("cli");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("a command that does not exist: 127 and one sentence", async () => {
    const r = await host.runToEnd([], ["/no/such/program"]);
    assert.equal(r.code, 127, r.stderr);
    assert.match(r.stderr, /cannot run \/no\/such\/program: No such file or directory/);
    const plain = join(host.dir, "not-executable");
    writeFileSync(plain, "echo hi\n", { mode: 0o644 });
    const r2 = await host.runToEnd([], [plain]);
    assert.equal(r2.code, 126, r2.stderr);
  });

  test("a socket path without permission: the user is told, not shown a stack", () => {
    // The daemon's socket is root's, mode 0660; an unprivileged user may not connect. The
    // directory is opened up so that the socket's own mode is what refuses.
    chmodSync(host.dir, 0o755);
    const r = host.exec([
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      CLI,
      "--socket",
      host.socket,
      "get",
      "apps",
    ]);
    assertClearError(r, /permission/i, 1);
  });
});

describe("the daemon's API access", () => {
  let host: TestHost;
  let tokenFile: string;
  const TOKEN = "s3cret-token-for-the-tests-0123456789";

  before(async () => {
    host = new TestHost("api");
    tokenFile = join(host.dir, "token");
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    await host.start({
      daemonArgs: ["--api-listen", "7070", "--api-token-file", tokenFile, "--socket-group", "65534"],
    });
  });

  after(async () => {
    await host?.cleanup();
  });

  test("the UNIX socket is mode 0660, owned by root and the --socket-group", () => {
    const st = statSync(host.socket);
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, 65534);
  });

  test("the TCP API listens on loopback and wants the token", () => {
    const curl = (...args: string[]) =>
      host.exec([
        "curl",
        "-sS",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        ...args,
        "http://127.0.0.1:7070/v1/health",
      ]);
    const none = curl();
    assert.match(none.stdout, /SOCKSWITCH_ERR_UNAUTHORIZED[\s\S]*\n401$/);
    assert.match(curl("-H", "Authorization: Bearer wrong-token-0000000000").stdout, /\n401$/);
    assert.match(curl("-H", `Authorization: Bearer ${TOKEN}`).stdout, /"status":"ok"[\s\S]*\n200$/);
    assert.match(host.exec(["ss", "-ltnH", "sport = :7070"]).stdout, /127\.0\.0\.1:7070/);
  });

  test("a TCP API without a token, or with a weak one, is refused at start", () => {
    assertClearError(cli(["daemon", "--api-listen", "7071"]), /--api-listen needs --api-token-file/, 2);
    const weak = join(host.dir, "weak");
    writeFileSync(weak, "short\n");
    assertClearError(
      cli(["daemon", "--api-listen", "7071", "--api-token-file", weak]),
      /at least 16 characters/,
      2,
    );
    assertClearError(cli(["daemon", "--api-listen", "host:port"]), /is not \[HOST:\]PORT/, 2);
  });
});
