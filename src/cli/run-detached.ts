// `sockswitch run -d`: the options are checked here as for a foreground run, then the daemon
// starts the app (POST /v1/apps) and keeps its output; this prints the app's id once the
// app runs, or the launcher's one sentence if it could not start.

import { apiRequest } from "../api/client.js";
import type { RunRequestBody } from "../api/context.js";
import type { AppView } from "../api/views.js";
import { buildSpec, exposeText } from "../table/app-spec.js";
import type { RunOptions } from "./run.js";
import { resolveUser } from "./users.js";

export interface DetachedOptions extends RunOptions {
  readonly restart?: "no" | "on-failure" | "always" | "unless-stopped";
}

/** The request for a detached run: the app's spec, and what the launcher needs from here. */
export function runRequest(opts: DetachedOptions, command: string[]): RunRequestBody {
  const spec = buildSpec(opts, command);
  let userIds: string | null = null;
  if (opts.user !== undefined) {
    const u = resolveUser(opts.user);
    userIds = `${u.uid}:${u.gid}${u.groups.length > 0 ? `:${u.groups.join(",")}` : ""}`;
  }
  return {
    name: spec.name,
    ips: spec.ips,
    labels: { ...spec.labels },
    expose: spec.expose.map(exposeText),
    lb: spec.lb,
    command: spec.command,
    user: spec.user,
    userIds,
    newNetns: opts.newNetns,
    dnsOverride: opts.dnsOverride ?? null,
    env: Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ""}`),
    cwd: process.cwd(),
    restart: opts.restart ?? "no",
    rm: opts.rm === true,
    stack: null,
  };
}

export async function runDetached(socket: string, opts: DetachedOptions, command: string[]): Promise<string> {
  const app = await apiRequest<AppView>(socket, "/v1/apps", {
    method: "POST",
    body: runRequest(opts, command),
    timeoutMs: 40_000,
  });
  return app.id;
}
