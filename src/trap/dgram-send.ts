// The trapped sends: sendto(2) with a destination (or MSG_FASTOPEN), sendmsg(2) and
// sendmmsg(2) always (their destination is inside struct msghdr, where the filter cannot
// look). On an INET socket the daemon carries every one out itself, on its duplicate of the
// app's socket with its own copy of the data, never continuing it: another thread could
// otherwise write a destination into msg_name, or dup2() another socket onto the fd, between
// the daemon's look and the kernel's run. UDP with a destination is routed like a connect
// (virtual ip:port → policy → backend; a client's virtual address → its host socket, for
// replies; loopback stays private; the rest is egress); UDP without one goes to the
// connected peer; TCP sends are in stream-send.ts. Other families are continued only where
// that is safe (continue.ts). MSG_FASTOPEN is refused.

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
import { recordSource } from "./connect.js";
import { continueOther } from "./continue.js";
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
import { boundLoopbackError, clientAddress, dialedOf, routeOf } from "./route.js";
import { type AppSession, WRITABLE } from "./session.js";
import { useSourceBlock } from "./source-block.js";
import { streamSend } from "./stream-send.js";

const MSG_DONTWAIT = 0x40;
const MSG_FASTOPEN = 0x20000000;

/** One datagram to send: payload, ancillary data, and where the app's name is. */
interface Outgoing {
  readonly data: Uint8Array;
  readonly control: Uint8Array;
  readonly namePtr: number;
  readonly nameLen: number;
}

/** The app's INET socket for the call (null: another family, for continue.ts), or -errno. */
function takeInet(
  s: AppSession,
  n: Notification,
): { dup: number; domain: number; proto: "tcp" | "udp" } | number | null {
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return dup;
  const a = s.host.addon;
  const domain = domainOf(s, dup);
  if (domain < 0 || !isInet(domain)) {
    a.closeShared(dup);
    return domain < 0 ? domain : null;
  }
  return { dup, domain, proto: protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE)) };
}

const EMPTY = new Uint8Array(0);

/** Routes and sends one datagram; bytes sent or -errno (-EAGAIN: try again when writable). */
function sendOne(
  s: AppSession,
  n: Notification,
  dup: number,
  domain: number,
  m: Outgoing,
  flags: number,
): number {
  if (m.namePtr === 0) {
    // A connected socket: to its peer, which the daemon chose at connect().
    return s.host.addon.sendmsg(dup, m.data, m.data.length, EMPTY, 0, m.control, m.control.length, flags);
  }
  if (m.nameLen > SOCKADDR_MAX) return -E.EINVAL;
  const r = s.read(n, m.namePtr, s.addrBuf, m.nameLen);
  if (r < 0) return r;
  const d = decodeSockaddr(domain, s.addrBuf, m.nameLen, true); // udpv6_sendmsg takes sockaddr_in too
  if (d === "unspec") return -E.EAFNOSUPPORT;
  if (typeof d === "number") return -d;
  if (d.port === 0) return -E.EINVAL; // udp_sendmsg: no destination port
  const a = s.host.addon;
  const local = hostName(s, dup, false);
  const bound = local ? s.host.sockets.binding("udp", local.ip, local.port) : undefined;
  const dialed = dialedOf(d, bound);
  const route = routeOf(s, "udp", domain, d, clientAddress(s, bound, local, dialed), bound);
  if (typeof route === "number") return -route;
  const stuck = bound?.loopback && !route.loopback ? boundLoopbackError(s, "udp", bound, route.dialed) : 0;
  if (stuck !== 0) return -stuck;
  const unbound = local === null || local.port === 0;
  // Autobound for another node: from the app's source-port block (source-block.ts).
  if (unbound && route.remote) {
    const b = useSourceBlock(s, dup, domain);
    if (b < 0) return b;
  }
  if (route.drop) return m.data.length;
  const hostLen = encodeFor(s, domain, route.host);
  const since = Date.now() * 1000; // before the send that may bind it (rounded down)
  const sent = a.sendmsg(dup, m.data, m.data.length, s.outBuf, hostLen, m.control, m.control.length, flags);
  // Who sent it, as the receiver must see it (the kernel picks the source per datagram).
  if (sent >= 0) recordSource(s, dup, "udp", route.dialed, bound, since);
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
    s.host.addon.closeShared(dup);
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
  // Not trapped by the filter; a NULL destination in a register cannot change meanwhile.
  if (n.ptr(4) === 0) return s.cont(n);
  const t = takeInet(s, n);
  if (t === null) return continueOther(s, n);
  if (typeof t === "number") return s.fail(n, -t);
  const len = n.ptr(2);
  if (t.proto === "tcp") return streamSend(s, n, t.dup, [{ base: n.ptr(1), len }], EMPTY, flags);
  if (len > MAX_DATAGRAM) {
    s.host.addon.closeShared(t.dup);
    return s.fail(n, E.EMSGSIZE);
  }
  const data = new Uint8Array(len);
  const r = s.read(n, n.ptr(1), data, len);
  if (r < 0 || !s.idValid(n)) {
    s.host.addon.closeShared(t.dup);
    return r < 0 ? s.fail(n, -r) : undefined;
  }
  sendAndAnswer(
    s,
    n,
    t.dup,
    t.domain,
    { data, control: EMPTY, namePtr: n.ptr(4), nameLen: n.uint(5) },
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
  const t = takeInet(s, n);
  if (t === null) return continueOther(s, n);
  if (typeof t === "number") return s.fail(n, -t);
  const m = readMsgHdr(s, n, n.ptr(1));
  if (typeof m === "number") {
    s.host.addon.closeShared(t.dup);
    return s.fail(n, -m);
  }
  if (m.name === 0 && s.host.guard?.available) {
    // No destination, and the kernel guard refuses any the app could write in meanwhile
    // (continue.ts): the kernel may send it, which costs less than carrying it out here.
    s.host.addon.closeShared(t.dup);
    return s.cont(n);
  }
  if (t.proto === "tcp") {
    const iovs = readIovecs(s, n, m);
    const control = typeof iovs === "number" ? iovs : readControl(s, n, m);
    if (typeof iovs === "number" || typeof control === "number") {
      s.host.addon.closeShared(t.dup);
      return s.fail(n, -(typeof iovs === "number" ? iovs : (control as number)));
    }
    return streamSend(s, n, t.dup, iovs, control, flags);
  }
  const out = outgoing(s, n, m);
  if (typeof out === "number" || !s.idValid(n)) {
    s.host.addon.closeShared(t.dup);
    return typeof out === "number" ? s.fail(n, -out) : undefined;
  }
  sendAndAnswer(s, n, t.dup, t.domain, out, flags);
}

/**
 * sendmmsg(fd, msgvec, vlen, flags): messages in order until one fails; the count sent.
 * Each message goes without waiting (a TCP message that does not fit whole ends the call
 * with its msg_len the bytes that went).
 */
export function handleSendmmsg(s: AppSession, n: Notification): void {
  const flags = n.int(3);
  if ((flags & MSG_FASTOPEN) !== 0) return handleFastOpen(s, n);
  const t = takeInet(s, n);
  if (t === null) return continueOther(s, n);
  if (typeof t === "number") return s.fail(n, -t);
  const vec = n.ptr(1);
  const vlen = Math.min(n.uint(2), UIO_MAXIOV);
  const a = s.host.addon;
  const lenBuf = new Uint8Array(4);
  let sent = 0;
  let err = 0;
  for (let i = 0; i < vlen; i++) {
    const m = readMsgHdr(s, n, vec + i * MMSGHDR_SIZE);
    const out = typeof m === "number" ? m : outgoing(s, n, m);
    const r =
      typeof out === "number"
        ? out
        : t.proto === "tcp"
          ? a.sendmsg(t.dup, out.data, out.data.length, EMPTY, 0, out.control, out.control.length, flags)
          : sendOne(s, n, t.dup, t.domain, out, flags);
    if (r < 0) {
      err = r;
      break;
    }
    new DataView(lenBuf.buffer).setUint32(0, r, true);
    s.write(n, vec + i * MMSGHDR_SIZE + 56, lenBuf, 4);
    sent++;
    if (typeof out !== "number" && r < out.data.length) break;
  }
  a.closeShared(t.dup);
  // Like the kernel: the count if anything was sent, else the first error.
  s.settle(n, sent > 0 ? sent : err);
}
