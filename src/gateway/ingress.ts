// The ingress gateway: node-port style --expose across a cluster. An app started with
// `--expose APP_PORT:0.0.0.0:HOST_PORT` listens on HOST_PORT of its own node (bound by the
// trap, on the wildcard); every other node that has no such backend of its own opens a
// forwarding listener on 0.0.0.0:HOST_PORT here and splices each connection to a backend
// on another node (round-robin). `APP_PORT:NODE_IP:HOST_PORT` with another node's IP
// opens the listener only on that node, on NODE_IP. Listeners follow the service table:
// re-planned after every change of it (debounced), and closed before a local app binds
// the port itself.
//
// The splice is Node's own: net sockets piped both ways, non-blocking, half-close kept.

import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import type { Host } from "../daemon/host.js";
import { formatHostPort, isUnspecified } from "../net/ip.js";
import type { Service } from "../table/types.js";

const PLAN_DEBOUNCE_MS = 50;
const PLAN_INTERVAL_MS = 2000;
const CONNECT_TIMEOUT_MS = 5000;
/** A port that could not be listened on is tried again only after this long. */
const RETRY_MS = 30_000;

export interface ProxyView {
  /** The listener, host ip:port. */
  listen: string;
  /** The app's name (or id) and port it forwards to. */
  target: string;
  /** Backends' host ip:port on other nodes. */
  backends: string[];
  /** Connections open now, and since the listener opened. */
  active: number;
  total: number;
  createdAt: string;
}

interface Proxy {
  readonly ip: string;
  readonly port: number;
  readonly server: Server;
  target: string;
  backends: Backend[];
  next: number;
  active: number;
  total: number;
  readonly createdAt: string;
  readonly conns: Set<Socket>;
}

/** A backend's host address on another node. */
interface Backend {
  readonly ip: string;
  readonly port: number;
}

export class Ingress {
  private readonly proxies = new Map<number, Proxy>();
  /** Ports whose listen failed, and when. */
  private readonly failed = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly interval: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly host: Host,
    private readonly log: Logger,
  ) {
    host.onProxyPort = (port) => this.release(port);
    this.interval = setInterval(() => this.plan(), PLAN_INTERVAL_MS);
    this.interval.unref();
  }

  /** Re-plans soon (after a burst of table changes). */
  schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.plan();
    }, PLAN_DEBOUNCE_MS);
  }

  /** The listeners this node should have: host port → (listen ip, target, backends). */
  private desired(): Map<number, { ip: string; target: string; backends: Backend[] }> {
    const { table, config } = this.host;
    const out = new Map<number, { ip: string; target: string; backends: Backend[] }>();
    const localPorts = new Set(
      this.host.sockets
        .allBindings()
        .filter((b) => b.exposed)
        .map((b) => b.hostPort),
    );
    for (const app of table.listApps()) {
      if (app.node === config.nodeName) continue;
      for (const rule of app.expose) {
        const ip = rule.hostIp;
        if (ip === null || !(isUnspecified(ip) || ip === config.nodeIp)) continue;
        if (localPorts.has(rule.hostPort)) continue;
        const backends = table
          .servicesOfApp(app.id)
          .filter((s) => s.proto === "tcp" && s.exposed && s.hostPort === rule.hostPort)
          .map((s) => this.backendOf(s))
          .filter((b): b is Backend => b !== null);
        if (backends.length === 0) continue;
        const cur = out.get(rule.hostPort);
        if (cur) {
          for (const b of backends)
            if (!cur.backends.some((c) => c.ip === b.ip && c.port === b.port)) cur.backends.push(b);
        } else {
          out.set(rule.hostPort, {
            ip: isUnspecified(ip) ? "0.0.0.0" : ip,
            target: `${app.name || app.id}:${rule.appPort}`,
            backends,
          });
        }
      }
    }
    return out;
  }

  private backendOf(s: Service): Backend | null {
    const ip = isUnspecified(s.hostIp) ? this.host.nodeIpOf(s.node) : s.hostIp;
    return ip === null ? null : { ip, port: s.hostPort };
  }

  /** Opens, updates and closes listeners to match the table. */
  plan(): void {
    if (this.closed) return;
    const want = this.desired();
    for (const [port, p] of this.proxies) {
      const w = want.get(port);
      if (!w || w.ip !== p.ip) this.release(port);
    }
    for (const [port, w] of want) {
      const p = this.proxies.get(port);
      if (!p && Date.now() - (this.failed.get(port) ?? 0) < RETRY_MS) continue;
      if (p) {
        p.backends = w.backends;
        p.target = w.target;
      } else {
        this.open(port, w.ip, w.target, w.backends);
      }
    }
  }

  private open(port: number, ip: string, target: string, backends: Backend[]): void {
    const server = createServer({ allowHalfOpen: true }, (c) => this.forward(p, c));
    const p: Proxy = {
      ip,
      port,
      server,
      target,
      backends,
      next: 0,
      active: 0,
      total: 0,
      createdAt: new Date().toISOString(),
      conns: new Set(),
    };
    this.proxies.set(port, p);
    server.on("error", (err) => {
      this.failed.set(port, Date.now());
      this.log.warn(
        { listen: formatHostPort(ip, port), err: messageOf(err), retryInMs: RETRY_MS },
        "ingress listener failed",
      );
      if (this.proxies.get(port) === p) this.proxies.delete(port);
      server.close();
    });
    server.listen({ host: ip, port, exclusive: true }, () =>
      this.log.info(
        {
          listen: formatHostPort(ip, port),
          target,
          backends: backends.map((b) => formatHostPort(b.ip, b.port)),
        },
        "ingress proxy listening",
      ),
    );
  }

  private forward(p: Proxy, c: Socket): void {
    const backend = p.backends[p.next++ % p.backends.length];
    if (backend === undefined) {
      c.destroy();
      return;
    }
    const up = tcpConnect({
      host: backend.ip,
      port: backend.port,
      allowHalfOpen: true,
      timeout: CONNECT_TIMEOUT_MS,
    });
    p.active++;
    p.total++;
    p.conns.add(c);
    p.conns.add(up);
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      p.active--;
      p.conns.delete(c);
      p.conns.delete(up);
      c.destroy();
      up.destroy();
    };
    up.once("connect", () => up.setTimeout(0));
    up.once("timeout", end);
    c.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
    c.pipe(up);
    up.pipe(c);
  }

  /** Closes the listener on port (a local app is about to bind it, or it is not wanted). */
  release(port: number): void {
    const p = this.proxies.get(port);
    if (!p) return;
    this.proxies.delete(port);
    p.server.close(); // closes the listening socket now; open connections finish
    this.log.info({ listen: formatHostPort(p.ip, p.port) }, "ingress proxy closed");
  }

  list(): ProxyView[] {
    return [...this.proxies.values()].map((p) => ({
      listen: formatHostPort(p.ip, p.port),
      target: p.target,
      backends: p.backends.map((b) => formatHostPort(b.ip, b.port)),
      active: p.active,
      total: p.total,
      createdAt: p.createdAt,
    }));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.interval);
    for (const port of [...this.proxies.keys()]) this.release(port);
  }
}
