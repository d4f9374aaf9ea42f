// Continued calls on sockets that are not INET (UNIX, netlink): bind, connect and the sends
// are answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE, and the kernel runs them as the app
// made them, reading the app's memory and fd table again. Between the daemon's look at the fd
// and the kernel's run, another thread sharing the fd table could dup2() one of the app's
// INET sockets (host sockets) onto that fd number, and the kernel would then bind, connect
// or send it wherever the app points, past policy, --egress deny and pool-port rules
// (seccomp_unotify(2), "Design goals; use of SECCOMP_USER_NOTIF_FLAG_CONTINUE").
//
// Carrying these calls out in the daemon instead is no fix: the peer of a UNIX socket sees
// its connecting or sending task's credentials (SO_PEERCRED, SCM_CREDENTIALS), which would be
// the daemon's (root) and not the app's. So the kernel runs them, and what can be done is
// to make the window harmless or to refuse:
// - the kernel guard holds: BPF programs refuse bind, connect and sends on the daemon's app
//   sockets from any task but the daemon (host.guard, the kernel datapath's): continued;
// - the bpf datapath runs (host.bpf): the only call it traps and continues is a bind, and its
//   bind hooks refuse a bind of a socket the daemon made from any task but the daemon
//   (native/bpf/datapath.bpf.c, SSW_SK_TRAPPED): continued;
// - no other thread can change the fd table meanwhile: the calling thread's process has one
//   thread (a process that shares its fd table without being a thread, clone(CLONE_FILES),
//   is not detected: docs/security.md): continued;
// - otherwise (a multithreaded app, no guard): continued, the window documented in
//   docs/security.md and logged once per daemon, unless --strict-unix-sockets, which refuses
//   the call with EPERM (logged once per app). Refusing by default would stop MariaDB, Java
//   and most multithreaded programs that talk to a UNIX socket.
// Receives (recvfrom, recvmsg, recvmmsg without an address to translate) reach nothing and
// are continued as before; the daemon performs accept, listen, getsockname and getpeername
// itself for every family.

import { readFileSync } from "node:fs";
import { E } from "./addresses.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

const warned = new WeakSet<AppSession>();
let toldUnguarded = false;

/** Continues a call on a non-INET socket, or refuses it (EPERM) when that is not safe. */
export function continueOther(s: AppSession, n: Notification): void {
  if (s.host.guard?.available || s.host.bpf !== null || singleThreaded(n.pid)) return s.cont(n);
  if (!s.host.config.strictUnixSockets) {
    if (!toldUnguarded) {
      toldUnguarded = true;
      s.host.log.info(
        { app: s.app.id, pid: n.pid, nr: n.nr },
        "a UNIX-socket bind, connect or send of a multithreaded app continued without the kernel guard (BPF cgroup programs): another thread could swap an INET socket in meanwhile (docs/security.md); --strict-unix-sockets refuses such calls",
      );
    }
    return s.cont(n);
  }
  if (!warned.has(s)) {
    warned.add(s);
    s.host.log.warn(
      { app: s.app.id, pid: n.pid, nr: n.nr },
      "a UNIX-socket bind, connect or send from a multithreaded app refused (EPERM, --strict-unix-sockets): without the kernel guard (BPF cgroup programs) another thread could swap an INET socket in; see docs/security.md",
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
