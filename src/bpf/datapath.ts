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
import { parseIp } from "../net/ip.js";
import type { Binding } from "../table/sockets.js";
import type { TableChange } from "../table/table.js";
import type { App, Proto } from "../table/types.js";
import type { KernelHooks, TrapHost } from "../trap/host.js";
import { AppIndex } from "./app-index.js";
import { AppCgroups, blackholeRoute, sweepCgroups } from "./cgroups.js";
import { ClusterMaps } from "./cluster-maps.js";
import { CONFIG_SIZE, configFor } from "./datapath-config.js";
import { DatapathEvents, type EventTarget } from "./datapath-events.js";
import { LastPorts } from "./last-ports.js";
import {
  APP_BLOCK_BIND,
  addr16,
  appValue,
  boundSockValue,
  LabelBits,
  SK_EXPOSED,
  SK_LOOPBACK,
  SK_TRAPPED,
  sockValue,
} from "./layout.js";
import { registerChecked } from "./preflight.js";
import { pruneRestored } from "./prune.js";
import { ServiceMaps } from "./service-maps.js";
import { setSourceBlock } from "./source-block.js";
import {
  claimPinDir,
  ensureBpffs,
  ensureCgroup2,
  openDir,
  ownCgroupDir,
  PRIVATE_PINS,
  sweepOrphanPins,
} from "./system.js";

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
  "ssw_sock_release",
  "ssw_admit",
];

export interface BpfDatapathOptions {
  readonly stateDir: string;
  readonly vipCidr: Cidr;
  /** This host's own addresses (never egress destinations on a pool port). */
  readonly localAddresses: readonly string[];
}

/** What the maps know of an app: its id, addresses and labels. */
export type AppIdentity = Pick<App, "id" | "ips" | "labels"> & Partial<Pick<App, "srcPorts">>;

export class BpfDatapath implements EventTarget, KernelHooks {
  private readonly fds: Record<string, number> = {};
  /** App id ↔ index, kept in the pinned ssw_app_ids (app-index.ts). */
  private readonly index: AppIndex;
  private readonly labels = new LabelBits();
  /** Services and the apps' private loopback entries in the maps. */
  private readonly services: ServiceMaps;
  private readonly stamp = new Uint8Array(48);
  private readonly fdKey = new Uint8Array(4);
  private readonly cookieKey = new Uint8Array(8);
  private readonly cookieValue = new Uint8Array(4);
  private readonly cookieView = new DataView(this.cookieKey.buffer);
  private readonly cookieValueView = new DataView(this.cookieValue.buffer);
  private vipCidr: Cidr | null = null;
  /** The host ports the apps' virtual ports last had (preferredPort). */
  private readonly lastPorts = new LastPorts();
  private readonly events: DatapathEvents;
  /** The apps' cgroups (cgroups.ts): the hooks know the calling task's app by its cgroup. */
  private readonly placement: AppCgroups;
  /** Other nodes' apps and nodes (cluster-maps.ts). */
  private readonly cluster: ClusterMaps;

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
      "ssw_events_lost",
      "ssw_cgroups",
      "ssw_cookies",
      "ssw_app_ids",
    ])
      this.fds[m] = addon.bpfMapFd(handle, m);
    this.index = new AppIndex(addon, this.fds.ssw_app_ids as number);
    this.services = new ServiceMaps(addon, log, host, this.labels, this.fds);
    this.placement = new AppCgroups(addon, log, cgroupDir, cgroupRoot, this.fds.ssw_cgroups as number);
    this.cluster = new ClusterMaps(addon, log, host, this.labels, (m) => addon.bpfMapFd(handle, m));
  }

  /**
   * Loads and attaches the programs to the daemon's cgroup (pinned under the state dir's pin
   * directory: a restarted daemon takes them over). Returns the datapath, or why it cannot run.
   */
  static open(addon: Addon, host: TrapHost, log: Logger, opts: BpfDatapathOptions): BpfDatapath | string {
    if (addon.bpfBuilt() !== 1)
      return "this build has no BPF programs (clang, bpftool or libbpf-dev were missing)";
    const fs = ensureBpffs(addon, opts.stateDir);
    if (fs.err < 0) return `cannot mount bpffs at /sys/fs/bpf (errno ${-fs.err})`;
    if (fs.private) log.warn(PRIVATE_PINS);
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
    dp.events.open(dp.fds.ssw_events as number, dp.fds.ssw_events_lost as number);
    log.info({ cgroup, pinned: dir, bpffs: fs.outer ?? undefined }, "bpf datapath attached");
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
    this.vipCidr = opts.vipCidr;
    // No daemon registered until this one's registration bind (an old daemon's tgid may be reused).
    this.put("ssw_config", new Uint8Array(4), configFor(this.host, opts.vipCidr, null));
    const one = new Uint8Array([1, 0, 0, 0]);
    for (const ip of opts.localAddresses) if (parseIp(ip)) this.put("ssw_local", addr16(ip), one);
    const dns = this.host.resolver;
    if (dns) this.put("ssw_vips", addr16(dns.ip), one);
  }

  /**
   * The daemon's settings changed (SIGHUP: --egress, --lb): ssw_config is written again (the
   * daemon's registration kept) and every service's load balancing with it.
   */
  reconfigured(): void {
    const cur = new Uint8Array(CONFIG_SIZE);
    const r = this.addon.bpfMapLookup(this.fds.ssw_config as number, new Uint8Array(4), cur);
    this.put("ssw_config", new Uint8Array(4), configFor(this.host, this.vipCidr as Cidr, r < 0 ? null : cur));
    this.services.rewriteAll();
  }

  // ---- apps and sockets ----

  /** The app's index in the maps (given at its first socket). */
  private indexOf(app: AppIdentity): number {
    const [i, fresh] = this.index.give(app.id);
    if (fresh) this.appChanged(app);
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
    // The block: applied by IP_LOCAL_PORT_RANGE on each socket the daemon makes (mark), else
    // (an older kernel, the host placement) by the programs' bind at a connect to another node.
    const block = app.srcPorts ?? null;
    const byBind = !this.host.kernel.ipLocalPortRange || this.placement.isHostPlaced(app.id);
    const extra = block && byBind ? APP_BLOCK_BIND : 0;
    this.put("ssw_apps", key, appValue(app.ips, bits ?? [0n, 0n, 0n, 0n], block, extra));
  }

  appRemoved(app: App): void {
    this.placement.unplace(app.id);
    const i = this.index.remove(app.id);
    for (const ip of app.ips)
      if (this.host.table.appsWithIp(ip).length === 0) this.del("ssw_vips", addr16(ip));
    if (i === undefined) return;
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

  socketStamp(app: App): { map: number; value: Uint8Array } | null {
    if (app.srcPorts && this.host.kernel.ipLocalPortRange) return null; // mark() sets the block
    return {
      map: this.fds.ssw_socks as number,
      value: sockValue(this.indexOf(app), new Uint8Array(48), SK_TRAPPED),
    };
  }

  /**
   * Stamps a socket the daemon made for app (its binds and listens are trapped: SK_TRAPPED),
   * and gives it the app's source-port block (source-block.ts): 0 or -errno. No allocation
   * (trapped-call path).
   */
  mark(fd: number, app: App): number {
    if (app.srcPorts && this.host.kernel.ipLocalPortRange) setSourceBlock(this.host, fd, app);
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
    // An --expose port admits anyone (the rule trap/binding.ts applies to pick the host port).
    const exposed = !loopback && app.expose.some((e) => e.appPort === vport);
    const flags = SK_TRAPPED | (loopback ? SK_LOOPBACK : 0) | (exposed ? SK_EXPOSED : 0);
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
    if (i !== undefined) this.services.privateEntry(i, b);
  }

  preferredPort(appId: string, proto: Proto, vport: number, hostIp: string): number | null {
    return this.lastPorts.preferred(appId, proto, vport, hostIp);
  }

  withdrawn(b: Binding): void {
    this.lastPorts.withdrawn(b);
    const i = this.index.get(b.appId);
    if (i !== undefined) this.services.privateGone(i, b);
  }

  // ---- services (service-maps.ts) ----

  /** Rewrites the backends of virtual proto/vip/vport from the table (after any change there). */
  serviceChanged(proto: Proto, vip: string, vport: number): void {
    this.services.changed(proto, vip, vport);
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
    return this.index.idOf(this.cookieValueView.getUint32(0, true));
  }

  appIdOf(index: number): string | undefined {
    return this.index.idOf(index);
  }

  /**
   * The table is restored (a restart): indexes of apps the daemon no longer knows are given up,
   * and what the maps hold from before that the table did not write again is removed (prune.ts).
   */
  restored(): void {
    const n = pruneRestored(this.addon, this.fds, this.host, this.index, this.services.written);
    if (n > 0)
      this.log.info({ removed: n }, "bpf datapath entries of apps and services gone meanwhile removed");
  }

  /** A change of the service table (its observer): the maps follow. */
  tableChanged(c: TableChange): void {
    this.cluster.tableChanged(c);
    if (c.kind === "app") {
      if (c.op === "put") {
        // An app of this node from before a restart: its cgroup is the earlier daemon's.
        if (c.app.node === this.host.config.nodeName) this.placement.adopt(c.app.id, c.app.pid);
        this.appChanged(c.app);
      } else this.appRemoved(c.app);
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
