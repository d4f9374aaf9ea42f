// The etcd store (a cluster): every daemon's apps, services and node record under
// /sockswitch/<cluster>/, all on the daemon's own lease, so that they vanish with the node
// when its daemon dies; and a local cache of everyone's records, fed by a watch, that the
// daemon's service table mirrors. Trapped calls never wait on etcd: writes are queued
// (fire-and-forget) and the table is read locally.
//
// Layout:  nodes/<node>   NodeInfo      apps/<id>   App      services/<id>   Service
//
// This node's own records are authoritative here (kept in `own`, and on disk through the
// embedded store so that a restart finds them even after the lease expired); other
// nodes' records come only from etcd. A state machine with two states:
//
//   online   writes go out in order; the watch feeds the cache.
//   offline  (a write failed, the lease was lost, the watch broke) writes only update
//            `own`; a recovery loop retries with backoff: new lease, put every own record
//            on it, delete own records etcd has that `own` does not, revoke the old lease,
//            read everything at one revision (a full resync, so a compacted revision does
//            not matter) and watch from the next one.
//
// The cache and what the daemon is told of it: etcd-cache.ts.

import { noop } from "cockatiel";
import { Etcd3, type Lease, type Watcher } from "etcd3";
import type { Logger } from "pino";
import { messageOf, StoreError } from "../core/errors.js";
import { testTimeScale } from "../core/test-env.js";
import { parseIp } from "../net/ip.js";
import type { App, NodeInfo, Service } from "../table/types.js";
import { EmbeddedStore } from "./embedded.js";
import { type ClusterListener, type Kind, RecordCache } from "./etcd-cache.js";
import { etcdReason } from "./etcd-reason.js";
import type { Snapshot, Store } from "./store.js";
import { silenceIpServernameWarning } from "./tls-warning.js";

export interface EtcdOptions {
  /** host:port of each etcd endpoint. */
  readonly endpoints: readonly string[];
  readonly tls: { readonly ca: Buffer; readonly cert: Buffer | null; readonly key: Buffer | null } | null;
  readonly cluster: string;
  /** Lease time-to-live in seconds. */
  readonly ttl: number;
  /** Where this node's own records are also kept (the state dir). */
  readonly stateDir: string;
  readonly clean: boolean;
  /** This node's record (its app count is kept up to date by setAppCount). */
  readonly node: NodeInfo;
}

// Bounds on etcd; only tests scale them (SOCKSWITCH_TEST_TIME_SCALE, core/test-env.ts).
const OPEN_TIMEOUT_MS = 5000 * testTimeScale();
const CALL_TIMEOUT_MS = 3000 * testTimeScale();
const JOIN_TIMEOUT_MS = 10_000 * testTimeScale();
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 2000;
const NODE_DEBOUNCE_MS = 200;

export class EtcdStore implements Store {
  readonly kind = "etcd";
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly local: EmbeddedStore;
  private readonly own = new Map<string, string>();
  /** Own keys changed while offline or during a (re)join: sent once the join is done. */
  private readonly pending = new Set<string>();
  private readonly cache: RecordCache;
  private lease: Lease | null = null;
  private watcher: Watcher | null = null;
  private chain: Promise<void> = Promise.resolve();
  private recovering: Promise<void> | null = null;
  private nodeTimer: NodeJS.Timeout | null = null;
  private node: NodeInfo;
  private closed = false;
  /** Full resyncs done (the first one at open included). */
  resyncs = 0;
  online = false;

  constructor(
    private readonly opts: EtcdOptions,
    private readonly log: Logger,
  ) {
    this.prefix = `/sockswitch/${opts.cluster}/`;
    this.node = opts.node;
    this.cache = new RecordCache(this.prefix, opts.node.name, log);
    this.local = new EmbeddedStore(opts.stateDir, log, opts.clean);
    if (
      opts.tls &&
      opts.endpoints.some((e) => parseIp(e.slice(0, e.lastIndexOf(":")).replace(/^\[|\]$/g, "")))
    )
      silenceIpServernameWarning();
    this.client = new Etcd3({
      hosts: opts.endpoints.map((e) => `${opts.tls ? "https" : "http"}://${e}`),
      credentials: opts.tls
        ? {
            rootCertificate: opts.tls.ca,
            ...(opts.tls.cert ? { certChain: opts.tls.cert } : {}),
            ...(opts.tls.key ? { privateKey: opts.tls.key } : {}),
          }
        : undefined,
      dialTimeout: CALL_TIMEOUT_MS,
      // Unary calls fail fast (the recovery loop is the retry policy); streams are left alone.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }),
      faultHandling: { host: () => noop, global: noop },
    });
  }

  private get where(): string {
    return this.opts.endpoints.join(",");
  }

  private key(kind: Kind, id: string): string {
    return this.cache.key(kind, id);
  }

  /**
   * Reads this node's own records from the state dir, then joins the cluster (lease, own
   * records, everyone's records). Fails with a sentence if etcd cannot be reached.
   */
  async open(): Promise<Snapshot> {
    const mine = await this.local.open();
    for (const a of mine.apps)
      if (a.node === this.node.name) this.own.set(this.key("apps", a.id), JSON.stringify(a));
    for (const s of mine.services)
      if (s.node === this.node.name) this.own.set(this.key("services", s.id), JSON.stringify(s));
    this.own.set(this.key("nodes", this.node.name), JSON.stringify(this.node));
    let timer: NodeJS.Timeout | null = null;
    try {
      await Promise.race([
        this.establish(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${OPEN_TIMEOUT_MS} ms`)),
            OPEN_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (err) {
      this.closed = true;
      this.client.close();
      throw new StoreError(
        `cannot reach etcd at ${this.where}: ${etcdReason(err)}; check --store (and the --etcd-* TLS options) and that etcd runs`,
      );
    } finally {
      if (timer) clearTimeout(timer);
    }
    const remote = this.cache.snapshot();
    const apps: App[] = [...mine.apps.filter((a) => a.node === this.node.name), ...remote.apps];
    const services: Service[] = [
      ...mine.services.filter((s) => s.node === this.node.name),
      ...remote.services,
    ];
    return { apps, services };
  }

  /** Starts delivering changes of other nodes' records (first: everything since open). */
  attach(listener: ClusterListener): void {
    this.cache.attach(listener);
  }

  // ---- own writes ----

  putApp(app: App): void {
    if (app.node !== this.node.name) return;
    this.local.putApp(app);
    this.putOwn(this.key("apps", app.id), JSON.stringify(app));
  }

  deleteApp(id: string): void {
    this.local.deleteApp(id);
    this.deleteOwn(this.key("apps", id));
  }

  putService(svc: Service): void {
    if (svc.node !== this.node.name) return;
    this.local.putService(svc);
    this.putOwn(this.key("services", svc.id), JSON.stringify(svc));
  }

  deleteService(id: string): void {
    this.local.deleteService(id);
    this.deleteOwn(this.key("services", id));
  }

  /** Updates the app count in this node's record (debounced). */
  setAppCount(apps: number): void {
    if (apps === this.node.apps) return;
    this.node = { ...this.node, apps };
    if (this.nodeTimer) return;
    this.nodeTimer = setTimeout(() => {
      this.nodeTimer = null;
      this.putOwn(this.key("nodes", this.node.name), JSON.stringify(this.node));
    }, NODE_DEBOUNCE_MS);
  }

  get nodeInfo(): NodeInfo {
    return this.node;
  }

  private putOwn(key: string, value: string): void {
    this.own.set(key, value);
    this.send(key);
  }

  private deleteOwn(key: string): void {
    if (!this.own.delete(key)) return;
    this.send(key);
  }

  /**
   * Sends the current state of an own key (a put, or a delete when it is gone) in order
   * while online; offline, it waits in `pending` for the next join.
   */
  private send(key: string): void {
    if (this.closed) return;
    if (!this.online) {
      this.pending.add(key);
      return;
    }
    this.chain = this.chain.then(async () => {
      const lease = this.lease;
      if (!this.online || !lease) {
        this.pending.add(key);
        return;
      }
      try {
        const value = this.own.get(key);
        if (value === undefined) await this.client.delete().key(key).exec();
        else
          await this.client
            .put(key)
            .value(value)
            .lease(await lease.grant())
            .exec();
      } catch (err) {
        this.pending.add(key);
        this.goOffline(`a write failed: ${messageOf(err)}`);
      }
    });
  }

  // ---- joining, losing and regaining etcd ----

  /** Joins (again): see the header. Bounded in time; a failure leaves the store offline. */
  private async establish(): Promise<void> {
    let timer: NodeJS.Timeout | null = null;
    const lease = this.client.lease(this.opts.ttl, { autoKeepAlive: true });
    lease.on("lost", (err) => {
      if (this.lease === lease) this.goOffline(`the lease was lost: ${messageOf(err)}`);
    });
    try {
      await Promise.race([
        this.join(lease),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${JOIN_TIMEOUT_MS} ms`)),
            JOIN_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (err) {
      this.online = false;
      if (this.lease === lease) this.lease = null;
      lease.removeAllListeners();
      lease.release(); // stop its keep-alive; what was put on it expires with it
      const w = this.watcher;
      this.watcher = null;
      if (w) {
        w.removeAllListeners();
        w.on("error", () => undefined);
        void w.cancel().catch(() => undefined);
      }
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private async join(lease: Lease): Promise<void> {
    const old = this.lease;
    this.pending.clear(); // everything own is put below; later changes land in pending again
    const id = await lease.grant();
    const all = await this.client.getAll().prefix(this.prefix).exec();
    const puts: Promise<unknown>[] = [];
    for (const [k, v] of this.own) puts.push(this.client.put(k).value(v).lease(id).exec());
    for (const kv of all.kvs) {
      const k = kv.key.toString();
      const v = kv.value.toString();
      if (this.cache.isOwn(k, v) && !this.own.has(k)) puts.push(this.client.delete().key(k).exec());
    }
    await Promise.all(puts);
    this.lease = lease;
    if (old && old !== lease) {
      old.removeAllListeners();
      await old.revoke().catch(() => undefined);
    }
    // Everyone's records at one revision, then the watch from the next one.
    const snap = await this.client.getAll().prefix(this.prefix).exec();
    const fresh = new Map<string, string>();
    for (const kv of snap.kvs) fresh.set(kv.key.toString(), kv.value.toString());
    this.resyncs++;
    this.cache.replace(fresh);
    await this.watch(String(BigInt(snap.header.revision) + 1n));
    this.online = true;
    const changed = [...this.pending];
    this.pending.clear();
    for (const k of changed) this.send(k);
  }

  private async watch(fromRevision: string): Promise<void> {
    const w = await this.client.watch().prefix(this.prefix).startRevision(fromRevision).create();
    this.watcher = w;
    w.on("put", (kv) => this.cache.set(kv.key.toString(), kv.value.toString()));
    w.on("delete", (kv) => this.cache.set(kv.key.toString(), null));
    // A broken stream or a compacted revision: resync from scratch rather than trust a gap.
    w.on("disconnected", (err) => this.goOffline(`the watch broke: ${messageOf(err)}`));
    w.on("error", (err) => this.goOffline(`the watch failed: ${messageOf(err)}`));
  }

  private goOffline(why: string): void {
    if (this.closed || this.recovering) return;
    this.online = false;
    this.log.warn({ etcd: this.where, why }, "lost etcd; serving from the local cache and reconnecting");
    const w = this.watcher;
    this.watcher = null;
    if (w) {
      w.removeAllListeners();
      w.on("error", () => undefined);
      void w.cancel().catch(() => undefined);
    }
    this.recovering = this.recover().finally(() => {
      this.recovering = null;
    });
  }

  private async recover(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!this.closed) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed) return;
      try {
        await this.establish();
        this.log.info(
          { etcd: this.where, resyncs: this.resyncs },
          "etcd is back; own records re-put, cache resynced",
        );
        return;
      } catch (err) {
        this.log.debug({ err: etcdReason(err) }, "etcd still unreachable");
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Whether etcd is reachable now (false: serving from the cache while reconnecting). */
  get connected(): boolean {
    return this.online;
  }

  persisted(): Promise<void> {
    return this.local.flush();
  }

  async flush(): Promise<void> {
    await this.local.flush();
    await this.chain;
  }

  /** Leaves the cluster cleanly: own records are kept on the lease until it expires. */
  async close(): Promise<void> {
    if (this.nodeTimer) {
      clearTimeout(this.nodeTimer);
      this.nodeTimer = null;
      this.putOwn(this.key("nodes", this.node.name), JSON.stringify(this.node));
    }
    await this.flush();
    this.closed = true;
    const w = this.watcher;
    this.watcher = null;
    if (w) {
      // An open watch stream keeps gRPC's connection (and the process) alive.
      w.removeAllListeners();
      w.on("error", () => undefined);
      await Promise.race([w.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    }
    this.lease?.removeAllListeners();
    // Stop the keep-alive without revoking: a restarted daemon takes its records over.
    this.lease?.release();
    this.client.close();
  }
}
