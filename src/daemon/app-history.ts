// What the daemon knows of this node's apps beyond the service table: how each was started
// (detached, restart policy, restarts, --rm) while it runs, and, once it has finished, its
// record with the exit status, kept until `sockswitch rm` (at most MAX_FINISHED, oldest
// dropped first) in <state-dir>/finished.json, so `get apps -a` survives a restart.
//
// The exit status comes from the app's launcher (its `SSW1 EXIT <status>` line, sent after
// it reaped the app) or, for a detached app the daemon started itself, from the launcher's
// own exit. The app's removal from the table (its last task gone) and that status arrive in
// either order: a status that comes first waits in `early` (bounded, and dropped after
// EARLY_MS); a finished app whose status never comes stays "exited" with exitCode null.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { AppLife } from "../api/views.js";
import { messageOf } from "../core/errors.js";
import type { App } from "../table/types.js";

const MAX_FINISHED = 500;
const MAX_EARLY = 1024;
const EARLY_MS = 60_000;

export interface StartInfo {
  readonly detached: boolean;
  readonly restartPolicy: string;
  readonly restarts: number;
  /** Forget the app when it ends (run --rm). */
  readonly rm: boolean;
  /** The stack it belongs to (sockswitch up), or null. */
  readonly stack: string | null;
}

export interface Finished {
  readonly app: App;
  life: AppLife;
}

type Listener = (f: Finished, change: "finished" | "status" | "removed") => void;

export class AppHistory {
  private readonly running = new Map<string, StartInfo>();
  private readonly finished = new Map<string, Finished>();
  private readonly early = new Map<string, { code: number; at: number }>();
  private readonly file: string;
  /** Told when an app finishes, when its status arrives later, and when it is removed. */
  listener: Listener | null = null;

  constructor(
    stateDir: string,
    private readonly log: Logger,
    clean: boolean,
  ) {
    this.file = join(stateDir, "finished.json");
    if (!clean) this.load();
  }

  /** An app this node starts serving (or takes over after a restart: info unknown then). */
  started(id: string, info: StartInfo): void {
    this.running.set(id, info);
  }

  /** The life of a running app. */
  life(id: string): AppLife {
    const i = this.running.get(id);
    return {
      status: "running",
      exitCode: null,
      finishedAt: null,
      detached: i?.detached ?? false,
      restartPolicy: i?.restartPolicy ?? "no",
      restarts: i?.restarts ?? 0,
      stack: i?.stack ?? null,
    };
  }

  /** The app left the table (its last task ended, or it ended while the daemon was down). */
  removed(app: App): void {
    const info = this.running.get(app.id);
    this.running.delete(app.id);
    const early = this.early.get(app.id);
    this.early.delete(app.id);
    const f: Finished = {
      app,
      life: {
        ...this.life(app.id),
        detached: info?.detached ?? false,
        restartPolicy: info?.restartPolicy ?? "no",
        restarts: info?.restarts ?? 0,
        status: "exited",
        exitCode: early ? early.code : null,
        finishedAt: new Date().toISOString(),
      },
    };
    if (!info?.rm) {
      this.finished.set(app.id, f);
      this.trim();
      this.save();
    }
    this.listener?.(f, "finished");
  }

  /** The exit status of an app (from its launcher); before or after removed(). */
  exited(id: string, code: number): void {
    const f = this.finished.get(id);
    if (f) {
      if (f.life.exitCode !== null) return;
      f.life = { ...f.life, exitCode: code };
      this.save();
      this.listener?.(f, "status");
      return;
    }
    const now = Date.now();
    for (const [k, v] of this.early)
      if (now - v.at > EARLY_MS || this.early.size >= MAX_EARLY) this.early.delete(k);
    this.early.set(id, { code, at: now });
  }

  /** A finished app by id. */
  get(id: string): Finished | undefined {
    return this.finished.get(id);
  }

  list(): Finished[] {
    return [...this.finished.values()];
  }

  /** Forgets a finished app (sockswitch rm); returns it, or undefined. */
  remove(id: string): Finished | undefined {
    const f = this.finished.get(id);
    if (!f) return undefined;
    this.finished.delete(id);
    this.save();
    this.listener?.(f, "removed");
    return f;
  }

  private trim(): void {
    while (this.finished.size > MAX_FINISHED) {
      const oldest = this.finished.keys().next().value as string;
      this.finished.delete(oldest);
    }
  }

  private load(): void {
    try {
      const data = JSON.parse(readFileSync(this.file, "utf8")) as { finished?: Finished[] };
      for (const f of data.finished ?? []) if (f?.app?.id) this.finished.set(f.app.id, f);
      this.trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        this.log.warn({ file: this.file, err: messageOf(err) }, "finished apps not restored");
    }
  }

  /** Written whole (it is small and changes only when an app ends); atomic by rename. */
  private save(): void {
    try {
      writeFileSync(`${this.file}.tmp`, JSON.stringify({ finished: this.list() }), { mode: 0o600 });
      renameSync(`${this.file}.tmp`, this.file);
    } catch (err) {
      this.log.warn({ file: this.file, err: messageOf(err) }, "cannot save the finished apps");
    }
  }
}
