// Who a new connection on the daemon socket is, from its first bytes (peeked, not read):
// a launcher starts with the magic "SSW1", anything else is HTTP. A connection that has sent
// only a prefix of the magic ("S", "SS", "SSW") cannot be told yet; HTTP methods that start
// with "S" (SEARCH, SOURCE, SUBSCRIBE) part from it at the second byte. Pure logic, no I/O.

export const MAGIC = "SSW1";

export type FirstBytes =
  /** Nothing to read yet (a spurious wake-up). */
  | "wait"
  /** A prefix of the magic and no more: wait for the rest, or for the peer's close. */
  | "partial"
  /** The peer closed (or failed) before saying who it is. */
  | "gone"
  | "launcher"
  | "http";

/**
 * n: what recv(MSG_PEEK) returned into peek (bytes, 0 at EOF, -errno); eof: the peer has
 * shut down its side (EPOLLRDHUP), so a partial magic will never be completed.
 */
export function classifyFirstBytes(peek: Uint8Array, n: number, eof: boolean, eagain: number): FirstBytes {
  if (n === -eagain) return eof ? "gone" : "wait";
  if (n <= 0) return "gone";
  const text = Buffer.from(peek.subarray(0, Math.min(n, MAGIC.length))).toString("latin1");
  if (text === MAGIC) return "launcher";
  if (n < MAGIC.length && MAGIC.startsWith(text)) return eof ? "gone" : "partial";
  return "http";
}
