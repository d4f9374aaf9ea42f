// The daemon's DNS: the embedded server (src/dns) answering for managed apps' names, and
// how apps reach it. An app's namespace has no interfaces, so the resolver has a
// well-known virtual IP (--dns-ip, by default the 53rd address of --vip-cidr: 10.77.0.53)
// that the trap routes like any other: connect/sendto to DNS_IP:53 reach the server on
// node-ip:pool-port, and replies read with recvfrom/getpeername come from DNS_IP:53. Apps
// learn the address from a resolv.conf the daemon writes next to its socket, which
// `sockswitch run` bind-mounts over /etc/resolv.conf in the app's own mount namespace.
//
// It serves managed apps only: a query is admitted when it comes from a host socket that
// is a managed app's now (the same check as pool ports, trap/admission.ts), anything else
// on the host or the network gets nothing. And an app sees only the names it may reach:
// a name resolves to the addresses of the apps of that name that share a label with the
// asking app (label policy, table/policy.ts); a name whose apps it may not reach does not
// exist for it (NXDOMAIN), as if no such app ran.

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { Logger } from "pino";
import { type DnsConfig, resolvConfPath } from "../core/config.js";
import { messageOf } from "../core/errors.js";
import type { Limits } from "../core/limits.js";
import { type DnsPeer, DnsServer, readResolvConf, type Upstream } from "../dns/index.js";
import { isLoopback, parseIp } from "../net/ip.js";
import { AF_INET, AF_INET6 } from "../net/sockaddr.js";
import { sharesLabel } from "../table/policy.js";
import type { Binding, VAddr } from "../table/sockets.js";
import { liveBinding, liveCookie, liveSource } from "../trap/admission.js";
import type { Resolver } from "../trap/host.js";
import type { Host } from "./host.js";

const LISTEN_TRIES = 8;

export class DaemonDns {
  private constructor(
    private readonly server: DnsServer,
    readonly resolver: Resolver,
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** Starts the server, or removes a stale resolv.conf and returns null when DNS is off. */
  static async start(
    host: Host,
    cfg: DnsConfig,
    limits: Limits,
    socket: string,
    log: Logger,
  ): Promise<DaemonDns | null> {
    const file = resolvConfPath(socket);
    if (!cfg.enabled) {
      rmSync(file, { force: true });
      return null;
    }
    const upstreams = (cfg.upstreams ?? readResolvConf()).filter((u) => u.host !== cfg.ip);
    if (upstreams.length === 0)
      log.warn("no upstream DNS servers (--dns-servers, /etc/resolv.conf): names outside the domain fail");
    const server = new DnsServer({
      domain: cfg.domain,
      upstreams,
      log,
      admit: (peer) => appOfPeer(host, peer),
      maxQueriesPerClient: limits.dnsQueriesPerApp,
      maxTcpPerClient: limits.dnsTcpPerApp,
      lookup: (name, client) => {
        const asker = client === null ? undefined : host.table.getApp(client);
        if (!asker) return undefined;
        const apps = host.table.appsWithName(name).filter((a) => sharesLabel(asker.labels, a.labels));
        if (apps.length === 0) return undefined;
        const v4: string[] = [];
        const v6: string[] = [];
        for (const app of apps) for (const ip of app.ips) (ip.includes(":") ? v6 : v4).push(ip);
        return { v4, v6 };
      },
    });
    const hostIp = host.config.nodeIp;
    // An address that is not this host's fails on every port: say so, not "no free port".
    if (
      !isLoopback(hostIp) &&
      !Object.values(networkInterfaces()).some((l) => l?.some((a) => a.address === hostIp))
    )
      throw new Error(`--node-ip ${hostIp} is not an address of this host; use one of its addresses`);
    let hostPort = 0;
    for (let i = 0; i < LISTEN_TRIES && hostPort === 0; i++) {
      const port = host.pool.tryTake();
      if (port === null) break;
      try {
        hostPort = await server.listen({ host: hostIp, port });
      } catch (err) {
        host.pool.release(port);
        log.debug({ port, err: messageOf(err) }, "DNS port busy; trying another");
      }
    }
    if (hostPort === 0) throw new Error(`cannot start the DNS server on ${hostIp}: no free port in --ports`);
    const resolver: Resolver = { ip: cfg.ip, hostIp, hostPort };
    for (const proto of ["udp", "tcp"] as const) host.sockets.addBinding(resolverBinding(resolver, proto));
    const dns = new DaemonDns(server, resolver, file, log);
    dns.writeResolvConf(cfg.domain);
    log.info(
      {
        dns: `${cfg.ip}:53`,
        host: `${hostIp}:${hostPort}`,
        domain: server.domain,
        upstreams: upstreams.length,
      },
      "DNS server ready",
    );
    return dns;
  }

  /** Rewritten in place: running apps bind-mount this file, and a mount pins its inode. */
  private writeResolvConf(domain: string): void {
    const search = [domain, ...hostSearchDomains().filter((d) => d !== domain)].join(" ");
    const text =
      "# Written by sockswitch daemon: its DNS server, reached through sockswitch itself.\n" +
      `nameserver ${this.resolver.ip}\nsearch ${search}\noptions ndots:1 timeout:2 attempts:2\n`;
    writeFileSync(this.file, text, { mode: 0o644 });
  }

  /** New upstreams (SIGHUP): the resolver's own address is never one of them. */
  setUpstreams(upstreams: readonly Upstream[]): void {
    this.server.setUpstreams(upstreams.filter((u) => u.host !== this.resolver.ip));
  }

  async close(): Promise<void> {
    rmSync(this.file, { force: true });
    await this.server.close().catch((err) => this.log.warn({ err: messageOf(err) }, "closing DNS"));
  }
}

/** The managed app whose host socket sends this query now, or null. */
function appOfPeer(host: Host, peer: DnsPeer): string | null {
  const ip = parseIp(peer.address);
  const localIp = parseIp(peer.localAddress);
  if (!ip || !localIp) return null;
  const from: VAddr = { ip: ip.text, port: peer.port };
  const local: VAddr = { ip: localIp.text, port: peer.localPort };
  // The bpf datapath: the socket the kernel finds at the peer's address now (its cookie), if
  // the programs saw it connect or send for an app.
  if (host.bpf) {
    const app = host.bpf.appOfCookie(liveCookie(host, peer.transport, from, local));
    if (app !== undefined) return app;
  }
  if (peer.transport === "udp") {
    const b = host.sockets.binding("udp", from.ip, from.port);
    if (b) return b.appId !== "" && liveBinding(host, b, local) === true ? b.appId : null;
  }
  return liveSource(host, peer.transport, from, local)?.appId ?? null;
}

/** The resolver as a bound socket, so replies and getpeername show DNS_IP:53. */
function resolverBinding(r: Resolver, proto: "udp" | "tcp"): Binding {
  return {
    appId: "",
    proto,
    inode: 0,
    vip: r.ip,
    vport: 53,
    hostIp: r.hostIp,
    hostPort: r.hostPort,
    domain: r.hostIp.includes(":") ? AF_INET6 : AF_INET,
    reusePort: false,
    reuseAddr: false,
    loopback: false,
    v6only: false,
    exposed: false,
    listening: true,
    serviceIds: [],
    shadowFd: -1,
    connectedTo: null,
  };
}

function hostSearchDomains(): string[] {
  try {
    const text = readFileSync("/etc/resolv.conf", "utf8");
    const out: string[] = [];
    for (const line of text.split("\n")) {
      const m = /^\s*(search|domain)\s+(.+)$/.exec(line);
      if (m?.[2]) out.splice(0, out.length, ...m[2].trim().split(/\s+/));
    }
    return out;
  } catch {
    return [];
  }
}
