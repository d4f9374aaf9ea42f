// End-to-end: the daemon as a system service (docs/cli.md "sockswitch daemon"): on a fresh
// host with its default paths, the README's commands work as written; a second daemon on
// the same socket or state dir is refused; a start error ends the process with one sentence
// and a non-zero status; SIGTERM with apps running ends it within 2 s while the apps keep
// running, and the next daemon takes them back.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CLI, type Proc, PYTHON, waitFor } from "./harness.js";
import { FreshHost, oneSentence, ready } from "./service-harness.js";

describe("the daemon on a fresh host, with default paths", () => {
  let host: FreshHost;
  let daemon: Proc;

  before(async () => {
    host = new FreshHost();
    await host.start();
    daemon = host.startDaemon();
    await ready(daemon);
  });

  after(async () => {
    await host?.cleanup();
  });

  test("it makes /run/sockswitch and /var/lib/sockswitch and serves the socket there", () => {
    const r = host.at([
      "stat",
      "-c",
      "%n %a %F",
      "/run/sockswitch",
      "/var/lib/sockswitch",
      "/run/sockswitch/sockswitch.sock",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\/run\/sockswitch 755 directory/);
    assert.match(r.stdout, /\/var\/lib\/sockswitch 700 directory/);
    assert.match(r.stdout, /sockswitch\.sock 660 socket/);
    assert.match(
      host.at(["cat", "/run/sockswitch/sockswitch.resolv.conf"]).stdout,
      /nameserver 10\.77\.0\.53/,
    );
  });

  test("--datapath auto (the default) picks bpf on this host and says so", () => {
    const info = JSON.parse(host.cli(["info", "-o", "json"]).stdout) as {
      datapath: { name: string; selected: string };
    };
    assert.equal(info.datapath.name, "bpf", info.datapath.selected);
    assert.match(info.datapath.selected, /^--datapath auto: bpf \(/);
    assert.match(daemon.stdout, /"datapath":"bpf"/, "the ready line");
    assert.match(host.cli(["info"]).stdout, /^bpf\s+--datapath auto: bpf/m);
  });

  test("the README's commands work as written: run, run by name, get", async () => {
    const web = host.spawn([
      process.execPath,
      CLI,
      "run",
      "--ip",
      "10.77.0.10",
      "--name",
      "web",
      "--",
      PYTHON,
      "-m",
      "http.server",
      "8080",
    ]);
    await waitFor("the web service", () => host.cli(["get", "services"]).stdout.includes("10.77.0.10:8080"));
    for (const url of ["http://10.77.0.10:8080/", "http://web:8080/"]) {
      const r = host.cli(["run", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]);
      assert.equal(r.stdout, "200", `${url}: ${r.stderr}`);
    }
    assert.match(host.cli(["get", "apps"]).stdout, /web\s+Running\s+10\.77\.0\.10/);
    web.kill("SIGTERM");
    assert.equal((await web.wait()).code, 143);
  });

  test("a second daemon on the same socket and state dir is refused with one sentence", () => {
    const r = host.cli(["daemon"]);
    assert.equal(r.code, 1);
    assert.ok(oneSentence(r.stderr), r.stderr);
    assert.match(
      r.stderr,
      /another sockswitch daemon \(pid \d+\) already uses the state dir \/var\/lib\/sockswitch/,
    );
    const other = host.cli(["daemon", "--state-dir", "/var/lib/other"]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /already uses the socket \/run\/sockswitch\/sockswitch\.sock; stop it first/);
    assert.equal(host.cli(["get", "apps", "-a"]).code, 0, "the first daemon still serves");
  });

  test("SIGTERM with apps running: exit 0 within 2 s, apps keep running, the next daemon takes them back", async () => {
    const run = host.cli(["run", "-d", "--name", "kept", "--", PYTHON, "-m", "http.server", "8081"]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    await waitFor("the kept service", () => host.cli(["get", "services", "kept"]).code === 0);
    const app = JSON.parse(host.cli(["get", "apps", id, "-o", "json"]).stdout).items[0];
    const t0 = Date.now();
    daemon.kill("SIGTERM");
    const end = await daemon.wait(5000);
    const took = Date.now() - t0;
    assert.equal(end.code, 0, end.stderr);
    assert.ok(took < 2000, `the daemon took ${took} ms to exit`);
    assert.match(end.stdout, /"msg":"sockswitch daemon stopped"/);
    // The app runs on; a new daemon takes it back.
    assert.equal(host.at(["kill", "-0", String(app.pid)]).code, 0, "the app still runs");
    const next = host.startDaemon();
    await ready(next);
    await waitFor("the app to be reattached", () => next.stdout.includes('"msg":"app reattached"'));
    const r = host.cli([
      "run",
      "--",
      "curl",
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "http://kept:8081/",
    ]);
    assert.equal(r.stdout, "200", r.stderr);
    assert.match(host.cli(["logs", "kept"]).stdout, /GET \/ HTTP\/1\.1" 200/);
    assert.equal(host.cli(["stop", "-t", "5", "kept"]).code, 0);
    next.kill("SIGINT");
    assert.equal((await next.wait(5000)).code, 0);
  });
});

describe("start errors end the daemon with one sentence and a non-zero status", () => {
  let host: FreshHost;

  before(async () => {
    host = new FreshHost();
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  const failsWith = async (args: string[], pattern: RegExp, code = 1) => {
    const t0 = Date.now();
    const r = await host.startDaemon(args).wait(15_000);
    assert.equal(r.signal, null, `killed: ${r.stderr}`);
    assert.equal(r.code, code, r.stderr);
    assert.ok(oneSentence(r.stderr), r.stderr);
    assert.match(r.stderr, pattern);
    assert.ok(Date.now() - t0 < 10_000);
  };

  test("--datapath auto where the bpf datapath cannot run: seccomp, with the reason in the log and info", async () => {
    const hook = "BPF_CGROUP_INET{4,6}_GETPEERNAME";
    const d = host.startDaemon(["--socket", `${host.dir}/auto.sock`, "--state-dir", `${host.dir}/auto`], {
      SOCKSWITCH_TEST_HIDE_FEATURES: hook,
    });
    try {
      await ready(d);
      const why =
        /--datapath auto: seccomp \(the bpf datapath cannot run here: this kernel lacks BPF_CGROUP_INET\{4,6\}_GETPEERNAME \(Linux 5\.8/;
      assert.match(d.stdout, why, "logged");
      const info = JSON.parse(
        host.cli(["--socket", `${host.dir}/auto.sock`, "info", "-o", "json"]).stdout,
      ) as {
        datapath: { name: string; selected: string };
      };
      assert.equal(info.datapath.name, "seccomp");
      assert.match(info.datapath.selected, why);
      const explicit = await host
        .startDaemon(
          ["--socket", `${host.dir}/bpf.sock`, "--state-dir", `${host.dir}/bpf`, "--datapath", "bpf"],
          {
            SOCKSWITCH_TEST_HIDE_FEATURES: hook,
          },
        )
        .wait(15_000);
      assert.equal(explicit.code, 2, explicit.stderr); // a usage error, as every bad flag
      assert.ok(oneSentence(explicit.stderr), explicit.stderr);
      assert.match(
        explicit.stderr,
        /--datapath bpf cannot run here: this kernel lacks BPF_CGROUP_INET\{4,6\}_GETPEERNAME/,
      );
    } finally {
      d.kill("SIGTERM");
      await d.wait(5000);
    }
  });

  test("--api-listen on a port that is taken", async () => {
    const token = `${host.dir}/token`;
    await import("node:fs").then((fs) => fs.writeFileSync(token, "0123456789abcdef0123\n"));
    const holder = host.spawn([
      PYTHON,
      "-c",
      "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',7171)); s.listen(); print('bound', flush=True); time.sleep(60)",
    ]);
    await waitFor("the port holder", () => holder.stdout.includes("bound"));
    const r = await host.startDaemon(["--api-listen", "7171", "--api-token-file", token]).wait(15_000);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(oneSentence(r.stderr), r.stderr);
    assert.match(r.stderr, /cannot serve the API on 127\.0\.0\.1:7171: the port is taken/);
  });

  test("--node-ip that is not an address of this host (TEST-NET-1: nowhere here)", async () => {
    await failsWith(
      ["--node-ip", "192.0.2.77"],
      /--node-ip 192\.0\.2\.77 is not an address of this host; use one of its addresses/,
    );
  });

  test("a configuration file that is missing, not YAML, or has an unknown or bad key", async () => {
    const fs = await import("node:fs");
    await failsWith(
      ["--config", `${host.dir}/none.yaml`],
      /cannot read the configuration file .*none\.yaml: ENOENT/,
      2,
    );
    fs.writeFileSync(`${host.dir}/bad.yaml`, "ports: [1, 2\n");
    await failsWith(["--config", `${host.dir}/bad.yaml`], /bad\.yaml.*not valid YAML/, 2);
    fs.writeFileSync(`${host.dir}/unknown.yaml`, "node_ip: 192.0.2.10\n");
    await failsWith(
      ["--config", `${host.dir}/unknown.yaml`],
      /unknown key "node_ip"; did you mean "node-ip"\?/,
      2,
    );
    fs.writeFileSync(`${host.dir}/value.yaml`, "ports: 60000-40000\n");
    await failsWith(["--config", `${host.dir}/value.yaml`], /value\.yaml: ports: .*not a port range/, 2);
    fs.writeFileSync(`${host.dir}/type.yaml`, "dns: maybe\n");
    await failsWith(["--config", `${host.dir}/type.yaml`], /"dns" must be true or false/, 2);
  });

  test("a state dir that cannot be made", async () => {
    await failsWith(
      ["--state-dir", "/proc/sockswitch"],
      /cannot create the state dir \(--state-dir\) \/proc\/sockswitch/,
    );
  });

  test("etcd that cannot be reached", async () => {
    await failsWith(["--store", "etcd://127.0.0.1:9"], /cannot reach etcd at 127\.0\.0\.1:9/);
  });
});
