// The daemon's implementation of TrapHost: the shared state of this host (table, socket
// registry, port pool, store) and the writes that keep the table and the store in step.

import { networkInterfaces } from "node:os";
import type { Logger } from "pino";
import type { BpfDatapath } from "../bpf/datapath.js";
import type { SocketGuard } from "../bpf/guard.js";
import type { DaemonConfig } from "../core/config.js";
import { LogLimiter } from "../core/log-limit.js";
import type { Addon } from "../native/addon.js";
import { isLoopback, parseIp } from "../net/ip.js";
import { BlockPool, PortPool } from "../net/port-pool.js";
import { AF_INET, AF_INET6, encodeSockaddr } from "../net/sockaddr.js";
import type { Store } from "../store/store.js";
import { SocketRegistry } from "../table/sockets.js";
import { ServiceTable } from "../table/table.js";
import type { App, Service } from "../table/types.js";
import type { Resolver, TrapConfig, TrapHost, TrapKernel } from "../trap/host.js";
import type { AppSession } from "../trap/session.js";

export class Host implements TrapHost {
  /** Replaced (never mutated) when SIGHUP changes --egress. */
  config: TrapConfig;
  readonly table: ServiceTable;
  readonly sockets = new SocketRegistry();
  readonly pool: PortPool;
  readonly refusePort: number;
  /** Source-port blocks of apps' connections to other nodes (--client-ports). */
  readonly blocks: BlockPool;
  resolver: Resolver | null = null;
  readonly limited: LogLimiter;
  /**
   * The CONTINUE guard (bpf/guard.ts), set once it is attached and checked at start; null
   * when it is not (no BPF in this build or kernel, no cgroup v2, the bpf datapath runs):
   * trap/continue.ts then continues a multithreaded app's UNIX-socket calls with the window
   * open, or refuses them under --strict-unix-sockets.
   */
  guard: SocketGuard | null = null;
  /** The bpf datapath, when it is the one that runs. */
  bpf: BpfDatapath | null = null;
  /** Set by the ingress gateway: frees a port one of its proxies holds. */
  onProxyPort: ((port: number) => void) | null = null;
  /** Set by the app manager: the session of a running app. */
  sessions: ((appId: string) => AppSession | undefined) | null = null;
  private readonly local = new Set<string>();

  constructor(
    readonly addon: Addon,
    readonly daemonConfig: DaemonConfig,
    readonly store: Store,
    readonly log: Logger,
    /** What the kernel offers (daemon/kernel-probe.ts). */
    readonly kernel: TrapKernel,
  ) {
    this.config = {
      nodeIp: daemonConfig.nodeIp,
      nodeIp6: daemonConfig.nodeIp6,
      nodeName: daemonConfig.nodeName,
      egress: daemonConfig.egress,
      waitsPerApp: daemonConfig.limits.waitsPerApp,
      portsPerApp: daemonConfig.limits.portsPerApp,
      strictUnixSockets: daemonConfig.strictUnixSockets,
    };
    this.table = new ServiceTable(
      [daemonConfig.vipCidr],
      daemonConfig.lb,
      daemonConfig.preferLocal ? daemonConfig.nodeName : null,
    );
    this.pool = new PortPool(daemonConfig.ports);
    this.limited = new LogLimiter(log);
    this.refusePort = daemonConfig.ports.last;
    this.pool.claim(this.refusePort);
    this.holdRefusePort();
    this.blocks = new BlockPool(daemonConfig.clientPorts, daemonConfig.clientBlock);
    this.refreshLocalAddresses();
  }

  /**
   * Binds (without listening) a TCP socket of the daemon's to the refusal port on 127.0.0.1
   * and ::1, held for the daemon's life: a connect() there is refused (RST), and the kernel
   * never picks that port for an unbound client (it skips ports bound with bind(2) in
   * inet_hash_connect), which would make a connect refused through it a TCP self-connect.
   */
  private holdRefusePort(): void {
    const SOCK_STREAM = 1;
    const SOCK_CLOEXEC = 0o2000000;
    const buf = new Uint8Array(28);
    for (const [domain, ip] of [
      [AF_INET, "127.0.0.1"],
      [AF_INET6, "::1"],
    ] as const) {
      const fd = this.addon.socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      const addr = parseIp(ip);
      const r = addr ? this.addon.bind(fd, buf, encodeSockaddr(domain, addr, this.refusePort, buf)) : -1;
      if (r < 0) {
        this.addon.close(fd);
        this.log.debug({ ip, port: this.refusePort, errno: -r }, "refusal port not held");
      }
    }
  }

  /** Re-reads this host's addresses (they decide what counts as a connection to the host itself). */
  refreshLocalAddresses(): void {
    this.local.clear();
    this.local.add(this.config.nodeIp);
    if (this.config.nodeIp6) this.local.add(this.config.nodeIp6);
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) {
        const ip = parseIp(a.address.split("%")[0] as string);
        if (ip) this.local.add(ip.text);
      }
    }
  }

  markSocket(fd: number, app: App): number {
    if (this.bpf) return this.bpf.mark(fd, app);
    return this.guard ? this.guard.mark(fd) : 0;
  }

  /** This host's own addresses, as read at start. */
  localAddresses(): string[] {
    return [...this.local];
  }

  isLocalAddress(ip: string): boolean {
    return this.local.has(ip) || isLoopback(ip) || ip === "0.0.0.0" || ip === "::";
  }

  nodeIpOf(node: string): string | null {
    if (node === this.config.nodeName) return this.config.nodeIp;
    return this.table.getNode(node)?.ip ?? null;
  }

  sessionOf(appId: string): AppSession | undefined {
    return this.sessions?.(appId);
  }

  releaseProxyPort(port: number): void {
    this.onProxyPort?.(port);
  }

  registerService(svc: Service): void {
    this.table.putService(svc);
    this.store.putService(svc);
    this.log.info(
      {
        app: svc.appId,
        name: svc.name,
        proto: svc.proto,
        vip: `${svc.vip}:${svc.vport}`,
        host: `${svc.hostIp}:${svc.hostPort}`,
      },
      "service registered",
    );
  }

  withdrawService(id: string): void {
    const svc = this.table.removeService(id);
    if (!svc) return;
    this.store.deleteService(id);
    this.log.info({ app: svc.appId, proto: svc.proto, vip: `${svc.vip}:${svc.vport}` }, "service withdrawn");
  }
}
