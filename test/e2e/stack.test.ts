// End-to-end: compose-like stacks. The README's three-tier example
// (examples/three-tier: web published on the host, api by name, redis) is started with
// `sockswitch up -f`, serves through all three tiers, keeps its label policy (web is not
// told redis's name and cannot reach its IP), is left alone by a second `up`, and `down -f` removes every app of it.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT, TestHost, waitFor } from "./harness.js";

const STACK = join(ROOT, "examples", "three-tier", "stack.yaml");

interface App {
  name: string;
  stack: string | null;
  status: string;
  ips: string[];
}

describe("stacks: sockswitch up -f / down -f", () => {
  let host: TestHost;
  const apps = (all = false): App[] =>
    JSON.parse(host.cli(["get", "apps", ...(all ? ["-a"] : []), "-o", "json"]).stdout).items;
  const curl = () => host.exec(["curl", "-s", "--max-time", "5", "http://127.0.0.1:18080/"]).stdout;

  before(async () => {
    host = new TestHost("stack");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("the README's three-tier example: up, served through web -> api -> redis, policy kept, down", async () => {
    const up = host.cli(["up", "-f", STACK]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /^redis started \([0-9a-f]{12}\)\napi started .*\nweb started .*\n$/);
    await waitFor("the first visit", () => curl() === "hello from web; visits: 1\n", 20_000);
    assert.equal(curl(), "hello from web; visits: 2\n");
    assert.deepEqual(
      apps()
        .filter((a) => a.stack === "shop")
        .map((a) => a.name)
        .sort(),
      ["api", "redis", "web"],
    );
    assert.match(host.cli(["get", "apps", "web", "-o", "wide"]).stdout, /STACK[\s\S]*web[\s\S]*shop/);
    // web's labels reach api, not redis: it is not told redis's name (the daemon's DNS
    // answers only names an app may reach), and a connect to redis's IP gets EACCES.
    const redisIp = apps().find((a) => a.name === "redis" && a.stack === "shop")?.ips[0];
    assert.ok(redisIp, "redis has no IP");
    const probe = [
      "import socket, sys",
      "try: socket.getaddrinfo('redis.sockswitch.local.', 6379); print('resolved')",
      "except socket.gaierror as e: print('unknown', e.errno == socket.EAI_NONAME)",
      "try: socket.create_connection((sys.argv[1], 6379), timeout=3); print('reached')",
      "except OSError as e: print(e.errno)",
    ].join("\n");
    const fromWeb = await host.runToEnd(["--labels", "front=shop"], ["python3", "-c", probe, redisIp]);
    assert.deepEqual(fromWeb.stdout.trim().split("\n"), ["unknown True", "13"], fromWeb.stderr);
    const again = host.cli(["up", "-f", STACK]);
    assert.match(again.stdout, /redis is running[\s\S]*api is running[\s\S]*web is running/);
    const down = host.cli(["down", "-f", STACK, "-t", "2"]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /web removed[\s\S]*api removed[\s\S]*redis removed/);
    assert.equal(apps(true).filter((a) => a.stack === "shop").length, 0);
    assert.notEqual(curl(), "hello from web; visits: 3\n");
  });

  test("a stack file with a mistake is one sentence naming it", () => {
    const bad = (text: string, re: RegExp) => {
      const f = join(host.dir, "bad.yaml");
      writeFileSync(f, text);
      const r = host.cli(["up", "-f", f]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
    };
    bad(
      "apps:\n  a: {command: ['true'], depends_on: [b]}\n  b: {command: ['true'], depends_on: [a]}\n",
      /depends_on makes a cycle: a -> b -> a/,
    );
    bad(
      "apps:\n  a: {command: ['true'], depends_on: [c]}\n",
      /app "a" depends on "c", which is not in the stack/,
    );
    bad("apps:\n  a: {command: ['true'], image: x}\n", /app "a": unknown key "image"/);
    bad("apps:\n  Web: {command: ['true']}\n", /app "Web": the name must be a DNS label/);
    bad(
      "apps:\n  a: {command: ['true'], publish: ['80']}\n",
      /app "a": --publish "80" needs HOST_PORT:APP_PORT/,
    );
    bad("services: {}\n", /unknown key "services"; use name and apps/);
  });
});
