// The REST client the CLI uses: HTTP over the daemon's UNIX socket, errors turned into one
// sentence that says what to do. Requests are bounded (TIMEOUT_MS, or the caller's); a
// stream (events, followed logs) lasts until the daemon ends it or the caller stops it.

import { type IncomingMessage, request } from "node:http";
import { DaemonUnreachableError, PermissionError, SockswitchError } from "../core/errors.js";

const TIMEOUT_MS = 10_000;

export interface RequestOptions {
  readonly method?: string;
  readonly body?: unknown;
  /** Milliseconds without an answer before giving up; default 10 s. */
  readonly timeoutMs?: number;
}

/** A JSON request; resolves to the answer's body (undefined for 204), rejects with one sentence. */
export async function apiRequest<T>(socket: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await open(socket, path, opts);
  const text = await readAll(res);
  if (res.statusCode === 204) return undefined as T;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new SockswitchError(
      "SOCKSWITCH_ERR_PROTOCOL",
      `the daemon at ${socket} answered something that is not JSON`,
      502,
    );
  }
  if ((res.statusCode ?? 500) >= 400) throw errorOf(body, res.statusCode);
  return body as T;
}

export function apiGet<T>(socket: string, path: string): Promise<T> {
  return apiRequest<T>(socket, path);
}

/**
 * A streamed answer (text/event-stream or text/plain): onChunk gets its text as it comes.
 * Resolves when the daemon ends it; rejects with one sentence on an error answer.
 */
export async function apiStream(
  socket: string,
  path: string,
  onChunk: (text: string) => void,
): Promise<void> {
  const res = await open(socket, path, { timeoutMs: 0 });
  if ((res.statusCode ?? 500) >= 400) {
    const text = await readAll(res);
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the status says enough
    }
    throw errorOf(body, res.statusCode);
  }
  res.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    res.on("data", (chunk: string) => onChunk(chunk));
    res.on("end", resolve);
    // The daemon went away mid-stream (node says "aborted"): say so, and what to do.
    res.on("error", (err) =>
      reject(
        new DaemonUnreachableError(
          `the sockswitch daemon at ${socket} ended the stream (${err.message}): it stopped or restarted; run this again once it is back`,
        ),
      ),
    );
  });
}

function open(socket: string, path: string, opts: RequestOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const timeout = opts.timeoutMs ?? TIMEOUT_MS;
    const req = request(
      {
        socketPath: socket,
        path,
        method: opts.method ?? "GET",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        ...(timeout > 0 ? { timeout } : {}),
      },
      (res) => {
        // Once answered, a stream may be quiet for as long as it likes.
        req.setTimeout(0);
        resolve(res);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err: NodeJS.ErrnoException) => reject(connectError(socket, err)));
    req.end(body);
  });
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

function errorOf(body: unknown, status: number | undefined): SockswitchError {
  const e = (body as { error?: { code?: string; message?: string } } | null)?.error;
  return new SockswitchError(e?.code ?? "SOCKSWITCH_ERR_INTERNAL", e?.message ?? `HTTP ${status}`, status);
}

export function connectError(socket: string, err: NodeJS.ErrnoException): SockswitchError {
  switch (err.code) {
    case "ENOENT":
    case "ECONNREFUSED":
      return new DaemonUnreachableError(
        `cannot reach the sockswitch daemon at ${socket}: no daemon is listening there; start one with \`sockswitch daemon\` (or set --socket / SOCKSWITCH_SOCKET)`,
      );
    case "EACCES":
    case "EPERM":
      return new PermissionError(
        `permission denied on ${socket}; run as root or as a member of the socket's group`,
      );
    default:
      return new DaemonUnreachableError(`cannot talk to the sockswitch daemon at ${socket}: ${err.message}`);
  }
}
