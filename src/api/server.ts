// The REST API server: fastify on a plain http.Server that is never bound to a port of its
// own; the daemon socket hands it connections (see daemon/socket-server.ts). The optional
// TCP API (--api-listen) is a second instance that listens itself and requires a token.
//
// No connection holds the daemon for long: a request's headers must arrive within
// HEADERS_TIMEOUT_MS and the whole request within REQUEST_TIMEOUT_MS, a connection idle
// for IDLE_TIMEOUT_MS (one that never sends a byte included) is closed, and the TCP API
// takes at most maxConnectionsPerPeer connections from one address (MAX_CONNECTIONS in
// all): anyone who can reach the port can open connections, token or not.

import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { apiError, onCheckExpectation, onClientError, onFrameworkError } from "./framework-errors.js";
import { type ApiContext, registerRoutes } from "./routes.js";

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

/**
 * The API for the daemon socket; with a token, the API for TCP (--api-listen), where every
 * request must carry `Authorization: Bearer <token>`.
 */
export async function createApiServer(
  ctx: ApiContext,
  token: string | null = null,
  opts: ApiOptions = {},
): Promise<ApiServer> {
  let http: Server | null = null;
  const fastify = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Every error answer in the documented shape (framework-errors.ts).
    clientErrorHandler: onClientError,
    frameworkErrors: onFrameworkError,
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
  if (token !== null) {
    const want = Buffer.from(`Bearer ${token}`);
    fastify.addHook("onRequest", async (req, reply) => {
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
  registerRoutes(fastify, ctx);
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
