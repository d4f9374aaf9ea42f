// App lifecycle on this host: identity for a starting app (virtual IPs from the pool),
// its trap session once the launcher hands over the seccomp listener, and its removal
// (services, socket records, host ports) when its last task exits. Apps restored from the
// store after a daemon restart are kept while their process lives (their listeners are
// kernel sockets and keep serving) and removed when it exits.

import { createHash, randomBytes } from "node:crypto";
import { PoolExhaustedError } from "../core/errors.js";
import { cidrNth, cidrSize } from "../net/cidr.js";
import type { KernelSocket } from "../net/proc-net.js";
import type { Snapshot } from "../store/store.js";
import type { AppSpec } from "../table/app-spec.js";
import type { App } from "../table/types.js";
import { withdrawBinding } from "../trap/binding.js";
import { AppSession, READABLE } from "../trap/session.js";
import { restoreShadows } from "../trap/shadow.js";
import type { Supervisor } from "../trap/supervisor.js";
import type { Host } from "./host.js";
import { appOfLauncher, mustBeListener, parentPid, pidNamespace, processStart } from "./identity.js";
import { appRoot, kickTrappedThreads, rebuildBindings, rebuildSources } from "./takeover.js";

const SWEEP_MS = 500;
/**
 * How long an exited app's client records are kept (TCP's TIME_WAIT, 60 s): a server may
 * still read datagrams or accept a connection it sent before it exited.
 */
const RETIRED_MS = 60_000;

/** A new app's id: 12 hex digits. */
export function newAppId(): string {
  return randomBytes(6).toString("hex");
}

export class AppManager {
  private readonly sessions = new Map<string, AppSession>();
  /** Watchers of restored apps' pidfds. */
  private readonly orphans = new Map<string, { pidfd: number; handle: number }>();
  private readonly reserved = new Set<string>();
  private cursor = 1;
  private sweep: NodeJS.Timeout | null = null;
  /** Told of every app of this node that is removed (it ended), after its records went. */
  onRemoved: ((app: App, why: string) => void) | null = null;

  constructor(
    private readonly host: Host,
    private readonly supervisor: Supervisor,
  ) {
    host.sessions = (id) => this.sessions.get(id);
    // In a cluster every node assigns from the same --vip-cidr, without asking the others:
    // each starts at its own place in the block (from a hash of its name), so that two
    // nodes rarely hand out the same address before their records have crossed.
    if (host.daemonConfig.store.kind === "etcd") {
      const size = cidrSize(host.daemonConfig.vipCidr);
      const h = createHash("sha256").update(host.config.nodeName).digest().readUInt32BE(0);
      this.cursor = 1 + (h % Math.max(1, Math.min(size - 2, 1 << 20)));
    }
  }

  /** The virtual IPs a new app gets: those it asked for, or one from the pool. */
  assignIps(spec: AppSpec): string[] {
    if (spec.ips.length > 0) return spec.ips;
    const cidr = this.host.daemonConfig.vipCidr;
    const size = cidrSize(cidr);
    const limit = Math.min(size - 1, 1 << 20);
    for (let i = 0; i < limit; i++) {
      const n = ((this.cursor + i - 1) % (size - 2)) + 1; // skip the block's first and last address
      const ip = cidrNth(cidr, n);
      if (!ip || this.reserved.has(ip.text) || this.host.table.appsWithIp(ip.text).length > 0) continue;
      this.cursor = n + 1;
      this.reserved.add(ip.text);
      return [ip.text];
    }
    throw new PoolExhaustedError(`no free virtual IP left in --vip-cidr ${cidr.text}; widen it or give --ip`);
  }

  /**
   * The managed app that process pid belongs to, if any: it is, or descends from, a
   * managed app's process or its launcher (the init of the app's PID namespace, whose
   * subtree holds every process of the app, orphans included), or it lives in a managed
   * app's PID namespace. Apps may not register apps: that would let an app pick its own
   * identity and labels.
   */
  appOfProcess(pid: number): App | undefined {
    const apps = this.host.table.listApps().filter((a) => a.node === this.host.config.nodeName);
    if (apps.length === 0) return undefined;
    const byPid = new Map<number, App>();
    for (const a of apps) {
      byPid.set(a.pid, a);
      byPid.set(appRoot(a), a);
    }
    for (let p: number | null = pid, depth = 0; p !== null && p > 1 && depth < 256; depth++) {
      const app = byPid.get(p);
      if (app) return app;
      p = parentPid(p);
    }
    const ns = pidNamespace(pid);
    if (ns === null || ns === pidNamespace("self")) return undefined;
    return apps.find((a) => pidNamespace(a.pid) === ns);
  }

  /** Keeps ip out of automatic assignment (the resolver's address). */
  reserveIp(ip: string): void {
    this.reserved.add(ip);
  }

  /** Gives back IPs assigned to an app that never started. */
  releaseIps(ips: readonly string[]): void {
    for (const ip of ips) this.reserved.delete(ip);
  }

  /** Starts serving an app whose launcher handed over its seccomp listener. */
  start(spec: AppSpec, ips: string[], pid: number, listenerFd: number, id = newAppId()): App {
    mustBeListener(listenerFd);
    const app: App = {
      id,
      name: spec.name,
      ips,
      labels: spec.labels,
      expose: spec.expose,
      lb: spec.lb,
      node: this.host.config.nodeName,
      pid,
      pidStart: processStart(pid) ?? 0,
      command: spec.command,
      user: spec.user,
      createdAt: new Date().toISOString(),
      // Only a cluster needs them: they name this app to servers on other nodes.
      srcPorts: this.host.daemonConfig.store.kind === "etcd" ? this.host.blocks.take() : null,
    };
    if (!app.srcPorts && this.host.daemonConfig.store.kind === "etcd")
      this.host.log.warn(
        { app: app.id },
        "no free block left in --client-ports: servers on other nodes will not admit this app's connections",
      );
    this.releaseIps(ips);
    this.host.table.putApp(app);
    this.host.store.putApp(app);
    const session = new AppSession(this.host, app, listenerFd);
    this.sessions.set(app.id, session);
    this.supervisor.serve(session, () => this.remove(app.id, "exited"));
    this.ensureSweep();
    this.host.log.info({ app: app.id, name: app.name, ips, pid, labels: app.labels }, "app started");
    return app;
  }

  /** Removes an app and everything it held on this host. */
  remove(id: string, why: string): void {
    const session = this.sessions.get(id);
    if (session) {
      this.sessions.delete(id);
      session.close();
    }
    const orphan = this.orphans.get(id);
    if (orphan) {
      this.orphans.delete(id);
      this.host.addon.unwatch(orphan.handle);
      this.host.addon.close(orphan.pidfd);
    }
    for (const b of this.host.sockets.bindingsOf(id)) withdrawBinding(this.host, b);
    this.host.sockets.removeApp(id, Date.now());
    this.ensureSweep();
    for (const svc of this.host.table.servicesOfApp(id)) {
      if (svc.node === this.host.config.nodeName && this.host.pool.contains(svc.hostPort)) {
        this.host.pool.release(svc.hostPort);
      }
      this.host.withdrawService(svc.id);
    }
    const app = this.host.table.getApp(id);
    if (app?.srcPorts && app.node === this.host.config.nodeName) this.host.blocks.release(app.srcPorts);
    this.host.table.removeApp(id);
    this.host.store.deleteApp(id);
    if (app) this.host.log.info({ app: id, name: app.name, why }, "app removed");
    if (app && app.node === this.host.config.nodeName) this.onRemoved?.(app, why);
  }

  /**
   * Takes over a running app from the state dir whose launcher re-handed its listener
   * after a daemon restart, with a pidfd of the app. The app must be this node's, alive
   * (the pidfd's process, same pid and start time), and the launcher's child.
   */
  adopt(id: string, pidfd: number, listenerFd: number, launcherPid: number): App {
    const app = this.host.table.getApp(id);
    if (!app || app.node !== this.host.config.nodeName)
      throw new Error(`this daemon does not know app ${id} (was it started with --clean?)`);
    mustBeListener(listenerFd);
    const pid = appOfLauncher(pidfd, launcherPid);
    if (app.pid !== pid || processStart(pid) !== app.pidStart)
      throw new Error(`app ${id} is not process ${pid}`);
    if (this.sessions.has(id)) throw new Error(`app ${id} is already served`);
    const orphan = this.orphans.get(id);
    if (orphan) {
      this.orphans.delete(id);
      this.host.addon.unwatch(orphan.handle);
      this.host.addon.close(orphan.pidfd);
    }
    // Calls the previous daemon took but never answered: restart them before serving.
    const kicked = kickTrappedThreads(this.host, app);
    const session = new AppSession(this.host, app, listenerFd);
    this.sessions.set(app.id, session);
    const shadows = restoreShadows(session);
    this.supervisor.serve(session, () => this.remove(app.id, "exited"));
    this.ensureSweep();
    this.host.log.info(
      { app: app.id, name: app.name, pid, restoredBinds: shadows, restartedCalls: kicked },
      "app reattached",
    );
    return app;
  }

  /** Loads the store's apps: live ones are kept (and watched), dead ones are removed. */
  restore(snap: Snapshot, kernel: readonly KernelSocket[]): void {
    const node = this.host.config.nodeName;
    for (const app of snap.apps) this.host.table.putApp(app);
    for (const svc of snap.services) {
      if (!this.host.table.getApp(svc.appId)) {
        this.host.store.deleteService(svc.id);
        continue;
      }
      this.host.table.putService(svc);
      if (svc.node === node && !svc.exposed) this.host.pool.claim(svc.hostPort);
    }
    for (const app of snap.apps) {
      if (app.node !== node) continue;
      if (app.srcPorts) this.host.blocks.claim(app.srcPorts);
      const alive = processStart(app.pid);
      if (alive === null || alive !== app.pidStart) {
        this.remove(app.id, "exited while the daemon was down");
        continue;
      }
      rebuildBindings(this.host, app, kernel);
      rebuildSources(this.host, app, kernel);
      this.watchOrphan(app);
    }
  }

  private watchOrphan(app: App): void {
    const a = this.host.addon;
    const pidfd = a.pidfdOpen(app.pid, 0);
    if (pidfd < 0) {
      this.remove(app.id, "exited while the daemon was down");
      return;
    }
    const handle = a.watch(pidfd, READABLE, () => this.remove(app.id, "exited"));
    this.orphans.set(app.id, { pidfd, handle });
    this.host.log.info({ app: app.id, name: app.name, pid: app.pid }, "app restored from the state dir");
  }

  private ensureSweep(): void {
    if (this.sweep) return;
    this.sweep = setInterval(() => {
      for (const s of this.sessions.values()) if (s.waiting > 0) s.sweepWaiters();
      if (this.host.sockets.retiredCount > 0) this.host.sockets.forgetRetired(Date.now() - RETIRED_MS);
    }, SWEEP_MS);
    this.sweep.unref();
  }

  get count(): number {
    return this.host.table.listApps().filter((a) => a.node === this.host.config.nodeName).length;
  }

  /** Closes every session (daemon shutdown); apps keep running and their state stays stored. */
  closeAll(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    for (const o of this.orphans.values()) {
      this.host.addon.unwatch(o.handle);
      this.host.addon.close(o.pidfd);
    }
    this.orphans.clear();
  }
}
