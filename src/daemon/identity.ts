// Who a launcher and its app are, from what the kernel reports in the daemon's own PID
// namespace, never from pids a launcher writes: a launcher may run in another PID
// namespace (a container's), where its pids mean nothing here.
//
//   - the launcher: SO_PEERCRED of its connection (the kernel translates the pid into the
//     reader's namespace);
//   - the app: a pidfd the launcher sends with SCM_RIGHTS; /proc/self/fdinfo/FD gives its
//     pid here (`Pid:`, 0 when the process is not visible from here, -1 once it exited);
//   - their relation and namespaces: /proc/PID/stat (parent), /proc/PID/status (`NSpid:`,
//     the pid in each namespace from here inward), /proc/PID/ns/pid.
//
// Every app must have a PID namespace of its own whose first process (pid 1) is its
// launcher: then no app can name another app's processes (issue: apps reach into each
// other), and the launcher's subtree is exactly the app's processes.
// proc(5), pidfd_open(2), pid_namespaces(7), unix(7) SO_PEERCRED.

import { readFileSync, readlinkSync } from "node:fs";
import { isOutOfDescriptors, outOfDescriptors } from "../trap/limits.js";

/** Start time of a process (clock ticks since boot, /proc/PID/stat field 22), or null. */
export function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

/** Parent pid of a process (0 when its parent is outside this namespace), or null. */
export function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

/** The PID namespace of a process (the link text of /proc/PID/ns/pid), or null. */
export function pidNamespace(pid: number | "self"): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** The pids of a process in each PID namespace from the daemon's inward (`NSpid:`), or null. */
export function nsPids(pid: number): number[] | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const line = /^NSpid:\s*(.*)$/m.exec(status);
    return line ? (line[1] as string).trim().split(/\s+/).map(Number) : null;
  } catch {
    return null;
  }
}

function fdLink(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/**
 * Whether fd (the daemon's own) is a seccomp user-notification listener: the anonymous
 * inode the kernel names "seccomp notify" (seccomp_unotify(2); proc(5), /proc/PID/fd).
 * A launcher must hand over nothing else: any other fd never reports the app's exit.
 */
export function isSeccompListener(fd: number): boolean {
  return fdLink(fd) === "anon_inode:seccomp notify";
}

/** Throws the sentence for a launcher that handed over something else than a listener. */
export function mustBeListener(fd: number): void {
  if (!isSeccompListener(fd))
    throw new Error("the fd handed over is not a seccomp notification listener; use the sockswitch launcher");
}

/**
 * The pid, in the daemon's PID namespace, of the process a pidfd (the daemon's own fd)
 * refers to: a positive pid; 0 when that process is not visible from the daemon's
 * namespace; -1 once it has exited. null when fd is not a pidfd (pidfd_open(2); proc(5),
 * /proc/PID/fdinfo).
 */
export function pidOfPidfd(fd: number): number | null {
  if (fdLink(fd) !== "anon_inode:[pidfd]") return null;
  try {
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    const m = /^Pid:\s*(-?\d+)$/m.exec(info);
    return m ? Number(m[1]) : null;
  } catch (err) {
    if (isOutOfDescriptors(err)) throw outOfDescriptors();
    return null;
  }
}

/**
 * Checks that process pid (a launcher) is the first process of a PID namespace that is
 * not the daemon's; throws a sentence otherwise.
 */
export function mustBeNamespaceInit(pid: number): void {
  const ns = nsPids(pid);
  const own = pidNamespace(pid);
  if (ns === null || own === null) throw new Error(`the launcher (process ${pid}) is gone`);
  if (ns.length < 2 || ns[ns.length - 1] !== 1 || own === pidNamespace("self"))
    throw new Error(
      `the launcher (process ${pid}) is not the first process of a PID namespace of the app's own; ` +
        "use the sockswitch-launch of this daemon's version",
    );
}

/**
 * The app's pid in the daemon's namespace, from the pidfd its launcher sent (the daemon's
 * fd), checked: a pidfd of a live process visible from here whose parent is the launcher
 * (launcherPid, from SO_PEERCRED), which is the first process of a PID namespace of its
 * own. The pidfd is read again after the checks, so that the pid was that process
 * throughout (a live process keeps its pid). Throws a sentence for the launcher.
 */
export function appOfLauncher(pidfd: number, launcherPid: number): number {
  const pid = pidOfPidfd(pidfd);
  if (pid === null) throw new Error("the second fd handed over is not a pidfd; use the sockswitch launcher");
  if (pid === -1) throw new Error("the app's process exited before it was handed over");
  if (pid === 0)
    throw new Error(
      "the app's process is not visible from the daemon's PID namespace; run the daemon in the host's (hostPID)",
    );
  if (parentPid(pid) !== launcherPid)
    throw new Error(`process ${pid} is not a child of the launcher ${launcherPid}`);
  mustBeNamespaceInit(launcherPid);
  if (pidOfPidfd(pidfd) !== pid) throw new Error("the app's process exited before it was handed over");
  return pid;
}
