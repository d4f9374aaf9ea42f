// Reconciliation with the kernel's socket list: a managed listening (TCP) or bound (UDP)
// socket that the app closed while it keeps running is withdrawn — its services, its
// record and its pool port — within about a second. close() is not trapped (it is far too
// hot), so the daemon compares its records with the kernel's list of listening TCP and
// bound UDP sockets instead (sock_diag, filtered in the kernel), only while there are
// records to check.

import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import { type KernelSocket, kernelSockets, openSocketInodes } from "../net/proc-net.js";
import type { Binding } from "../table/sockets.js";
import { withdrawBinding } from "../trap/binding.js";
import type { Host } from "./host.js";

const INTERVAL_MS = 500;

/** By port and inode, not address: a UDP socket bound to a wildcard that connects gets a specific one. */
function key(proto: string, port: number, inode: number): string {
  return `${proto}|${port}|${inode}`;
}

export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly host: Host,
    private readonly log: Logger,
    private readonly read: () => Promise<KernelSocket[]> = kernelSockets,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Withdraws bound-only TCP bindings whose sockets their apps no longer hold; how many. */
  private boundOnlyGone(bindings: Binding[]): number {
    if (bindings.length === 0) return 0;
    const held = new Map<string, Set<number>>();
    let gone = 0;
    for (const b of bindings) {
      let inodes = held.get(b.appId);
      if (!inodes) {
        const s = this.host.sessionOf(b.appId);
        if (!s) continue;
        inodes = openSocketInodes(s.pids());
        held.set(b.appId, inodes);
      }
      if (inodes.has(b.inode) || !this.host.sockets.has(b)) continue;
      withdrawBinding(this.host, b);
      gone++;
    }
    return gone;
  }

  /** One pass; the records checked are those that existed before the kernel was read. */
  async tick(): Promise<number> {
    if (this.running) return 0;
    const checked = this.host.sockets.allBindings().filter((b) => b.appId !== "" && b.inode !== 0);
    if (checked.length === 0) return 0;
    this.running = true;
    try {
      const live = new Set<string>();
      const inodes = new Set<number>();
      for (const s of await this.read()) {
        live.add(key(s.proto, s.localPort, s.inode));
        inodes.add(s.inode);
      }
      let closed = 0;
      const boundOnly: Binding[] = [];
      for (const b of checked) {
        if (live.has(key(b.proto, b.hostPort, b.inode))) continue;
        // A TCP socket bound but not listening is in none of the kernel's lists (unless it
        // connected): look for it among its app's fds below.
        if (b.proto === "tcp" && !b.listening) {
          if (!inodes.has(b.inode)) boundOnly.push(b);
          continue;
        }
        // Still the same record (not replaced meanwhile)?
        if (!this.host.sockets.has(b)) continue;
        this.log.info(
          { app: b.appId, proto: b.proto, vip: `${b.vip}:${b.vport}`, host: `${b.hostIp}:${b.hostPort}` },
          "socket closed by the app; its services are withdrawn",
        );
        withdrawBinding(this.host, b);
        closed++;
      }
      return closed + this.boundOnlyGone(boundOnly);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, "reading the kernel's socket list failed");
      return 0;
    } finally {
      this.running = false;
    }
  }
}
