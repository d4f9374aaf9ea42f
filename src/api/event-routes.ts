// GET /v1/events: changes as they happen, as server-sent events (text/event-stream, the
// WHATWG HTML "Server-sent events" format): `event: <kind>` and `data: <Event JSON>` per
// change; a comment line every KEEPALIVE_MS. A client that reads too slowly (more than
// MAX_BUFFERED bytes waiting) is disconnected rather than buffered without bound.

import type { FastifyInstance } from "fastify";
import { InvalidArgumentError } from "../core/errors.js";
import { parseSelector } from "../table/selector.js";
import type { ApiContext } from "./context.js";
import { errors } from "./schemas.js";

const KINDS = ["app", "service", "node", "denial"];
const KEEPALIVE_MS = 15_000;
const MAX_BUFFERED = 1024 * 1024;

export function registerEventRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { kinds?: string; selector?: string } }>(
    "/v1/events",
    {
      schema: {
        summary: "Changes to apps, services and nodes, and refused connections, as server-sent events.",
        tags: ["events"],
        querystring: {
          type: "object",
          properties: {
            kinds: {
              type: "string",
              maxLength: 100,
              description: "Comma-separated: app, service, node, denial.",
            },
            selector: {
              type: "string",
              maxLength: 1024,
              description: "Label selector for apps and services.",
            },
          },
        },
        response: {
          200: {
            description: "A stream of events (see the Event schema).",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
          ...errors(400),
        },
      },
    },
    async (req, reply) => {
      const kinds = new Set((req.query.kinds ?? KINDS.join(",")).split(",").map((k) => k.trim()));
      for (const k of kinds)
        if (!KINDS.includes(k))
          throw new InvalidArgumentError(`kinds: "${k}" is not one of ${KINDS.join(", ")}`);
      let selector = null;
      try {
        selector = req.query.selector === undefined ? null : parseSelector(req.query.selector);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message.replace(/^-l /, "selector "));
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      res.write(": sockswitch events\n\n");
      const unsubscribe = ctx.events.subscribe(kinds, selector, (ev) => {
        if (res.writableLength > MAX_BUFFERED) {
          res.destroy();
          return;
        }
        res.write(`event: ${ev.kind}\ndata: ${JSON.stringify(ev)}\n\n`);
      });
      const keepalive = setInterval(() => res.write(": keep-alive\n\n"), KEEPALIVE_MS);
      keepalive.unref();
      res.on("close", () => {
        clearInterval(keepalive);
        unsubscribe();
      });
    },
  );
}
