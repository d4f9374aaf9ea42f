// Connected UDP client sockets, by the virtual address they connect()ed to. A connected UDP
// socket is fixed to one host address, while what answers at its virtual destination can
// change (the server's socket made again, a backend added or gone): the kernel would reach
// whatever is there now, so the daemon re-routes these sockets when the service at their
// destination changes (trap/reroute.ts). Pure: no I/O.

import type { VAddr } from "./sockets.js";

export interface UdpClient {
  readonly appId: string;
  /** The socket's inode (st_ino), to find it among the app's fds. */
  readonly inode: number;
  /** AF_INET or AF_INET6. */
  readonly domain: number;
  /** Its host address (key). */
  readonly host: VAddr;
  /** Its own virtual address (what a connected server socket may be connected to). */
  readonly local: VAddr;
  /** The virtual address it connected to. */
  readonly dialed: VAddr;
  /** The host address it is connected to now. */
  target: VAddr;
}

/** Bounded by the host's port space: one record per host address. */
export class UdpClients {
  private readonly byHost = new Map<string, UdpClient>();
  private readonly byDest = new Map<string, Set<UdpClient>>();

  add(c: UdpClient): void {
    this.remove(c.host);
    this.byHost.set(key(c.host), c);
    const d = key(c.dialed);
    let set = this.byDest.get(d);
    if (!set) {
      set = new Set();
      this.byDest.set(d, set);
    }
    set.add(c);
  }

  remove(host: VAddr): void {
    const c = this.byHost.get(key(host));
    if (!c) return;
    this.byHost.delete(key(host));
    const d = key(c.dialed);
    const set = this.byDest.get(d);
    set?.delete(c);
    if (set?.size === 0) this.byDest.delete(d);
  }

  /** The connected client socket at host address `host`, if it is one. */
  at(host: VAddr): UdpClient | undefined {
    return this.byHost.get(key(host));
  }

  /** The clients connected to virtual ip:port. */
  connectedTo(ip: string, port: number): UdpClient[] {
    return [...(this.byDest.get(`${ip}|${port}`) ?? [])];
  }

  all(): UdpClient[] {
    return [...this.byHost.values()];
  }

  removeApp(appId: string): void {
    for (const c of this.all()) if (c.appId === appId) this.remove(c.host);
  }

  get size(): number {
    return this.byHost.size;
  }
}

function key(a: VAddr): string {
  return `${a.ip}|${a.port}`;
}
