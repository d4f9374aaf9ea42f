// The OpenAPI document of the REST API, generated from the route schemas by @fastify/swagger:
// the daemon serves it at /openapi.json, and `npm run openapi` writes it to
// docs/openapi.yaml (a unit test fails when the file is not what the code generates).
// Building it needs no daemon: the routes are registered on a context whose operations are
// never called.

import type { ApiContext } from "./context.js";
import { createApiServer } from "./server.js";

function unused(): never {
  throw new Error("not a daemon: this context only describes the routes");
}

const DESCRIBE_ONLY = new Proxy({} as ApiContext, {
  get: () => unused,
});

/** The OpenAPI 3.1 document (a JSON value). */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const api = await createApiServer(DESCRIBE_ONLY);
  try {
    return api.fastify.swagger() as unknown as Record<string, unknown>;
  } finally {
    await api.fastify.close();
  }
}
