// The REST API server: fastify on a plain http.Server that is never bound to a port of its
// own; the daemon socket hands it connections (see daemon/socket-server.ts). The optional
// TCP API (--api-listen) is a second instance that listens itself and requires a token.

import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
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
    serverFactory: (handler) => {
      http = createServer(handler);
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
          .send({
            error: {
              code: "SOCKSWITCH_ERR_UNAUTHORIZED",
              message:
                "this API needs `Authorization: Bearer <token>` with the daemon's --api-token-file token",
            },
          });
      }
    });
  }
  registerRoutes(fastify, ctx);
  await fastify.ready();
  return { fastify, http: http as unknown as Server };
}
