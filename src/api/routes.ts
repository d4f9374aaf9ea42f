// REST routes (read side for now): health, apps, services, sockets, nodes, proxies. Every error is JSON
// {"error": {"code", "message"}} with a stable code (docs/errors.md).

import type { FastifyInstance } from "fastify";
import { NotFoundError, SockswitchError } from "../core/errors.js";
import type { ProxyView } from "../gateway/ingress.js";
import { kernelSockets } from "../net/proc-net.js";
import type { SocketRegistry } from "../table/sockets.js";
import type { ServiceTable } from "../table/table.js";
import { apiError, BAD_REQUEST } from "./framework-errors.js";
import { appView, nodeView, serviceView, socketViews } from "./views.js";

export interface ApiContext {
  readonly table: ServiceTable;
  readonly sockets: SocketRegistry;
  readonly version: string;
  readonly node: string;
  readonly store: string;
  readonly startedAt: string;
  /** The datapath that runs (datapath: seccomp or bpf) and what it reports. */
  readonly datapath: Readonly<Record<string, string>>;
  /** The ingress gateway's forwarding listeners on this node. */
  readonly proxies: () => ProxyView[];
}

export function registerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get("/v1/health", async () => ({
    status: "ok",
    version: ctx.version,
    node: ctx.node,
    store: ctx.store,
    apps: ctx.table.listApps().length,
    services: ctx.table.listServices().length,
    startedAt: ctx.startedAt,
    ...ctx.datapath,
  }));

  app.get("/v1/apps", async () => ({ items: ctx.table.listApps().map((a) => appView(a, ctx.table)) }));

  app.get<{ Params: { id: string } }>("/v1/apps/:id", async (req) => {
    const a = ctx.table.getApp(req.params.id) ?? ctx.table.appsWithName(req.params.id)[0];
    if (!a) throw new NotFoundError(`no app with id or name "${req.params.id}"; see \`sockswitch get apps\``);
    return appView(a, ctx.table);
  });

  app.get("/v1/services", async () => ({ items: ctx.table.listServices().map(serviceView) }));

  app.get("/v1/nodes", async () => ({
    items: ctx.table
      .listNodes()
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((n) => nodeView(n, ctx.node)),
  }));

  app.get("/v1/proxies", async () => ({ items: ctx.proxies() }));

  app.get("/v1/sockets", async () => ({ items: socketViews(ctx.sockets, await kernelSockets()) }));

  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send(apiError("SOCKSWITCH_ERR_NOT_FOUND", `no route ${req.method} ${req.url}; see docs/api.md`));
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof SockswitchError) {
      reply.code(err.status).send(apiError(err.code, err.message));
      return;
    }
    const e = err as { statusCode?: number; message?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    reply
      .code(status)
      .send(apiError(status === 500 ? "SOCKSWITCH_ERR_INTERNAL" : BAD_REQUEST, e.message ?? "error"));
  });
}
