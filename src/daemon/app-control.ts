// The API's app life-cycle operations (api/context.ts AppControl) on this daemon: lists
// with finished apps, detached runs, stop, rm and logs, and the app events they cause. It
// joins the service table (running apps), the history (finished ones), the runner
// (detached ones) and the stopper.

import { readFileSync, readlinkSync } from "node:fs";
import type { AppControl, Caller, RunRequestBody } from "../api/context.js";
import { type AppLife, type AppView, appView, RUNNING } from "../api/views.js";
import { launcherPath } from "../cli/run.js";
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  PermissionError,
  RunError,
} from "../core/errors.js";
import { buildSpec } from "../table/app-spec.js";
import type { App } from "../table/types.js";
import type { AppHistory, Finished } from "./app-history.js";
import type { EventBus } from "./event-bus.js";
import type { Host } from "./host.js";
import type { Runner } from "./runner.js";
import { stopApp } from "./stopper.js";

/** How long a finished app's exit status may lag behind its end before restart decides without it. */
const STATUS_WAIT_MS = 1000;
/** How long run -d waits for the app's command to be exec'd (or to fail to be). */
const EXEC_WAIT_MS = 3000;

export class DaemonApps implements AppControl {
  private readonly gone = new Map<string, (() => void)[]>();
  private readonly statusTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly host: Host,
    private readonly history: AppHistory,
    private readonly runner: Runner,
    private readonly bus: EventBus,
  ) {
    history.listener = (f, change) => this.onHistory(f, change);
    runner.onLauncherExit = (appId, code) => history.exited(appId, code);
    runner.onStarted = (appId, run, previous) => {
      // Stopped while this start was under way: it ends at once.
      if (run.stopped) {
        const app = host.table.getApp(appId);
        if (app) void stopApp(app, 10_000, this.whenGone(appId)).catch(() => undefined);
      }
      // A restarted run replaces its previous app: one record, its restarts counted.
      if (previous) this.history.remove(previous);
      history.started(appId, {
        detached: true,
        restartPolicy: run.req.restart,
        restarts: run.restarts,
        rm: run.req.rm,
        stack: run.req.stack ?? null,
      });
    };
  }

  private get self(): string {
    return this.host.config.nodeName;
  }

  private lifeOf(app: App): AppLife {
    return app.node === this.self ? this.history.life(app.id) : RUNNING;
  }

  /** A local app started or was taken over: its ADDED event. */
  started(app: App): void {
    this.bus.publish("ADDED", "app", appView(app, this.host.table, this.lifeOf(app)) as never);
  }

  /**
   * An app's end as watchers see it: one DELETED event, the last of the app's, carrying its
   * exit status. The status comes from the launcher a moment after the process is seen gone;
   * DELETED waits for it up to STATUS_WAIT_MS, then goes without it (a status that arrives
   * later still reaches the history: `get apps -a`).
   */
  private onHistory(f: Finished, change: "finished" | "status" | "removed"): void {
    const view = (): never => appView(f.app, this.host.table, f.life) as never;
    if (change === "finished") {
      for (const resolve of this.gone.get(f.app.id) ?? []) resolve();
      this.gone.delete(f.app.id);
      if (f.life.exitCode !== null) {
        this.bus.publish("DELETED", "app", view());
        this.runner.finished(f.app.id, f.life.exitCode);
        return;
      }
      const t = setTimeout(() => {
        this.statusTimers.delete(f.app.id);
        this.bus.publish("DELETED", "app", view());
        this.runner.finished(f.app.id, null);
      }, STATUS_WAIT_MS);
      t.unref();
      this.statusTimers.set(f.app.id, t);
    } else if (change === "status") {
      const t = this.statusTimers.get(f.app.id);
      if (!t) return; // DELETED has gone already
      clearTimeout(t);
      this.statusTimers.delete(f.app.id);
      this.bus.publish("DELETED", "app", view());
      this.runner.finished(f.app.id, f.life.exitCode);
    } else {
      const t = this.statusTimers.get(f.app.id); // removed before its status came: one DELETED
      if (t) {
        clearTimeout(t);
        this.statusTimers.delete(f.app.id);
        this.runner.finished(f.app.id, f.life.exitCode);
      }
      this.bus.publish("DELETED", "app", view());
    }
  }

  list(all: boolean): AppView[] {
    const running = this.host.table.listApps().map((a) => appView(a, this.host.table, this.lifeOf(a)));
    if (!all) return running;
    return running.concat(this.history.list().map((f) => appView(f.app, this.host.table, f.life)));
  }

  /**
   * A running app, else a finished one: by id, then by name (the latest finished). A name that
   * several running apps share is refused (InvalidArgumentError: name one by its id).
   */
  private find(idOrName: string): { app: App; finished: Finished | null } | null {
    const t = this.host.table;
    const byId = t.getApp(idOrName);
    if (byId) return { app: byId, finished: null };
    const f = this.history.get(idOrName);
    if (f) return { app: f.app, finished: f };
    const named = t.appsWithName(idOrName);
    const locals = named.filter((a) => a.node === this.self);
    const among = locals.length > 0 ? locals : named;
    // Replicas may share a name (one DNS name, load balanced): a command must not pick one.
    if (among.length > 1)
      throw new InvalidArgumentError(
        `${among.length} running apps are named "${idOrName}" (${among.map((a) => a.id).join(", ")}); name one by its id`,
      );
    if (among[0]) return { app: among[0], finished: null };
    const done = this.history
      .list()
      .filter((x) => x.app.name === idOrName)
      .sort((a, b) => String(b.life.finishedAt).localeCompare(String(a.life.finishedAt)))[0];
    return done ? { app: done.app, finished: done } : null;
  }

  private mustFind(idOrName: string): { app: App; finished: Finished | null } {
    const found = this.find(idOrName);
    if (!found)
      throw new NotFoundError(`no app with id or name "${idOrName}"; see \`sockswitch get apps -a\``);
    return found;
  }

  get(idOrName: string): AppView {
    const { app, finished } = this.mustFind(idOrName);
    return appView(app, this.host.table, finished ? finished.life : this.lifeOf(app));
  }

  async run(req: RunRequestBody, caller: Caller | null): Promise<AppView> {
    if (caller === null || caller.uid !== 0)
      throw new PermissionError(
        "run -d needs root: the daemon starts the app's launcher, which makes its network namespace, as the caller",
      );
    // The launcher's registration is checked again; this gives the caller the sentence at once.
    buildSpec(
      {
        ip: req.ips ?? [],
        name: req.name || undefined,
        labels:
          req.labels && Object.keys(req.labels).length > 0
            ? Object.entries(req.labels)
                .map(([k, v]) => `${k}=${v}`)
                .join(",")
            : undefined,
        expose: req.expose ?? [],
        lb: req.lb ?? undefined,
        user: req.user ?? undefined,
      },
      req.command,
    );
    const id = await this.runner.start(req);
    await this.execOf(id);
    return this.get(id);
  }

  /**
   * Resolves once the app's process runs its command (its /proc/PID/exe is no longer the
   * launcher), or after EXEC_WAIT_MS; rejects with the launcher's sentence when the command
   * could not run (exit 126 or 127), as `docker run -d` refuses a command it cannot start.
   * The finished app stays listed, and is not started again by its restart policy.
   */
  private execOf(id: string): Promise<void> {
    const launcher = launcherPath();
    const end = Date.now() + EXEC_WAIT_MS;
    return new Promise((resolve, reject) => {
      const poll = () => {
        const app = this.host.table.getApp(id);
        if (app) {
          let exe = launcher;
          try {
            exe = readlinkSync(`/proc/${app.pid}/exe`);
          } catch {
            // Gone meanwhile: its status comes next.
          }
          if (exe !== launcher || Date.now() > end) return resolve();
          return void setTimeout(poll, 20);
        }
        void this.statusOf(id).then(() => {
          const code = this.history.get(id)?.life.exitCode;
          // The launcher's own sentence, not a command that ran and chose that status.
          const sentence = code === 126 || code === 127 ? this.lastLine(id) : null;
          if (sentence === null || !sentence.startsWith("cannot run ")) return resolve();
          this.runner.stop(id);
          reject(new RunError(sentence));
        });
      };
      poll();
    });
  }

  /** The last line a detached app wrote (its launcher's sentence, when it could not start). */
  private lastLine(id: string): string | null {
    const file = this.runner.runOf(id)?.log;
    if (!file) return null;
    try {
      const lines = readFileSync(file, "utf8").trim().split("\n");
      return lines[lines.length - 1]?.replace(/^sockswitch: /, "") || null;
    } catch {
      return null;
    }
  }

  /** Resolves when the app with this id has finished (left the table). */
  private whenGone(id: string): Promise<void> {
    if (!this.host.table.getApp(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.gone.get(id) ?? [];
      list.push(resolve);
      this.gone.set(id, list);
    });
  }

  async stop(idOrName: string, timeoutS: number): Promise<AppView> {
    const { app, finished } = this.mustFind(idOrName);
    // Between two starts of a restarting app, its last one is found finished: the run stops too.
    if (finished) {
      this.runner.stop(app.id);
      return appView(app, this.host.table, finished.life);
    }
    if (app.node !== this.self)
      throw new ConflictError(`app ${app.name || app.id} runs on node ${app.node}; stop it there`);
    this.runner.stop(app.id);
    await stopApp(app, timeoutS * 1000, this.whenGone(app.id));
    const f = this.history.get(app.id);
    if (f && f.life.exitCode === null) await this.statusOf(app.id);
    return this.get(app.id);
  }

  /** Waits (up to STATUS_WAIT_MS) for a finished app's exit status. */
  private statusOf(id: string): Promise<void> {
    return new Promise((resolve) => {
      const end = Date.now() + STATUS_WAIT_MS;
      const poll = () => {
        const f = this.history.get(id);
        if (!f || f.life.exitCode !== null || Date.now() > end) return resolve();
        setTimeout(poll, 20);
      };
      poll();
    });
  }

  async remove(idOrName: string, force: boolean): Promise<AppView> {
    let { app, finished } = this.mustFind(idOrName);
    if (!finished) {
      if (app.node !== this.self)
        throw new ConflictError(`app ${app.name || app.id} runs on node ${app.node}; remove it there`);
      if (!force)
        throw new ConflictError(
          `app ${app.name || app.id} is running; stop it first (sockswitch stop) or use rm -f`,
        );
      this.runner.stop(app.id);
      await stopApp(app, 0, this.whenGone(app.id));
      finished = this.history.get(app.id) ?? null;
    }
    const view = appView(app, this.host.table, finished?.life ?? { ...RUNNING, status: "exited" });
    this.history.remove(app.id);
    this.runner.forget(app.id);
    return view;
  }

  logs(idOrName: string): { file: string; more: () => boolean } {
    const { app } = this.mustFind(idOrName);
    const run = this.runner.runOf(app.id);
    if (!run)
      throw new NotFoundError(
        `app ${app.name || app.id} was not started with run -d: its output went to the terminal that ran it`,
      );
    return {
      file: run.log,
      more: () => this.runner.live(app.id, (id) => this.host.table.getApp(id) !== undefined),
    };
  }
}
