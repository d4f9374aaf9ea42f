// The REST API server: fastify on a plain http.Server that is never bound to a port of its
// own; the daemon socket hands it connections (see daemon/socket-server.ts).

import { createServer, type Server } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import { type ApiContext, registerRoutes } from "./routes.js";

export interface ApiServer {
  readonly fastify: FastifyInstance;
  readonly http: Server;
}

export async function createApiServer(ctx: ApiContext): Promise<ApiServer> {
  let http: Server | null = null;
  const fastify = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    serverFactory: (handler) => {
      http = createServer(handler);
      return http;
    },
  });
  registerRoutes(fastify, ctx);
  await fastify.ready();
  return { fastify, http: http as unknown as Server };
}
