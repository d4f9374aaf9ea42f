// Backend selection (load balancing) among the backends that policy allows. Round-robin
// keeps one counter per service key; random draws uniformly. Pure apart from Math.random.

import type { LbMode, Service } from "./types.js";

export class Selector {
  private readonly counters = new Map<string, number>();

  constructor(public defaultMode: LbMode) {}

  /** Picks one of the candidates (non-empty) for the service key. */
  pick(key: string, candidates: readonly Service[]): Service {
    const mode = (candidates[0] as Service).lb ?? this.defaultMode;
    if (candidates.length === 1) return candidates[0] as Service;
    if (mode === "random") return candidates[Math.floor(Math.random() * candidates.length)] as Service;
    const n = this.counters.get(key) ?? 0;
    this.counters.set(key, n + 1 >= Number.MAX_SAFE_INTEGER ? 0 : n + 1);
    return candidates[n % candidates.length] as Service;
  }

  /** Forgets the counter of a service key that has no backends left. */
  forget(key: string): void {
    this.counters.delete(key);
  }
}
