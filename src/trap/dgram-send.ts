// Unconnected UDP sends: sendto(2) with a destination, sendmsg(2) and sendmmsg(2) with
// msg_name. The destination is routed like a connect (virtual ip:port → policy → backend;
// a client's virtual address → its host socket, for replies; loopback stays private; the
// rest is egress), and the daemon sends its own copy of the payload from its duplicate of
// the app's socket. A send without a destination (a connected socket) and every call on a
// TCP or UNIX socket is left to the kernel. MSG_FASTOPEN is refused, as before.
//
// The filter traps sendto only when it carries a destination or MSG_FASTOPEN; sendmsg and
// sendmmsg are trapped whole (the destination is inside struct msghdr), so those calls on
// other sockets pay one round trip to the daemon and are CONTINUEd.

import { decodeSockaddr, SOCKADDR_MAX } from "../net/sockaddr.js";
import { noteEgressPeer } from "../table/sockets.js";
import {
  domainOf,
  E,
  encodeFor,
  F_GETFL,
  hostName,
  isInet,
  O_NONBLOCK,
  protoOf,
  SO_TYPE,
  SOL_SOCKET,
} from "./addresses.js";
import { recordSource, routeOf } from "./connect.js";
import { handleFastOpen } from "./fastopen.js";
import {
  gather,
  MAX_DATAGRAM,
  MMSGHDR_SIZE,
  type MsgHdr,
  readControl,
  readIovecs,
  readMsgHdr,
  UIO_MAXIOV,
} from "./msghdr.js";
import type { Notification } from "./notification.js";
import { type AppSession, WRITABLE } from "./session.js";
import { useSourceBlock } from "./source-block.js";

const MSG_DONTWAIT = 0x40;
const MSG_FASTOPEN = 0x20000000;

/** One datagram to send: payload, ancillary data, and where the app's name is. */
interface Outgoing {
  readonly data: Uint8Array;
  readonly control: Uint8Array;
  readonly namePtr: number;
  readonly nameLen: number;
}

/** A UDP socket of the app, taken for the call; null when the kernel should run it. */
function takeUdp(s: AppSession, n: Notification): { dup: number; domain: number } | number | null {
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return dup;
  const a = s.host.addon;
  const domain = domainOf(s, dup);
  if (domain < 0 || !isInet(domain) || protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE)) !== "udp") {
    a.close(dup);
    return domain < 0 ? domain : null;
  }
  return { dup, domain };
}

/** Routes and sends one datagram; bytes sent or -errno (-EAGAIN: try again when writable). */
function sendOne(
  s: AppSession,
  n: Notification,
  dup: number,
  domain: number,
  m: Outgoing,
  flags: number,
): number {
  if (m.nameLen > SOCKADDR_MAX) return -E.EINVAL;
  const r = s.read(n, m.namePtr, s.addrBuf, m.nameLen);
  if (r < 0) return r;
  const d = decodeSockaddr(domain, s.addrBuf, m.nameLen, true); // udpv6_sendmsg takes sockaddr_in too
  if (d === "unspec") return -E.EAFNOSUPPORT;
  if (typeof d === "number") return -d;
  const a = s.host.addon;
  const local = hostName(s, dup, false);
  const route = routeOf(s, "udp", domain, d, local?.ip);
  if (typeof route === "number") return -route;
  const unbound = local === null || local.port === 0;
  // Autobound for another node: from the app's source-port block (source-block.ts).
  if (unbound && route.remote) {
    const b = useSourceBlock(s, dup, domain);
    if (b < 0) return b;
  }
  const hostLen = encodeFor(s, domain, route.host);
  const sent = a.sendmsg(dup, m.data, m.data.length, s.outBuf, hostLen, m.control, m.control.length, flags);
  // The kernel autobound the socket: remember whose it is, so replies show the app's address.
  if (sent >= 0 && unbound) recordSource(s, dup, "udp", d, route.loopback);
  // Egress from a socket on a pool port: its replies are admitted (see dgram-recv.ts).
  if (sent >= 0 && local && !route.loopback && !s.host.table.isVirtual(d.ip.text)) {
    const b = s.host.sockets.binding("udp", local.ip, local.port);
    if (b) noteEgressPeer(b, route.host.ip, route.host.port);
  }
  return sent;
}

function isBlocking(s: AppSession, dup: number, flags: number): boolean {
  const fl = s.host.addon.fcntl(dup, F_GETFL, 0);
  return (flags & MSG_DONTWAIT) === 0 && fl >= 0 && (fl & O_NONBLOCK) === 0;
}

/** Sends, and for a blocking socket with a full buffer waits for room without blocking the daemon. */
function sendAndAnswer(
  s: AppSession,
  n: Notification,
  dup: number,
  domain: number,
  m: Outgoing,
  flags: number,
) {
  const r = sendOne(s, n, dup, domain, m, flags);
  if (r !== -E.EAGAIN || !isBlocking(s, dup, flags)) {
    s.host.addon.close(dup);
    return s.settle(n, r);
  }
  s.wait(n, dup, WRITABLE, () => {
    const again = sendOne(s, n, dup, domain, m, flags);
    if (again === -E.EAGAIN) return false;
    s.settle(n, again);
    return true;
  });
}

/** sendto(fd, buf, len, flags, dest, destlen). */
export function handleSendto(s: AppSession, n: Notification): void {
  const flags = n.int(3);
  if ((flags & MSG_FASTOPEN) !== 0) return handleFastOpen(s, n);
  if (n.ptr(4) === 0) return s.cont(n);
  const t = takeUdp(s, n);
  if (t === null) return s.cont(n);
  if (typeof t === "number") return s.fail(n, -t);
  const len = n.ptr(2);
  if (len > MAX_DATAGRAM) {
    s.host.addon.close(t.dup);
    return s.fail(n, E.EMSGSIZE);
  }
  const data = new Uint8Array(len);
  const r = s.read(n, n.ptr(1), data, len);
  if (r < 0 || !s.idValid(n)) {
    s.host.addon.close(t.dup);
    return r < 0 ? s.fail(n, -r) : undefined;
  }
  sendAndAnswer(
    s,
    n,
    t.dup,
    t.domain,
    { data, control: new Uint8Array(0), namePtr: n.ptr(4), nameLen: n.uint(5) },
    flags,
  );
}

/** The payload and ancillary data of one msghdr; -errno. */
function outgoing(s: AppSession, n: Notification, m: MsgHdr): Outgoing | number {
  const iovs = readIovecs(s, n, m);
  if (typeof iovs === "number") return iovs;
  const data = gather(s, n, iovs);
  if (typeof data === "number") return data;
  const control = readControl(s, n, m);
  if (typeof control === "number") return control;
  return { data, control, namePtr: m.name, nameLen: m.namelen };
}

/** sendmsg(fd, msg, flags). */
export function handleSendmsg(s: AppSession, n: Notification): void {
  const flags = n.int(2);
  if ((flags & MSG_FASTOPEN) !== 0) return handleFastOpen(s, n);
  const m = readMsgHdr(s, n, n.ptr(1));
  if (typeof m === "number" || m.name === 0) return s.cont(n); // the kernel reports a bad pointer
  const t = takeUdp(s, n);
  if (t === null) return s.cont(n);
  if (typeof t === "number") return s.fail(n, -t);
  const out = outgoing(s, n, m);
  if (typeof out === "number" || !s.idValid(n)) {
    s.host.addon.close(t.dup);
    return typeof out === "number" ? s.fail(n, -out) : undefined;
  }
  sendAndAnswer(s, n, t.dup, t.domain, out, flags);
}

/** sendmmsg(fd, msgvec, vlen, flags): messages in order until one fails; the count sent. */
export function handleSendmmsg(s: AppSession, n: Notification): void {
  const flags = n.int(3);
  if ((flags & MSG_FASTOPEN) !== 0) return handleFastOpen(s, n);
  const vec = n.ptr(1);
  const vlen = Math.min(n.uint(2), UIO_MAXIOV);
  const msgs: MsgHdr[] = [];
  for (let i = 0; i < vlen; i++) {
    const m = readMsgHdr(s, n, vec + i * MMSGHDR_SIZE);
    if (typeof m === "number") break;
    msgs.push(m);
  }
  if (!msgs.some((m) => m.name !== 0)) return s.cont(n);
  const t = takeUdp(s, n);
  if (t === null) return s.cont(n);
  if (typeof t === "number") return s.fail(n, -t);
  const a = s.host.addon;
  const lenBuf = new Uint8Array(4);
  let sent = 0;
  let err = 0;
  for (const m of msgs) {
    const out = outgoing(s, n, m);
    const r =
      typeof out === "number"
        ? out
        : m.name === 0
          ? a.sendmsg(
              t.dup,
              out.data,
              out.data.length,
              new Uint8Array(0),
              0,
              out.control,
              out.control.length,
              flags,
            )
          : sendOne(s, n, t.dup, t.domain, out, flags);
    if (r < 0) {
      err = r;
      break;
    }
    new DataView(lenBuf.buffer).setUint32(0, r, true);
    s.write(n, m.at + 56, lenBuf, 4);
    sent++;
  }
  a.close(t.dup);
  // Like the kernel: the count if anything was sent, else the first error.
  s.settle(n, sent > 0 ? sent : err);
}
