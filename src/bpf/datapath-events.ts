// The bpf datapath's events (native/bpf/datapath.bpf.c, ring buffer ssw_events) turned into
// what the seccomp datapath does for the same calls: a TCP socket that listens or a UDP
// socket that is bound becomes a binding and its service (trap/binding.ts publish), and a
// connect or send the programs refused (label policy, --egress deny, a host pool port) gets
// the seccomp datapath's log line (trap/route.ts), which also makes it a denial event
// (daemon/event-bus.ts); a bound UDP socket that connected serves its peer only (its services
// are withdrawn, as trap/connect.ts does). The ring is read when its fd is readable, whole records only.

import type { Logger } from "pino";
import type { Addon } from "../native/addon.js";
import { isUnspecified } from "../net/ip.js";
import { SockDiag } from "../net/sock-diag.js";
import { AF_INET, AF_INET6 } from "../net/sockaddr.js";
import type { Binding } from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import { publish, unpublish } from "../trap/binding.js";
import type { TrapHost } from "../trap/host.js";
import {
  decodeEvent,
  EV_BIND,
  EV_BLOCK_FULL,
  EV_DENIED_EGRESS,
  EV_DENIED_PEER,
  EV_DENIED_POLICY,
  EV_DENIED_POOL,
  EV_LISTEN,
  EV_UDP_CONNECTED,
  EVENT_SIZE,
  SK_LOOPBACK,
} from "./layout.js";

const READABLE = 1;
const IPPROTO_UDP = 17;
const DENIED_PER_SECOND = 20;
const ZERO_KEY = new Uint8Array(4);

/** What the events need from the datapath: app ids by map index. */
export interface EventTarget {
  appIdOf(index: number): string | undefined;
}

export class DatapathEvents {
  private readonly buf = new Uint8Array(256 * 1024);
  private readonly diag: SockDiag;
  private ring = -1;
  private lostFd = -1;
  /** ssw_events_lost as last read. */
  private lost = 0n;
  private readonly lostValue = new Uint8Array(8);
  private watch = -1;
  private deniedSecond = 0;
  private deniedCount = 0;
  private deniedSuppressed = 0;
  /** Apps already warned that their source-port block is full (once each). */
  private readonly warnedFull = new Set<string>();

  constructor(
    private readonly addon: Addon,
    private readonly host: TrapHost,
    private readonly log: Logger,
    private readonly target: EventTarget,
  ) {
    this.diag = new SockDiag(addon);
  }

  /**
   * Maps the ring buffer (its map fd) and serves it from the event loop; lostFd is the map
   * counting the events the programs could not queue (ssw_events_lost), -1: none.
   */
  open(fd: number, lostFd: number): void {
    this.lostFd = lostFd;
    this.lost = this.readLost() ?? 0n; // counted before this daemon: its predecessor warned
    this.ring = this.addon.bpfRingOpen(fd);
    if (this.ring < 0) {
      this.log.error(
        { errno: -this.ring },
        "cannot map the bpf datapath's event ring: services will not register",
      );
      return;
    }
    this.watch = this.addon.watch(fd, READABLE, () => this.drain());
    this.drain();
  }

  close(): void {
    if (this.watch >= 0) this.addon.unwatch(this.watch);
    if (this.ring >= 0) this.addon.bpfRingClose(this.ring);
    this.watch = -1;
    this.ring = -1;
  }

  /** Serves every event the kernel has queued (also called before a trapped bind is carried out). */
  drain(): void {
    if (this.ring < 0) return;
    for (let read = false; ; read = true) {
      const n = this.addon.bpfRingRead(this.ring, this.buf);
      if (n <= 0) {
        if (read) this.checkLost();
        return;
      }
      for (let off = 0; off < n; ) {
        const len = new DataView(this.buf.buffer).getUint32(off, true);
        if (len >= EVENT_SIZE - 8) this.onEvent(off + 4);
        off += (4 + len + 7) & ~7;
      }
    }
  }

  /** The programs' count of lost events (ssw_events_lost), or null when it cannot be read. */
  private readLost(): bigint | null {
    if (this.lostFd < 0 || this.addon.bpfMapLookup(this.lostFd, ZERO_KEY, this.lostValue) < 0) return null;
    return new DataView(this.lostValue.buffer).getBigUint64(0, true);
  }

  /** After a drain: says so when the ring overflowed since the last look (never silently). */
  private checkLost(): void {
    const n = this.readLost();
    if (n === null || n <= this.lost) return;
    this.log.error(
      { lost: Number(n - this.lost), total: Number(n) },
      "the bpf datapath's event ring was full and events from the kernel were lost: a host-placed app's listen or UDP bind may be missing from the services (restart that app), and refusal log lines are missing",
    );
    this.lost = n;
  }

  private onEvent(off: number): void {
    const e = decodeEvent(this.buf, off);
    const appId = this.target.appIdOf(e.app);
    if (e.kind === EV_DENIED_POLICY || e.kind === EV_DENIED_EGRESS || e.kind === EV_DENIED_POOL) {
      // The same lines as the seccomp datapath's (trap/route.ts).
      const proto = e.flags === IPPROTO_UDP ? "udp" : "tcp";
      const dst = `${e.vip}:${e.vport}`;
      const app = appId ? this.host.table.getApp(appId) : undefined;
      if (e.kind === EV_DENIED_POLICY)
        this.log.warn({ app: appId, name: app?.name, dst, proto }, "connection denied by label policy");
      else if (e.kind === EV_DENIED_EGRESS)
        this.log.warn({ app: appId, dst, proto }, "egress denied (--egress deny)");
      else this.log.warn({ app: appId, dst }, "connection to a host pool port refused");
      return;
    }
    if (e.kind === EV_DENIED_PEER) {
      // trap/accept.ts's line (the kernel dropped the SYN or datagram: datapath-cluster.h), at
      // most DENIED_PER_SECOND a second (a peer's SYN retries and floods are events too).
      const now = Math.floor(Date.now() / 1000);
      if (now !== this.deniedSecond) {
        if (this.deniedSuppressed > 0)
          this.log.warn({ suppressed: this.deniedSuppressed }, "more unmanaged peers refused (not logged)");
        this.deniedSecond = now;
        this.deniedCount = 0;
        this.deniedSuppressed = 0;
      }
      if (++this.deniedCount > DENIED_PER_SECOND) {
        this.deniedSuppressed++;
        return;
      }
      this.log.warn(
        { app: appId, listener: `${e.vip}:${e.vport}`, peer: `${e.host}:${e.hostPort}` },
        "connection to a managed listener from an unmanaged peer refused",
      );
      return;
    }
    if (e.kind === EV_BLOCK_FULL) {
      // trap/source-block.ts's warning, once per app.
      const app = appId ? this.host.table.getApp(appId) : undefined;
      if (!appId || !app?.srcPorts || this.warnedFull.has(appId)) return;
      if (this.warnedFull.size >= 4096) this.warnedFull.clear();
      this.warnedFull.add(appId);
      this.log.warn(
        { app: appId, ports: `${app.srcPorts.first}-${app.srcPorts.last}` },
        "every port of the app's source-port block is taken (in use or TIME_WAIT): its connections to other nodes get EADDRNOTAVAIL; without IP_LOCAL_PORT_RANGE (Linux 6.3) each takes a port of its own; raise --client-block",
      );
      return;
    }
    if (e.kind === EV_UDP_CONNECTED) {
      // A bound UDP socket connected: it serves only its peer (as trap/connect.ts does it).
      // Of several sockets that share the host port, the one with the event's cookie.
      const at = this.host.sockets.binding("udp", e.host, e.hostPort);
      const all = at ? [at, ...this.host.sockets.sharersOf(at)] : [];
      const b = all.length === 1 ? at : all.find((x) => x.cookie === e.cookie);
      if (!b || b.appId !== appId || b.connectedTo !== null) return;
      unpublish(this.host, b);
      this.host.sockets.setConnected(b, { ip: e.vip, port: e.vport });
      return;
    }
    if (e.kind !== EV_BIND && e.kind !== EV_LISTEN) return;
    const s = appId ? this.host.sessionOf(appId) : undefined;
    if (!s) return;
    const proto: Proto = e.kind === EV_LISTEN ? "tcp" : "udp";
    const found = this.diag
      .listeningAndUdp()
      .find(
        (k) =>
          k.proto === proto && k.localPort === e.hostPort && (k.localIp === e.host || isUnspecified(e.host)),
      );
    const reg = this.host.sockets;
    if (reg.binding(proto, e.host, e.hostPort)) return;
    const b: Binding = {
      appId: s.app.id,
      proto,
      inode: found?.inode ?? 0,
      vip: e.vip,
      vport: e.vport,
      hostIp: e.host,
      hostPort: e.hostPort,
      domain: e.family === AF_INET6 ? AF_INET6 : AF_INET,
      reusePort: false,
      reuseAddr: false,
      loopback: (e.flags & SK_LOOPBACK) !== 0,
      v6only: false,
      exposed: false,
      listening: proto === "tcp",
      serviceIds: [],
      shadowFd: -1,
      connectedTo: null,
    };
    reg.addBinding(b);
    publish(s, b); // (with the app's private loopback entries: KernelHooks.served)
    this.log.debug(
      { app: b.appId, proto, vip: `${b.vip}:${b.vport}`, host: `${b.hostIp}:${b.hostPort}` },
      "bpf: socket bound",
    );
  }
}
