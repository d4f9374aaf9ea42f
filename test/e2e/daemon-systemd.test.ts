// End-to-end: the daemon under systemd's rules, and its configuration file. The unit file
// shipped in packaging/ is read and the daemon started the way systemd would start it
// (RuntimeDirectory and StateDirectory made, LimitNOFILE applied, $NOTIFY_SOCKET set,
// ExecReload and the stop signal sent); sd_notify's datagrams are received by a test
// socket. SIGHUP re-reads the configuration file: what may change live changes, the rest
// is named in a warning, and a bad file changes nothing.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, PYTHON, ROOT, TestHost, waitFor } from "./harness.js";
import { FreshHost, ready } from "./service-harness.js";

/** The [Service] settings of the unit file. */
function unitSettings(): Map<string, string> {
  const text = readFileSync(join(ROOT, "packaging", "sockswitch.service"), "utf8");
  const service = text.slice(text.indexOf("[Service]"), text.indexOf("[Install]"));
  const out = new Map<string, string>();
  for (const line of service.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1] as string, m[2] as string);
  }
  return out;
}

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", " "), flush=True)
`;

describe("started the way the systemd unit starts it", () => {
  let host: FreshHost;
  const unit = unitSettings();

  before(async () => {
    host = new FreshHost();
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("the unit: Type=notify, the directories, LimitNOFILE, KillMode=process, restart policy", () => {
    assert.equal(unit.get("Type"), "notify");
    assert.equal(unit.get("RuntimeDirectory"), "sockswitch");
    assert.equal(unit.get("StateDirectory"), "sockswitch");
    assert.match(unit.get("LimitNOFILE") ?? "", /^\d+$/);
    assert.equal(unit.get("KillMode"), "process");
    assert.equal(unit.get("Restart"), "on-failure");
    assert.equal(unit.get("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert.match(unit.get("ExecStart") ?? "", /\/sockswitch daemon$/);
  });

  test("READY=1 once serving, RELOADING=1 and READY=1 on reload, STOPPING=1 and exit 0 within 2 s on stop", async () => {
    // What systemd does before ExecStart.
    assert.equal(
      host.at(["install", "-d", "-m", unit.get("RuntimeDirectoryMode") ?? "0755", "/run/sockswitch"]).code,
      0,
    );
    assert.equal(
      host.at(["install", "-d", "-m", unit.get("StateDirectoryMode") ?? "0700", "/var/lib/sockswitch"]).code,
      0,
    );
    const notify = "/run/sockswitch-test-notify.sock";
    const receiver = host.spawn([PYTHON, "-c", RECEIVER, notify]);
    await waitFor("the notify socket", () => receiver.stdout.includes("listening"));
    // systemd raises the limit (it has CAP_SYS_RESOURCE); a test may only lower it, so it
    // applies the unit's value, or the hard limit it runs under when that is lower.
    const hard = Number(/Max open files\s+\d+\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1]);
    const nofile = String(Math.min(Number(unit.get("LimitNOFILE")), hard));
    const [, ...args] = (unit.get("ExecStart") as string).split(" ");
    const daemon = host.spawn(
      ["prlimit", `--nofile=${nofile}:${nofile}`, "--", process.execPath, CLI, ...args],
      {
        NOTIFY_SOCKET: notify,
      },
    );
    await ready(daemon);
    await waitFor("READY=1", () => /READY=1/.test(receiver.stdout));
    assert.match(receiver.stdout, new RegExp(`MAINPID=${daemon.pid}`));
    const limits = readFileSync(`/proc/${daemon.pid}/limits`, "utf8");
    assert.match(limits, new RegExp(`Max open files\\s+${nofile}\\s+${nofile}`));

    const reload = (unit.get("ExecReload") as string).replace("$MAINPID", String(daemon.pid)).split(" ");
    assert.equal(host.at(reload).code, 0);
    await waitFor("RELOADING=1, then READY=1", () =>
      /READY=1[\s\S]*RELOADING=1[\s\S]*READY=1/.test(receiver.stdout),
    );
    await waitFor("the reload in the log", () => daemon.stdout.includes('"msg":"configuration reloaded"'));

    const t0 = Date.now();
    daemon.kill("SIGTERM");
    const end = await daemon.wait(Number(unit.get("TimeoutStopSec") ?? 10) * 1000);
    assert.equal(end.code, 0, end.stderr);
    assert.ok(Date.now() - t0 < 2000, `stopped in ${Date.now() - t0} ms`);
    await waitFor("STOPPING=1", () => /STOPPING=1/.test(receiver.stdout));
  });
});

describe("SIGHUP re-reads the configuration file", () => {
  let host: TestHost;
  let config: string;
  const write = (text: string) => writeFileSync(config, text);

  before(async () => {
    host = new TestHost("hup");
    config = join(host.dir, "config.yaml");
    write("log-level: info\negress: allow\nlb: round-robin\n");
    // A non-virtual destination in the test host itself (the app reaches it as egress).
    host.exec(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"]);
    // The harness gives --log-level debug on the command line: it overrides the file's info.
    await host.start({ daemonArgs: ["--config", config] });
  });

  after(async () => {
    await host?.cleanup();
  });

  const connect = async () => {
    const code =
      "import socket,sys\ns=socket.socket()\ntry:\n s.connect(('192.0.2.1',7600)); print('ok')\nexcept OSError as e: print(e.errno)";
    return (await host.runToEnd([], [PYTHON, "-c", code])).stdout.trim();
  };

  test("flags override the file; egress and lb change live, ports is named for a restart", async () => {
    const d = host.daemon as NonNullable<typeof host.daemon>;
    assert.match(d.stdout, /"lb":"round-robin"/);
    const server = host.spawnInHost([
      PYTHON,
      "-c",
      "import socket,time\ns=socket.socket(); s.bind(('192.0.2.1',7600)); s.listen(); print('up', flush=True); time.sleep(120)",
    ]);
    await waitFor("the host server", () => server.stdout.includes("up"));
    assert.equal(await connect(), "ok");
    assert.match(d.stdout, /"msg":"launcher hello"/, "debug lines: the --log-level flag wins over the file");

    write("log-level: info\negress: deny\nports: 41000-42000\nlb: random\n");
    d.kill("SIGHUP");
    await waitFor("the reload", () => d.stdout.includes('"msg":"configuration reloaded"'));
    const line = d.stdout.split("\n").find((l) => l.includes('"msg":"configuration reloaded"')) as string;
    assert.deepEqual(JSON.parse(line).changed.sort(), ["egress", "lb"]);
    await waitFor("the restart warning", () =>
      /"options":\["ports"\].*take effect only at the next start/.test(d.stdout),
    );
    assert.equal(await connect(), "13", "EACCES once egress is denied");
    assert.ok(d.running);
  });

  test("a configuration that does not parse changes nothing and the daemon keeps running", async () => {
    const d = host.daemon as NonNullable<typeof host.daemon>;
    write("egress: [allow\n");
    d.kill("SIGHUP");
    await waitFor("the refusal", () => d.stdout.includes("the configuration is not valid; nothing changed"));
    write("egress: allow\nbogus-key: 1\n");
    const before = d.stdout.split("nothing changed").length;
    d.kill("SIGHUP");
    await waitFor("the second refusal", () => d.stdout.split("nothing changed").length > before);
    assert.match(d.stdout, /unknown key \\"bogus-key\\"/);
    assert.ok(d.running);
    assert.equal(await connect(), "13", "egress is still denied");
    assert.equal(host.cli(["get", "apps"]).code, 0);
  });
});
