// socket(2) for AF_INET/AF_INET6 (the filter traps no other family, and refuses every
// family but these and AF_UNIX/AF_NETLINK itself): the daemon makes a socket of the same
// domain, type, protocol and flags in the host network namespace and installs it in the
// app with SECCOMP_IOCTL_NOTIF_ADDFD + ADDFD_FLAG_SEND, which is also the call's return
// value. Raw and ICMP sockets are refused. Each socket is marked for the CONTINUE guard
// (bpf/guard.ts), or stamped with the app for the bpf datapath, before the app can see it; a
// socket that cannot be marked is not handed out (the errno of the failed mark). The socket
// is made on the call's path: making each app's next one ahead, after the answer, changed
// nothing measurable (bpf datapath, crr, 10 alternated runs against two daemons: 0.998×).

import { AF_INET, AF_INET6 } from "../net/sockaddr.js";
import { E, O_CLOEXEC, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM } from "./addresses.js";
import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

const ESOCKTNOSUPPORT = 94; // not in os.constants.errno
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_MAX = 263;
const SOCK_NONBLOCK = 0o4000;
const SOCK_PACKET = 10;
const SOCK_MAX = 11;

export function handleSocket(s: AppSession, n: Notification): void {
  const domain = n.int(0);
  const type = n.int(1);
  const protocol = n.int(2);
  const kind = type & 0xf;
  const refuse = (errno: number, why: string): void => {
    s.host.log.warn({ app: s.app.id, pid: n.pid, domain, type: kind, protocol }, `socket refused: ${why}`);
    s.fail(n, errno);
  };
  // Not sent by the filter; refused as it refuses them, should the two ever disagree.
  if (domain !== AF_INET && domain !== AF_INET6) return refuse(E.EAFNOSUPPORT, "address family not allowed");
  // What the kernel checks before the protocol's own code, in its order (net/socket.c,
  // inet_create/inet6_create), so that a bad call gets the kernel's errno, not a refusal's.
  if ((type & ~(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0 || kind >= SOCK_MAX) return s.fail(n, E.EINVAL);
  // SOCK_PACKET in an inet family is the kernel's old spelling of AF_PACKET (refused by the filter).
  if (kind === SOCK_PACKET) return refuse(E.EAFNOSUPPORT, "packet sockets are not switched");
  if (protocol < 0 || protocol >= IPPROTO_MAX) return s.fail(n, E.EINVAL);
  const ping = domain === AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  // A raw socket needs a protocol (inetsw's raw entry is a wildcard that protocol 0 does not match).
  if (kind === SOCK_RAW && protocol === 0) return s.fail(n, E.EPROTONOSUPPORT);
  if (kind === SOCK_RAW) return refuse(E.EPERM, "raw sockets are not switched");
  if (kind === SOCK_DGRAM && protocol === ping) return refuse(E.EACCES, "ICMP sockets are not switched");
  if (kind !== SOCK_STREAM && kind !== SOCK_DGRAM) {
    return refuse(ESOCKTNOSUPPORT, "only stream (TCP) and datagram (UDP) sockets are switched");
  }
  if (kind === SOCK_STREAM && protocol !== 0 && protocol !== IPPROTO_TCP) {
    return refuse(E.EPROTONOSUPPORT, "only TCP stream sockets are switched");
  }
  if (kind === SOCK_DGRAM && protocol !== 0 && protocol !== IPPROTO_UDP) {
    return refuse(E.EPROTONOSUPPORT, "only UDP datagram sockets are switched");
  }
  const a = s.host.addon;
  const fd = makeSocket(s, domain, type, protocol);
  if (fd < 0) return s.fail(n, -fd);
  const r = a.notifAddFd(s.listenerFd, n.idLo, n.idHi, fd, type & SOCK_CLOEXEC ? O_CLOEXEC : 0, 1);
  // seccomp: a plain close, since an unconnected TCP socket never lingers and the app cannot
  // connect it before this (every way to connect is trapped, and waits its turn). bpf: the
  // app's connect runs in the kernel at once, so the app can connect, fill, SO_LINGER and
  // close its socket first, making this close the last one: never on the daemon's thread.
  // A UDP socket's close never waits.
  if (s.host.bpf && kind === SOCK_STREAM) a.closeShared(fd, 1);
  else a.close(fd);
  if (r < 0 && r !== -E.ENOENT) s.fail(n, -r);
}

/** A socket of the host namespace, marked for the app (CONTINUE guard, bpf datapath): its fd or -errno. */
function makeSocket(s: AppSession, domain: number, type: number, protocol: number): number {
  const a = s.host.addon;
  const fd = a.socket(domain, type, protocol);
  if (fd < 0) return fd;
  const m = s.host.markSocket(fd, s.app);
  if (m >= 0) return fd;
  a.close(fd);
  s.host.log.warn(
    { app: s.app.id, errno: -m },
    "socket refused: marking it (CONTINUE guard, bpf datapath) failed",
  );
  return m;
}
