// The REST client the CLI uses: HTTP over the daemon's UNIX socket, errors turned into one
// sentence that says what to do.

import { request } from "node:http";
import { DaemonUnreachableError, PermissionError, SockswitchError } from "../core/errors.js";

const TIMEOUT_MS = 10_000;

export async function apiGet<T>(socket: string, path: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: "GET", timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          reject(
            new SockswitchError(
              "SOCKSWITCH_ERR_PROTOCOL",
              `the daemon at ${socket} answered something that is not JSON`,
              502,
            ),
          );
          return;
        }
        if ((res.statusCode ?? 500) >= 400) {
          const e = (body as { error?: { code?: string; message?: string } }).error;
          reject(
            new SockswitchError(
              e?.code ?? "SOCKSWITCH_ERR_INTERNAL",
              e?.message ?? `HTTP ${res.statusCode}`,
              res.statusCode,
            ),
          );
          return;
        }
        resolve(body as T);
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err: NodeJS.ErrnoException) => reject(connectError(socket, err)));
    req.end();
  });
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
