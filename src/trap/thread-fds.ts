// How the daemon reaches the fd table of the thread that made a trapped call, on every
// kernel (pidfd_open(2), pidfd_getfd(2), kcmp(2), proc(5) /proc/TID/status).
//
// A notification names the calling thread (its tid). pidfd_getfd takes an fd from the file
// table of the task a pidfd refers to, and pidfd_open gives a pidfd for a thread that is not
// its process's main thread only with PIDFD_THREAD (Linux 6.9). So:
//
// - With PIDFD_THREAD: a pidfd per thread, cached by tid. A cached pidfd of a thread that has
//   exited answers ESRCH; its tid may name another thread by now, so it is opened again.
// - Without it: the pidfd of the thread's process (its thread-group leader, read once per tid
//   from /proc/TID/status), cached by process. That reaches the calling thread's fds only if
//   the thread shares the leader's file table, which threads do unless they were made by
//   clone() without CLONE_FILES or called unshare(CLONE_FILES) (or the leader has exited).
//   kcmp(KCMP_FILES) checks it on every call: one system call, and the only sound check,
//   since a tid may be reused by a thread of another process of the app, and a thread may
//   unshare its table at any time. A thread that does not share it is refused with
//   EOPNOTSUPP (there is no way to reach its table before 6.9), logged once per thread.
//
// Invariant: an fd is only ever taken from a file table that is the calling thread's own.

import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { KCMP_FILES, PIDFD_THREAD } from "../core/kernel-info.js";
import type { App } from "../table/types.js";
import type { TrapHost } from "./host.js";

const E = constants.errno;
/**
 * Pidfds cached per app (each is a descriptor of the daemon's, and the daemon's descriptors
 * are shared by every app: docs/security.md, promise 14); past this, the oldest goes (it is
 * opened again when needed).
 */
const MAX_PIDFDS = 32;
/** Thread ids (and their thread groups) remembered per app; past this, those lists start over. */
const MAX_TIDS = 1024;

/** The thread group (process) of a thread: Tgid in /proc/TID/status, or -ESRCH. */
export function threadGroupOf(tid: number): number {
  try {
    const m = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, "latin1"));
    return m ? Number(m[1]) : -E.ESRCH;
  } catch {
    return -E.ESRCH;
  }
}

export class ThreadFds {
  /** tid (with PIDFD_THREAD) or process id (without) → pidfd. */
  private readonly pidfds = new Map<number, number>();
  /** Without PIDFD_THREAD: tid → its thread group (process) id. */
  private readonly groups = new Map<number, number>();
  /** Threads already logged as refused. */
  private readonly refused = new Set<number>();
  /** Thread ids seen in notifications, to find the app's open fds in /proc. */
  readonly tids = new Set<number>();

  constructor(
    private readonly host: TrapHost,
    private readonly app: App,
  ) {}

  /**
   * A close-on-exec duplicate of fd in the file table of thread tid (the same open file), or
   * -errno: EBADF (no such fd), ESRCH (the thread is gone), EOPNOTSUPP (a thread this kernel
   * gives no way to reach; logged). The caller checks the notification is still valid after.
   */
  take(tid: number, fd: number): number {
    if (this.tids.size < MAX_TIDS) this.tids.add(tid);
    return this.host.kernel.pidfdThread ? this.takeFromThread(tid, fd) : this.takeFromLeader(tid, fd);
  }

  private takeFromThread(tid: number, fd: number): number {
    const a = this.host.addon;
    let pidfd = this.open(tid, true);
    if (pidfd < 0) return -E.ESRCH;
    let dup = a.pidfdGetfd(pidfd, fd);
    if (dup === -E.ESRCH) {
      // A cached pidfd of a thread that has exited; its tid now names another thread.
      this.forget(tid);
      pidfd = this.open(tid, true);
      if (pidfd < 0) return -E.ESRCH;
      dup = a.pidfdGetfd(pidfd, fd);
    }
    return dup;
  }

  private takeFromLeader(tid: number, fd: number): number {
    const a = this.host.addon;
    let group = this.groups.get(tid);
    let fresh = false;
    if (group === undefined) {
      group = this.groupOf(tid);
      if (group < 0) return group;
      fresh = true;
    }
    let shared = this.sharesFiles(group, tid);
    if (shared !== 0 && !fresh) {
      // The tid may now name a thread of another process: look it up again, once.
      group = this.groupOf(tid);
      if (group < 0) return group;
      shared = this.sharesFiles(group, tid);
    }
    if (shared === -E.ESRCH) return -E.ESRCH;
    if (shared !== 0) return this.refuse(tid, group, shared);
    let pidfd = this.open(group, false);
    if (pidfd < 0) return -E.ESRCH;
    let dup = a.pidfdGetfd(pidfd, fd);
    if (dup === -E.ESRCH) {
      // A cached pidfd of a process that has exited; its pid may name another one now.
      this.forget(group);
      pidfd = this.open(group, false);
      if (pidfd < 0) return -E.ESRCH;
      dup = a.pidfdGetfd(pidfd, fd);
    }
    return dup;
  }

  /** 0 when thread tid uses the file table of process group (or is its leader); else kcmp's answer. */
  private sharesFiles(group: number, tid: number): number {
    if (group === tid) return 0;
    if (!this.host.kernel.kcmp) return -E.ENOSYS;
    return this.host.addon.kcmp(group, tid, KCMP_FILES, 0, 0);
  }

  private groupOf(tid: number): number {
    const group = threadGroupOf(tid);
    if (group < 0) return group;
    if (this.groups.size >= MAX_TIDS) this.groups.clear();
    this.groups.set(tid, group);
    return group;
  }

  private refuse(tid: number, group: number, why: number): number {
    if (!this.refused.has(tid)) {
      if (this.refused.size >= MAX_TIDS) this.refused.clear();
      this.refused.add(tid);
      this.host.log.warn(
        { app: this.app.id, pid: group, tid, kcmp: why < 0 ? -why : why },
        why < 0
          ? "a socket call from a thread that is not its process's main thread refused with EOPNOTSUPP: this kernel has no PIDFD_THREAD (Linux 6.9), and kcmp(2), which checks that the thread shares its process's fds, failed"
          : "a socket call refused with EOPNOTSUPP: the thread has a file table of its own (clone without CLONE_FILES, unshare(CLONE_FILES), or its process's main thread has exited), which only PIDFD_THREAD (Linux 6.9) can reach",
      );
    }
    return -E.EOPNOTSUPP;
  }

  /** The cached pidfd of pid, or a new one: -errno when pid is gone. */
  private open(pid: number, thread: boolean): number {
    let fd = this.pidfds.get(pid);
    if (fd !== undefined) return fd;
    if (this.pidfds.size >= MAX_PIDFDS) this.dropOldest();
    // PIDFD_THREAD also takes a group leader (and then names that one thread).
    fd = this.host.addon.pidfdOpen(pid, thread ? PIDFD_THREAD : 0);
    if (fd >= 0) this.pidfds.set(pid, fd);
    return fd;
  }

  /** Makes room in the cache: the pidfd cached first goes (Map keeps insertion order). */
  private dropOldest(): void {
    for (const [pid, fd] of this.pidfds) {
      this.host.addon.close(fd);
      this.pidfds.delete(pid);
      return;
    }
  }

  private forget(pid: number): void {
    const fd = this.pidfds.get(pid);
    if (fd === undefined) return;
    this.host.addon.close(fd);
    this.pidfds.delete(pid);
  }

  /** Closes every cached pidfd. */
  close(): void {
    for (const fd of this.pidfds.values()) this.host.addon.close(fd);
    this.pidfds.clear();
  }
}
