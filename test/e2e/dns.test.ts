// End-to-end: names. The daemon's DNS server answers for managed apps' names at its
// well-known virtual IP, reached through sockswitch itself from apps whose resolv.conf
// points at it; other names go to an upstream the test runs in its own test host
// namespace; a silent upstream gives SERVFAIL in bounded time; garbage does not hurt.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FIXTURES, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

const DNS_IP = "10.77.0.53";
const UPSTREAM_PORT = "5399";
const SILENT_PORT = "5398";

interface Answer {
  rcode?: number;
  answers?: number;
  from?: [string, number];
  ms: number;
  timeout?: boolean;
}

describe("names", () => {
  let host: TestHost;
  let upstreams: Proc[] = [];
  let web: Proc;

  before(async () => {
    host = new TestHost("dns");
    // Upstreams inside the test host: one that answers, one that never does.
    upstreams = [
      host.spawnInHost([PYTHON, `${FIXTURES}/tiny-dns.py`, "127.0.0.1", UPSTREAM_PORT, "192.0.2.77"]),
      host.spawnInHost([PYTHON, `${FIXTURES}/tiny-dns.py`, "127.0.0.2", SILENT_PORT, "0.0.0.0", "--silent"]),
    ];
    for (const u of upstreams) await waitFor("the test's upstream DNS", () => u.stdout.includes("ready"));
    await host.start({
      daemonArgs: ["--dns-servers", `127.0.0.2:${SILENT_PORT},127.0.0.1:${UPSTREAM_PORT}`],
    });
    web = host.run(["--name", "web", "--ip", "10.77.70.1"], [PYTHON, "-m", "http.server", "8080"]);
    await waitFor("web to listen", () =>
      host.getJson<{ address: string }>("services").some((s) => s.address === "10.77.70.1:8080"),
    );
  });

  after(async () => {
    for (const u of upstreams) u.kill("SIGKILL");
    await host?.cleanup();
  });

  async function inApp(cmd: string[], opts: string[] = []): Promise<string> {
    const r = await host.runToEnd(opts, cmd);
    assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }

  async function query(name: string, extra: string[] = []): Promise<Answer> {
    const out = await inApp([PYTHON, `${FIXTURES}/dns-query.py`, DNS_IP, name, ...extra]);
    return JSON.parse(out.trim()) as Answer;
  }

  test("the app's resolv.conf points at the resolver's virtual IP with our search domain", async () => {
    const conf = await inApp(["cat", "/etc/resolv.conf"]);
    assert.match(conf, /^nameserver 10\.77\.0\.53$/m);
    assert.match(conf, /^search sockswitch\.local/m);
    const untouched = await inApp(["cat", "/etc/resolv.conf"], ["--dns-override=false"]);
    assert.doesNotMatch(untouched, /10\.77\.0\.53/);
  });

  test("getent and python getaddrinfo resolve an app's name to its virtual IP", async () => {
    assert.match(await inApp(["getent", "hosts", "web"]), /^10\.77\.70\.1\s+web/m);
    assert.match(await inApp(["getent", "hosts", "web.sockswitch.local"]), /^10\.77\.70\.1\s/m);
    const py = await inApp([
      PYTHON,
      "-c",
      "import socket; print(sorted({a[4][0] for a in socket.getaddrinfo('web', 8080)}))",
    ]);
    assert.equal(py.trim(), "['10.77.70.1']");
  });

  test("curl http://web:8080/ and static busybox nslookup work by name", async () => {
    const code = await inApp(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://web:8080/"]);
    assert.equal(code, "200");
    const ns = await inApp(["busybox", "nslookup", "web"]);
    assert.match(ns, /Address:\s*10\.77\.70\.1/);
  });

  test("replies come from the resolver's virtual address; unknown names in our domain are NXDOMAIN", async () => {
    const a = await query("web.sockswitch.local");
    assert.deepEqual([a.rcode, a.answers, a.from], [0, 1, [DNS_IP, 53]]);
    const nx = await query("nobody.sockswitch.local");
    assert.equal(nx.rcode, 3);
  });

  test("names outside the domain are forwarded upstream; the silent upstream is skipped in bounded time", async () => {
    assert.match(await inApp(["getent", "hosts", "outside.example"]), /^192\.0\.2\.77\s/m);
    const nx = await query("missing.example");
    assert.equal(nx.rcode, 3);
  });

  test("with only a silent upstream, SERVFAIL comes back within the bound", async () => {
    const other = new TestHost("dns2");
    try {
      const silent = other.spawnInHost([
        PYTHON,
        `${FIXTURES}/tiny-dns.py`,
        "127.0.0.1",
        SILENT_PORT,
        "0.0.0.0",
        "--silent",
      ]);
      await waitFor("the silent upstream", () => silent.stdout.includes("ready"));
      await other.start({ daemonArgs: ["--dns-servers", `127.0.0.1:${SILENT_PORT}`] });
      const r = await other.runToEnd(
        [],
        [PYTHON, `${FIXTURES}/dns-query.py`, DNS_IP, "far.example", "--timeout", "8"],
      );
      const a = JSON.parse(r.stdout.trim()) as Answer;
      assert.equal(a.rcode, 2, r.stdout);
      assert.ok(a.ms < 4000, `SERVFAIL took ${a.ms} ms`);
    } finally {
      await other.cleanup();
    }
  });

  test("UDP between two apps by name", async () => {
    const srv = host.run(
      ["--name", "echo"],
      [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", "5310", "N"],
    );
    await waitFor("UDP server", () => srv.stdout.includes('"listening"'));
    const r = JSON.parse((await inApp([PYTHON, `${FIXTURES}/udp-echo.py`, "client", "echo", "5310"])).trim());
    assert.equal(r.reply, "N hello");
    const ip = host.getJson<{ name: string; ips: string[] }>("apps").find((a) => a.name === "echo")?.ips[0];
    assert.deepEqual(r.peer, [ip, 5310]);
    srv.kill();
  });

  test("malformed queries (truncated, wrong counts, pointer loops, garbage) leave the server answering", async () => {
    const bad = [
      "12", // shorter than a header
      "abcd01000001000000000000", // a question count with no question
      "abcd0100ffff000000000000037765620000010001", // 65535 questions
      "abcd01000001000000000000c00c00010001", // a name that points at itself
      "abcd0100000100000000000003776562c00c00010001", // a label then a pointer back into the header
      "ff".repeat(600), // garbage
    ];
    for (const hex of bad) {
      const a = await query("x", ["--raw", hex, "--timeout", "1"]);
      assert.ok(a.timeout || a.rcode === 1, `${hex}: ${JSON.stringify(a)}`);
    }
    const ok = await query("web.sockswitch.local");
    assert.equal(ok.answers, 1);
    assert.ok(web.running);
  });
});
