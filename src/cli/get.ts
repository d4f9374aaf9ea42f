// `sockswitch get apps|services|sockets|nodes|proxies [-o table|json]`: the table over the REST API.

import { apiGet } from "../api/client.js";
import type { AppView, NodeView, ServiceView, SocketView } from "../api/views.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { ProxyView } from "../gateway/ingress.js";
import { age, labelsText, table } from "./format.js";

export const RESOURCES = ["apps", "services", "sockets", "nodes", "proxies"] as const;
type Resource = (typeof RESOURCES)[number];

const ALIASES: Record<string, Resource> = {
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

export async function get(socket: string, what: string, output: string): Promise<string> {
  const resource = ALIASES[what];
  if (!resource) {
    throw new InvalidArgumentError(`cannot get "${what}"; choose one of: ${RESOURCES.join(", ")}`);
  }
  if (output !== "table" && output !== "json") {
    throw new InvalidArgumentError(`-o "${output}" is not an output format; use table or json`);
  }
  const body = await apiGet<{ items: unknown[] }>(socket, `/v1/${resource}`);
  if (output === "json") return JSON.stringify(body, null, 2);
  if (body.items.length === 0) return `No ${resource} found.`;
  switch (resource) {
    case "apps":
      return table(
        ["ID", "NAME", "IPS", "LABELS", "PID", "SERVICES", "NODE", "AGE"],
        (body.items as AppView[]).map((a) => [
          a.id,
          a.name || "<none>",
          a.ips.join(","),
          labelsText(a.labels),
          String(a.pid),
          String(a.services),
          a.node,
          age(a.createdAt),
        ]),
      );
    case "services":
      return table(
        ["NAME", "APP", "PROTO", "ADDRESS", "HOST", "LABELS", "NODE", "AGE"],
        (body.items as ServiceView[]).map((s) => [
          s.name || "<none>",
          s.app,
          s.proto,
          s.address,
          s.exposed ? `${s.host} (exposed)` : s.host,
          labelsText(s.labels),
          s.node,
          age(s.createdAt),
        ]),
      );
    case "sockets":
      return table(
        ["APP", "PROTO", "STATE", "LOCAL", "PEER", "HOST-LOCAL", "HOST-PEER"],
        (body.items as SocketView[]).map((s) => [
          s.app,
          s.proto,
          s.state,
          s.local,
          s.peer ?? "-",
          s.hostLocal,
          s.hostPeer ?? "-",
        ]),
      );
    case "nodes":
      return table(
        ["NAME", "CLUSTER", "IP", "ROLES", "APPS", "AGE"],
        (body.items as NodeView[]).map((n) => [
          n.name,
          n.cluster || "<none>",
          n.ip6 ? `${n.ip},${n.ip6}` : n.ip,
          n.roles.join(","),
          String(n.apps),
          age(n.startedAt),
        ]),
      );
    case "proxies":
      return table(
        ["LISTEN", "TARGET", "BACKENDS", "ACTIVE", "TOTAL", "AGE"],
        (body.items as ProxyView[]).map((p) => [
          p.listen,
          p.target,
          p.backends.join(","),
          String(p.active),
          String(p.total),
          age(p.createdAt),
        ]),
      );
  }
}
