// Detached apps (`sockswitch run -d`, POST /v1/apps): the daemon starts the app's launcher
// itself, in a session of its own (setsid), with stdin from /dev/null and stdout and stderr
// appended to <state-dir>/logs/<run>.log, which `sockswitch logs` reads. The launcher
// registers the app over the daemon socket like any other; this module waits for that
// registration (or the launcher's early end, whose last line is the reason) and records the
// run in <state-dir>/runs.json, so that after a daemon restart the app's output and restart
// policy still work (the launcher is then no longer the daemon's child: its exit status
// comes from its `SSW1 EXIT` line). With a restart policy, an app that ends is started
// again (Docker's policies: on-failure, always, unless-stopped) after a back-off that
// doubles from RESTART_MIN_MS to RESTART_MAX_MS; `sockswitch stop` ends that.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { constants } from "node:os";
import { join, resolve } from "node:path";
import type { Logger } from "pino";
import type { RunRequestBody } from "../api/context.js";
import { launcherPath } from "../cli/run.js";
import { messageOf, NativeError, RunError, StateError } from "../core/errors.js";

const REGISTER_MS = 30_000;
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
/** An app that ran this long resets its back-off. */
const RESTART_RESET_MS = 10_000;

export interface Run {
  readonly id: string;
  readonly req: RunRequestBody;
  readonly log: string;
  /** The app now serving this run ("" while starting). */
  appId: string;
  restarts: number;
  /** Stopped by the user: never started again. */
  stopped: boolean;
  /** Ended, and to be started again after the back-off. */
  restarting: boolean;
  startedAt: number;
}

interface Waiting {
  readonly run: Run;
  readonly child: ChildProcess;
  resolve(appId: string): void;
  reject(err: Error): void;
}

export class Runner {
  private readonly runs = new Map<string, Run>();
  private readonly byApp = new Map<string, Run>();
  private readonly waiting = new Map<number, Waiting>();
  private readonly dir: string;
  private readonly file: string;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Told the exit status when a launcher the daemon started ends (its own exit code). */
  onLauncherExit: ((appId: string, code: number) => void) | null = null;
  /** Told when a run's app is (re)started: the app id, the run, and the app it replaces ("" if none). */
  onStarted: ((appId: string, run: Run, previous: string) => void) | null = null;

  private readonly socket: string;

  constructor(
    stateDir: string,
    socket: string,
    private readonly log: Logger,
    clean: boolean,
  ) {
    // The launcher runs in the caller's working directory: it needs the socket's full path.
    this.socket = resolve(socket);
    this.dir = join(stateDir, "logs");
    this.file = join(stateDir, "runs.json");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!clean) this.load();
  }

  /** The run an app belongs to, if it was started detached. */
  runOf(appId: string): Run | undefined {
    return this.byApp.get(appId);
  }

  /** Starts a new detached run; resolves to its app's id once registered. */
  start(req: RunRequestBody): Promise<string> {
    const id = randomBytes(6).toString("hex");
    const run: Run = {
      id,
      req,
      log: join(this.dir, `${id}.log`),
      appId: "",
      restarts: 0,
      stopped: false,
      restarting: false,
      startedAt: Date.now(),
    };
    this.runs.set(id, run);
    return this.launch(run).catch((err) => {
      this.runs.delete(id);
      rmSync(run.log, { force: true });
      this.save();
      throw err;
    });
  }

  /** The launcher that just said HELLO is one of ours: the app it registers belongs to run. */
  /** Whether a launcher with this pid is one this runner started and waits for. */
  isOurs(launcherPid: number): Run | undefined {
    return this.waiting.get(launcherPid)?.run;
  }

  registered(launcherPid: number, appId: string): void {
    const w = this.waiting.get(launcherPid);
    if (!w) return;
    this.waiting.delete(launcherPid);
    w.resolve(appId);
  }

  /** The user stops the app: its run is never started again. */
  stop(appId: string): void {
    const run = this.byApp.get(appId);
    if (run) {
      run.stopped = true;
      run.restarting = false;
      this.save();
    }
  }

  /** Forgets a run whose app is gone (sockswitch rm): its log is deleted. */
  forget(appId: string): void {
    const run = this.byApp.get(appId);
    if (!run) return;
    this.byApp.delete(appId);
    this.runs.delete(run.id);
    rmSync(run.log, { force: true });
    this.save();
  }

  /**
   * The app of a run has finished with this status (null: unknown). Starts it again when
   * its policy says so; returns whether it will.
   */
  finished(appId: string, status: number | null): boolean {
    const run = this.byApp.get(appId);
    if (!run || run.stopped || this.closed || run.appId !== appId) return false;
    const policy = run.req.restart;
    const again =
      policy === "always" || policy === "unless-stopped" || (policy === "on-failure" && status !== 0);
    if (!again) return false;
    const ranMs = Date.now() - run.startedAt;
    const delay =
      ranMs > RESTART_RESET_MS
        ? RESTART_MIN_MS
        : Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** run.restarts);
    run.restarting = true;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run.restarting = false;
      if (run.stopped || this.closed) return;
      run.restarts++;
      run.startedAt = Date.now();
      this.launch(run).catch((err) =>
        this.log.warn(
          { run: run.id, name: run.req.name, err: messageOf(err) },
          "restarting a detached app failed",
        ),
      );
    }, delay);
    timer.unref();
    this.timers.add(timer);
    this.log.info(
      { run: run.id, name: run.req.name, status, delayMs: delay, policy },
      "detached app ended; restarting",
    );
    return true;
  }

  /** Whether the run of this app may still write output: its app runs, or will be restarted. */
  live(appId: string, isRunning: (id: string) => boolean): boolean {
    const run = this.byApp.get(appId);
    if (!run) return isRunning(appId);
    return isRunning(run.appId) || (run.restarting && !run.stopped);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiting.values()) w.reject(new StateError("the daemon is stopping"));
    this.waiting.clear();
  }

  private launch(run: Run): Promise<string> {
    const launcher = launcherPath();
    if (!existsSync(launcher))
      return Promise.reject(
        new NativeError(`the launcher ${launcher} is missing; run \`npm install\` to build it`),
      );
    const r = run.req;
    // `sockswitch-launch run` with the options of `sockswitch run` (native/launcher/options.c).
    const argv = ["--socket", this.socket, "run"];
    for (const ip of r.ips ?? []) argv.push("--ip", ip);
    if (r.name) argv.push("--name", r.name);
    if (r.labels && Object.keys(r.labels).length > 0)
      argv.push(
        "--labels",
        Object.entries(r.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(","),
      );
    for (const e of r.expose ?? []) argv.push("--expose", e);
    if (r.lb) argv.push("--lb", r.lb);
    // Resolved by the launcher from this host's /etc/passwd, as for `sockswitch run`.
    if (r.user) argv.push("--user", r.user);
    if (!r.newNetns) argv.push("--new-netns=false");
    if (r.dnsOverride !== null) argv.push(`--dns-override=${r.dnsOverride}`);
    if (r.rm) argv.push("--rm");
    argv.push("--", ...r.command);
    const out = openSync(run.log, "a", 0o600);
    let child: ChildProcess;
    try {
      child = spawn(launcher, argv, {
        cwd: r.cwd && existsSync(r.cwd) ? r.cwd : "/",
        env: Object.fromEntries(
          (r.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
        ),
        stdio: ["ignore", out, out],
        detached: true,
      });
    } finally {
      closeSync(out);
    }
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(pid);
        child.kill("SIGKILL");
        reject(new RunError(`the app did not register within ${REGISTER_MS / 1000} s`));
      }, REGISTER_MS);
      const pid = child.pid ?? -1;
      const w: Waiting = {
        run,
        child,
        resolve: (appId) => {
          clearTimeout(timer);
          const previous = run.appId;
          if (previous) this.byApp.delete(previous);
          run.appId = appId;
          this.byApp.set(appId, run);
          this.save();
          this.onStarted?.(appId, run, previous);
          resolve(appId);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      if (pid > 0) this.waiting.set(pid, w);
      child.on("error", (err) => {
        this.waiting.delete(pid);
        w.reject(new NativeError(`cannot start the launcher: ${messageOf(err)}`));
      });
      child.on("exit", (code, signal) => {
        const status = code ?? 128 + (signal ? signalNumber(signal) : 0);
        if (this.waiting.get(pid) === w) {
          this.waiting.delete(pid);
          w.reject(new RunError(lastLine(run.log) ?? `the app ended at once (status ${status})`));
          return;
        }
        if (run.appId) this.onLauncherExit?.(run.appId, status);
      });
      child.unref();
    });
  }

  private load(): void {
    try {
      const data = JSON.parse(readFileSync(this.file, "utf8")) as { runs?: Run[] };
      for (const run of data.runs ?? []) {
        if (!run?.id || !run.req) continue;
        this.runs.set(run.id, run);
        if (run.appId) this.byApp.set(run.appId, run);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        this.log.warn({ file: this.file, err: messageOf(err) }, "detached runs not restored");
    }
  }

  private save(): void {
    try {
      writeFileSync(`${this.file}.tmp`, JSON.stringify({ runs: [...this.runs.values()] }), { mode: 0o600 });
      renameSync(`${this.file}.tmp`, this.file);
    } catch (err) {
      this.log.warn({ file: this.file, err: messageOf(err) }, "cannot save the detached runs");
    }
  }
}

/** The last non-empty line of a file (the launcher's `sockswitch: …` sentence), without the prefix. */
function lastLine(path: string): string | null {
  try {
    const lines = readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "");
    const last = lines.at(-1);
    return last ? last.replace(/^sockswitch: /, "") : null;
  } catch {
    return null;
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[signal] ?? 0;
}
