// The read side of the REST API: probes (/healthz, /readyz, /v1/health) and the lists
// (apps, services, sockets, nodes, proxies), each with its schema (schemas.ts). Every
// error is JSON {"error": {"code", "message"}} with a stable code (docs/errors.md).

import type { FastifyInstance } from "fastify";
import { InvalidArgumentError } from "../core/errors.js";
import { kernelSockets } from "../net/proc-net.js";
import { matchesSelector, parseSelector, type Requirement } from "../table/selector.js";
import type { ApiContext } from "./context.js";
import { registerInfoRoute } from "./info.js";
import { errors, refs } from "./schemas.js";
import { nodeView, serviceView, socketViews } from "./views.js";

const listQuery = {
  type: "object",
  properties: {
    selector: {
      type: "string",
      maxLength: 1024,
      description: "Label selector, as kubectl -l: k=v,k!=v,k,!k.",
    },
  },
};

function selectorOf(text: string | undefined): Requirement[] | null {
  if (text === undefined) return null;
  try {
    return parseSelector(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^-l /, "selector "));
  }
}

export function registerReadRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    "/healthz",
    {
      schema: {
        summary: "Liveness: the daemon's event loop answers.",
        tags: ["probes"],
        response: { 200: { $ref: "Probe#" } },
      },
    },
    async () => ({ status: "ok", checks: { daemon: "ok" } }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        summary: "Readiness: the store is reachable and trapped calls are served (503 with reasons if not).",
        tags: ["probes"],
        response: { 200: { $ref: "Probe#" }, 503: { $ref: "Probe#" } },
      },
    },
    async (_req, reply) => {
      const checks = ctx.readiness();
      const ok = Object.values(checks).every((c) => c === "ok");
      reply.code(ok ? 200 : 503);
      return { status: ok ? "ok" : "failing", checks };
    },
  );

  registerInfoRoute(app, ctx);

  app.get(
    "/v1/health",
    {
      schema: {
        summary: "The daemon is up; its version, node and counts.",
        tags: ["daemon"],
        response: { 200: { $ref: "Health#" } },
      },
    },
    async () => ({
      status: "ok",
      version: ctx.version,
      node: ctx.node,
      store: ctx.store,
      apps: ctx.table.listApps().length,
      services: ctx.table.listServices().length,
      startedAt: ctx.startedAt,
      datapath: ctx.datapath.name,
      continueGuard: ctx.datapath.continueGuard.available ? "on" : "off",
    }),
  );

  app.get<{ Querystring: { all?: boolean; selector?: string } }>(
    "/v1/apps",
    {
      schema: {
        summary: "Apps: running ones (of every node), and with all=true this node's finished ones too.",
        tags: ["apps"],
        querystring: {
          ...listQuery,
          properties: {
            ...listQuery.properties,
            all: {
              type: "boolean",
              default: false,
              description: "Also finished apps, with their exit status.",
            },
          },
        },
        response: { 200: refs.appList, 400: refs.error },
      },
    },
    async (req) => {
      const sel = selectorOf(req.query.selector);
      const items = ctx.apps.list(req.query.all === true);
      return { items: sel ? items.filter((a) => matchesSelector(a.labels, sel)) : items };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/apps/:id",
    {
      schema: {
        summary: "One app by id or (failing that) name; a running one before a finished one.",
        tags: ["apps"],
        params: { type: "object", required: ["id"], properties: { id: { type: "string" } } },
        response: { 200: refs.app, ...errors(404) },
      },
    },
    async (req) => ctx.apps.get(req.params.id),
  );

  app.get<{ Querystring: { selector?: string } }>(
    "/v1/services",
    {
      schema: {
        summary: "Every service (virtual address → host address) in the table.",
        tags: ["services"],
        querystring: listQuery,
        response: { 200: refs.serviceList, 400: refs.error },
      },
    },
    async (req) => {
      const sel = selectorOf(req.query.selector);
      const items = ctx.table.listServices().map(serviceView);
      return { items: sel ? items.filter((s) => matchesSelector(s.labels, sel)) : items };
    },
  );

  app.get(
    "/v1/nodes",
    {
      schema: {
        summary: "The cluster's members, sorted by name (on the embedded store: this node).",
        tags: ["nodes"],
        response: { 200: refs.nodeList },
      },
    },
    async () => ({
      items: ctx.table
        .listNodes()
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((n) => nodeView(n, ctx.node)),
    }),
  );

  app.get(
    "/v1/proxies",
    {
      schema: {
        summary: "This node's ingress forwarding listeners.",
        tags: ["nodes"],
        response: { 200: refs.proxyList },
      },
    },
    async () => ({ items: ctx.proxies() }),
  );

  app.get(
    "/v1/sockets",
    {
      schema: {
        summary:
          "The host sockets made for apps that the kernel still has, with both views of their addresses.",
        tags: ["services"],
        response: { 200: refs.socketList },
      },
    },
    async () => ({ items: socketViews(ctx.sockets, await kernelSockets()) }),
  );
}
