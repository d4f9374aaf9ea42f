// End-to-end: the REST API answers what its OpenAPI document (served at /openapi.json,
// generated from the route schemas) says. Every operation of the document is called on a
// live daemon, and each answer's status must be documented for that operation and its body
// valid against the documented schema (Ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses). A
// known path with another method gets 405 and Allow; an unknown one 404.

import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { PYTHON, TestHost, waitFor } from "./harness.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(socket: string, method: string, path: string, body?: unknown, maxMs = 10_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath: socket, method, path, headers: data ? { "content-type": "application/json" } : {} },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        // Streams (events, followed logs) are read for a moment, then closed.
        const t = setTimeout(() => {
          req.destroy();
          done();
        }, maxMs);
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => {
          clearTimeout(t);
          done();
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

describe("the API answers what /openapi.json says", () => {
  let host: TestHost;
  let doc: { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const covered = new Set<string>();

  /** Checks one live answer against the document; returns the parsed JSON body (if JSON). */
  const check = (pattern: string, method: string, a: Answer): unknown => {
    covered.add(`${method} ${pattern}`);
    const op = doc.paths[pattern]?.[method.toLowerCase()];
    assert.ok(op, `${method} ${pattern} is not in the document`);
    const resp = op.responses[String(a.status)] as
      | { content?: Record<string, { schema: unknown }> }
      | undefined;
    assert.ok(resp, `${method} ${pattern}: status ${a.status} is not documented (${a.body.slice(0, 200)})`);
    const type = String(a.headers["content-type"] ?? "").split(";")[0] as string;
    assert.ok(
      resp.content?.[type],
      `${method} ${pattern} ${a.status}: content type ${type} is not documented`,
    );
    if (type !== "application/json") return a.body;
    const json = JSON.parse(a.body);
    const pointer = [
      "paths",
      pattern,
      method.toLowerCase(),
      "responses",
      String(a.status),
      "content",
      type,
      "schema",
    ]
      .map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1"))
      .join("/");
    const validate = ajv.compile({ $ref: `openapi#/${pointer}` });
    assert.ok(
      validate(json),
      `${method} ${pattern} ${a.status}: ${ajv.errorsText(validate.errors)}\n${a.body.slice(0, 500)}`,
    );
    return json;
  };

  before(async () => {
    host = new TestHost("contract");
    await host.start();
    const served = await call(host.socket, "GET", "/openapi.json");
    assert.equal(served.status, 200);
    doc = JSON.parse(served.body);
    ajv.addSchema(doc as object, "openapi");
    host.run(["--name", "web", "--labels", "tier=web"], [PYTHON, "-m", "http.server", "8080"]);
    await waitFor("web", () => host.cli(["get", "services", "web"]).code === 0);
    await host.runToEnd(["--name", "done"], ["sh", "-c", "exit 7"]);
  });

  after(async () => {
    await host?.cleanup();
  });

  test("every operation, on a live daemon", async () => {
    const s = host.socket;
    for (const p of [
      "/healthz",
      "/readyz",
      "/v1/health",
      "/v1/info",
      "/v1/services",
      "/v1/nodes",
      "/v1/proxies",
      "/v1/sockets",
    ])
      check(p, "GET", await call(s, "GET", p));
    const apps = check("/v1/apps", "GET", await call(s, "GET", "/v1/apps?all=true&selector=tier%3Dweb")) as {
      items: { id: string; name: string; exitCode: number | null }[];
    };
    await waitFor("done's exit status", async () => {
      const a = check("/v1/apps/{id}", "GET", await call(s, "GET", "/v1/apps/done")) as { exitCode: number };
      return a.exitCode === 7;
    });
    assert.ok(apps.items.some((a) => a.name === "web"));
    check("/v1/apps/{id}", "GET", await call(s, "GET", "/v1/apps/web"));
    check("/v1/apps/{id}", "GET", await call(s, "GET", "/v1/apps/nope"));
    check("/v1/apps", "GET", await call(s, "GET", "/v1/apps?selector=a%3Db%3Dc"));

    const started = check(
      "/v1/apps",
      "POST",
      await call(s, "POST", "/v1/apps", {
        name: "bg",
        command: ["sh", "-c", "echo hello; sleep 60"],
        cwd: "/",
      }),
    ) as { id: string; detached: boolean };
    assert.equal(started.detached, true);
    check("/v1/apps", "POST", await call(s, "POST", "/v1/apps", { command: [] }));
    check("/v1/apps", "POST", await call(s, "POST", "/v1/apps", { command: ["true"], name: "Bad Name" }));
    await waitFor("bg's output", async () =>
      (await call(s, "GET", "/v1/apps/bg/logs")).body.includes("hello"),
    );
    check("/v1/apps/{id}/logs", "GET", await call(s, "GET", "/v1/apps/bg/logs?tail=1"));
    check("/v1/apps/{id}/logs", "GET", await call(s, "GET", "/v1/apps/web/logs"));
    const events = call(s, "GET", "/v1/events?kinds=app", undefined, 3000);
    await new Promise((r) => setTimeout(r, 300));
    check("/v1/apps/{id}", "DELETE", await call(s, "DELETE", `/v1/apps/${started.id}`));
    check("/v1/apps/{id}/stop", "POST", await call(s, "POST", `/v1/apps/${started.id}/stop?timeout=2`));
    check("/v1/apps/{id}/stop", "POST", await call(s, "POST", "/v1/apps/nope/stop"));
    check("/v1/apps/{id}/stop", "POST", await call(s, "POST", "/v1/apps/bg/stop?timeout=-1"));
    check("/v1/apps/{id}", "DELETE", await call(s, "DELETE", `/v1/apps/${started.id}`));
    const ev = await events;
    check("/v1/events", "GET", ev);
    const data = ev.body.split("\n").filter((l) => l.startsWith("data: "));
    assert.ok(data.length > 0, ev.body);
    const validate = ajv.compile({ $ref: "openapi#/components/schemas/Event" });
    for (const d of data) assert.ok(validate(JSON.parse(d.slice(6))), ajv.errorsText(validate.errors));
    check("/v1/events", "GET", await call(s, "GET", "/v1/events?kinds=pods"));

    const all = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    assert.deepEqual(
      all.filter((o) => !covered.has(o)),
      [],
      "operations the test did not call",
    );
  });

  test("a known path with another method: 405 with Allow; an unknown path: 404", async () => {
    const put = await call(host.socket, "PUT", "/v1/apps");
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, "GET, HEAD, POST");
    assert.equal(JSON.parse(put.body).error.code, "SOCKSWITCH_ERR_METHOD_NOT_ALLOWED");
    const del = await call(host.socket, "DELETE", "/v1/services");
    assert.equal(del.status, 405);
    assert.equal(del.headers.allow, "GET, HEAD");
    const post = await call(host.socket, "POST", "/v1/apps/abc/logs");
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
    const none = await call(host.socket, "GET", "/v2/nothing");
    assert.equal(none.status, 404);
    assert.equal(JSON.parse(none.body).error.code, "SOCKSWITCH_ERR_NOT_FOUND");
  });
});
