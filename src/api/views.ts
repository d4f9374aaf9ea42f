// The JSON shapes of the REST API (and of `sockswitch get -o json`): stable field names,
// virtual addresses as "ip:port" strings, timestamps in ISO 8601. Documented in
// docs/api.md and docs/openapi.yaml; change them only by adding fields.

import { formatHostPort } from "../net/ip.js";
import type { KernelSocket } from "../net/proc-net.js";
import { exposeText } from "../table/app-spec.js";
import type { SocketRegistry } from "../table/sockets.js";
import type { ServiceTable } from "../table/table.js";
import type { App, NodeInfo, Service } from "../table/types.js";

export interface AppView {
  id: string;
  name: string;
  ips: string[];
  labels: Record<string, string>;
  expose: string[];
  lb: string | null;
  node: string;
  pid: number;
  command: string[];
  user: string | null;
  services: number;
  createdAt: string;
  /** The host ports its connections to other nodes come from ("first-last"), or null. */
  srcPorts: string | null;
  /** "running", or "exited" (a finished app, listed with `all=true`). */
  status: "running" | "exited";
  /** A finished app's exit status as a shell shows it (128+N for signal N); null: unknown or running. */
  exitCode: number | null;
  finishedAt: string | null;
  /** Started with `run -d`: the daemon started it and keeps its output. */
  detached: boolean;
  /** no, on-failure, always or unless-stopped. */
  restartPolicy: string;
  /** How often the daemon started it again. */
  restarts: number;
  /** The stack it belongs to (`sockswitch up`), or null. */
  stack: string | null;
}

/** What the daemon knows of an app's life beyond the table (daemon/app-history.ts). */
export interface AppLife {
  readonly status: "running" | "exited";
  readonly exitCode: number | null;
  readonly finishedAt: string | null;
  readonly detached: boolean;
  readonly restartPolicy: string;
  readonly restarts: number;
  readonly stack: string | null;
}

export const RUNNING: AppLife = {
  status: "running",
  exitCode: null,
  finishedAt: null,
  detached: false,
  restartPolicy: "no",
  restarts: 0,
  stack: null,
};

export interface NodeView {
  name: string;
  cluster: string;
  ip: string;
  ip6: string | null;
  roles: string[];
  apps: number;
  version: string;
  /** True for the node whose daemon answered. */
  self: boolean;
  startedAt: string;
}

export function nodeView(n: NodeInfo, self: string): NodeView {
  return {
    name: n.name,
    cluster: n.cluster,
    ip: n.ip,
    ip6: n.ip6,
    roles: [...n.roles],
    apps: n.apps,
    version: n.version,
    self: n.name === self,
    startedAt: n.startedAt,
  };
}

export interface ServiceView {
  id: string;
  app: string;
  name: string;
  proto: string;
  vip: string;
  port: number;
  address: string;
  host: string;
  labels: Record<string, string>;
  lb: string | null;
  node: string;
  exposed: boolean;
  createdAt: string;
}

export interface SocketView {
  app: string;
  proto: string;
  state: string;
  local: string;
  peer: string | null;
  hostLocal: string;
  hostPeer: string | null;
}

export function appView(app: App, table: ServiceTable, life: AppLife = RUNNING): AppView {
  return {
    id: app.id,
    name: app.name,
    ips: [...app.ips],
    labels: { ...app.labels },
    expose: app.expose.map(exposeText),
    lb: app.lb,
    node: app.node,
    pid: app.pid,
    command: [...app.command],
    user: app.user,
    services: table.servicesOfApp(app.id).length,
    createdAt: app.createdAt,
    srcPorts: app.srcPorts ? `${app.srcPorts.first}-${app.srcPorts.last}` : null,
    status: life.status,
    exitCode: life.exitCode,
    finishedAt: life.finishedAt,
    detached: life.detached,
    restartPolicy: life.restartPolicy,
    restarts: life.restarts,
    stack: life.stack,
  };
}

export function serviceView(s: Service): ServiceView {
  return {
    id: s.id,
    app: s.appId,
    name: s.name,
    proto: s.proto,
    vip: s.vip,
    port: s.vport,
    address: formatHostPort(s.vip, s.vport),
    host: formatHostPort(s.hostIp, s.hostPort),
    labels: { ...s.labels },
    lb: s.lb,
    node: s.node,
    exposed: s.exposed,
    createdAt: s.createdAt,
  };
}

/** The registry's sockets that the kernel still has, with the kernel's state. */
export function socketViews(reg: SocketRegistry, kernel: readonly KernelSocket[]): SocketView[] {
  const out: SocketView[] = [];
  const k = (proto: string, ip: string, port: number) => `${proto}|${ip}|${port}`;
  const byLocal = new Map<string, KernelSocket[]>();
  for (const ks of kernel) {
    const key = k(ks.proto, ks.localIp, ks.localPort);
    const list = byLocal.get(key);
    if (list) list.push(ks);
    else byLocal.set(key, [ks]);
  }
  for (const b of reg.allBindings()) {
    const live = byLocal.get(k(b.proto, b.hostIp, b.hostPort))?.find((ks) => ks.inode === b.inode);
    if (!live) continue;
    out.push({
      app: b.appId,
      proto: b.proto,
      state: live.state,
      local: formatHostPort(b.vip, b.vport),
      peer: null,
      hostLocal: formatHostPort(b.hostIp, b.hostPort),
      hostPeer: null,
    });
  }
  for (const [key, src] of reg.allSources()) {
    const [proto, ip, port] = key.split("|") as [string, string, string];
    for (const ks of byLocal.get(key) ?? []) {
      if (ks.state === "LISTEN" || ks.state === "TIME_WAIT") continue;
      out.push({
        app: src.appId,
        proto,
        state: ks.state,
        local: formatHostPort(src.local.ip, src.local.port),
        peer: formatHostPort(src.peer.ip, src.peer.port),
        hostLocal: formatHostPort(ip, Number(port)),
        hostPeer: formatHostPort(ks.remoteIp, ks.remotePort),
      });
    }
  }
  return out;
}
