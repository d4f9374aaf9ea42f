// End-to-end: the CLI's verbs for an app's life cycle and for looking at the daemon, with
// kubectl/docker habits (docs/cli.md): run -d, logs [-f], stop, rm [-f], run --rm,
// get -a/NAME/-l/-o/-w, describe, events, version, completion, --publish in Docker's order
// (a host port that is taken refused at run), --restart, global options after the command.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { CLI, Proc, PYTHON, sh, TestHost, waitFor } from "./harness.js";

interface App {
  id: string;
  name: string;
  status: string;
  exitCode: number | null;
  detached: boolean;
  restarts: number;
  labels: Record<string, string>;
  command: string[];
}

describe("app life cycle and inspection from the command line", () => {
  let host: TestHost;
  const getApps = (...args: string[]): App[] => {
    const r = host.cli(["get", "apps", ...args, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  };
  const ok = (args: string[]) => {
    const r = host.cli(args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    host = new TestHost("apps");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("a name two running apps share is refused by commands that take one app (use the id)", () => {
    const a = ok(["run", "-d", "--name", "twin", "--", "sleep", "60"]).trim();
    const b = ok(["run", "-d", "--name", "twin", "--", "sleep", "60"]).trim();
    const r = host.cli(["stop", "twin"]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(`2 running apps are named "twin" \\((${a}, ${b}|${b}, ${a})\\); name one by its id`),
    );
    assert.equal(getApps("-l", "zone=default").filter((x) => x.name === "twin").length, 2, "both still run");
    ok(["stop", "-t", "1", a]);
    ok(["stop", "-t", "1", "twin"]); // one left: the name is unambiguous again
    ok(["rm", a, b]);
  });

  test("run -d prints the id; logs, logs --tail and logs -f show the app's output", async () => {
    const id = ok([
      "run",
      "-d",
      "--name",
      "talker",
      "--labels",
      "tier=back",
      "--",
      "sh",
      "-c",
      "echo one; echo two >&2; sleep 1; echo three; sleep 60",
    ]).trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    await waitFor("the lines", () => /one\ntwo\nthree\n/.test(host.cli(["logs", "talker"]).stdout));
    assert.equal(ok(["logs", "--tail", "2", id]), "two\nthree\n");
    const follow = new Proc(
      (await import("node:child_process")).spawn(
        "ip",
        ["netns", "exec", host.ns, CLI, "--socket", host.socket, "logs", "-f", "talker"],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
    await waitFor("the followed lines", () => follow.stdout === "one\ntwo\nthree\n");
    assert.ok(follow.running, "logs -f keeps following a running app");
    ok(["stop", "-t", "1", "talker"]);
    const end = await follow.wait(10_000);
    assert.equal(end.code, 0, "logs -f ends when the app does");
    const [a] = getApps("-a", "talker");
    assert.equal(a?.status, "exited");
    assert.equal(a?.exitCode, 143, "SIGTERM: 128+15");
    assert.match(ok(["get", "apps", "-a"]), /talker\s+Exited \(143\)/);
    assert.doesNotMatch(ok(["get", "apps"]), /talker/, "without -a only running apps");
    // A command that cannot run: the launcher's sentence and exit 1, as for any failed start.
    for (const [cmd, code] of [
      ["/nonexistent", 127],
      ["/etc/passwd", 126],
    ] as const) {
      const r = host.cli(["run", "-d", "--restart", "on-failure", "--", cmd]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^sockswitch: cannot run ${cmd}: `));
      await waitFor("the failed app's status", () =>
        getApps("-a").some((x) => x.command[0] === cmd && x.exitCode === code),
      );
    }
  });

  test("rm removes a finished app; a running one needs -f; run --rm leaves nothing", async () => {
    assert.equal(ok(["rm", "talker"]).trim(), "talker");
    assert.equal(getApps("-a").filter((a) => a.name === "talker").length, 0);
    ok(["run", "-d", "--name", "busy", "--", "sleep", "60"]);
    const r = host.cli(["rm", "busy"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /app busy is running; stop it first \(sockswitch stop\) or use rm -f/);
    ok(["rm", "-f", "busy"]);
    assert.equal(getApps("-a").filter((a) => a.name === "busy").length, 0);
    const once = await host.runToEnd(["--rm", "--name", "once"], ["true"]);
    assert.equal(once.code, 0);
    await waitFor("the app to end", () => !getApps().some((a) => a.name === "once"));
    assert.equal(getApps("-a").filter((a) => a.name === "once").length, 0);
    const kept = await host.runToEnd(["--name", "kept"], ["sh", "-c", "exit 3"]);
    assert.equal(kept.code, 3);
    await waitFor("its exit status", () => getApps("-a", "kept")[0]?.exitCode === 3);
  });

  test("get NAME, -l selectors, -o wide|json|yaml, describe", async () => {
    ok([
      "run",
      "-d",
      "--name",
      "api",
      "--ip",
      "10.77.50.1",
      "--labels",
      "tier=back,zone=default",
      "--",
      PYTHON,
      "-m",
      "http.server",
      "8080",
    ]);
    ok(["run", "-d", "--name", "front", "--labels", "tier=front,zone=default", "--", "sleep", "60"]);
    await waitFor("api's service", () => host.cli(["get", "services", "api"]).code === 0);
    assert.deepEqual(
      getApps("-l", "tier=back").map((a) => a.name),
      ["api"],
    );
    assert.deepEqual(
      getApps("-l", "tier!=back").map((a) => a.name),
      ["front"],
    );
    assert.deepEqual(
      getApps("-l", "!tier").map((a) => a.name),
      [],
    );
    assert.match(
      ok(["get", "apps", "api", "-o", "wide"]),
      /COMMAND[\s\S]*api\s+Running\s+10\.77\.50\.1[\s\S]*yes\s+0\s+<none>\s+\S*python3 -m http\.server 8080/,
    );
    const yaml = parse(ok(["get", "apps", "api", "-o", "yaml"]));
    assert.equal(yaml.items[0].name, "api");
    assert.match(ok(["get", "svc", "-l", "tier=back"]), /api\s+\S+\s+tcp\s+10\.77\.50\.1:8080/);
    const missing = host.cli(["get", "apps", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no app "nope"/);
    // Sockets by their app's name or id (their APP column is the id).
    const apiId = getApps().find((a) => a.name === "api")?.id ?? "api";
    for (const name of ["api", apiId])
      assert.match(
        ok(["get", "sockets", name]),
        new RegExp(`${apiId}\\s+tcp\\s+LISTEN\\s+0\\.0\\.0\\.0:8080`),
      );
    assert.match(
      host.cli(["get", "sockets", "nope"]).stderr,
      /no sockets of app "nope" \(an app's name or id\)/,
    );
    const bad = host.cli(["get", "apps", "-l", "a=b=c"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a label requirement/);
    assert.match(
      ok(["describe", "app", "api"]),
      /Name:\s+api[\s\S]*Status:\s+Running[\s\S]*Services:\n\s+PROTO\s+ADDRESS[\s\S]*10\.77\.50\.1:8080/,
    );
    assert.match(
      ok(["describe", "service", "10.77.50.1:8080"]),
      /Address:\s+10\.77\.50\.1:8080[\s\S]*Backends:[\s\S]*api/,
    );
    const node = getApps("api")[0] as App & { node: string };
    assert.match(ok(["describe", "node", node.node]), /This node:\s+yes[\s\S]*Apps:[\s\S]*api/);
    ok(["stop", "api", "front"]);
  });

  test("events and get -w stream changes: apps, services, refusals", async () => {
    const spawnCli = async (args: string[]) =>
      new Proc(
        (await import("node:child_process")).spawn(
          "ip",
          ["netns", "exec", host.ns, CLI, ...args, "--socket", host.socket],
          {
            stdio: ["ignore", "pipe", "pipe"],
          },
        ),
      );
    const events = await spawnCli(["events", "-o", "json"]);
    const watch = await spawnCli(["get", "apps", "-w"]);
    await waitFor(
      "the watch's first list",
      () => watch.stdout.includes("ID") || watch.stdout.includes("No apps"),
    );
    await new Promise((r) => setTimeout(r, 300));
    ok([
      "run",
      "-d",
      "--name",
      "watched",
      "--ip",
      "10.77.51.1",
      "--labels",
      "zone=a",
      "--",
      PYTHON,
      "-m",
      "http.server",
      "9090",
    ]);
    await waitFor("the service", () => host.cli(["get", "services", "watched"]).code === 0);
    const denied = await host.runToEnd(["--labels", "zone=b"], ["curl", "-s", "http://10.77.51.1:9090/"]);
    assert.notEqual(denied.code, 0);
    ok(["stop", "watched"]);
    await waitFor("the events", () => {
      const evs = events.stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      const has = (kind: string, type: string, pred: (o: Record<string, unknown>) => boolean = () => true) =>
        evs.some((e) => e.kind === kind && e.type === type && pred(e.object));
      return (
        has("app", "ADDED", (o) => o.name === "watched" && o.detached === true) &&
        has("service", "ADDED", (o) => o.address === "10.77.51.1:9090") &&
        has("denial", "ADDED", (o) => o.reason === "label-policy" && o.destination === "10.77.51.1:9090") &&
        has("service", "DELETED", (o) => o.address === "10.77.51.1:9090") &&
        has("app", "DELETED", (o) => o.name === "watched" && o.status === "exited")
      );
    });
    await waitFor(
      "the watched rows",
      () => /watched\s+Running/.test(watch.stdout) && /watched\s+Exited/.test(watch.stdout),
    );
    events.kill("SIGINT");
    watch.kill("SIGINT");
  });

  test("--publish HOST_PORT:APP_PORT (Docker's order) publishes; a taken host port is refused at run", async () => {
    ok(["run", "-d", "--name", "pub", "--publish", "18080:8080", "--", PYTHON, "-m", "http.server", "8080"]);
    await waitFor(
      "the published port",
      () =>
        host.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:18080/"])
          .stdout === "200",
    );
    assert.match(ok(["get", "apps", "pub", "-o", "wide"]), /18080->8080/);
    const again = await host.runToEnd(["--publish", "18080:9000"], ["true"]);
    assert.equal(again.code, 125);
    assert.match(
      again.stderr,
      /host port 127\.0\.0\.1:18080 is already published by app pub; choose another host port/,
    );
    const holder = host.spawnInHost([
      PYTHON,
      "-c",
      "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1',18081)); s.listen(); print('up',flush=True); time.sleep(60)",
    ]);
    await waitFor("the holder", () => holder.stdout.includes("up"));
    const taken = await host.runToEnd(["-p", "18081:8080"], ["true"]);
    assert.equal(taken.code, 125);
    assert.match(
      taken.stderr,
      /host port 127\.0\.0\.1:18081 is taken on this host; choose another host port or stop what holds it/,
    );
    // A HOST_IP that is neither this host's nor a node's (TEST-NET-1; nothing is sent to it).
    const elsewhere = await host.runToEnd(["-p", "192.0.2.1:18092:80"], ["true"]);
    assert.equal(elsewhere.code, 2);
    assert.match(
      elsewhere.stderr,
      /192\.0\.2\.1 \(host port 192\.0\.2\.1:18092, --publish or --expose\) is not an address of this host or of a node of its cluster/,
    );
    const bad = host.cli(["run", "--publish", "8080", "--", "true"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--publish "8080" needs HOST_PORT:APP_PORT/);
    holder.kill();
    ok(["stop", "pub"]);
  });

  test("--restart on-failure starts a failing app again; stop ends that", async () => {
    ok([
      "run",
      "-d",
      "--restart",
      "on-failure",
      "--name",
      "flaky",
      "--",
      "sh",
      "-c",
      "echo started; sleep 0.3; exit 1",
    ]);
    await waitFor("two restarts", () => (getApps("-a", "flaky")[0]?.restarts ?? 0) >= 2, 20_000);
    const running = () => getApps("flaky").filter((a) => a.status === "running");
    await waitFor("it runs", () => running().length === 1, 10_000);
    ok(["stop", "flaky"]);
    const before = getApps("-a", "flaky")[0]?.restarts;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(running().length, 0, "not started again after stop");
    assert.equal(getApps("-a", "flaky")[0]?.restarts, before);
    assert.ok((ok(["logs", "flaky"]).match(/started/g) ?? []).length >= 3, "one log across restarts");
    const noDetach = host.cli(["run", "--restart", "always", "--", "true"]);
    assert.equal(noDetach.code, 2);
    assert.match(noDetach.stderr, /--restart needs -d/);
  });

  test("version shows the CLI and the daemon; global options after the command; completion", () => {
    const inHost = ok(["version"]);
    assert.match(inHost, /^Client:\s+sockswitch \d+\.\d+\.\d+\nDaemon:\s+sockswitch \d+\.\d+\.\d+ \(node /);
    const after = host.exec([CLI, "get", "apps", "--socket", host.socket]);
    assert.equal(after.code, 0, after.stderr);
    const none = sh(CLI, ["version", "--socket", "/tmp/ssw-no-daemon.sock"]);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /^Client:\s+sockswitch/);
    assert.match(none.stderr, /^sockswitch: cannot reach the sockswitch daemon/);
    const script = sh(CLI, ["completion", "bash"]);
    assert.equal(script.code, 0);
    assert.equal(sh("bash", ["-n", "-c", script.stdout]).code, 0, "the script parses");
    assert.match(script.stdout, /complete -F _sockswitch sockswitch/);
    assert.match(script.stdout, /get\) opts="[^"]*--selector/);
    assert.match(ok(["__names", "apps"]), /pub/);
  });
});
