// Real applications: the HTTP servers and clients of language runtimes, as small programs
// in test/apps/fixtures written the way each runtime's documentation shows (listen on a
// port with no host; a client that GETs a URL): Go's net/http (built here with golang-go
// into a temporary directory), Java's HttpServer and HttpClient (run from source with
// `java File.java`), Node.js's http, and Python's asyncio streams. Each server runs under
// `sockswitch run` with an IPv4 and an IPv6 virtual IP, is reached by an IPv4 client by name
// and an IPv6 client by address, and answers with the client's address as it sees it.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { must, PYTHON, ROOT } from "../e2e/harness.js";
import { expectOk, VIP, v6Groups, waitForOutput } from "./app-node.js";
import { appTests } from "./app-test.js";

const FIXTURES = join(ROOT, "test", "apps", "fixtures");

let goDir: string | null = null;
after(() => {
  if (goDir) rmSync(goDir, { recursive: true, force: true });
});

/** Builds the Go fixtures once per run (golang-go's prebuilt standard library: seconds). */
function goBinaries(): { server: string; client: string } {
  if (!goDir) {
    const dir = mkdtempSync(join(tmpdir(), "ssw-apps-go-"));
    goDir = dir;
    const env = [`GOCACHE=${join(dir, "cache")}`, `GOPATH=${join(dir, "gopath")}`, "GOPROXY=off", "GOFLAGS="];
    for (const name of ["http-server", "http-client"]) {
      must("env", [...env, "go", "build", "-o", join(dir, name), join(FIXTURES, `${name}.go`)]);
    }
  }
  return { server: join(goDir, "http-server"), client: join(goDir, "http-client") };
}

appTests({
  app: "Go net/http",
  packages: ["golang-go"],
  needs: ["go"],
  async run(node) {
    const go = goBinaries();
    const srv = node.server("go server", "app", [go.server]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:8080`, `[${VIP.server6}]:8080`]);
    const v4 = expectOk(
      await node.client(VIP.client4, [go.client, "tcp4", "http://app:8080/"]),
      "IPv4 client, by name",
    );
    assert.match(v4, new RegExp(`^${VIP.client4}:\\d+$`, "m"));
    const v6 = expectOk(
      await node.client(VIP.client6, [go.client, "tcp6", `http://[${VIP.server6}]:8080/`]),
      "IPv6 client",
    );
    assert.match(v6, new RegExp(`^\\[${VIP.client6}\\]:\\d+$`, "m"));
    await waitForOutput(srv, [`request from ${VIP.client4}:`, `request from [${VIP.client6}]:`]);
  },
});

/** The last line of a program's output. */
function lastLine(out: string): string {
  return out.trim().split("\n").pop() ?? "";
}

// The JDK shows a client that came to its dual-stack socket from IPv4 as an IPv4 address,
// and an IPv6 address in full, without "::" (Inet6Address.getHostAddress).
appTests({
  app: "Java HttpServer/HttpClient",
  packages: ["default-jdk-headless"],
  needs: ["java"],
  timeoutMs: 180_000,
  async run(node) {
    const srv = node.server("java server", "app", ["java", join(FIXTURES, "HttpServerMain.java")]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:8080`, `[${VIP.server6}]:8080`], 60_000);
    const client = (url: string) => ["java", join(FIXTURES, "HttpClientMain.java"), url];
    const opts = { timeoutMs: 60_000 };
    const v4 = expectOk(
      await node.client(VIP.client4, client("http://app:8080/"), opts),
      "IPv4 client, by name",
    );
    // Every app's process is pid 2 in its own PID namespace, and both JVMs share /tmp: the
    // second one warns on stdout that /tmp/hsperfdata_root/2 is taken (README, Processes).
    assert.equal(lastLine(v4), VIP.client4);
    const v6 = expectOk(
      await node.client(VIP.client6, client(`http://[${VIP.server6}]:8080/`), opts),
      "IPv6 client",
    );
    const client6 = v6Groups(VIP.client6, false);
    assert.equal(lastLine(v6), client6);
    await waitForOutput(srv, [`request from ${VIP.client4}\n`, `request from ${client6}\n`]);
  },
});

// Node's dual-stack socket shows an IPv4 client as an IPv4-mapped address, as the kernel does.
appTests({
  app: "Node.js http",
  packages: ["nodejs"],
  needs: [],
  async run(node) {
    const nodeBin = process.execPath;
    const srv = node.server("node server", "app", [nodeBin, join(FIXTURES, "http-server.mjs")]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:8080`, `[${VIP.server6}]:8080`]);
    const client = (family: string, url: string) => [nodeBin, join(FIXTURES, "http-client.mjs"), family, url];
    const v4 = expectOk(
      await node.client(VIP.client4, client("4", "http://app:8080/")),
      "IPv4 client, by name",
    );
    assert.equal(v4.trim(), `::ffff:${VIP.client4}`);
    const v6 = expectOk(
      await node.client(VIP.client6, client("6", `http://[${VIP.server6}]:8080/`)),
      "IPv6 client",
    );
    assert.equal(v6.trim(), VIP.client6);
    await waitForOutput(srv, [`request from ::ffff:${VIP.client4}\n`, `request from ${VIP.client6}\n`]);
  },
});

// asyncio.start_server() with no host opens one socket per family (0.0.0.0 and [::] with
// IPV6_V6ONLY), the pattern of nginx's default site.
appTests({
  app: "Python asyncio",
  packages: ["python3"],
  needs: ["python3"],
  async run(node) {
    const script = join(FIXTURES, "asyncio-echo.py");
    const python = PYTHON;
    const srv = node.server("asyncio server", "app", [python, script, "server", "8888"]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:8888`, `[${VIP.server6}]:8888`]);
    const v4 = expectOk(
      await node.client(VIP.client4, [python, script, "client", "app", "8888", "4"]),
      "IPv4 client, by name",
    );
    assert.equal(v4.trim(), `${VIP.client4} hello`);
    const v6 = expectOk(
      await node.client(VIP.client6, [python, script, "client", VIP.server6, "8888", "6"]),
      "IPv6 client",
    );
    assert.equal(v6.trim(), `${VIP.client6} hello`);
    await waitForOutput(srv, [`connection from ${VIP.client4}\n`, `connection from ${VIP.client6}\n`]);
  },
});
