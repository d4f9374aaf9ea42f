// The bpf datapath (native/bpf/datapath.bpf.c): the daemon's decisions reach the kernel through
// maps, and the kernel's socket hooks apply them: only socket(), bind() and listen() are
// trapped, and nothing in the host placement (--new-netns=false: cgroups.ts). This file
// loads and attaches the programs (pinned per state dir), stamps each socket the daemon makes
// for an app with the app's index, keeps the maps in step with the service table (apps, their
// addresses and labels; services and their backends; --egress, the refusal port, the resolver),
// and serves the kernel's events (datapath-events.ts). One control plane: the table, policy and
// store are the daemon's; only how decisions reach the kernel differs.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import type { Addon } from "../native/addon.js";
import type { Cidr } from "../net/cidr.js";
import { isLoopback, isUnspecified, parseIp } from "../net/ip.js";
import type { Binding } from "../table/sockets.js";
import type { TableChange } from "../table/table.js";
import type { App, Proto } from "../table/types.js";
import type { KernelHooks, TrapHost } from "../trap/host.js";
import { kernelBackends } from "./backends.js";
import { AppCgroups, blackholeRoute, sweepCgroups } from "./cgroups.js";
import { DatapathEvents, type EventTarget } from "./datapath-events.js";
import { LastPorts } from "./last-ports.js";
import {
  addr16,
  appValue,
  backendKey,
  backendValue,
  boundSockValue,
  configValue,
  LabelBits,
  MAX_BACKENDS,
  SK_LOOPBACK,
  SK_TRAPPED,
  sockValue,
  svcKey,
  svcValue,
} from "./layout.js";
import { registerChecked } from "./preflight.js";
import { privateKeys } from "./private-loopback.js";
import { claimPinDir, ensureBpffs, ensureCgroup2, openDir, ownCgroupDir, sweepOrphanPins } from "./system.js";

const PROGRAMS = [
  "ssw_connect4",
  "ssw_connect6",
  "ssw_sendmsg4",
  "ssw_sendmsg6",
  "ssw_bind4",
  "ssw_bind6",
  "ssw_post_bind4",
  "ssw_post_bind6",
  "ssw_getsockname4",
  "ssw_getsockname6",
  "ssw_getpeername4",
  "ssw_getpeername6",
  "ssw_recvmsg4",
  "ssw_recvmsg6",
  "ssw_sockops",
  "ssw_sock_create",
];

export interface BpfDatapathOptions {
  readonly stateDir: string;
  readonly vipCidr: Cidr;
  /** This host's own addresses (never egress destinations on a pool port). */
  readonly localAddresses: readonly string[];
}

/** What the maps know of an app: its id, addresses and labels. */
export type AppIdentity = Pick<App, "id" | "ips" | "labels">;

export class BpfDatapath implements EventTarget, KernelHooks {
  private readonly fds: Record<string, number> = {};
  private readonly index = new Map<string, number>();
  private readonly apps = new Map<number, string>();
  private readonly labels = new LabelBits();
  /** Service keys (proto|vip|vport) written to the maps, with their backend counts. */
  private readonly written = new Map<string, number>();
  private readonly stamp = new Uint8Array(48);
  private readonly fdKey = new Uint8Array(4);
  private readonly cookieKey = new Uint8Array(8);
  private readonly cookieValue = new Uint8Array(4);
  private readonly cookieView = new DataView(this.cookieKey.buffer);
  private readonly cookieValueView = new DataView(this.cookieValue.buffer);
  private next = 1;
  /** The host ports the apps' virtual ports last had (preferredPort). */
  private readonly lastPorts = new LastPorts();
  private readonly events: DatapathEvents;
  /** The apps' cgroups (cgroups.ts): the hooks know the calling task's app by its cgroup. */
  private readonly placement: AppCgroups;

  private constructor(
    private readonly addon: Addon,
    private readonly host: TrapHost,
    private readonly log: Logger,
    private readonly handle: number,
    /** The cgroup the programs are attached to; apps of the host placement get one below it. */
    cgroupDir: string,
    cgroupRoot: string,
  ) {
    this.events = new DatapathEvents(addon, host, log, this);
    for (const m of [
      "ssw_socks",
      "ssw_apps",
      "ssw_svcs",
      "ssw_backends",
      "ssw_vips",
      "ssw_local",
      "ssw_config",
      "ssw_events",
      "ssw_cgroups",
      "ssw_cookies",
    ])
      this.fds[m] = addon.bpfMapFd(handle, m);
    this.placement = new AppCgroups(addon, log, cgroupDir, cgroupRoot, this.fds.ssw_cgroups as number);
  }

  /**
   * Loads and attaches the programs to the daemon's cgroup (pinned under the state dir's pin
   * directory: a restarted daemon takes them over). Returns the datapath, or why it cannot run.
   */
  static open(addon: Addon, host: TrapHost, log: Logger, opts: BpfDatapathOptions): BpfDatapath | string {
    if (addon.bpfBuilt() !== 1)
      return "this build has no BPF programs (clang, bpftool or libbpf-dev were missing)";
    const fs = ensureBpffs(addon);
    if (fs.err < 0) return `cannot mount bpffs at /sys/fs/bpf (errno ${-fs.err})`;
    if (fs.private)
      log.warn(
        "bpffs was mounted in the daemon's own mount namespace: its BPF pins end with this daemon (run the daemon in the host's mount namespace to keep them across restarts)",
      );
    const cgroup = ownCgroupDir(addon);
    const root = ensureCgroup2(addon);
    if (cgroup === null || root === null) return "no cgroup v2 hierarchy is mounted";
    sweepOrphanPins();
    const dir = join(claimPinDir(opts.stateDir), "datapath");
    mkdirSync(dir, { recursive: true });
    const h = addon.bpfOpen("datapath", dir);
    if (h < 0) return `loading the programs failed (errno ${-h}): ${addon.bpfLog().trim().slice(-500)}`;
    let cg = -1;
    try {
      cg = openDir(cgroup);
      for (const p of PROGRAMS) {
        const r = addon.bpfAttachCgroup(h, p, cg, join(dir, `link_${p}`));
        if (r < 0) {
          addon.bpfClose(h);
          return `attaching ${p} to ${cgroup} failed (errno ${-r}): ${addon.bpfLog().trim().slice(-300)}`;
        }
      }
    } catch (err) {
      addon.bpfClose(h);
      return `cannot open the daemon's cgroup ${cgroup}: ${messageOf(err)}`;
    } finally {
      if (cg >= 0) addon.close(cg);
    }
    const swept = sweepCgroups(cgroup);
    if (swept > 0) log.info({ cgroup, removed: swept }, "app cgroups left empty by ended apps removed");
    const dp = new BpfDatapath(addon, host, log, h, cgroup, root);
    dp.configure(opts);
    const reg = registerChecked(addon, dp.fds.ssw_socks as number, dp.fds.ssw_config as number);
    if (reg !== null) {
      addon.bpfClose(h);
      return reg;
    }
    blackholeRoute(opts.vipCidr, log);
    dp.events.open(dp.fds.ssw_events as number);
    log.info({ cgroup, pinned: dir }, "bpf datapath attached");
    return dp;
  }

  private put(map: string, key: Uint8Array, value: Uint8Array): void {
    const r = this.addon.bpfMapUpdate(this.fds[map] as number, key, value, 0);
    if (r < 0) this.log.error({ map, errno: -r }, "writing a bpf datapath map failed");
  }

  private del(map: string, key: Uint8Array): void {
    this.addon.bpfMapDelete(this.fds[map] as number, key);
  }

  private configure(opts: BpfDatapathOptions): void {
    const h = this.host;
    const c = opts.vipCidr;
    let net: Uint8Array | null = null;
    let mask: Uint8Array | null = null;
    if (c.family === 4) {
      net = c.base.slice(0, 4);
      mask = new Uint8Array(4);
      for (let bit = 0; bit < c.prefix; bit++)
        mask[bit >> 3] = (mask[bit >> 3] as number) | (0x80 >> (bit & 7));
    }
    const dns = h.resolver;
    this.put(
      "ssw_config",
      new Uint8Array(4),
      configValue({
        egressDeny: h.config.egress === "deny",
        refusePort: h.refusePort,
        pool: h.pool.range,
        nodeIp: h.config.nodeIp,
        nodeIp6: h.config.nodeIp6,
        dns: dns ? { vip: dns.ip, hostIp: dns.hostIp, hostPort: dns.hostPort } : null,
        vipNet4: net,
        vipMask4: mask,
      }),
    );
    const one = new Uint8Array([1, 0, 0, 0]);
    for (const ip of opts.localAddresses) if (parseIp(ip)) this.put("ssw_local", addr16(ip), one);
    if (dns) this.put("ssw_vips", addr16(dns.ip), one);
  }

  // ---- apps and sockets ----

  /** The app's index in the maps (given at its first socket). */
  private indexOf(app: AppIdentity): number {
    let i = this.index.get(app.id);
    if (i !== undefined) return i;
    i = this.next++;
    this.index.set(app.id, i);
    this.apps.set(i, app.id);
    this.appChanged(app);
    return i;
  }

  /** Writes an app's addresses and labels (a new app, or one whose record changed). */
  appChanged(app: AppIdentity): void {
    this.lastPorts.app(app);
    const one = new Uint8Array([1, 0, 0, 0]);
    for (const ip of app.ips) this.put("ssw_vips", addr16(ip), one);
    const i = this.index.get(app.id);
    if (i === undefined) return;
    const bits = this.labels.of(app.labels);
    if (bits === null)
      this.log.error(
        { app: app.id },
        "more than 256 distinct labels: this app's labels reach nothing (bpf datapath)",
      );
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    this.put("ssw_apps", key, appValue(app.ips, bits ?? [0n, 0n, 0n, 0n]));
  }

  appRemoved(app: App): void {
    this.placement.unplace(app.id);
    const i = this.index.get(app.id);
    for (const ip of app.ips)
      if (this.host.table.appsWithIp(ip).length === 0) this.del("ssw_vips", addr16(ip));
    if (i === undefined) return;
    this.index.delete(app.id);
    this.apps.delete(i);
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    this.del("ssw_apps", key);
  }

  /**
   * Moves the app's process `pid` into a cgroup of its own (cgroups.ts), by which the hooks know
   * its calls; the host placement's sockets are stamped by it too. Throws a sentence when it
   * cannot (the app must not run: a socket handed to it would act with its giver's identity).
   */
  place(app: AppIdentity, pid: number, hostPlacement: boolean): void {
    this.placement.place(app.id, this.indexOf(app), pid, hostPlacement);
  }

  /**
   * Stamps a socket the daemon made for app (its binds and listens are trapped: SK_TRAPPED):
   * 0 or -errno. No allocation (trapped-call path).
   */
  mark(fd: number, app: App): number {
    new DataView(this.fdKey.buffer).setInt32(0, fd, true);
    return this.addon.bpfMapUpdate(
      this.fds.ssw_socks as number,
      this.fdKey,
      sockValue(this.indexOf(app), this.stamp, SK_TRAPPED),
      0,
    );
  }

  // ---- trapped binds and listens (KernelHooks, trap/host.ts) ----

  binding(fd: number, app: App, vip: string, vport: number, loopback: boolean): number {
    // What the app did before this bind counts first (a UDP server's socket that connected).
    this.events.drain();
    new DataView(this.fdKey.buffer).setInt32(0, fd, true);
    const flags = SK_TRAPPED | (loopback ? SK_LOOPBACK : 0);
    return this.addon.bpfMapUpdate(
      this.fds.ssw_socks as number,
      this.fdKey,
      boundSockValue(this.indexOf(app), flags, vip, vport, this.stamp),
      0,
    );
  }

  unbound(fd: number, app: App): void {
    const r = this.mark(fd, app);
    if (r < 0)
      this.log.error({ app: app.id, errno: -r }, "cannot reset a socket's bpf storage after a failed bind");
  }

  served(b: Binding): void {
    const i = this.index.get(b.appId);
    if (i !== undefined) this.privateEntry(i, b);
  }

  preferredPort(appId: string, proto: Proto, vport: number, hostIp: string): number | null {
    return this.lastPorts.preferred(appId, proto, vport, hostIp);
  }

  withdrawn(b: Binding): void {
    this.lastPorts.withdrawn(b);
    const i = this.index.get(b.appId);
    if (i === undefined) return;
    const found = new Uint8Array(56);
    for (const { key } of privateKeys(i, b)) {
      const bk = backendKey(key, 0);
      const r = this.addon.bpfMapLookup(this.fds.ssw_backends as number, bk, found);
      // Only the entry of this binding (another socket of the app may have taken the address since).
      if (r < 0 || new DataView(found.buffer).getUint16(16, true) !== b.hostPort) continue;
      this.del("ssw_svcs", key);
      this.del("ssw_backends", bk);
    }
  }

  // ---- services ----

  /** Rewrites the backends of virtual proto/vip/vport from the table (after any change there). */
  serviceChanged(proto: Proto, vip: string, vport: number): void {
    const key = svcKey(proto, vip, vport);
    const id = `${proto}|${vip}|${vport}`;
    const backends = kernelBackends(this.host.table.backends(proto, vip, vport), (svc) =>
      svc.node === this.host.config.nodeName
        ? this.host.sockets.bindingAt(proto, svc.hostIp, svc.hostPort)
        : undefined,
    ).slice(0, MAX_BACKENDS);
    const before = this.written.get(id) ?? 0;
    backends.forEach((svc, slot) => {
      const bits = this.labels.of(svc.labels) ?? [0n, 0n, 0n, 0n];
      const hostIp =
        (isUnspecified(svc.hostIp) || isLoopback(svc.hostIp)) && svc.node !== this.host.config.nodeName
          ? (this.host.nodeIpOf(svc.node) ?? svc.hostIp)
          : svc.hostIp;
      this.put("ssw_backends", backendKey(key, slot), backendValue(hostIp, svc.hostPort, bits));
    });
    if (backends.length > 0) {
      const random = (backends[0]?.lb ?? this.host.table.defaultLb) === "random";
      this.put("ssw_svcs", key, svcValue(backends.length, random));
      this.written.set(id, backends.length);
    } else {
      this.del("ssw_svcs", key);
      this.written.delete(id);
    }
    for (let slot = backends.length; slot < before; slot++) this.del("ssw_backends", backendKey(key, slot));
  }

  /**
   * An app's private loopback entries for a listener of its own: bound to a loopback address
   * (that address), or to a wildcard (the loopback of each family it serves), as the kernel's
   * lookup finds them for the app's connects to 127.0.0.1 or ::1.
   */
  privateEntry(app: number, b: Binding): void {
    const all = [~0n, ~0n, ~0n, ~0n].map((w) => w & 0xffffffffffffffffn);
    for (const { key, reach } of privateKeys(app, b)) {
      this.put("ssw_backends", backendKey(key, 0), backendValue(reach, b.hostPort, all));
      this.put("ssw_svcs", key, svcValue(1, false));
    }
  }

  /**
   * The app whose socket has cookie `cookie` (recorded by the programs when it connected or
   * sent: ssw_cookies), or undefined. The caller found the cookie with sock_diag at the peer's
   * address, so the socket is there now.
   */
  appOfCookie(cookie: number): string | undefined {
    if (cookie === 0) return undefined;
    this.cookieView.setBigUint64(0, BigInt(cookie), true);
    if (this.addon.bpfMapLookup(this.fds.ssw_cookies as number, this.cookieKey, this.cookieValue) < 0)
      return undefined;
    return this.apps.get(this.cookieValueView.getUint32(0, true));
  }

  appIdOf(index: number): string | undefined {
    return this.apps.get(index);
  }

  /** A change of the service table (its observer): the maps follow. */
  tableChanged(c: TableChange): void {
    if (c.kind === "app") {
      if (c.op === "put") this.appChanged(c.app);
      else this.appRemoved(c.app);
    } else if (c.kind === "service") {
      this.serviceChanged(c.service.proto, c.service.vip, c.service.vport);
    }
  }

  /** Stops serving events and lets go of the programs (pinned: they stay attached). */
  close(): void {
    this.events.close();
    this.addon.bpfClose(this.handle);
  }
}
