// The service table: apps, their virtual IPs, and services (virtual ip:port → host
// ip:port). Pure logic, no I/O: the daemon feeds it from the store and the trap handlers
// read it. Lookups on the connect path are Map hits on string keys.
//
// Invariants: every service's appId names an app in the table; an app's services are
// removed with it; `byKey` holds exactly the services of `services`, grouped by
// proto/vip/vport, in registration order.

import { type Cidr, cidrContains } from "../net/cidr.js";
import { parseIp } from "../net/ip.js";
import { sharesLabel } from "./policy.js";
import { Selector } from "./select.js";
import {
  type App,
  type Labels,
  type LbMode,
  type NodeInfo,
  type Proto,
  type Service,
  serviceKey,
} from "./types.js";

export type Lookup =
  | { kind: "backend"; service: Service }
  | { kind: "no-backend" }
  | { kind: "denied"; candidates: number }
  | { kind: "not-virtual" };

/** What changed in the table: a record put (added or updated) or removed. */
export type TableChange =
  | { readonly kind: "app"; readonly op: "put" | "remove"; readonly app: App }
  | { readonly kind: "service"; readonly op: "put" | "remove"; readonly service: Service }
  | { readonly kind: "node"; readonly op: "put" | "remove"; readonly node: NodeInfo };

export type TableObserver = (change: TableChange) => void;

export class ServiceTable {
  private readonly apps = new Map<string, App>();
  private readonly appsByIp = new Map<string, Set<string>>();
  /** node → apps of that node with a published source-port block (remote client lookups). */
  private readonly blockAppsByNode = new Map<string, Set<string>>();
  private readonly services = new Map<string, Service>();
  private readonly byKey = new Map<string, Service[]>();
  private readonly byApp = new Map<string, Set<string>>();
  /** proto|host ip|host port → a service there (any of a wildcard socket's). */
  private readonly byHost = new Map<string, Service>();
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly nodesByIp = new Map<string, string>();
  private readonly selector: Selector;

  /**
   * preferNode: when some allowed backends of a service run on this node, pick only among
   * them (--prefer-local); null picks among all.
   */
  constructor(
    private readonly vipCidrs: readonly Cidr[],
    defaultLb: LbMode,
    readonly preferNode: string | null = null,
  ) {
    this.selector = new Selector(defaultLb);
  }

  /** Told of every change after it is made (the API's event stream); must not throw. */
  observer: TableObserver | null = null;

  /** The load-balancing mode of services whose app set none (--lb; SIGHUP may change it). */
  setDefaultLb(mode: LbMode): void {
    this.selector.defaultMode = mode;
  }

  get defaultLb(): LbMode {
    return this.selector.defaultMode;
  }

  // ---- nodes (the cluster's members; on one host, only this one) ----

  putNode(node: NodeInfo): void {
    const old = this.nodes.get(node.name);
    if (old && this.nodesByIp.get(old.ip) === old.name) this.nodesByIp.delete(old.ip);
    this.nodes.set(node.name, node);
    this.nodesByIp.set(node.ip, node.name);
    if (this.observer && (!old || JSON.stringify(old) !== JSON.stringify(node)))
      this.observer({ kind: "node", op: "put", node });
  }

  removeNode(name: string): NodeInfo | undefined {
    const node = this.nodes.get(name);
    if (!node) return undefined;
    this.nodes.delete(name);
    if (this.nodesByIp.get(node.ip) === name) this.nodesByIp.delete(node.ip);
    this.observer?.({ kind: "node", op: "remove", node });
    return node;
  }

  getNode(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  listNodes(): NodeInfo[] {
    return [...this.nodes.values()];
  }

  /** True when ip is some cluster node's IP. */
  isNodeIp(ip: string): boolean {
    return this.nodesByIp.has(ip);
  }

  /**
   * True when host address ip:port is a managed client on another node: ip is that node's
   * IP and port lies in its published client-port range. (Which app it is needs the app's
   * record, which may arrive later: see remoteClient.)
   */
  isRemoteManaged(ip: string, port: number): boolean {
    const name = this.nodesByIp.get(ip);
    const r = name === undefined ? undefined : this.nodes.get(name)?.clientPorts;
    return r !== undefined && port >= r.first && port <= r.last;
  }

  /**
   * The app of another node whose connections come from host address ip:port: ip is that
   * node's IP and port lies in the app's published source-port block.
   */
  remoteClient(ip: string, port: number): App | undefined {
    const node = this.nodesByIp.get(ip);
    if (node === undefined) return undefined;
    for (const id of this.blockAppsByNode.get(node) ?? []) {
      const app = this.apps.get(id);
      const b = app?.srcPorts;
      if (b && port >= b.first && port <= b.last) return app;
    }
    return undefined;
  }

  // ---- apps ----

  putApp(app: App): void {
    const old = this.apps.get(app.id);
    if (old) this.unindex(old);
    this.apps.set(app.id, app);
    if (app.srcPorts) {
      let set = this.blockAppsByNode.get(app.node);
      if (!set) {
        set = new Set();
        this.blockAppsByNode.set(app.node, set);
      }
      set.add(app.id);
    }
    for (const ip of app.ips) {
      let set = this.appsByIp.get(ip);
      if (!set) {
        set = new Set();
        this.appsByIp.set(ip, set);
      }
      set.add(app.id);
    }
    this.observer?.({ kind: "app", op: "put", app });
  }

  /** Removes the app and its services; returns the services removed. */
  removeApp(id: string): Service[] {
    const app = this.apps.get(id);
    const removed: Service[] = [];
    for (const sid of [...(this.byApp.get(id) ?? [])]) {
      const svc = this.removeService(sid);
      if (svc) removed.push(svc);
    }
    if (!app) return removed;
    this.apps.delete(id);
    this.unindex(app);
    this.observer?.({ kind: "app", op: "remove", app });
    return removed;
  }

  private unindex(app: App): void {
    const blocks = this.blockAppsByNode.get(app.node);
    blocks?.delete(app.id);
    if (blocks?.size === 0) this.blockAppsByNode.delete(app.node);
    for (const ip of app.ips) {
      const set = this.appsByIp.get(ip);
      set?.delete(app.id);
      if (set?.size === 0) this.appsByIp.delete(ip);
    }
  }

  getApp(id: string): App | undefined {
    return this.apps.get(id);
  }

  listApps(): App[] {
    return [...this.apps.values()];
  }

  appsWithIp(ip: string): App[] {
    return [...(this.appsByIp.get(ip) ?? [])].map((id) => this.apps.get(id) as App);
  }

  appsWithName(name: string): App[] {
    return this.listApps().filter((a) => a.name === name);
  }

  /** True when ip is a virtual IP: some app's, or inside a virtual IP pool. */
  isVirtual(ip: string): boolean {
    if (this.appsByIp.has(ip)) return true;
    if (this.vipCidrs.length === 0) return false;
    const parsed = parseIp(ip);
    return parsed !== null && this.vipCidrs.some((c) => cidrContains(c, parsed));
  }

  // ---- services ----

  putService(svc: Service): void {
    if (this.services.has(svc.id)) this.removeService(svc.id);
    this.services.set(svc.id, svc);
    const key = serviceKey(svc.proto, svc.vip, svc.vport);
    const list = this.byKey.get(key);
    if (list) list.push(svc);
    else this.byKey.set(key, [svc]);
    let ids = this.byApp.get(svc.appId);
    if (!ids) {
      ids = new Set();
      this.byApp.set(svc.appId, ids);
    }
    ids.add(svc.id);
    this.byHost.set(`${svc.proto}|${svc.hostIp}|${svc.hostPort}`, svc);
    this.observer?.({ kind: "service", op: "put", service: svc });
  }

  removeService(id: string): Service | undefined {
    const svc = this.services.get(id);
    if (!svc) return undefined;
    this.services.delete(id);
    const key = serviceKey(svc.proto, svc.vip, svc.vport);
    const list = this.byKey.get(key);
    if (list) {
      const i = list.indexOf(svc);
      if (i !== -1) list.splice(i, 1);
      if (list.length === 0) {
        this.byKey.delete(key);
        this.selector.forget(key);
      }
    }
    const ids = this.byApp.get(svc.appId);
    ids?.delete(id);
    const hk = `${svc.proto}|${svc.hostIp}|${svc.hostPort}`;
    if (this.byHost.get(hk) === svc) {
      // Services at one host address are one socket's, so of one app.
      this.byHost.delete(hk);
      for (const other of ids ?? []) {
        const o = this.services.get(other);
        if (o && `${o.proto}|${o.hostIp}|${o.hostPort}` === hk) this.byHost.set(hk, o);
      }
    }
    if (ids?.size === 0) this.byApp.delete(svc.appId);
    this.observer?.({ kind: "service", op: "remove", service: svc });
    return svc;
  }

  getService(id: string): Service | undefined {
    return this.services.get(id);
  }

  listServices(): Service[] {
    return [...this.services.values()];
  }

  /** A service whose listener is at host address ip:port, if any. */
  serviceAtHost(proto: Proto, ip: string, port: number): Service | undefined {
    return this.byHost.get(`${proto}|${ip}|${port}`);
  }

  servicesOfApp(appId: string): Service[] {
    return [...(this.byApp.get(appId) ?? [])].map((id) => this.services.get(id) as Service);
  }

  backends(proto: Proto, vip: string, vport: number): readonly Service[] {
    return this.byKey.get(serviceKey(proto, vip, vport)) ?? [];
  }

  /**
   * The connect-time decision for a client with `labels` dialing vip:vport: a backend that
   * policy allows, chosen by the service's load-balancing mode; or why there is none.
   * flow: the client's own virtual address, for a UDP app with several sockets on the port.
   */
  resolve(proto: Proto, vip: string, vport: number, labels: Labels, flow = ""): Lookup {
    const key = serviceKey(proto, vip, vport);
    const all = this.byKey.get(key);
    if (!all || all.length === 0)
      return this.isVirtual(vip) ? { kind: "no-backend" } : { kind: "not-virtual" };
    let allowed: Service[] | null = null;
    for (let i = 0; i < all.length; i++) {
      const svc = all[i] as Service;
      if (sharesLabel(labels, svc.labels)) {
        if (allowed === null) allowed = [];
        allowed.push(svc);
      }
    }
    if (allowed === null) return { kind: "denied", candidates: all.length };
    if (allowed.length > 1) allowed = mostSpecific(allowed);
    if (proto === "udp" && allowed.length > 1) allowed = oneSocketPerApp(allowed, flow);
    if (this.preferNode !== null && allowed.length > 1) {
      const mine = allowed.filter((svc) => svc.node === this.preferNode);
      if (mine.length > 0) allowed = mine;
    }
    return { kind: "backend", service: this.selector.pick(key, allowed) };
  }
}

/**
 * Within one app, a socket bound to the virtual IP itself is picked before one bound to a
 * wildcard, as the kernel's socket lookup picks the most specific match; different apps stay
 * peers for load balancing.
 */
export function mostSpecific(services: Service[]): Service[] {
  const specific = new Set<string>();
  for (const svc of services) if (!svc.wildcard) specific.add(svc.appId);
  if (specific.size === 0) return services;
  return services.filter((svc) => !svc.wildcard || !specific.has(svc.appId));
}

/**
 * UDP: within one app, every datagram to a virtual ip:port goes to one of its sockets there,
 * as the kernel's UDP lookup delivers it: in an SO_REUSEPORT group, the socket the flow's
 * hash picks (the same one for every datagram of a flow); otherwise the socket bound last
 * (the kernel's lookup meets the newest first). Different apps stay peers for load balancing.
 */
function oneSocketPerApp(services: Service[], flow: string): Service[] {
  const byApp = new Map<string, Service[]>();
  for (const svc of services) {
    const list = byApp.get(svc.appId);
    if (list) list.push(svc);
    else byApp.set(svc.appId, [svc]);
  }
  if (byApp.size === services.length) return services;
  const out: Service[] = [];
  for (const list of byApp.values()) {
    const group = list.filter((svc) => svc.reusePort);
    out.push(
      group.length > 1
        ? (group[flowHash(flow) % group.length] as Service)
        : (list[list.length - 1] as Service),
    );
  }
  return out;
}

/** FNV-1a of a flow's key: stable, cheap, spread enough over a handful of sockets. */
export function flowHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
