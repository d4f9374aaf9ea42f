// A small seeded PRNG for the fuzzers (mulberry32: 32-bit state, good enough to spread
// cases, not for cryptography), and the helpers the generators draw with. A run is
// reproducible from its seed; each case gets its own generator derived from (seed, stream,
// index), so one failing case can be replayed alone (see caseRng).

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return (items[items.length - 1] as readonly [number, T])[1];
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }

  /** A string of n characters (code points) drawn from alphabet. */
  string(n: number, alphabet: string): string {
    const chars = Array.from(alphabet);
    let s = "";
    for (let i = 0; i < n; i++) s += chars[this.int(0, chars.length - 1)];
    return s;
  }

  /** A short token of printable ASCII, unicode or control characters. */
  token(max = 24): string {
    const alphabet = this.weighted<string>([
      [6, "abcdefghijklmnopqrstuvwxyz0123456789-_."],
      [2, "!\"#$%&'()*+,/:;<=>?@[\\]^`{|}~ "],
      [1, "éßø中文😀\u200b\u202e"],
      [1, "\u0000\u0001\t\r\n\u001b\u007f"],
    ]);
    return this.string(this.int(0, max), alphabet);
  }
}

/** FNV-1a over the parts, to derive one case's seed from the run's seed. */
function mix(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join("/")) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The generator for case `index` of `stream` ("http", "handshake", "cli") in a run. */
export function caseRng(seed: number, stream: string, index: number): Rng {
  return new Rng(mix(seed, stream, index));
}

export interface FuzzSettings {
  readonly seed: number;
  readonly http: number;
  readonly handshake: number;
  readonly cli: number;
}

/**
 * Counts and seed from the environment: SSW_FUZZ_SEED (default: fixed), SSW_FUZZ_COUNT
 * (HTTP requests; handshake sessions are half, CLI runs 30 %, at most 1000 unless
 * SSW_FUZZ_CLI_COUNT says otherwise).
 */
export function fuzzSettings(defaults: { seed: number; count: number }): FuzzSettings {
  const env = process.env;
  const num = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v} must be a non-negative integer`);
    return n;
  };
  const seed = num("SSW_FUZZ_SEED", defaults.seed);
  const count = num("SSW_FUZZ_COUNT", defaults.count);
  return {
    seed,
    http: count,
    handshake: Math.ceil(count / 2),
    cli: num("SSW_FUZZ_CLI_COUNT", Math.min(Math.ceil(count * 0.3), 1000)),
  };
}
