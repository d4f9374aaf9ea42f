// End-to-end: app lifecycle. A listening or bound socket that the app closes while it
// keeps running is withdrawn (reconciliation with the kernel's socket list); an app that
// exits leaves no service, socket record or host port behind.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PYTHON, TestHost, waitFor } from "./harness.js";

describe("app lifecycle", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("life");
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  const script = (kind: "tcp" | "udp", port: number) =>
    [
      "import socket, sys, time",
      `s = socket.socket(socket.AF_INET, socket.${kind === "tcp" ? "SOCK_STREAM" : "SOCK_DGRAM"})`,
      `s.bind(("0.0.0.0", ${port}))`,
      kind === "tcp" ? "s.listen()" : "pass",
      "print('bound', flush=True)",
      "sys.stdin.readline() if False else time.sleep(1.5)",
      "s.close()",
      "print('closed', flush=True)",
      "time.sleep(30)",
    ].join("\n");

  for (const kind of ["tcp", "udp"] as const) {
    test(`a ${kind} socket closed while the app runs is withdrawn within a second`, async () => {
      const port = kind === "tcp" ? 7400 : 7401;
      const address = `10.77.98.1:${port}`;
      const app = host.run(["--ip", "10.77.98.1"], [PYTHON, "-c", script(kind, port)]);
      await waitFor("the socket", () =>
        host.getJson<{ address: string }>("services").some((s) => s.address === address),
      );
      const hostPort = Number(
        host
          .getJson<{ address: string; host: string }>("services")
          .find((s) => s.address === address)
          ?.host.split(":")
          .pop(),
      );
      await waitFor("the close", () => app.stdout.includes("closed"));
      const t0 = Date.now();
      await waitFor(
        "the withdrawal",
        () => !host.getJson<{ address: string }>("services").some((s) => s.address === address),
        3000,
      );
      assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
      assert.ok(app.running, "the app keeps running");
      assert.ok(
        !host.getJson<{ hostLocal: string }>("sockets").some((s) => s.hostLocal === `127.0.0.1:${hostPort}`),
      );
      app.kill();
    });
  }

  test("an app that exits leaves no socket record behind", async () => {
    const app = host.run(
      ["--ip", "10.77.99.1"],
      [PYTHON, "-c", script("udp", 7402).replace("time.sleep(1.5)", "time.sleep(30)")],
    );
    await waitFor("the socket", () => host.getJson<{ app: string }>("sockets").length > 0);
    app.kill("SIGKILL");
    await app.wait();
    await waitFor(
      "no records",
      () => host.getJson("sockets").length === 0 && host.getJson("apps").length === 0,
      2000,
    );
  });
});
