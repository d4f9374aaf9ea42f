// One managed app as the trap side sees it: its seccomp listener, the pidfds of its threads,
// and the helpers every handler uses to fetch the app's fd, read and write its memory, and
// answer the trapped call (seccomp_unotify(2), pidfd_getfd(2), process_vm_readv(2)).
//
// Invariants: every notification received is answered exactly once (respond, fail or cont)
// unless it became invalid (the thread was interrupted or died); every fd the daemon takes
// from the app (a pidfd_getfd duplicate) is closed by the handler that took it, or by the
// waiter that inherits it, with closeShared: the app can make the daemon's close the last
// one of a lingering socket, and that close must not run on the event loop.

import { readdirSync, readlinkSync } from "node:fs";
import { constants } from "node:os";
import type { App } from "../table/types.js";
import type { TrapHost } from "./host.js";
import { mayWait, waitEnded } from "./limits.js";
import type { Notification } from "./notification.js";
import { ThreadFds } from "./thread-fds.js";

const E = constants.errno;
const statBuf = new Float64Array(3);

export const READABLE = 1;
export const WRITABLE = 2;
const DISCONNECT = 4;

interface Waiter {
  readonly notif: Notification;
  readonly fd: number;
  handle: number;
  timer: NodeJS.Timeout | null;
  /** Called when fd is ready; returns true when it answered the notification. */
  readonly onReady: () => boolean;
}

export class AppSession {
  readonly app: App;
  readonly listenerFd: number;
  readonly host: TrapHost;
  /** Scratch buffers for addresses and lengths; valid only until the handler's next wait. */
  readonly addrBuf = new Uint8Array(128);
  readonly outBuf = new Uint8Array(128);
  readonly lenBuf = new Uint8Array(4);
  /** The app's shadow network namespace (shadow.ts), made on its first bind; -1: none yet. */
  shadowNs = -1;
  /** The pidfds that reach the app's threads' fds (thread-fds.ts: every kernel). */
  private readonly fds: ThreadFds;
  private readonly waiters = new Set<Waiter>();
  private closed = false;
  private readonly closers: (() => void)[] = [];

  constructor(host: TrapHost, app: App, listenerFd: number) {
    this.host = host;
    this.app = app;
    this.listenerFd = listenerFd;
    this.fds = new ThreadFds(host, app);
    // Trapped calls are a ping-pong between the app's thread and the daemon: let the kernel
    // switch between them on one CPU (Linux 6.6; older kernels refuse, and it is only slower).
    host.addon.notifSyncWakeUp(listenerFd);
  }

  /** Runs fn at close(), before the listener is closed (whatever still uses it lets go). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- answers ----

  respond(n: Notification, val: number): void {
    const r = this.host.addon.notifRespond(this.listenerFd, n.idLo, n.idHi, val, 0, 0);
    if (r < 0 && r !== -E.ENOENT)
      this.host.log.warn({ app: this.app.id, errno: -r }, "answering a trapped call failed");
  }

  fail(n: Notification, errno: number): void {
    const r = this.host.addon.notifRespond(this.listenerFd, n.idLo, n.idHi, 0, errno, 0);
    if (r < 0 && r !== -E.ENOENT)
      this.host.log.warn({ app: this.app.id, errno: -r }, "answering a trapped call failed");
  }

  /** Lets the kernel run the call as the app made it (only for calls with nothing to translate). */
  cont(n: Notification): void {
    this.host.addon.notifRespond(this.listenerFd, n.idLo, n.idHi, 0, 0, 1);
  }

  /** Answers with a positive result or a negative errno, as the syscalls of the addon return. */
  settle(n: Notification, result: number): void {
    if (result < 0) this.fail(n, -result);
    else this.respond(n, result);
  }

  idValid(n: Notification): boolean {
    return this.host.addon.notifIdValid(this.listenerFd, n.idLo, n.idHi) === 1;
  }

  // ---- the app's fds and memory ----

  /** Processes (thread ids) of the app seen so far, its main process first. */
  pids(): number[] {
    return [this.app.pid, ...this.fds.tids];
  }

  /**
   * A duplicate of the app's fd (the same open file), or -errno (EOPNOTSUPP: a thread the
   * kernel gives no way to reach, see thread-fds.ts). The caller closes it. The
   * notification must be checked with idValid after this (the tid may have been reused).
   */
  takeFd(n: Notification, fd: number): number {
    if (fd < 0) return -E.EBADF;
    return this.fds.take(n.pid, fd);
  }

  /**
   * A duplicate of fd number `fd` of the app's process (or thread) pid, or -errno: for work
   * the daemon does outside a trapped call (re-routing a socket). The caller closes it and
   * checks that it is the socket it looked for (the number may have been reused).
   */
  takeProcessFd(pid: number, fd: number): number {
    return this.fds.take(pid, fd);
  }

  /**
   * A duplicate of the app's socket with inode `inode`, found among the fds of its processes
   * seen so far (/proc/PID/fd), or -1 when none holds it any more. The caller closes it.
   */
  findSocket(inode: number): number {
    const want = `socket:[${inode}]`;
    for (const pid of this.pids()) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        let link: string;
        try {
          link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        if (link !== want) continue;
        const dup = this.takeProcessFd(pid, Number(fd));
        if (dup < 0) continue;
        if (this.host.addon.fstat(dup, statBuf) === 0 && statBuf[1] === inode) return dup;
        this.host.addon.closeShared(dup);
      }
    }
    return -1;
  }

  /** Reads len bytes at ptr in the app into buf; -errno (EFAULT for a bad pointer). */
  read(n: Notification, ptr: number, buf: Uint8Array, len: number): number {
    if (len === 0) return 0;
    if (ptr === 0) return -E.EFAULT;
    const r = this.host.addon.readMem(n.pid, ptr, buf, len);
    if (r < 0) return r === -E.ESRCH ? r : -E.EFAULT;
    return r < len ? -E.EFAULT : r;
  }

  write(n: Notification, ptr: number, buf: Uint8Array, len: number): number {
    if (len === 0) return 0;
    if (ptr === 0) return -E.EFAULT;
    const r = this.host.addon.writeMem(n.pid, ptr, buf, len);
    if (r < 0) return r === -E.ESRCH ? r : -E.EFAULT;
    return r < len ? -E.EFAULT : r;
  }

  readU32(n: Notification, ptr: number): number {
    const r = this.read(n, ptr, this.lenBuf, 4);
    if (r < 0) return r;
    return new DataView(this.lenBuf.buffer).getUint32(0, true);
  }

  /**
   * Writes a sockaddr result the way the kernel does (accept, getsockname): at most *lenPtr
   * bytes of it, then its full length into *lenPtr. Returns 0 or -errno.
   */
  writeSockaddr(n: Notification, addrPtr: number, lenPtr: number, addr: Uint8Array, addrLen: number): number {
    const room = this.readU32(n, lenPtr);
    if (room < 0) return room;
    if ((room | 0) < 0) return -E.EINVAL;
    const w = this.write(n, addrPtr, addr, Math.min(room, addrLen));
    if (w < 0) return w;
    new DataView(this.lenBuf.buffer).setUint32(0, addrLen, true);
    return Math.min(0, this.write(n, lenPtr, this.lenBuf, 4));
  }

  // ---- waiting for a host socket without blocking the daemon ----

  /**
   * Waits for fd (a duplicate the waiter now owns) to become ready, then calls onReady until
   * it answers. A notification that becomes invalid meanwhile (the app was interrupted or
   * died) drops the wait and closes fd.
   */
  wait(
    n: Notification,
    fd: number,
    events: number,
    onReady: () => boolean,
    timeoutMs = 0,
    onTimeout: () => void = () => this.fail(n, E.EAGAIN),
  ): void {
    // Each wait holds fd in the daemon: bounded per app and for all (trap/limits.ts).
    if (!mayWait(this)) {
      this.host.addon.closeShared(fd);
      this.fail(n, E.ENOBUFS);
      return;
    }
    const w: Waiter = { notif: n, fd, handle: 0, timer: null, onReady };
    if (timeoutMs > 0) {
      // SO_RCVTIMEO/SO_SNDTIMEO of a blocking socket: the call gives up (EAGAIN by default).
      w.timer = setTimeout(() => {
        if (this.idValid(n)) onTimeout();
        this.endWait(w);
      }, timeoutMs);
    }
    w.handle = this.host.addon.watch(fd, events, (status) => {
      if (!this.idValid(n)) {
        this.endWait(w);
        return;
      }
      // libuv reports a socket error as a failed poll: let the waiter read it (SO_ERROR,
      // or the call's own error) and fall back to EIO only if it cannot answer.
      if (status < 0) {
        if (!w.onReady()) this.fail(n, E.EIO);
        this.endWait(w);
        return;
      }
      if (w.onReady()) this.endWait(w);
    });
    this.waiters.add(w);
    if (w.handle < 0) {
      // Not watchable (libuv's -errno): answer now rather than never.
      this.host.log.warn({ app: this.app.id, errno: -w.handle }, "cannot watch a socket for a blocked call");
      this.endWait(w);
      this.fail(n, -w.handle);
    }
  }

  private endWait(w: Waiter): void {
    if (!this.waiters.delete(w)) return;
    waitEnded();
    if (w.timer) clearTimeout(w.timer);
    this.host.addon.unwatch(w.handle);
    this.host.addon.closeShared(w.fd);
  }

  /** Drops waits whose notification is gone (the thread took a signal or exited). */
  sweepWaiters(): void {
    for (const w of this.waiters) if (!this.idValid(w.notif)) this.endWait(w);
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Releases every fd this session holds. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.waiters]) this.endWait(w);
    this.fds.close();
    if (this.shadowNs >= 0) this.host.addon.close(this.shadowNs);
    for (const fn of this.closers.splice(0)) fn();
    this.host.addon.close(this.listenerFd);
  }
}

export { DISCONNECT };
