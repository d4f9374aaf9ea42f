// The embedded store (the default, for one host): the table in memory, persisted to
// <state-dir>/state.json and restored on restart. Writes are batched (one file write per
// burst) and atomic (write a temporary file, fsync, rename), off the trapped-call path.
// A big table is written less often: the wait before a write grows with what the last one
// cost, so that persisting takes at most about a tenth of the daemon's time (10,000 services
// registered in a burst are not rewritten in full every few milliseconds).

import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { messageOf, StateError } from "../core/errors.js";
import type { App, Service } from "../table/types.js";
import type { Snapshot, Store } from "./store.js";

const FORMAT = 1;
const DEBOUNCE_MS = 20;
/** The wait before a write is at least this many times the last write's cost... */
const COST_FACTOR = 9;
/** ...and at most this long. */
const MAX_DELAY_MS = 2000;

interface StateFile {
  format: number;
  apps: App[];
  services: Service[];
}

export class EmbeddedStore implements Store {
  readonly kind = "embedded";
  private readonly apps = new Map<string, App>();
  private readonly services = new Map<string, Service>();
  private readonly file: string;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  /** Milliseconds the last write took (serialising included). */
  private lastCostMs = 0;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    private readonly clean: boolean,
  ) {
    this.file = join(dir, "state.json");
  }

  async open(): Promise<Snapshot> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (this.clean) {
      this.schedule();
      return { apps: [], services: [] };
    }
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { apps: [], services: [] };
      throw new StateError(`cannot read ${this.file}: ${messageOf(err)}`);
    }
    let state: StateFile;
    try {
      state = JSON.parse(text) as StateFile;
    } catch (err) {
      throw new StateError(
        `${this.file} is not valid JSON (${messageOf(err)}); move it aside or start with --clean`,
      );
    }
    if (state.format !== FORMAT || !Array.isArray(state.apps) || !Array.isArray(state.services)) {
      throw new StateError(
        `${this.file} is not a sockswitch state file of format ${FORMAT}; start with --clean`,
      );
    }
    for (const a of state.apps) this.apps.set(a.id, a);
    for (const s of state.services) this.services.set(s.id, s);
    return { apps: [...this.apps.values()], services: [...this.services.values()] };
  }

  putApp(app: App): void {
    this.apps.set(app.id, app);
    this.schedule();
  }

  deleteApp(id: string): void {
    if (this.apps.delete(id)) this.schedule();
  }

  putService(svc: Service): void {
    this.services.set(svc.id, svc);
    this.schedule();
  }

  deleteService(id: string): void {
    if (this.services.delete(id)) this.schedule();
  }

  private schedule(): void {
    this.dirty = true;
    if (this.timer) return;
    const delay = Math.min(MAX_DELAY_MS, Math.max(DEBOUNCE_MS, this.lastCostMs * COST_FACTOR));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = this.writing.then(() => this.write());
    }, delay);
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const started = performance.now();
    const state: StateFile = {
      format: FORMAT,
      apps: [...this.apps.values()],
      services: [...this.services.values()],
    };
    const tmp = `${this.file}.tmp`;
    try {
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(JSON.stringify(state));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
      this.lastCostMs = performance.now() - started;
    } catch (err) {
      this.dirty = true;
      this.log.error({ err: messageOf(err), file: this.file }, "persisting the state failed; will retry");
      setTimeout(() => this.schedule(), 1000).unref();
    }
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.writing = this.writing.then(() => this.write());
    }
    await this.writing;
  }

  persisted(): Promise<void> {
    return this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
