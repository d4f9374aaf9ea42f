// The pool of host ports that managed listeners really bind to (`--ports`, default
// 40000-60000). The pool only remembers what it handed out; the kernel is the judge of
// what is free, so callers try the port and come back for another on EADDRINUSE.

import { InvalidArgumentError, PoolExhaustedError } from "../core/errors.js";

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

export function parsePortRange(text: string): PortRange {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const first = m ? Number(m[1]) : Number.NaN;
  const last = m ? Number(m[2]) : Number.NaN;
  if (!m || first < 1 || last > 65535 || first > last) {
    throw new InvalidArgumentError(
      `"${text}" is not a port range; write it like 40000-60000 (1 to 65535, low-high)`,
    );
  }
  return { first, last };
}

export function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`${what} "${text}" is not a port; use a number from 1 to 65535`);
  }
  return n;
}

export class PortPool {
  readonly range: PortRange;
  private readonly used = new Set<number>();
  private next: number;

  constructor(range: PortRange) {
    this.range = range;
    this.next = range.first;
  }

  get size(): number {
    return this.range.last - this.range.first + 1;
  }

  get inUse(): number {
    return this.used.size;
  }

  /** Hands out the next free port, round-robin so that a freed port rests before reuse. */
  /** A free port, or null when every port of the pool is in use. */
  tryTake(): number | null {
    return this.used.size >= this.size ? null : this.take();
  }

  take(): number {
    const size = this.size;
    if (this.used.size >= size) {
      throw new PoolExhaustedError(
        `all ${size} host ports of the pool ${this.range.first}-${this.range.last} are in use; widen --ports`,
      );
    }
    for (let i = 0; i < size; i++) {
      const port = this.next;
      this.next = port >= this.range.last ? this.range.first : port + 1;
      if (!this.used.has(port)) {
        this.used.add(port);
        return port;
      }
    }
    throw new PoolExhaustedError("the host port pool is exhausted; widen --ports");
  }

  /** Marks a port as used (restoring state); false when it is outside the pool. */
  claim(port: number): boolean {
    if (port < this.range.first || port > this.range.last) return false;
    this.used.add(port);
    return true;
  }

  /** Takes this very port if it is in the pool and free: true when it was. */
  tryClaim(port: number): boolean {
    if (!this.contains(port) || this.used.has(port)) return false;
    this.used.add(port);
    return true;
  }

  contains(port: number): boolean {
    return port >= this.range.first && port <= this.range.last;
  }

  release(port: number): void {
    this.used.delete(port);
  }
}

/**
 * Blocks of `size` consecutive ports out of a range (--client-ports): each app gets one for
 * its connections to other nodes. null when every block is taken.
 */
export class BlockPool {
  private readonly used = new Set<number>();
  private next = 0;

  constructor(
    readonly range: PortRange,
    readonly size: number,
  ) {}

  get count(): number {
    return Math.floor((this.range.last - this.range.first + 1) / this.size);
  }

  /**
   * A free block, going round the range from the last one handed out: a block an app just
   * released (its ports maybe still in TIME_WAIT) is handed out again last. null: none free.
   */
  take(): PortRange | null {
    for (let n = 0; n < this.count; n++) {
      const i = (this.next + n) % this.count;
      if (this.used.has(i)) continue;
      this.used.add(i);
      this.next = (i + 1) % this.count;
      const first = this.range.first + i * this.size;
      return { first, last: first + this.size - 1 };
    }
    return null;
  }

  /** Marks a block as used (restoring state); false when it is not one of this pool's. */
  claim(block: PortRange): boolean {
    const off = block.first - this.range.first;
    if (off < 0 || off % this.size !== 0 || block.last !== block.first + this.size - 1) return false;
    if (off / this.size >= this.count) return false;
    this.used.add(off / this.size);
    return true;
  }

  release(block: PortRange): void {
    const off = block.first - this.range.first;
    if (off >= 0 && off % this.size === 0) this.used.delete(off / this.size);
  }
}
