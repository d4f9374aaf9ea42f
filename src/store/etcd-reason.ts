// What an etcd client error says, in one clause a user can act on: gRPC's and OpenSSL's
// wording of a failure shortened to its cause, for the daemon's start error and its log.

import { messageOf } from "../core/errors.js";

/** gRPC's wording of a failure, shortened to its cause ("connect ECONNREFUSED 10.0.0.1:2379"). */
export function etcdReason(err: unknown): string {
  const text = messageOf(err).replace(/\s*Resolution note:[\s\S]*$/, "");
  const m = /(connect E[A-Z]+ \S+?)\.?(?:\s|$)/.exec(text) ?? /(getaddrinfo E[A-Z]+ \S+)/.exec(text);
  if (m) return m[1] as string;
  // OpenSSL: "…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:file:line:…"
  const ssl = /SSL routines:[^:]*:([^:]+):/.exec(text);
  if (ssl) return `TLS handshake failed (${ssl[1]})`;
  return text
    .replace(/^\d+ [A-Z_]+: /, "")
    .replace(/^No connection established\. Last error: /, "")
    .replace(/\s+/g, " ")
    .trim();
}
