// This daemon's runtime view of the host sockets it made for apps, keyed by host address:
// what virtual address each bound socket stands for, and which app (and virtual
// destination) each outgoing connection came from. It is what lets getsockname,
// getpeername and accept show virtual addresses, and the server side of a connection see
// the client's virtual IP without any per-connection store write. Pure: no I/O.
//
// Both maps are bounded by the host's port space: a key is a host ip:port, and a new
// socket on the same host address replaces the old record, except where several UDP
// sockets of one app on one virtual address share their host port (the bpf datapath: see
// addBinding), each with a record of its own.

import type { Binding, Source, VAddr } from "./socket-records.js";
import type { Proto } from "./types.js";
import { UdpClients } from "./udp-clients.js";

export { type Binding, noteEgressPeer, type Source, type VAddr } from "./socket-records.js";

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
  /** Host key → the binding there (the newest, where several share it). */
  private readonly bindings = new Map<string, Binding>();
  /** Host key → every binding there, oldest first, while two or more share it. */
  private readonly shared = new Map<string, Binding[]>();
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

  /**
   * Records binding b at its host address. share: b's socket joined the host port of
   * another socket of the same app there (several UDP sockets of one app on one virtual
   * address, SO_REUSEADDR/SO_REUSEPORT: the host's kernel then chooses among them as it
   * would among the virtual ones); both records stay. Otherwise b replaces what was there.
   */
  addBinding(b: Binding, share = false): void {
    const key = hostKey(b.proto, b.hostIp, b.hostPort);
    const previous = this.bindings.get(key);
    if (share && previous && previous.appId === b.appId) {
      const list = this.shared.get(key) ?? [previous];
      list.push(b);
      this.shared.set(key, list);
      this.bindings.set(key, b);
      return;
    }
    this.shared.delete(key);
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

  /** The binding at host ip:port (the newest of those that share it). */
  binding(proto: Proto, hostIp: string, hostPort: number): Binding | undefined {
    return this.bindings.get(hostKey(proto, hostIp, hostPort));
  }

  /** Every binding at b's host address but b (those that share its host port). */
  sharersOf(b: Binding): Binding[] {
    const list = this.shared.get(hostKey(b.proto, b.hostIp, b.hostPort));
    return list ? list.filter((x) => x !== b) : [];
  }

  /** Puts fresh in old's place (the same socket, its record corrected); false if old is gone. */
  replaceBinding(old: Binding, fresh: Binding): boolean {
    const key = hostKey(old.proto, old.hostIp, old.hostPort);
    if (hostKey(fresh.proto, fresh.hostIp, fresh.hostPort) !== key || !this.has(old)) return false;
    if (old.connectedTo) this.setConnected(old, null);
    const list = this.shared.get(key);
    if (list) list[list.indexOf(old)] = fresh;
    if (this.bindings.get(key) === old) this.bindings.set(key, fresh);
    if (fresh.connectedTo) this.setConnected(fresh, fresh.connectedTo);
    return true;
  }

  /** Whether b is (still) recorded. */
  has(b: Binding): boolean {
    const key = hostKey(b.proto, b.hostIp, b.hostPort);
    return this.bindings.get(key) === b || (this.shared.get(key)?.includes(b) ?? false);
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
    const list = this.shared.get(key);
    if (list?.includes(b)) {
      if (b.connectedTo) this.setConnected(b, null);
      const rest = list.filter((x) => x !== b);
      if (rest.length === 1) this.shared.delete(key);
      else this.shared.set(key, rest);
      this.bindings.set(key, rest[rest.length - 1] as Binding);
      return;
    }
    if (this.bindings.get(key) !== b) return;
    if (b.connectedTo) this.setConnected(b, null);
    this.bindings.delete(key);
    this.byApp.get(b.appId)?.delete(key);
    this.unindexPort(b, key);
  }

  /** The app's bindings on virtual port vport of proto. */
  bindingsOn(appId: string, proto: Proto, vport: number): Binding[] {
    const out: Binding[] = [];
    for (const key of this.byPort.get(`${appId}|${proto}|${vport}`) ?? []) this.pushAt(key, out);
    return out;
  }

  /** Appends the bindings at host key `key` to out. */
  private pushAt(key: string, out: Binding[]): void {
    const list = this.shared.get(key);
    if (list) out.push(...list);
    else {
      const b = this.bindings.get(key);
      if (b) out.push(b);
    }
  }

  /** How many host addresses the app's sockets are bound to (its host ports). */
  countOf(appId: string): number {
    return this.byApp.get(appId)?.size ?? 0;
  }

  bindingsOf(appId: string): Binding[] {
    const out: Binding[] = [];
    for (const key of this.byApp.get(appId) ?? []) this.pushAt(key, out);
    return out;
  }

  allBindings(): Binding[] {
    const out: Binding[] = [];
    for (const key of this.bindings.keys()) this.pushAt(key, out);
    return out;
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
