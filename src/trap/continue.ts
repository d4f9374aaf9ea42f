// Continued calls on sockets that are not INET (UNIX, netlink): bind, connect and the sends
// are answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE, and the kernel runs them as the app
// made them, reading the app's memory and fd table again. Between the daemon's look at the fd
// and the kernel's run, another thread sharing the fd table could dup2() one of the app's
// INET sockets (host sockets) onto that fd number, and the kernel would then bind, connect
// or send it wherever the app points, past policy, --egress deny and pool-port rules
// (seccomp_unotify(2), "Design goals; use of SECCOMP_USER_NOTIF_FLAG_CONTINUE").
//
// A continue is therefore given only where that cannot happen or cannot matter:
// - the kernel guard holds: BPF programs refuse bind, connect and sends on the daemon's app
//   sockets from any task but the daemon (host.guard, the kernel datapath's);
// - or no other thread can change the fd table meanwhile: the calling thread's process has
//   one thread (a process that shares its fd table without being a thread, clone(CLONE_FILES),
//   is not detected: docs/security.md).
// Otherwise the call is refused with EPERM, and the app's first refusal is logged.
// Receives (recvfrom, recvmsg, recvmmsg without an address to translate) reach nothing and
// are continued as before; the daemon performs accept, listen, getsockname and getpeername
// itself for every family.

import { readFileSync } from "node:fs";
import { E } from "./addresses.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

const warned = new WeakSet<AppSession>();

/** Continues a call on a non-INET socket, or refuses it (EPERM) when that is not safe. */
export function continueOther(s: AppSession, n: Notification): void {
  if (s.host.guard?.available || singleThreaded(n.pid)) return s.cont(n);
  if (!warned.has(s)) {
    warned.add(s);
    s.host.log.warn(
      { app: s.app.id, pid: n.pid, nr: n.nr },
      "a UNIX-socket bind, connect or send from a multithreaded app refused (EPERM): without the kernel guard (BPF cgroup programs) another thread could swap an INET socket in; see docs/security.md",
    );
  }
  s.fail(n, E.EPERM);
}

/** True when thread tid's process has no other thread (/proc/TID/status). */
function singleThreaded(tid: number): boolean {
  try {
    return /^Threads:\s*1$/m.test(readFileSync(`/proc/${tid}/status`, "latin1"));
  } catch {
    return false;
  }
}
