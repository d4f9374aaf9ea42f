// This daemon's runtime view of the host sockets it made for apps, keyed by host address:
// what virtual address each bound socket stands for, and which app (and virtual
// destination) each outgoing connection came from. It is what lets getsockname,
// getpeername and accept show virtual addresses, and the server side of a connection see
// the client's virtual IP without any per-connection store write. Pure: no I/O.
//
// Both maps are bounded by the host's port space: a key is a host ip:port, and a new
// socket on the same host address replaces the old record.

import type { Proto } from "./types.js";
import { UdpClients } from "./udp-clients.js";

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
  /** The shadow socket that holds the virtual address in the app's shadow namespace; -1: none. */
  shadowFd: number;
  /** UDP: the virtual peer the socket is connect()ed to (it then serves only that peer); null: none. */
  connectedTo: VAddr | null;
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
  /**
   * When the app exited (ms since the epoch): the record is retired. It still names what
   * its socket sent before it was gone and a server reads later (admission.ts), it routes
   * nothing (replies to it reach nobody, as the kernel's would), and it is forgotten
   * RETIRED_MS later (daemon/apps.ts). Unset while the app runs.
   */
  retiredAt?: number;
  /**
   * UDP: a time (µs since the epoch, CLOCK_REALTIME, the clock of the kernel's receive
   * timestamps) at or before which the socket took its host address, and one at or after
   * which it still held it (its last send through the daemon, or the last time the kernel
   * found it there). A datagram from that address that the kernel received between the two
   * came from this socket, even once it is gone (admission.ts). Unset: unknown.
   */
  heldSince?: number;
  heldUntil?: number;
}

/** Earlier records kept behind a source (see Source.previous). */
const PREVIOUS_MAX = 3;
/** How many host keys may hold the sender of a datagram (see datagramCandidate). */
export const DATAGRAM_CANDIDATES = 3;

function hostKey(proto: Proto, ip: string, port: number): string {
  return `${proto}|${ip}|${port}`;
}

function portKey(b: Binding): string {
  return `${b.appId}|${b.proto}|${b.vport}`;
}

export class SocketRegistry {
  /** Connected UDP client sockets, re-routed when their destination's service changes. */
  readonly udpClients = new UdpClients();
  private readonly bindings = new Map<string, Binding>();
  private readonly sources = new Map<string, Source>();
  /** proto|virtual ip|port of a source → its host address (for UDP replies to clients). */
  private readonly byVirtual = new Map<string, VAddr>();
  private readonly byApp = new Map<string, Set<string>>();
  /** app|proto|virtual port → host keys of its bindings (bind looks there for conflicts). */
  private readonly byPort = new Map<string, Set<string>>();
  /**
   * Host keys whose records (or earlier records behind them) are retired, with the time of
   * the newest retirement there (ms), oldest first: see removeApp and forgetRetired.
   */
  private readonly retired = new Map<string, number>();
  /** UDP bindings connect()ed to a peer, by virtual port|peer ip|peer port. */
  private readonly byConnectedPeer = new Map<string, Set<Binding>>();

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
      this.retired.delete(key);
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

  /**
   * The binding that receives what is sent to host address ip:port: one bound there, or a
   * dual-stack one bound to the host's wildcard `::` on that port.
   */
  bindingAt(proto: Proto, hostIp: string, hostPort: number): Binding | undefined {
    return (
      this.bindings.get(hostKey(proto, hostIp, hostPort)) ?? this.bindings.get(hostKey(proto, "::", hostPort))
    );
  }

  /** Marks a UDP binding connected to virtual peer (null: not connected any more). */
  setConnected(b: Binding, peer: VAddr | null): void {
    if (b.connectedTo) {
      const k = `${b.vport}|${b.connectedTo.ip}|${b.connectedTo.port}`;
      const set = this.byConnectedPeer.get(k);
      set?.delete(b);
      if (set?.size === 0) this.byConnectedPeer.delete(k);
    }
    b.connectedTo = peer;
    if (!peer) return;
    const k = `${b.vport}|${peer.ip}|${peer.port}`;
    let set = this.byConnectedPeer.get(k);
    if (!set) {
      set = new Set();
      this.byConnectedPeer.set(k, set);
    }
    set.add(b);
  }

  /**
   * A UDP binding for virtual ip:port that is connected to `from`: it gets from's datagrams
   * (the kernel's lookup prefers a connected socket). Wildcard bindings match any ip of
   * their app; the caller checks the family.
   */
  connectedTo(ip: string, port: number, from: VAddr): Binding | undefined {
    for (const b of this.byConnectedPeer.get(`${port}|${from.ip}|${from.port}`) ?? []) {
      if (b.vip === ip || b.vip === "0.0.0.0" || b.vip === "::") return b;
    }
    return undefined;
  }

  removeBinding(b: Binding): void {
    const key = hostKey(b.proto, b.hostIp, b.hostPort);
    if (this.bindings.get(key) !== b) return;
    if (b.connectedTo) this.setConnected(b, null);
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
      } else {
        // The same socket again (a UDP socket is recorded at each send): it has held the
        // address since its first record.
        s.previous = previous.previous;
        if (previous.heldSince !== undefined) s.heldSince = previous.heldSince;
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
    // A record of an exited app yields to a live one: the port may have been taken again
    // since (a specific address and the wildcard of one port cannot both be held by live
    // sockets without SO_REUSEADDR, so the live one is the sender).
    let retired: Source | undefined;
    for (let i = 0; i < DATAGRAM_CANDIDATES; i++) {
      const found = this.datagramCandidate(hostIp, hostPort, i);
      if (!found) continue;
      if (found.retiredAt === undefined) return found;
      retired ??= found;
    }
    return retired;
  }

  /**
   * The records that may have sent a datagram from host ip:port, candidate i of
   * DATAGRAM_CANDIDATES (each with the earlier records behind it): 0 the socket at that
   * exact address, 1 one bound to the IPv4 wildcard, 2 one bound to `::` (from an IPv6
   * address only an AF_INET6 socket can have sent it). No allocation but the key.
   */
  datagramCandidate(hostIp: string, hostPort: number, i: number): Source | undefined {
    if (i === 0) return this.sources.get(hostKey("udp", hostIp, hostPort));
    if (i === 1)
      return hostIp.includes(":") ? undefined : this.sources.get(hostKey("udp", "0.0.0.0", hostPort));
    return this.sources.get(hostKey("udp", "::", hostPort));
  }

  /**
   * The host address of a client socket that an app sees as virtual ip:port (UDP replies).
   * Not a retired record's: its app is gone, and its host port may be anyone's by now.
   */
  hostOfSource(proto: Proto, ip: string, port: number): { host: VAddr; source: Source } | undefined {
    const host = this.byVirtual.get(hostKey(proto, ip, port));
    if (!host) return undefined;
    const source = this.sources.get(hostKey(proto, host.ip, host.port));
    return source && source.retiredAt === undefined ? { host, source } : undefined;
  }

  private unindexSource(proto: Proto, s: Source, key: string): void {
    const vkey = hostKey(proto, s.local.ip, s.local.port);
    const host = this.byVirtual.get(vkey);
    if (host && hostKey(proto, host.ip, host.port) === key) this.byVirtual.delete(vkey);
  }

  allSources(): Array<[string, Source]> {
    return [...this.sources.entries()];
  }

  /**
   * Forgets an app's bindings (its sockets are gone: it exited); returns them. Its client
   * records stay, retired at `now` (ms), so that what its sockets sent before the exit and is
   * still queued at a server (datagrams, a connection not yet accepted) is still known as
   * its: the kernel delivers that traffic too (admission.ts decides what a retired record
   * may still name). forgetRetired drops them later.
   */
  removeApp(appId: string, now: number): Binding[] {
    this.udpClients.removeApp(appId);
    const removed = this.bindingsOf(appId);
    for (const b of removed) this.removeBinding(b);
    this.byApp.delete(appId);
    for (const [key, first] of this.sources) {
      for (let r: Source | undefined = first; r; r = r.previous) {
        if (r.appId !== appId || r.retiredAt !== undefined) continue;
        r.retiredAt = now;
        // Moved to the end: the map stays ordered by time (now never goes back).
        this.retired.delete(key);
        this.retired.set(key, now);
      }
    }
    return removed;
  }

  /**
   * Drops the client records retired before `before` (ms); returns how many. Only the keys
   * whose newest retirement is that old are visited (the map is in time order): each sweep
   * costs what it drops, not what is still kept.
   */
  forgetRetired(before: number): number {
    let n = 0;
    for (const [key, at] of this.retired) {
      if (at >= before) break;
      const [proto, ip, port] = key.split("|") as [Proto, string, string];
      for (let r = this.sources.get(key); r; r = r.previous) {
        if (r.retiredAt === undefined) continue;
        this.removeSource(proto, ip, Number(port), r);
        n++;
      }
      this.retired.delete(key);
    }
    return n;
  }

  get retiredCount(): number {
    return this.retired.size;
  }
}
