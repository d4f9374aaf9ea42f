// The REST API server: fastify on a plain http.Server that is never bound to a port of its
// own; the daemon socket hands it connections (see daemon/socket-server.ts). The optional
// TCP API (--api-listen) is a second instance that listens itself and requires a token.

import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import { apiError, onCheckExpectation, onClientError, onFrameworkError } from "./framework-errors.js";
import { type ApiContext, registerRoutes } from "./routes.js";

export interface ApiServer {
  readonly fastify: FastifyInstance;
  readonly http: Server;
}

/**
 * The API for the daemon socket; with a token, the API for TCP (--api-listen), where every
 * request must carry `Authorization: Bearer <token>`.
 */
export async function createApiServer(ctx: ApiContext, token: string | null = null): Promise<ApiServer> {
  let http: Server | null = null;
  const fastify = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Every error answer in the documented shape (framework-errors.ts).
    clientErrorHandler: onClientError,
    frameworkErrors: onFrameworkError,
    serverFactory: (handler) => {
      // docs/api.md: the Host header is not checked (the daemon socket has no host name).
      const server = createServer({ requireHostHeader: false }, handler);
      server.on("checkExpectation", onCheckExpectation);
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
