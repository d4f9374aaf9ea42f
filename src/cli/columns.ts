// The columns `sockswitch get` shows for each resource, kubectl-style: `-o table` the
// usual ones, `-o wide` more. Each column reads one field of the API's JSON (api/views.ts).

import type { AppView, NodeView, ServiceView, SocketView } from "../api/views.js";
import type { ProxyView } from "../gateway/ingress.js";
import { age, labelsText, publishText } from "./format.js";

export const RESOURCES = ["apps", "services", "sockets", "nodes", "proxies"] as const;
export type Resource = (typeof RESOURCES)[number];

export const ALIASES: Record<string, Resource> = {
  app: "apps",
  apps: "apps",
  service: "services",
  services: "services",
  svc: "services",
  socket: "sockets",
  sockets: "sockets",
  node: "nodes",
  nodes: "nodes",
  proxy: "proxies",
  proxies: "proxies",
};

export interface Column<T> {
  readonly header: string;
  readonly value: (item: T) => string;
  /** Shown only with -o wide. */
  readonly wide?: boolean;
}

/** "Running", "Exited (0)", "Exited (137)", "Exited" (status unknown): like docker ps. */
export function appStatus(a: AppView): string {
  if (a.status === "running") return "Running";
  return a.exitCode === null ? "Exited" : `Exited (${a.exitCode})`;
}

const APP_COLUMNS: Column<AppView>[] = [
  { header: "ID", value: (a) => a.id },
  { header: "NAME", value: (a) => a.name || "<none>" },
  { header: "STATUS", value: appStatus },
  { header: "IPS", value: (a) => a.ips.join(",") },
  { header: "LABELS", value: (a) => labelsText(a.labels) },
  { header: "PID", value: (a) => (a.status === "running" ? String(a.pid) : "-") },
  { header: "SERVICES", value: (a) => String(a.services) },
  { header: "NODE", value: (a) => a.node },
  { header: "AGE", value: (a) => age(a.createdAt) },
  { header: "PUBLISH", value: (a) => a.expose.map(publishText).join(",") || "<none>", wide: true },
  { header: "DETACHED", value: (a) => (a.detached ? "yes" : "no"), wide: true },
  { header: "RESTARTS", value: (a) => String(a.restarts), wide: true },
  { header: "STACK", value: (a) => a.stack ?? "<none>", wide: true },
  { header: "COMMAND", value: (a) => a.command.join(" "), wide: true },
];

const SERVICE_COLUMNS: Column<ServiceView>[] = [
  { header: "NAME", value: (s) => s.name || "<none>" },
  { header: "APP", value: (s) => s.app },
  { header: "PROTO", value: (s) => s.proto },
  { header: "ADDRESS", value: (s) => s.address },
  { header: "HOST", value: (s) => (s.exposed ? `${s.host} (exposed)` : s.host) },
  { header: "LABELS", value: (s) => labelsText(s.labels) },
  { header: "NODE", value: (s) => s.node },
  { header: "AGE", value: (s) => age(s.createdAt) },
  { header: "LB", value: (s) => s.lb ?? "<default>", wide: true },
  { header: "ID", value: (s) => s.id, wide: true },
];

const SOCKET_COLUMNS: Column<SocketView>[] = [
  { header: "APP", value: (s) => s.app },
  { header: "PROTO", value: (s) => s.proto },
  { header: "STATE", value: (s) => s.state },
  { header: "LOCAL", value: (s) => s.local },
  { header: "PEER", value: (s) => s.peer ?? "-" },
  { header: "HOST-LOCAL", value: (s) => s.hostLocal },
  { header: "HOST-PEER", value: (s) => s.hostPeer ?? "-" },
];

const NODE_COLUMNS: Column<NodeView>[] = [
  { header: "NAME", value: (n) => n.name },
  { header: "CLUSTER", value: (n) => n.cluster || "<none>" },
  { header: "IP", value: (n) => (n.ip6 ? `${n.ip},${n.ip6}` : n.ip) },
  { header: "ROLES", value: (n) => n.roles.join(",") },
  { header: "APPS", value: (n) => String(n.apps) },
  { header: "AGE", value: (n) => age(n.startedAt) },
  { header: "VERSION", value: (n) => n.version, wide: true },
  { header: "SELF", value: (n) => (n.self ? "yes" : "no"), wide: true },
];

const PROXY_COLUMNS: Column<ProxyView>[] = [
  { header: "LISTEN", value: (p) => p.listen },
  { header: "TARGET", value: (p) => p.target },
  { header: "BACKENDS", value: (p) => p.backends.join(",") },
  { header: "ACTIVE", value: (p) => String(p.active) },
  { header: "TOTAL", value: (p) => String(p.total) },
  { header: "AGE", value: (p) => age(p.createdAt) },
];

export const COLUMNS: Record<Resource, Column<never>[]> = {
  apps: APP_COLUMNS as Column<never>[],
  services: SERVICE_COLUMNS as Column<never>[],
  sockets: SOCKET_COLUMNS as Column<never>[],
  nodes: NODE_COLUMNS as Column<never>[],
  proxies: PROXY_COLUMNS as Column<never>[],
};

/** What `get RESOURCE NAME` matches: ids and names. */
export function matchesName(resource: Resource, item: Record<string, unknown>, name: string): boolean {
  switch (resource) {
    case "apps":
    case "services":
      return item.id === name || item.name === name || (resource === "services" && item.address === name);
    case "nodes":
      return item.name === name;
    case "sockets":
      return item.app === name;
    case "proxies":
      return item.listen === name || item.target === name;
  }
}
