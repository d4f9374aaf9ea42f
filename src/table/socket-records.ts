// The records of the socket registry (sockets.ts): what a bound host socket stands for
// (Binding) and where an app's outgoing connection came from (Source). Pure data.

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
  /** The shadow socket that holds the virtual address in the app's shadow namespace; -1: none. */
  shadowFd: number;
  /** UDP: the virtual peer the socket is connect()ed to (it then serves only that peer); null: none. */
  connectedTo: VAddr | null;
  /** UDP: unmanaged peers this socket sent to, whose replies it admits (bounded). */
  egressPeers?: Set<string>;
  /** The socket's cookie (SO_COOKIE), where the daemon read it (bpf datapath); else 0 or unset. */
  cookie?: number;
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
