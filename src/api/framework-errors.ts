// Answers that fastify and Node's HTTP server would otherwise write themselves, in their own
// shapes, put in the API's documented error shape {"error":{"code","message"}} (docs/api.md,
// docs/errors.md: SOCKSWITCH_ERR_BAD_REQUEST): requests too malformed to parse (Node's
// 'clientError': 400, 431 for headers over the limit, 408 for a timeout), URLs fastify
// cannot route (400 bad percent-encoding, 414 a parameter over maxParamLength), and an
// Expect header other than 100-continue (417, Node's 'checkExpectation'). RFC 9110.

import type { IncomingMessage, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";

export const BAD_REQUEST = "SOCKSWITCH_ERR_BAD_REQUEST";

/** The documented error answer (docs/api.md): every error of the API has this shape. */
export function apiError(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

export function errorBody(code: string, message: string): string {
  return JSON.stringify(apiError(code, message));
}

/** The status and sentence for an error of Node's HTTP parser (llhttp's HPE_* codes). */
export function clientErrorAnswer(code: string | undefined): { status: number; message: string } {
  if (code === "HPE_HEADER_OVERFLOW")
    return { status: 431, message: "the request's headers are too large (over 16 KiB)" };
  if (code === "ERR_HTTP_REQUEST_TIMEOUT")
    return { status: 408, message: "the request did not arrive in time" };
  return {
    status: 400,
    message: `the request is not valid HTTP/1.1 (${code ?? "unknown error"}); see docs/api.md`,
  };
}

/** A whole HTTP/1.1 answer (the connection is closed after it) for an unparsable request. */
export function clientErrorResponse(code: string | undefined): string {
  const { status, message } = clientErrorAnswer(code);
  const body = errorBody(BAD_REQUEST, message);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** How long answers to earlier pipelined requests may take before the connection is closed. */
const IN_FLIGHT_MS = 5_000;

/** The answer being written on a connection (Node's own field; see below). */
function inFlight(socket: Socket): ServerResponse | null {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/**
 * fastify's clientErrorHandler: the server's 'clientError' event. Node's parser stops at
 * the bad request, but requests pipelined before it may still be answering: Node's own
 * handler would close under them (and skip the 400 once anything was written, a
 * "100 Continue" included). Here they finish first (Node's `_httpMessage` is the answer in
 * progress; the next one is attached when it finishes), then the 400 is written and the
 * connection closed, within IN_FLIGHT_MS.
 */
export function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset or a closed socket: nobody to answer (https://nodejs.org/api/http.html#event-clienterror).
  if (err.code === "ECONNRESET" || err.code === "EPIPE" || socket.destroyed) return;
  const bound = setTimeout(() => socket.destroy(), IN_FLIGHT_MS);
  bound.unref();
  const answer = (): void => {
    if (socket.destroyed) return clearTimeout(bound);
    const res = inFlight(socket);
    if (res !== null) {
      res.once("close", () => setImmediate(answer));
      return;
    }
    clearTimeout(bound);
    if (socket.writable) socket.write(clientErrorResponse(err.code));
    socket.destroy();
  };
  answer();
}

/** fastify's frameworkErrors: URLs it cannot route (FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH…). */
export function onFrameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  const why =
    err.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? "a path segment is too long (over 100 characters)"
      : err.code === "FST_ERR_BAD_URL"
        ? "the path is not valid percent-encoding"
        : err.message;
  reply
    .code(status)
    .type("application/json; charset=utf-8")
    .send(errorBody(BAD_REQUEST, `${why}: ${req.method} ${req.url.slice(0, 200)}; see docs/api.md`));
}

/** The server's 'checkExpectation' event: an Expect header other than 100-continue. */
export function onCheckExpectation(req: IncomingMessage, res: ServerResponse): void {
  const body = errorBody(
    BAD_REQUEST,
    `this API does not support "Expect: ${String(req.headers.expect).slice(0, 100)}" (only 100-continue)`,
  );
  res.writeHead(417, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  res.end(body);
}
