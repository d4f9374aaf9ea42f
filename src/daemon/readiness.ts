// /readyz: the daemon is ready when its store is reachable (embedded: always, once open;
// etcd: the connection is up, not serving from its cache while it reconnects) and it serves
// trapped calls (its socket is listening, so launchers can hand apps over).

import type { Store } from "../store/store.js";

export function readiness(store: Store, socket: { readonly listening: boolean }): Record<string, string> {
  const connected = (store as { connected?: boolean }).connected;
  return {
    store: connected === false ? "etcd is unreachable: serving from the local cache and reconnecting" : "ok",
    traps: socket.listening ? "ok" : "the daemon socket is not listening",
  };
}
