// Stacks, in the spirit of docker-compose files: `sockswitch up -f stack.yaml` starts the
// stack's apps as detached runs (in the order their depends_on gives), `down -f` stops and
// removes them. A stack file is YAML:
//
//   name: shop                       # default: the file's name without .yaml
//   apps:
//     redis:                         # the app's name (a DNS label: reached as redis)
//       command: [redis-server, --port, "6379"]
//       ip: 10.77.10.3               # or a list (one IPv4, one IPv6); default: from --vip-cidr
//       labels: {data: shop}         # default zone=default
//     api:
//       command: python3 api.py      # a string runs with sh -c
//       labels: {data: shop, front: shop}
//       depends_on: [redis]
//       restart: on-failure          # no, on-failure, always, unless-stopped
//       env: {REDIS: "redis:6379"}
//       cwd: /srv/api                # default: the stack file's directory
//     web:
//       command: [python3, web.py]
//       publish: ["127.0.0.1:18080:8080"]   # Docker's order; `expose` takes --expose's
//       depends_on: [api]
//
// Other keys per app: expose, lb, user, new-netns, dns-override. `up` leaves an app of the
// stack that already runs as it is; each app belongs to its stack (get apps -o wide:
// STACK), which is how `down` finds them. Every mistake is one sentence naming the file.

import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { parseDocument } from "yaml";
import { apiRequest } from "../api/client.js";
import type { RunRequestBody } from "../api/context.js";
import type { AppView } from "../api/views.js";
import { InvalidArgumentError } from "../core/errors.js";
import { validateName } from "../table/app-spec.js";
import { RESTART_POLICIES } from "./run-command.js";
import { runRequest } from "./run-detached.js";

export interface StackApp {
  readonly name: string;
  readonly request: RunRequestBody;
  readonly dependsOn: readonly string[];
}

export interface Stack {
  readonly name: string;
  /** In start order: every app after those it depends on. */
  readonly apps: readonly StackApp[];
}

const APP_KEYS = [
  "command",
  "ip",
  "labels",
  "publish",
  "expose",
  "lb",
  "user",
  "restart",
  "env",
  "cwd",
  "depends_on",
  "new-netns",
  "dns-override",
];

function strings(file: string, where: string, v: unknown): string[] {
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === "string" || typeof x === "number"))
    throw new InvalidArgumentError(`${file}: ${where} must be a string or a list of strings`);
  return list.map(String);
}

/** Reads and checks a stack file. */
export function readStack(path: string): Stack {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(
      `cannot read the stack file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  return parseStack(text, path);
}

export function parseStack(text: string, file: string): Stack {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new InvalidArgumentError(`${file}: not valid YAML (${doc.errors[0]?.message.split("\n")[0]})`);
  const data = doc.toJS() as Record<string, unknown> | null;
  if (typeof data !== "object" || data === null || Array.isArray(data))
    throw new InvalidArgumentError(`${file}: a stack file is a mapping with "apps" (and optionally "name")`);
  for (const k of Object.keys(data))
    if (k !== "name" && k !== "apps")
      throw new InvalidArgumentError(`${file}: unknown key "${k}"; use name and apps`);
  const name = String(data.name ?? basename(file).replace(/\.ya?ml$/, ""));
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name))
    throw new InvalidArgumentError(
      `${file}: the stack's name "${name}" must be a DNS label (lower-case, digits, '-')`,
    );
  const apps = data.apps;
  if (typeof apps !== "object" || apps === null || Array.isArray(apps) || Object.keys(apps).length === 0)
    throw new InvalidArgumentError(`${file}: "apps" must map each app's name to its settings`);
  const out = new Map<string, StackApp>();
  for (const [appName, raw] of Object.entries(apps as Record<string, unknown>)) {
    const at = `app "${appName}"`;
    try {
      validateName(appName);
    } catch {
      throw new InvalidArgumentError(
        `${file}: ${at}: the name must be a DNS label (lower-case letters, digits, '-')`,
      );
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new InvalidArgumentError(`${file}: ${at} must be a mapping of settings (command, labels, …)`);
    const a = raw as Record<string, unknown>;
    for (const k of Object.keys(a))
      if (!APP_KEYS.includes(k))
        throw new InvalidArgumentError(`${file}: ${at}: unknown key "${k}"; use ${APP_KEYS.join(", ")}`);
    const command =
      typeof a.command === "string" ? ["sh", "-c", a.command] : strings(file, `${at} command`, a.command);
    if (command.length === 0) throw new InvalidArgumentError(`${file}: ${at} needs a command`);
    const labels = a.labels;
    if (labels !== undefined && (typeof labels !== "object" || labels === null || Array.isArray(labels)))
      throw new InvalidArgumentError(`${file}: ${at} labels must be a mapping (key: value)`);
    const env = a.env;
    if (env !== undefined && (typeof env !== "object" || env === null || Array.isArray(env)))
      throw new InvalidArgumentError(`${file}: ${at} env must be a mapping (NAME: value)`);
    const restart = a.restart === undefined ? "no" : String(a.restart);
    if (!(RESTART_POLICIES as readonly string[]).includes(restart))
      throw new InvalidArgumentError(`${file}: ${at} restart must be one of ${RESTART_POLICIES.join(", ")}`);
    const bool = (k: string): boolean | undefined => {
      if (a[k] === undefined) return undefined;
      if (typeof a[k] !== "boolean")
        throw new InvalidArgumentError(`${file}: ${at} ${k} must be true or false`);
      return a[k] as boolean;
    };
    let req: RunRequestBody;
    try {
      req = runRequest(
        {
          name: appName,
          ip: strings(file, `${at} ip`, a.ip),
          labels:
            labels === undefined
              ? undefined
              : Object.entries(labels as Record<string, unknown>)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(","),
          publish: strings(file, `${at} publish`, a.publish),
          expose: strings(file, `${at} expose`, a.expose),
          lb: a.lb === undefined ? undefined : String(a.lb),
          user: a.user === undefined ? undefined : String(a.user),
          newNetns: bool("new-netns") ?? true,
          dnsOverride: bool("dns-override"),
          restart: restart as RunRequestBody["restart"],
        },
        command,
      );
    } catch (err) {
      throw new InvalidArgumentError(`${file}: ${at}: ${(err as Error).message}`);
    }
    const extra = Object.entries((env ?? {}) as Record<string, unknown>).map(([k, v]) => `${k}=${v}`);
    out.set(appName, {
      name: appName,
      request: {
        ...req,
        env: [...(req.env ?? []), ...extra],
        cwd: a.cwd === undefined ? dirname(resolve(file)) : resolve(dirname(resolve(file)), String(a.cwd)),
        stack: name,
      },
      dependsOn: strings(file, `${at} depends_on`, a.depends_on),
    });
  }
  return { name, apps: order(out, file) };
}

/** The apps in an order that starts each after its dependencies; a cycle is an error. */
function order(apps: Map<string, StackApp>, file: string): StackApp[] {
  const out: StackApp[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting")
      throw new InvalidArgumentError(`${file}: depends_on makes a cycle: ${[...path, name].join(" -> ")}`);
    const app = apps.get(name);
    if (!app)
      throw new InvalidArgumentError(
        `${file}: app "${path.at(-1)}" depends on "${name}", which is not in the stack`,
      );
    state.set(name, "visiting");
    for (const d of app.dependsOn) visit(d, [...path, name]);
    state.set(name, "done");
    out.push(app);
  };
  for (const name of apps.keys()) visit(name, []);
  return out;
}

/** Starts the stack's apps that do not run yet; returns one line per app. */
export async function up(socket: string, stack: Stack): Promise<string[]> {
  const lines: string[] = [];
  const current = await apiRequest<{ items: AppView[] }>(socket, "/v1/apps");
  for (const app of stack.apps) {
    const running = current.items.find(
      (a) => a.name === app.name && a.stack === stack.name && a.status === "running",
    );
    if (running) {
      lines.push(`${app.name} is running (${running.id})`);
      continue;
    }
    const started = await apiRequest<AppView>(socket, "/v1/apps", {
      method: "POST",
      body: app.request,
      timeoutMs: 40_000,
    });
    lines.push(`${app.name} started (${started.id})`);
  }
  return lines;
}

/**
 * Stops and removes every app of the stack, running or finished: apps no longer in the file
 * first, then the file's in reverse start order.
 */
export async function down(socket: string, stack: Stack, timeoutS: number): Promise<string[]> {
  const lines: string[] = [];
  const all = (await apiRequest<{ items: AppView[] }>(socket, "/v1/apps?all=true")).items.filter(
    (a) => a.stack === stack.name,
  );
  const rank = (a: AppView) => {
    const i = stack.apps.findIndex((x) => x.name === a.name);
    return i === -1 ? Number.POSITIVE_INFINITY : i;
  };
  for (const a of all.sort((x, y) => rank(y) - rank(x))) {
    if (a.status === "running")
      await apiRequest(socket, `/v1/apps/${a.id}/stop?timeout=${timeoutS}`, {
        method: "POST",
        timeoutMs: (timeoutS + 10) * 1000,
      });
    await apiRequest(socket, `/v1/apps/${a.id}?force=true`, { method: "DELETE", timeoutMs: 20_000 });
    lines.push(`${a.name} removed (${a.id})`);
  }
  if (lines.length === 0) lines.push(`stack ${stack.name} has no apps`);
  return lines;
}
