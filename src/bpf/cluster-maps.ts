// The bpf datapath's view of the other nodes of a cluster (native/bpf/datapath-cluster.h),
// kept in step with the service table's records of them (docs/cluster.md):
// - ssw_nodes: each other node's IP → its published client-port range: the pool ports of this
//   node admit a peer from there (the seccomp datapath's isRemoteManaged, trap/accept.ts);
// - ssw_remote: (node IP, each port of an app's source-port block) → that app's virtual
//   addresses: what a server here sees of its client (the seccomp datapath's remoteClient);
// - ssw_rclients: (that app's virtual IP, each port of its block, UDP) → its node IP and the
//   port, with its labels: where a reply to it goes (trap/route.ts, remoteReplyRoute);
// - ssw_bound: another node's UDP service by its host address → its virtual ip:port: what a
//   client here sees its replies come from, and (pool ports) whose datagrams are admitted.
// Entries are written when an app or node record arrives and removed with it; an app whose
// node's record has not arrived yet is written when it does.

import type { Logger } from "pino";
import type { Addon } from "../native/addon.js";
import { isLoopback, isUnspecified } from "../net/ip.js";
import type { TableChange } from "../table/table.js";
import type { App, NodeInfo } from "../table/types.js";
import type { TrapHost } from "../trap/host.js";
import {
  addr16,
  appValue,
  backendValue,
  boundValue,
  hostKey,
  type LabelBits,
  rangeValue,
  svcKey,
} from "./layout.js";

export class ClusterMaps {
  /** Other nodes' apps with a block: the keys written for each (to remove them with it). */
  private readonly written = new Map<string, { remote: Uint8Array[]; rclients: Uint8Array[] }>();
  /** Node name → its IP as written in ssw_nodes. */
  private readonly nodeIps = new Map<string, string>();

  private readonly fds: {
    readonly remote: number;
    readonly nodes: number;
    readonly rclients: number;
    readonly bound: number;
  };
  private readonly ownNode: string;

  /** mapFd: the fd of one of the programs' maps, by name. */
  constructor(
    private readonly addon: Addon,
    private readonly log: Logger,
    private readonly host: TrapHost,
    private readonly labels: LabelBits,
    mapFd: (name: string) => number,
  ) {
    this.fds = {
      remote: mapFd("ssw_remote"),
      nodes: mapFd("ssw_nodes"),
      rclients: mapFd("ssw_rclients"),
      bound: mapFd("ssw_bound"),
    };
    this.ownNode = host.config.nodeName;
  }

  private nodeIpOf(node: string): string | null {
    return this.host.nodeIpOf(node);
  }

  private put(fd: number, key: Uint8Array, value: Uint8Array): void {
    const r = this.addon.bpfMapUpdate(fd, key, value, 0);
    if (r < 0) this.log.error({ errno: -r }, "writing a bpf datapath cluster map failed");
  }

  /** A change of the service table: other nodes' apps and the nodes themselves. */
  tableChanged(c: TableChange): void {
    if (c.kind === "app") {
      if (c.op === "put") this.appChanged(c.app);
      else this.appRemoved(c.app);
    } else if (c.kind === "node") {
      if (c.op === "put") this.nodeChanged(c.node);
      else this.nodeRemoved(c.node);
    } else if (c.service.proto === "udp" && c.service.node !== this.ownNode) {
      const svc = c.service;
      const ip = isUnspecified(svc.hostIp) || isLoopback(svc.hostIp) ? this.nodeIpOf(svc.node) : svc.hostIp;
      if (ip === null) return;
      const k = hostKey(ip, svc.hostPort, 17);
      if (c.op === "remove") this.addon.bpfMapDelete(this.fds.bound, k);
      else this.put(this.fds.bound, k, boundValue(svc.vip, svc.vport));
    }
  }

  /** A node record put: its client-port range; then its apps that were waiting for its IP. */
  nodeChanged(node: NodeInfo): void {
    if (node.name === this.ownNode) return;
    const old = this.nodeIps.get(node.name);
    if (old !== undefined && old !== node.ip) this.addon.bpfMapDelete(this.fds.nodes, addr16(old));
    this.nodeIps.set(node.name, node.ip);
    if (node.clientPorts)
      this.put(this.fds.nodes, addr16(node.ip), rangeValue(node.clientPorts.first, node.clientPorts.last));
    else this.addon.bpfMapDelete(this.fds.nodes, addr16(node.ip));
    if (old !== node.ip)
      for (const app of this.host.table.listApps()) if (app.node === node.name) this.appChanged(app);
  }

  nodeRemoved(node: NodeInfo): void {
    if (node.name === this.ownNode) return;
    this.nodeIps.delete(node.name);
    this.addon.bpfMapDelete(this.fds.nodes, addr16(node.ip));
  }

  /** An app record put: another node's app with a block gets its entries (rewritten). */
  appChanged(app: App): void {
    this.appRemoved(app);
    const b = app.srcPorts;
    if (app.node === this.ownNode || !b || app.ips.length === 0) return;
    const nodeIp = this.nodeIpOf(app.node);
    if (nodeIp === null) return; // written when its node's record arrives
    const bits = this.labels.of(app.labels) ?? [0n, 0n, 0n, 0n];
    const identity = appValue(app.ips, bits);
    const keys = { remote: [] as Uint8Array[], rclients: [] as Uint8Array[] };
    for (let port = b.first; port <= b.last; port++) {
      const k = hostKey(nodeIp, port);
      this.put(this.fds.remote, k, identity);
      keys.remote.push(k);
      const reply = backendValue(nodeIp, port, bits, false);
      for (const ip of app.ips) {
        const rk = svcKey("udp", ip, port);
        this.put(this.fds.rclients, rk, reply);
        keys.rclients.push(rk);
      }
    }
    this.written.set(app.id, keys);
  }

  appRemoved(app: Pick<App, "id">): void {
    const keys = this.written.get(app.id);
    if (!keys) return;
    this.written.delete(app.id);
    for (const k of keys.remote) this.addon.bpfMapDelete(this.fds.remote, k);
    for (const k of keys.rclients) this.addon.bpfMapDelete(this.fds.rclients, k);
  }
}
