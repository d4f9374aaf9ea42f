// The daemon's UNIX socket (--socket): one path for both the REST API and the launcher's
// handshake. The addon owns the listening socket; each connection's first bytes decide:
// "SSW1" is a launcher (served here, because it passes fds with SCM_RIGHTS, which Node's
// net module cannot receive), anything else is handed to the HTTP server as a net.Socket.
// unix(7), SO_PEERCRED.

import { chmodSync, chownSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { SockswitchError } from "../core/errors.js";
import type { Addon } from "../native/addon.js";
import { READABLE } from "../trap/session.js";
import { LauncherConnection, type LaunchHandler } from "./launcher-protocol.js";

const EAGAIN = 11;
const MAGIC = "SSW1";

export interface SocketServerOptions {
  readonly path: string;
  /** Group that may use the socket (mode 0660); null keeps root's group. */
  readonly gid: number | null;
}

export class SocketServer {
  private fd = -1;
  private handle = 0;
  private readonly peek = new Uint8Array(4);
  private readonly pending = new Map<number, number>();
  private readonly launchers = new Set<LauncherConnection>();

  constructor(
    private readonly addon: Addon,
    private readonly http: Server,
    private readonly launch: LaunchHandler,
    private readonly log: Logger,
  ) {}

  listen(opts: SocketServerOptions): void {
    mkdirSync(dirname(opts.path), { recursive: true, mode: 0o755 });
    const fd = this.addon.unixListen(opts.path, 512, 0o660);
    if (fd < 0) {
      throw new SockswitchError(
        "SOCKSWITCH_ERR_SOCKET",
        `cannot listen on ${opts.path}: errno ${-fd}; is another daemon running, or is the directory not writable?`,
        500,
      );
    }
    if (opts.gid !== null) {
      chownSync(opts.path, 0, opts.gid);
      chmodSync(opts.path, 0o660);
    }
    this.fd = fd;
    this.handle = this.addon.watch(fd, READABLE, () => this.acceptAll());
  }

  private acceptAll(): void {
    for (;;) {
      const conn = this.addon.accept4(this.fd, 0o4000);
      if (conn === -EAGAIN) return;
      if (conn < 0) {
        this.log.warn({ errno: -conn }, "accept on the daemon socket failed");
        return;
      }
      const h = this.addon.watch(conn, READABLE, () => this.classify(conn));
      this.pending.set(conn, h);
    }
  }

  /** Reads (without consuming) the first bytes of a new connection to tell who it is. */
  private classify(conn: number): void {
    const h = this.pending.get(conn);
    if (h === undefined) return;
    const n = this.addon.recvPeek(conn, this.peek);
    if (n === -EAGAIN) return;
    if (n < MAGIC.length && n > 0 && Buffer.from(this.peek.subarray(0, n)).toString() === MAGIC.slice(0, n)) {
      return; // a launcher's first bytes, more to come
    }
    this.pending.delete(conn);
    this.addon.unwatch(h);
    if (n <= 0) {
      this.addon.close(conn);
      return;
    }
    if (Buffer.from(this.peek).toString() === MAGIC) {
      const lc = new LauncherConnection(this.addon, conn, this.launch, this.log, () =>
        this.launchers.delete(lc),
      );
      this.launchers.add(lc);
      lc.start();
      return;
    }
    const sock = new Socket({ fd: conn, readable: true, writable: true });
    this.http.emit("connection", sock);
  }

  close(): void {
    if (this.fd < 0) return;
    this.addon.unwatch(this.handle);
    this.addon.close(this.fd);
    this.fd = -1;
    for (const [conn, h] of this.pending) {
      this.addon.unwatch(h);
      this.addon.close(conn);
    }
    this.pending.clear();
    for (const lc of [...this.launchers]) lc.close();
  }
}
