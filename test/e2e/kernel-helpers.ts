// Helpers for the tests that depend on what the kernel offers: the daemon's probe as
// `sockswitch info -o json` shows it, the test-only switch that hides a feature, and the Go
// test program (test/fixtures/goecho), built once per test process into a temporary
// directory (or taken from SSW_GOECHO when the caller built it, as the kernel VM run does).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InfoResponse } from "../../src/api/info.js";
import { FIXTURES, must, type TestHost } from "./harness.js";

export const HIDE = "SOCKSWITCH_TEST_HIDE_FEATURES";

export function daemonInfo(host: TestHost): InfoResponse {
  const r = host.cli(["info", "-o", "json"]);
  if (r.code !== 0) throw new Error(`sockswitch info failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as InfoResponse;
}

/** Whether the host's daemon found (and did not hide) a kernel feature. */
export function hasFeature(host: TestHost, name: string): boolean {
  const f = daemonInfo(host).kernel.features.find((x) => x.name === name);
  if (!f) throw new Error(`the daemon reports no feature ${name}`);
  return f.available === true;
}

/**
 * GET path from the host's daemon API with curl (a native program: in the emulated kernel
 * VM a poll through the CLI costs seconds of Node start-up each time).
 */
export function api<T>(host: TestHost, path: string): T {
  const r = host.exec(["curl", "-sS", "-m", "10", "--unix-socket", host.socket, `http://sockswitch${path}`]);
  if (r.code !== 0) throw new Error(`GET ${path} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** True when the host's table has a service at the virtual address (ip:port). */
export function hasServiceAt(host: TestHost, address: string): boolean {
  return api<{ items: { address: string }[] }>(host, "/v1/services").items.some((s) => s.address === address);
}

let goecho: string | null = process.env.SSW_GOECHO ?? null;

/** The Go test program's path (built with `go build` on first use). */
export function goEcho(): string {
  if (goecho) return goecho;
  const dir = mkdtempSync(join(tmpdir(), "ssw-go-"));
  const out = join(dir, "goecho");
  must("env", [
    `GOCACHE=${join(dir, "cache")}`,
    "CGO_ENABLED=0",
    "go",
    "build",
    "-o",
    out,
    join(FIXTURES, "goecho", "main.go"),
  ]);
  rmSync(join(dir, "cache"), { recursive: true, force: true });
  goecho = out;
  return out;
}
