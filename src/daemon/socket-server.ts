// The daemon's UNIX socket (--socket): one path for both the REST API and the launcher's
// handshake. The addon owns the listening socket; each connection's first bytes decide:
// "SSW1" is a launcher (served here, because it passes fds with SCM_RIGHTS, which Node's
// net module cannot receive), anything else is handed to the HTTP server as a net.Socket.
// A connection that has sent only part of the magic is not polled in a loop: its readable
// watch is paused and it is peeked at again every PREFIX_RECHECK_MS; it is closed when its
// peer shuts down (EPOLLRDHUP), and after PREFIX_WAIT_MS at the latest. One that sends
// nothing at all is closed after FIRST_BYTES_WAIT_MS, and at most MAX_PENDING wait to be
// classified at once. When the daemon is out of descriptors (EMFILE/ENFILE) accepting
// pauses for ACCEPT_BACKOFF_MS instead of spinning on a socket that stays readable, and
// says so once per interval. unix(7), SO_PEERCRED, epoll(7), accept(2).

import { chmodSync, chownSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { SockswitchError } from "../core/errors.js";
import { LogLimiter } from "../core/log-limit.js";
import type { Addon } from "../native/addon.js";
import { READABLE } from "../trap/session.js";
import { classifyFirstBytes, MAGIC } from "./first-bytes.js";
import { LauncherConnection, type LaunchHandler } from "./launcher-protocol.js";

const EAGAIN = 11;
const EMFILE = 24;
const ENFILE = 23;
/** The watcher's hang-up bit (EPOLLRDHUP): the peer shut down its side. */
const DISCONNECT = 4;
/** How long a connection may sit on a partial magic before it is closed. */
const PREFIX_WAIT_MS = 5_000;
/** How often a connection on a partial magic is looked at again. */
const PREFIX_RECHECK_MS = 20;
/** How long a new connection may send nothing before it is closed. */
const FIRST_BYTES_WAIT_MS = 10_000;
/** Connections not yet classified, at most; more are closed at once. */
const MAX_PENDING = 256;
/** How long accepting pauses when the daemon has no descriptor left. */
const ACCEPT_BACKOFF_MS = 200;

/** A connection not classified yet. */
interface PendingConn {
  readonly handle: number;
  /** When it was first seen on a partial magic (0: not yet). */
  partialSince: number;
  timer: NodeJS.Timeout | null;
  /** Closes the connection if it has not been classified in time. */
  readonly deadline: NodeJS.Timeout;
}

export interface SocketServerOptions {
  readonly path: string;
  /** Group that may use the socket (mode 0660); null keeps root's group. */
  readonly gid: number | null;
}

/** The peer of each HTTP connection handed to the API (SO_PEERCRED when it connected). */
const callers = new WeakMap<object, { pid: number; uid: number; gid: number }>();

/** Who is on the other end of an API connection of the daemon socket; null for any other. */
export function callerOf(socket: unknown): { pid: number; uid: number; gid: number } | null {
  return typeof socket === "object" && socket !== null ? (callers.get(socket) ?? null) : null;
}

export class SocketServer {
  /** The API's HTTP server: connections that are not launchers are handed to it. */
  http: Server | null = null;
  private fd = -1;
  private handle = 0;
  private readonly peek = new Uint8Array(MAGIC.length);
  private readonly pending = new Map<number, PendingConn>();
  private readonly launchers = new Set<LauncherConnection>();
  private readonly limited: LogLimiter;
  private backoff: NodeJS.Timeout | null = null;

  constructor(
    private readonly addon: Addon,
    private readonly launch: LaunchHandler,
    private readonly log: Logger,
  ) {
    this.limited = new LogLimiter(log);
  }

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

  /** Whether the socket is served (launchers can hand apps over). */
  get listening(): boolean {
    return this.fd >= 0;
  }

  private acceptAll(): void {
    for (;;) {
      const conn = this.addon.accept4(this.fd, 0o4000);
      if (conn === -EAGAIN) return;
      if (conn === -EMFILE || conn === -ENFILE) {
        // The connection stays queued; accepting again at once would spin.
        this.limited.warn(
          "accept|nofile",
          { errno: -conn },
          "the daemon is out of file descriptors; accepting on its socket pauses",
        );
        this.addon.rewatch(this.handle, 0);
        this.backoff ??= setTimeout(() => {
          this.backoff = null;
          if (this.fd >= 0) this.addon.rewatch(this.handle, READABLE);
        }, ACCEPT_BACKOFF_MS);
        return;
      }
      if (conn < 0) {
        this.log.warn({ errno: -conn }, "accept on the daemon socket failed");
        return;
      }
      if (this.pending.size >= MAX_PENDING) {
        this.limited.warn(
          "accept|pending",
          { limit: MAX_PENDING },
          "too many connections to the daemon socket that have not said who they are; closed",
        );
        this.addon.close(conn);
        continue;
      }
      const handle = this.addon.watch(conn, READABLE | DISCONNECT, (status, events) =>
        this.classify(conn, status < 0 || (events & DISCONNECT) !== 0),
      );
      if (handle < 0) {
        this.log.warn({ errno: -handle }, "cannot watch a connection on the daemon socket");
        this.addon.close(conn);
        continue;
      }
      const deadline = setTimeout(() => {
        const p = this.pending.get(conn);
        if (p) this.drop(conn, p);
      }, FIRST_BYTES_WAIT_MS);
      deadline.unref();
      this.pending.set(conn, { handle, partialSince: 0, timer: null, deadline });
    }
  }

  /** Reads (without consuming) the first bytes of a new connection to tell who it is. */
  private classify(conn: number, eof: boolean): void {
    const p = this.pending.get(conn);
    if (p === undefined) return;
    const n = this.addon.recvPeek(conn, this.peek);
    const who = classifyFirstBytes(this.peek, n, eof, EAGAIN);
    if (who === "wait") return;
    if (who === "partial") {
      const now = Date.now();
      if (p.partialSince === 0) p.partialSince = now;
      if (now - p.partialSince > PREFIX_WAIT_MS) return this.drop(conn, p);
      // The bytes stay readable until more arrive: pause the readable watch (keep the
      // hang-up one) and look again shortly, instead of waking up in a loop.
      this.addon.rewatch(p.handle, DISCONNECT);
      p.timer ??= setTimeout(() => {
        p.timer = null;
        if (this.pending.get(conn) === p) this.classify(conn, false);
      }, PREFIX_RECHECK_MS);
      return;
    }
    if (who === "gone") return this.drop(conn, p);
    this.forget(conn, p);
    if (who === "launcher") {
      const lc = new LauncherConnection(this.addon, conn, this.launch, this.log, () =>
        this.launchers.delete(lc),
      );
      this.launchers.add(lc);
      lc.start();
      return;
    }
    const cred = new Int32Array(3);
    const known = this.addon.peerCred(conn, cred) === 0;
    const sock = new Socket({ fd: conn, readable: true, writable: true });
    if (known) callers.set(sock, { pid: cred[0] as number, uid: cred[1] as number, gid: cred[2] as number });
    if (this.http) this.http.emit("connection", sock);
    else sock.destroy();
  }

  /** Stops watching a pending connection (its fd stays open). */
  private forget(conn: number, p: PendingConn): void {
    this.pending.delete(conn);
    if (p.timer) clearTimeout(p.timer);
    clearTimeout(p.deadline);
    this.addon.unwatch(p.handle);
  }

  private drop(conn: number, p: PendingConn): void {
    this.forget(conn, p);
    this.addon.close(conn);
  }

  close(): void {
    if (this.fd < 0) return;
    if (this.backoff) clearTimeout(this.backoff);
    this.addon.unwatch(this.handle);
    this.addon.close(this.fd);
    this.fd = -1;
    for (const [conn, p] of [...this.pending]) this.drop(conn, p);
    for (const lc of [...this.launchers]) lc.close();
  }
}
