// `sockswitch describe app|service|node NAME`: one object in detail, kubectl-style
// ("Field:  value" lines, then what belongs to it: an app's services and sockets, a
// service's backends, a node's apps).

import { apiGet } from "../api/client.js";
import type { AppView, NodeView, ServiceView, SocketView } from "../api/views.js";
import { InvalidArgumentError, NotFoundError } from "../core/errors.js";
import { appStatus } from "./columns.js";
import { age, labelsText, publishText, table } from "./format.js";

type Items<T> = { items: T[] };

function fields(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(w)}${v}`).join("\n");
}

function section(title: string, head: string[], rows: string[][]): string {
  if (rows.length === 0) return `${title}:  <none>`;
  const t = table(head, rows)
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
  return `${title}:\n${t}`;
}

export async function describe(socket: string, kind: string, name: string): Promise<string> {
  switch (kind) {
    case "app":
    case "apps":
      return describeApp(socket, name);
    case "service":
    case "services":
    case "svc":
      return describeService(socket, name);
    case "node":
    case "nodes":
      return describeNode(socket, name);
    default:
      throw new InvalidArgumentError(`cannot describe "${kind}"; choose one of: app, service, node`);
  }
}

async function describeApp(socket: string, name: string): Promise<string> {
  const apps = (await apiGet<Items<AppView>>(socket, "/v1/apps?all=true")).items;
  const a =
    apps.find((x) => x.id === name) ??
    apps.find((x) => x.name === name && x.status === "running") ??
    apps.find((x) => x.name === name);
  if (!a) throw new NotFoundError(`no app "${name}"; see \`sockswitch get apps -a\``);
  const services = (await apiGet<Items<ServiceView>>(socket, "/v1/services")).items.filter(
    (s) => s.app === a.id,
  );
  const sockets =
    a.status === "running"
      ? (await apiGet<Items<SocketView>>(socket, "/v1/sockets")).items.filter((s) => s.app === a.id)
      : [];
  return [
    fields([
      ["Name", a.name || "<none>"],
      ["ID", a.id],
      ["Status", appStatus(a)],
      ["Node", a.node],
      ["IPs", a.ips.join(", ")],
      ["Labels", labelsText(a.labels)],
      ["Publish", a.expose.map(publishText).join(", ") || "<none>"],
      ["Load balancing", a.lb ?? "<daemon default>"],
      ["PID", a.status === "running" ? String(a.pid) : "-"],
      ["User", a.user ?? "<caller>"],
      ["Command", a.command.join(" ")],
      ["Detached", a.detached ? "yes (sockswitch logs shows its output)" : "no"],
      ["Restart policy", a.restartPolicy],
      ["Restarts", String(a.restarts)],
      ["Started", `${a.createdAt} (${age(a.createdAt)} ago)`],
      ["Finished", a.finishedAt ?? "-"],
      ["Exit code", a.exitCode === null ? "-" : String(a.exitCode)],
      ["Client ports", a.srcPorts ?? "-"],
    ]),
    section(
      "Services",
      ["PROTO", "ADDRESS", "HOST"],
      services.map((s) => [s.proto, s.address, s.exposed ? `${s.host} (exposed)` : s.host]),
    ),
    section(
      "Sockets",
      ["PROTO", "STATE", "LOCAL", "PEER", "HOST-LOCAL"],
      sockets.map((s) => [s.proto, s.state, s.local, s.peer ?? "-", s.hostLocal]),
    ),
  ].join("\n");
}

async function describeService(socket: string, name: string): Promise<string> {
  const all = (await apiGet<Items<ServiceView>>(socket, "/v1/services")).items;
  const s =
    all.find((x) => x.id === name) ?? all.find((x) => x.address === name) ?? all.find((x) => x.name === name);
  if (!s) throw new NotFoundError(`no service "${name}"; see \`sockswitch get services\``);
  const backends = all.filter((x) => x.proto === s.proto && x.address === s.address);
  return [
    fields([
      ["Address", s.address],
      ["Protocol", s.proto],
      ["Name", s.name || "<none>"],
      ["Labels", labelsText(s.labels)],
      ["Load balancing", s.lb ?? "<daemon default>"],
    ]),
    section(
      "Backends",
      ["APP", "NAME", "HOST", "NODE", "AGE"],
      backends.map((b) => [
        b.app,
        b.name || "<none>",
        b.exposed ? `${b.host} (exposed)` : b.host,
        b.node,
        age(b.createdAt),
      ]),
    ),
  ].join("\n");
}

async function describeNode(socket: string, name: string): Promise<string> {
  const n = (await apiGet<Items<NodeView>>(socket, "/v1/nodes")).items.find((x) => x.name === name);
  if (!n) throw new NotFoundError(`no node "${name}"; see \`sockswitch get nodes\``);
  const apps = (await apiGet<Items<AppView>>(socket, "/v1/apps")).items.filter((a) => a.node === n.name);
  return [
    fields([
      ["Name", n.name],
      ["Cluster", n.cluster || "<none>"],
      ["IP", n.ip6 ? `${n.ip}, ${n.ip6}` : n.ip],
      ["Roles", n.roles.join(", ")],
      ["Version", n.version],
      ["Started", `${n.startedAt} (${age(n.startedAt)} ago)`],
      ["This node", n.self ? "yes" : "no"],
    ]),
    section(
      "Apps",
      ["ID", "NAME", "IPS", "AGE"],
      apps.map((a) => [a.id, a.name || "<none>", a.ips.join(","), age(a.createdAt)]),
    ),
  ].join("\n");
}
