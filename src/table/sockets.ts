// This daemon's runtime view of the host sockets it made for apps, keyed by host address:
// what virtual address each bound socket stands for, and which app (and virtual
// destination) each outgoing connection came from. It is what lets getsockname,
// getpeername and accept show virtual addresses, and the server side of a connection see
// the client's virtual IP without any per-connection store write. Pure: no I/O.
//
// Both maps are bounded by the host's port space: a key is a host ip:port, and a new
// socket on the same host address replaces the old record.

import type { Proto } from "./types.js";

export interface VAddr {
  readonly ip: string;
  readonly port: number;
}

export interface Binding {
  readonly appId: string;
  readonly proto: Proto;
  /** Socket inode (st_ino), to tell whether the socket still exists. */
  readonly inode: number;
  /** The address as the app bound it: may be a wildcard (0.0.0.0 or ::) or 127.0.0.1/::1. */
  readonly vip: string;
  readonly vport: number;
  readonly hostIp: string;
  readonly hostPort: number;
  /** The socket's domain (AF_INET or AF_INET6). */
  readonly domain: number;
  readonly reusePort: boolean;
  readonly reuseAddr: boolean;
  /** Private to the app: bound to the app's loopback. */
  readonly loopback: boolean;
  /** An AF_INET6 socket with IPV6_V6ONLY: it serves only IPv6 virtual IPs. */
  readonly v6only: boolean;
  /** The host port is an --expose port (not from the pool). */
  readonly exposed: boolean;
  listening: boolean;
  serviceIds: string[];
  /** UDP: unmanaged peers this socket sent to, whose replies it admits (bounded). */
  egressPeers?: Set<string>;
}

const EGRESS_PEERS_MAX = 256;

/** Remembers that the socket bound at b sent to an unmanaged peer (oldest forgotten first). */
export function noteEgressPeer(b: Binding, ip: string, port: number): void {
  if (!b.egressPeers) b.egressPeers = new Set();
  const key = `${ip}|${port}`;
  b.egressPeers.delete(key);
  b.egressPeers.add(key);
  if (b.egressPeers.size > EGRESS_PEERS_MAX)
    b.egressPeers.delete(b.egressPeers.values().next().value as string);
}

export interface Source {
  readonly appId: string;
  /** The client's own virtual address (its virtual IP, the host port number). */
  readonly local: VAddr;
  /** What the client dialed: a virtual ip:port, or the real destination for egress. */
  readonly peer: VAddr;
  /**
   * The client socket's cookie (SO_COOKIE: unique while the host runs), which admission
   * compares with the socket the kernel finds at this address now; 0 when unknown.
   */
  readonly cookie: number;
  /** Its inode, where no cookie was known (a record rebuilt from /proc/net); else 0. */
  readonly inode?: number;
  /**
   * Earlier records of other sockets on the same host address that may still be
   * connected elsewhere (connect() shares a local port between destinations), newest first.
   */
  previous?: Source;
}

/** Earlier records kept behind a source (see Source.previous). */
const PREVIOUS_MAX = 3;

function hostKey(proto: Proto, ip: string, port: number): string {
  return `${proto}|${ip}|${port}`;
}

function portKey(b: Binding): string {
  return `${b.appId}|${b.proto}|${b.vport}`;
}

export class SocketRegistry {
  private readonly bindings = new Map<string, Binding>();
  private readonly sources = new Map<string, Source>();
  /** proto|virtual ip|port of a source → its host address (for UDP replies to clients). */
  private readonly byVirtual = new Map<string, VAddr>();
  private readonly byApp = new Map<string, Set<string>>();
  /** app|proto|virtual port → host keys of its bindings (bind looks there for conflicts). */
  private readonly byPort = new Map<string, Set<string>>();

  addBinding(b: Binding): void {
    const key = hostKey(b.proto, b.hostIp, b.hostPort);
    const previous = this.bindings.get(key);
    if (previous) {
      if (previous.appId !== b.appId) this.byApp.get(previous.appId)?.delete(key);
      this.unindexPort(previous, key);
    }
    this.bindings.set(key, b);
    const stale = this.sources.get(key); // a record of an earlier connection from this port
    if (stale) {
      this.unindexSource(b.proto, stale, key);
      this.sources.delete(key);
    }
    let keys = this.byApp.get(b.appId);
    if (!keys) {
      keys = new Set();
      this.byApp.set(b.appId, keys);
    }
    keys.add(key);
    const pk = portKey(b);
    let onPort = this.byPort.get(pk);
    if (!onPort) {
      onPort = new Set();
      this.byPort.set(pk, onPort);
    }
    onPort.add(key);
  }

  private unindexPort(b: Binding, key: string): void {
    const pk = portKey(b);
    const onPort = this.byPort.get(pk);
    onPort?.delete(key);
    if (onPort?.size === 0) this.byPort.delete(pk);
  }

  binding(proto: Proto, hostIp: string, hostPort: number): Binding | undefined {
    return this.bindings.get(hostKey(proto, hostIp, hostPort));
  }

  removeBinding(b: Binding): void {
    const key = hostKey(b.proto, b.hostIp, b.hostPort);
    if (this.bindings.get(key) !== b) return;
    this.bindings.delete(key);
    this.byApp.get(b.appId)?.delete(key);
    this.unindexPort(b, key);
  }

  /** The app's bindings on virtual port vport of proto. */
  bindingsOn(appId: string, proto: Proto, vport: number): Binding[] {
    const out: Binding[] = [];
    for (const key of this.byPort.get(`${appId}|${proto}|${vport}`) ?? []) {
      const b = this.bindings.get(key);
      if (b) out.push(b);
    }
    return out;
  }

  /** How many host addresses the app's sockets are bound to (its host ports). */
  countOf(appId: string): number {
    return this.byApp.get(appId)?.size ?? 0;
  }

  bindingsOf(appId: string): Binding[] {
    const out: Binding[] = [];
    for (const key of this.byApp.get(appId) ?? []) {
      const b = this.bindings.get(key);
      if (b) out.push(b);
    }
    return out;
  }

  allBindings(): Binding[] {
    return [...this.bindings.values()];
  }

  addSource(proto: Proto, hostIp: string, hostPort: number, s: Source): void {
    const key = hostKey(proto, hostIp, hostPort);
    const previous = this.sources.get(key);
    if (previous) {
      this.unindexSource(proto, previous, key);
      if (previous.cookie !== s.cookie || previous.cookie === 0) {
        s.previous = previous;
        let last: Source = s;
        for (let depth = 0; depth < PREVIOUS_MAX && last.previous; depth++) last = last.previous;
        last.previous = undefined;
      }
    }
    this.sources.set(key, s);
    this.byVirtual.set(hostKey(proto, s.local.ip, s.local.port), { ip: hostIp, port: hostPort });
  }

  source(proto: Proto, hostIp: string, hostPort: number): Source | undefined {
    return this.sources.get(hostKey(proto, hostIp, hostPort));
  }

  /**
   * Forgets record s at host ip:port (its socket is gone): the current record, or one of
   * the earlier ones behind it.
   */
  removeSource(proto: Proto, hostIp: string, hostPort: number, s: Source): void {
    const key = hostKey(proto, hostIp, hostPort);
    const current = this.sources.get(key);
    if (current === s) {
      this.unindexSource(proto, s, key);
      const next = s.previous;
      if (next) {
        this.sources.set(key, next);
        this.byVirtual.set(hostKey(proto, next.local.ip, next.local.port), { ip: hostIp, port: hostPort });
      } else this.sources.delete(key);
      return;
    }
    for (let r = current; r; r = r.previous) {
      if (r.previous === s) {
        r.previous = s.previous;
        return;
      }
    }
  }

  /**
   * The source of a datagram from host ip:port: the record of that address, or of the
   * wildcard address on the same port (an unbound UDP socket that the kernel autobound).
   */
  sourceOfDatagram(hostIp: string, hostPort: number): Source | undefined {
    return (
      this.sources.get(hostKey("udp", hostIp, hostPort)) ??
      this.sources.get(hostKey("udp", "0.0.0.0", hostPort)) ??
      this.sources.get(hostKey("udp", "::", hostPort))
    );
  }

  /** The host address of a client socket that an app sees as virtual ip:port (UDP replies). */
  hostOfSource(proto: Proto, ip: string, port: number): { host: VAddr; source: Source } | undefined {
    const host = this.byVirtual.get(hostKey(proto, ip, port));
    if (!host) return undefined;
    const source = this.sources.get(hostKey(proto, host.ip, host.port));
    return source ? { host, source } : undefined;
  }

  private unindexSource(proto: Proto, s: Source, key: string): void {
    const vkey = hostKey(proto, s.local.ip, s.local.port);
    const host = this.byVirtual.get(vkey);
    if (host && hostKey(proto, host.ip, host.port) === key) this.byVirtual.delete(vkey);
  }

  allSources(): Array<[string, Source]> {
    return [...this.sources.entries()];
  }

  /** Forgets everything of an app; returns its bindings. */
  removeApp(appId: string): Binding[] {
    const removed = this.bindingsOf(appId);
    for (const b of removed) this.removeBinding(b);
    this.byApp.delete(appId);
    for (const [key, s] of this.sources) {
      if (s.appId !== appId) continue;
      this.unindexSource(key.slice(0, key.indexOf("|")) as Proto, s, key);
      this.sources.delete(key);
    }
    return removed;
  }
}
