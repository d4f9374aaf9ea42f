// The etcd store's local cache of the cluster's records (key → JSON text, as etcd holds
// them under /sockswitch/<cluster>/) and its delivery to the daemon: changes reach the
// consumer as per-key differences between the cache and what the consumer has already
// seen, so a full resync tells it only what really changed, and nothing of this node's
// own records (the daemon is their authority).

import type { Logger } from "pino";
import type { App, NodeInfo, Service } from "../table/types.js";

export type Kind = "nodes" | "apps" | "services";

/** What the daemon is told about other nodes' records: a value, or null when it is gone. */
export interface ClusterListener {
  app(id: string, app: App | null): void;
  service(id: string, svc: Service | null): void;
  node(name: string, node: NodeInfo | null): void;
}

export class RecordCache {
  private readonly cache = new Map<string, string>();
  private readonly seen = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private listener: ClusterListener | null = null;

  constructor(
    readonly prefix: string,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {}

  key(kind: Kind, id: string): string {
    return `${this.prefix}${kind}/${id}`;
  }

  kindOf(key: string): Kind | null {
    const rest = key.slice(this.prefix.length);
    const kind = rest.slice(0, rest.indexOf("/"));
    return kind === "nodes" || kind === "apps" || kind === "services" ? kind : null;
  }

  /** True for a record of this node (by its node field, or the node key itself). */
  isOwn(key: string, value: string): boolean {
    if (this.kindOf(key) === "nodes") return key === this.key("nodes", this.nodeName);
    try {
      return (JSON.parse(value) as { node?: string }).node === this.nodeName;
    } catch {
      return false;
    }
  }

  /** A watch event: value, or null for a delete. */
  set(key: string, value: string | null): void {
    if (value === null) this.cache.delete(key);
    else this.cache.set(key, value);
    this.dirty.add(key);
    this.deliver();
  }

  /** A full read at one revision replaces everything. */
  replace(fresh: Map<string, string>): void {
    for (const k of this.cache.keys()) if (!fresh.has(k)) this.dirty.add(k);
    for (const [k, v] of fresh) if (this.cache.get(k) !== v) this.dirty.add(k);
    this.cache.clear();
    for (const [k, v] of fresh) this.cache.set(k, v);
    this.deliver();
  }

  /**
   * Other nodes' apps and services as they are now, taken as seen (the snapshot the daemon
   * starts from); nodes are delivered when the listener attaches.
   */
  snapshot(): { apps: App[]; services: Service[] } {
    const apps: App[] = [];
    const services: Service[] = [];
    for (const [k, v] of this.cache) {
      const kind = this.kindOf(k);
      if (this.isOwn(k, v) || kind === "nodes") continue;
      this.seen.set(k, v);
      if (kind === "apps") apps.push(JSON.parse(v) as App);
      else if (kind === "services") services.push(JSON.parse(v) as Service);
    }
    this.dirty.clear();
    return { apps, services };
  }

  /** Starts delivering changes (first: every node, and whatever changed since the snapshot). */
  attach(listener: ClusterListener): void {
    this.listener = listener;
    for (const k of this.cache.keys()) if (this.kindOf(k) === "nodes") this.dirty.add(k);
    this.deliver();
  }

  /** Tells the consumer what changed since it last looked, other nodes' records only. */
  private deliver(): void {
    const l = this.listener;
    if (!l) return;
    for (const k of this.dirty) {
      const kind = this.kindOf(k);
      const id = k.slice(this.prefix.length + (kind?.length ?? 0) + 1);
      const now = this.cache.get(k);
      if (now === this.seen.get(k)) continue;
      let value: { node?: string } | null = null;
      if (now !== undefined) {
        try {
          value = JSON.parse(now) as { node?: string };
        } catch {
          this.log.warn({ key: k }, "ignoring a record that is not JSON");
          continue;
        }
        // This node's own records: the daemon is their authority (see isOwn).
        if (kind === "nodes" ? id === this.nodeName : value?.node === this.nodeName) continue;
      }
      if (now === undefined) this.seen.delete(k);
      else this.seen.set(k, now);
      if (kind === "apps") l.app(id, value as App | null);
      else if (kind === "services") l.service(id, value as Service | null);
      else if (kind === "nodes") l.node(id, value as NodeInfo | null);
    }
    this.dirty.clear();
  }
}
