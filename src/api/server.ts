// The REST API server: fastify on a plain http.Server that is never bound to a port of its
// own; the daemon socket hands it connections (see daemon/socket-server.ts). The optional
// TCP API (--api-listen) is a second instance that listens itself and requires a token.
// Every route declares its schemas (schemas.ts): requests are validated and answers
// serialized with them, and the OpenAPI document served at /openapi.json is generated from
// them (@fastify/swagger). A known path asked with another method gets 405 and `Allow`.
//
// No connection holds the daemon for long: a request's headers must arrive within
// HEADERS_TIMEOUT_MS and the whole request within REQUEST_TIMEOUT_MS, a connection idle
// for IDLE_TIMEOUT_MS (one that never sends a byte included) is closed, and the TCP API
// takes at most maxConnectionsPerPeer connections from one address (MAX_CONNECTIONS in
// all): anyone who can reach the port can open connections, token or not.

import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance } from "fastify";
import { SockswitchError } from "../core/errors.js";
import { VERSION } from "../core/version.js";
import { registerAppRoutes } from "./app-routes.js";
import type { ApiContext } from "./context.js";
import { registerEventRoutes } from "./event-routes.js";
import {
  apiError,
  BAD_REQUEST,
  onCheckExpectation,
  onClientError,
  onFrameworkError,
} from "./framework-errors.js";
import { registerReadRoutes } from "./routes.js";
import { SHARED } from "./schemas.js";

const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const IDLE_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Connections the TCP API takes at once, from everyone together. */
const MAX_CONNECTIONS = 1024;

export interface ApiOptions {
  /** The TCP API: connections one remote address may hold; more are closed at once. */
  readonly maxConnectionsPerPeer?: number;
  /** Told about each connection refused by maxConnectionsPerPeer (for a log line). */
  readonly onRefused?: (peer: string) => void;
}

export interface ApiServer {
  readonly fastify: FastifyInstance;
  readonly http: Server;
}

const DESCRIPTION = `HTTP/1.1 over the daemon's UNIX socket (--socket, default
/run/sockswitch/sockswitch.sock, mode 0660, root and --socket-group), and optionally over TCP
(--api-listen), where every request needs "Authorization: Bearer <token>" (--api-token-file;
401 SOCKSWITCH_ERR_UNAUTHORIZED otherwise). Every error is {"error": {"code", "message"}}
with a stable SOCKSWITCH_ERR_* code (docs/errors.md). HEAD is answered for every GET route; a
known path asked with another method gets 405 with Allow. Fields may be added; clients
ignore fields they do not know. Generated from the daemon's route schemas.`;

/** A route's path pattern as a regular expression (":id" matches one segment). */
function patternOf(url: string): RegExp {
  const body = url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z]+/g, "[^/]+");
  return new RegExp(`^${body}/?$`);
}

/**
 * The API for the daemon socket; with a token, the API for TCP (--api-listen), where every
 * request must carry `Authorization: Bearer <token>` (the holder is read per request: SIGHUP
 * may replace it).
 */
export async function createApiServer(
  ctx: ApiContext,
  token: { readonly value: string } | null = null,
  opts: ApiOptions = {},
): Promise<ApiServer> {
  let http: Server | null = null;
  const fastify = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Every error answer in the documented shape (framework-errors.ts).
    clientErrorHandler: onClientError,
    frameworkErrors: onFrameworkError,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array" } },
    serverFactory: (handler) => {
      // docs/api.md: the Host header is not checked (the daemon socket has no host name).
      const server = createServer(
        {
          requireHostHeader: false,
          headersTimeout: HEADERS_TIMEOUT_MS,
          requestTimeout: REQUEST_TIMEOUT_MS,
          keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
          connectionsCheckingInterval: 1000,
        },
        handler,
      );
      server.setTimeout(IDLE_TIMEOUT_MS, (sock: Socket) => sock.destroy());
      server.on("checkExpectation", onCheckExpectation);
      if (opts.maxConnectionsPerPeer !== undefined)
        limitPerPeer(server, opts.maxConnectionsPerPeer, opts.onRefused);
      http = server;
      return http;
    },
  });
  for (const s of SHARED) fastify.addSchema(s);
  await fastify.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "sockswitch daemon API", version: VERSION, description: DESCRIPTION },
      servers: [
        {
          url: "http://localhost",
          description: "Any host name; the connection goes to the daemon's socket.",
        },
      ],
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "TCP API only (--api-token-file)." },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  if (token !== null) {
    fastify.addHook("onRequest", async (req, reply) => {
      const want = Buffer.from(`Bearer ${token.value}`);
      const got = Buffer.from(req.headers.authorization ?? "");
      if (got.length !== want.length || !timingSafeEqual(got, want)) {
        reply
          .code(401)
          .header("www-authenticate", "Bearer")
          .send(
            apiError(
              "SOCKSWITCH_ERR_UNAUTHORIZED",
              "this API needs `Authorization: Bearer <token>` with the daemon's --api-token-file token",
            ),
          );
      }
    });
  }
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  fastify.addHook("onRoute", (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    let entry = routes.find((x) => x.pattern.source === patternOf(r.url).source);
    if (!entry) {
      entry = { pattern: patternOf(r.url), methods: new Set() };
      routes.push(entry);
    }
    for (const m of methods) entry.methods.add(m);
  });
  registerReadRoutes(fastify, ctx);
  registerAppRoutes(fastify, ctx);
  registerEventRoutes(fastify, ctx);
  fastify.get("/openapi.json", { schema: { hide: true } }, async () => fastify.swagger());

  fastify.setNotFoundHandler((req, reply) => {
    const path = (req.url.split("?")[0] as string) || "/";
    const known = routes.find((r) => r.pattern.test(path));
    if (known) {
      const allow = [...known.methods].sort().join(", ");
      reply
        .code(405)
        .header("allow", allow)
        .send(
          apiError(
            "SOCKSWITCH_ERR_METHOD_NOT_ALLOWED",
            `${req.method} is not allowed on ${path}; use ${allow}`,
          ),
        );
      return;
    }
    reply
      .code(404)
      .send(apiError("SOCKSWITCH_ERR_NOT_FOUND", `no route ${req.method} ${req.url}; see docs/api.md`));
  });

  fastify.setErrorHandler((err, _req, reply) => {
    if (err instanceof SockswitchError) {
      reply.code(err.status).send(apiError(err.code, err.message));
      return;
    }
    const e = err as { statusCode?: number; message?: string; validation?: unknown };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    reply
      .code(status)
      .send(
        apiError(
          status === 500 ? "SOCKSWITCH_ERR_INTERNAL" : BAD_REQUEST,
          e.validation ? `the request is not valid: ${e.message}; see /openapi.json` : (e.message ?? "error"),
        ),
      );
  });
  await fastify.ready();
  return { fastify, http: http as unknown as Server };
}

/** Closes a connection at once when its remote address already holds `max`. */
function limitPerPeer(server: Server, max: number, onRefused?: (peer: string) => void): void {
  server.maxConnections = MAX_CONNECTIONS;
  const held = new Map<string, number>();
  server.on("connection", (sock: Socket) => {
    const peer = sock.remoteAddress ?? "";
    const n = held.get(peer) ?? 0;
    if (n >= max) {
      onRefused?.(peer);
      sock.destroy();
      return;
    }
    held.set(peer, n + 1);
    sock.once("close", () => {
      const left = (held.get(peer) ?? 1) - 1;
      if (left > 0) held.set(peer, left);
      else held.delete(peer);
    });
  });
}
