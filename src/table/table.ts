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
import { type App, type Labels, type LbMode, type Proto, type Service, serviceKey } from "./types.js";

export type Lookup =
  | { kind: "backend"; service: Service }
  | { kind: "no-backend" }
  | { kind: "denied"; candidates: number }
  | { kind: "not-virtual" };

export class ServiceTable {
  private readonly apps = new Map<string, App>();
  private readonly appsByIp = new Map<string, Set<string>>();
  private readonly services = new Map<string, Service>();
  private readonly byKey = new Map<string, Service[]>();
  private readonly byApp = new Map<string, Set<string>>();
  private readonly selector: Selector;

  constructor(
    private readonly vipCidrs: readonly Cidr[],
    defaultLb: LbMode,
  ) {
    this.selector = new Selector(defaultLb);
  }

  // ---- apps ----

  putApp(app: App): void {
    const old = this.apps.get(app.id);
    if (old) this.unindexIps(old);
    this.apps.set(app.id, app);
    for (const ip of app.ips) {
      let set = this.appsByIp.get(ip);
      if (!set) {
        set = new Set();
        this.appsByIp.set(ip, set);
      }
      set.add(app.id);
    }
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
    this.unindexIps(app);
    return removed;
  }

  private unindexIps(app: App): void {
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
    if (ids?.size === 0) this.byApp.delete(svc.appId);
    return svc;
  }

  getService(id: string): Service | undefined {
    return this.services.get(id);
  }

  listServices(): Service[] {
    return [...this.services.values()];
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
   */
  resolve(proto: Proto, vip: string, vport: number, labels: Labels): Lookup {
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
    return { kind: "backend", service: this.selector.pick(key, allowed) };
  }
}
