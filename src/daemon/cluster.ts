// The daemon's side of the cluster: which store it runs on, this node's record, and the
// glue that mirrors other nodes' records (from the etcd store's watch) into the local
// service table — the cache that trapped calls read. This node's own apps and services
// are never taken from the store: the daemon is their authority.

import type { Logger } from "pino";
import type { DaemonConfig } from "../core/config.js";
import { VERSION } from "../core/version.js";
import { EmbeddedStore } from "../store/embedded.js";
import type { EtcdStore } from "../store/etcd.js";
import type { ClusterListener } from "../store/etcd-cache.js";
import type { Store } from "../store/store.js";
import type { NodeInfo } from "../table/types.js";
import type { Host } from "./host.js";

const COUNT_MS = 500;

export function selfNode(config: DaemonConfig): NodeInfo {
  return {
    name: config.nodeName,
    cluster: config.store.kind === "etcd" ? config.store.cluster : "",
    ip: config.nodeIp,
    ip6: config.nodeIp6,
    roles: [...config.roles],
    apps: 0,
    ...(config.store.kind === "etcd" ? { clientPorts: config.clientPorts } : {}),
    version: VERSION,
    startedAt: new Date().toISOString(),
  };
}

export async function createStore(config: DaemonConfig, log: Logger): Promise<Store> {
  const s = config.store;
  if (s.kind === "embedded") return new EmbeddedStore(config.stateDir, log, config.clean);
  // Loaded only for a cluster: the etcd client (gRPC) is most of the daemon's start-up time.
  const { EtcdStore } = await import("../store/etcd.js");
  return new EtcdStore(
    {
      endpoints: s.endpoints,
      tls: s.tls,
      cluster: s.cluster,
      ttl: s.ttl,
      stateDir: config.stateDir,
      clean: config.clean,
      node: selfNode(config),
    },
    log,
  );
}

/**
 * Feeds other nodes' records into the table and keeps this node's record (its app count)
 * current; onChange runs after every change (the ingress gateway re-plans). Returns a stop
 * function.
 */
export function joinCluster(
  host: Host,
  store: Store,
  appCount: () => number,
  onChange: () => void,
): () => void {
  const self = host.config.nodeName;
  if (store.kind !== "etcd") {
    const node = selfNode(host.daemonConfig);
    const timer = setInterval(() => host.table.putNode({ ...node, apps: appCount() }), COUNT_MS);
    timer.unref();
    host.table.putNode(node);
    return () => clearInterval(timer);
  }
  const etcd = store as EtcdStore;
  const table = host.table;
  const listener: ClusterListener = {
    app(id, app) {
      const cur = table.getApp(id);
      if (cur?.node === self || app?.node === self) return;
      if (app) table.putApp(app);
      else table.removeApp(id);
      onChange();
    },
    service(id, svc) {
      const cur = table.getService(id);
      if (cur?.node === self || svc?.node === self) return;
      if (svc) table.putService(svc);
      else table.removeService(id);
      onChange();
    },
    node(name, node) {
      if (name === self) return;
      if (node) {
        table.putNode(node);
      } else {
        table.removeNode(name);
        // Its records go with its lease; drop any the watch has not removed yet.
        for (const a of table.listApps()) if (a.node === name) table.removeApp(a.id);
        for (const s of table.listServices()) if (s.node === name) table.removeService(s.id);
        host.log.info({ node: name }, "node left the cluster");
      }
      onChange();
    },
  };
  table.putNode(etcd.nodeInfo);
  etcd.attach(listener);
  const timer = setInterval(() => {
    etcd.setAppCount(appCount());
    table.putNode(etcd.nodeInfo);
  }, COUNT_MS);
  timer.unref();
  return () => clearInterval(timer);
}
