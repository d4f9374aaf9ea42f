// The write side of the REST API for apps: start a detached app (POST /v1/apps, only over
// the daemon's UNIX socket, as the caller), stop one, remove a finished one, and read a
// detached app's output (GET /v1/apps/{id}/logs, followed with follow=true). Logs are
// streamed from the file the daemon keeps (<state-dir>/logs/), bounded per read.

import { open, stat } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { PermissionError } from "../core/errors.js";
import type { ApiContext, RunRequestBody } from "./context.js";
import { errors, refs } from "./schemas.js";

const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 100 } } };
const CHUNK = 64 * 1024;
const FOLLOW_MS = 200;
/** At most this much of a log is sent for tail=N (its end). */
const TAIL_SCAN = 8 * 1024 * 1024;

export function registerAppRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: RunRequestBody }>(
    "/v1/apps",
    {
      schema: {
        summary: "Start a detached app (sockswitch run -d); only over the daemon's UNIX socket.",
        tags: ["apps"],
        body: { $ref: "RunRequest#" },
        response: { 201: refs.app, ...errors(400, 403, 409, 500, 503) },
      },
    },
    async (req, reply) => {
      const caller = ctx.callerOf(req.raw.socket);
      if (caller === null)
        throw new PermissionError("apps are started only over the daemon's UNIX socket, not the TCP API");
      const view = await ctx.apps.run(req.body, caller);
      reply.code(201);
      return view;
    },
  );

  app.post<{ Params: { id: string }; Querystring: { timeout: number } }>(
    "/v1/apps/:id/stop",
    {
      schema: {
        summary: "Stop a running app of this node: SIGTERM, then SIGKILL after timeout seconds.",
        tags: ["apps"],
        params: idParams,
        querystring: {
          type: "object",
          properties: { timeout: { type: "integer", minimum: 0, maximum: 3600, default: 10 } },
        },
        response: { 200: refs.app, ...errors(400, 404, 409) },
      },
    },
    async (req) => ctx.apps.stop(req.params.id, req.query.timeout),
  );

  app.delete<{ Params: { id: string }; Querystring: { force: boolean } }>(
    "/v1/apps/:id",
    {
      schema: {
        summary: "Remove a finished app (force=true: stop a running one first, with SIGKILL).",
        tags: ["apps"],
        params: idParams,
        querystring: { type: "object", properties: { force: { type: "boolean", default: false } } },
        response: { 200: refs.app, ...errors(400, 404, 409) },
      },
    },
    async (req) => ctx.apps.remove(req.params.id, req.query.force),
  );

  app.get<{ Params: { id: string }; Querystring: { follow: boolean; tail?: number } }>(
    "/v1/apps/:id/logs",
    {
      schema: {
        summary: "The output (stdout and stderr) of an app started with run -d, as text.",
        tags: ["apps"],
        params: idParams,
        querystring: {
          type: "object",
          properties: {
            follow: { type: "boolean", default: false, description: "Keep sending until the app ends." },
            tail: { type: "integer", minimum: 0, maximum: 1_000_000, description: "Only the last lines." },
          },
        },
        response: {
          200: {
            description: "The output, streamed.",
            content: { "text/plain": { schema: { type: "string" } } },
          },
          ...errors(400, 404),
        },
      },
    },
    async (req, reply) => {
      const { file, more } = ctx.apps.logs(req.params.id);
      const fh = await open(file, "r");
      let pos = req.query.tail === undefined ? 0 : await tailStart(fh, req.query.tail);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      let closed = false;
      res.on("close", () => {
        closed = true;
      });
      const buf = Buffer.alloc(CHUNK);
      try {
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
          if (closed) break;
          if (bytesRead > 0) {
            pos += bytesRead;
            if (!res.write(Buffer.from(buf.subarray(0, bytesRead))))
              await new Promise((r) => res.once("drain", r).once("close", r));
            continue;
          }
          // At the end of the file: done, unless following an app that may still write.
          if (!req.query.follow || !more()) {
            // One more look: what the app wrote just before it ended.
            const { size } = await stat(file);
            if (size > pos) continue;
            break;
          }
          await new Promise((r) => setTimeout(r, FOLLOW_MS));
        }
      } finally {
        await fh.close();
        res.end();
      }
    },
  );
}

/** The offset of the last `lines` lines of the file (looking at most TAIL_SCAN bytes back). */
async function tailStart(fh: import("node:fs/promises").FileHandle, lines: number): Promise<number> {
  const { size } = await fh.stat();
  const from = Math.max(0, size - TAIL_SCAN);
  const buf = Buffer.alloc(size - from);
  await fh.read(buf, 0, buf.length, from);
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (buf[i] === 0x0a && ++seen === lines) return from + i + 1;
  }
  return lines === 0 ? size : from;
}
