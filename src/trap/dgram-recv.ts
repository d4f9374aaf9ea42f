// UDP receives that return the sender's address: recvfrom(2) with src_addr, recvmsg(2) and
// recvmmsg(2) with msg_name. The daemon receives on its duplicate of the app's socket
// (never blocking: a blocking socket is watched for readability, and SO_RCVTIMEO is
// honoured), copies the payload into the app's buffers and writes the sender's address as
// the app must see it: a managed peer's virtual ip:port, never a host address. Calls that
// ask for no address, and calls on TCP or UNIX sockets, are left to the kernel.

import { readKernelSockaddr } from "../net/sockaddr.js";
import type { Source, VAddr } from "../table/sockets.js";
import {
  domainOf,
  E,
  encodeFor,
  F_GETFL,
  hostName,
  isInet,
  isManagedSender,
  O_NONBLOCK,
  protoOf,
  SO_RCVTIMEO,
  SO_TYPE,
  SOL_SOCKET,
  socketTimeoutMs,
  virtualSource,
} from "./addresses.js";
import { checkSender } from "./admission.js";
import {
  MAX_CONTROL,
  MAX_DATAGRAM,
  MMSGHDR_SIZE,
  type MsgHdr,
  readIovecs,
  readMsgHdr,
  scatter,
  totalLength,
  UIO_MAXIOV,
  writeRecvResults,
} from "./msghdr.js";
import type { Notification } from "./notification.js";
import { type AppSession, READABLE } from "./session.js";

const MSG_DONTWAIT = 0x40;
const MSG_PEEK = 0x2;
/** The socket's error queue (ip(7) IP_RECVERR): never waits; EAGAIN when it is empty. */
const MSG_ERRQUEUE = 0x2000;

/** Scratch space, used only synchronously between a receive and the copy into the app. */
const data = new Uint8Array(MAX_DATAGRAM);
const name = new Uint8Array(128);
const control = new Uint8Array(MAX_CONTROL);
const info = new Int32Array(3);

/** A received datagram, as delivered to one destination in the app. */
interface Received {
  readonly bytes: number;
  /** Length of the sender's virtual address in s.outBuf. */
  readonly nameLen: number;
  readonly controlLen: number;
  readonly flags: number;
}

/** Writes a received datagram into the app; 0 or -errno. */
type Deliver = (r: Received) => number;

/** The app's UDP socket for the call, or null when the kernel should run it. */
function takeUdp(s: AppSession, n: Notification): { dup: number; domain: number } | number | null {
  const dup = s.takeFd(n, n.int(0));
  if (dup < 0) return dup;
  const a = s.host.addon;
  const domain = domainOf(s, dup);
  if (domain < 0 || !isInet(domain) || protoOf(a.getsockoptInt(dup, SOL_SOCKET, SO_TYPE)) !== "udp") {
    a.closeShared(dup);
    return domain < 0 ? domain : null;
  }
  return { dup, domain };
}

/** One receive into the scratch buffers, delivered; bytes, -EAGAIN, or -errno. */
function receive(
  s: AppSession,
  dup: number,
  domain: number,
  cap: number,
  ccap: number,
  flags: number,
  deliver: Deliver,
): number {
  const a = s.host.addon;
  let r: number;
  let from: ReturnType<typeof readKernelSockaddr>;
  let src: Source | null = null;
  for (let tries = 0; ; tries++) {
    r = a.recvmsg(
      dup,
      data.subarray(0, Math.min(cap, MAX_DATAGRAM)),
      name,
      control.subarray(0, ccap),
      flags,
      info,
    );
    if (r < 0) return r;
    from = readKernelSockaddr(name, info[0] as number);
    // The client record that names the sender: its socket's now, or when the kernel
    // received the datagram (admission.ts); null: none does.
    const local = from === null ? null : hostName(s, dup, false);
    src = from !== null && local !== null ? checkSender(s.host, dup, local, from) : null;
    // A pool port admits only managed senders: an unmanaged datagram is dropped, unseen.
    if (from === null || (flags & (MSG_PEEK | MSG_ERRQUEUE)) !== 0 || admits(s, local, from, src)) break;
    s.host.log.debug(
      { app: s.app.id, from: `${from.ip}:${from.port}` },
      "datagram from an unmanaged sender dropped",
    );
    if (tries >= 64) return -E.EAGAIN;
  }
  const nameLen = from ? encodeFor(s, domain, virtualSource(s, from, src)) : 0;
  const w = deliver({ bytes: r, nameLen, controlLen: info[1] as number, flags: info[2] as number });
  return w < 0 ? w : r;
}

/**
 * Whether a datagram from `from` may reach the app: anything for a socket not on a pool
 * port (an --expose port, an autobound client); on a pool port, only managed senders (src:
 * the client record that names it, see checkSender) and the unmanaged peers this socket
 * itself sent to (replies to its egress traffic).
 */
function admits(s: AppSession, local: VAddr | null, from: VAddr, src: Source | null): boolean {
  const b = local ? s.host.sockets.binding("udp", local.ip, local.port) : undefined;
  if (!b || b.exposed || isManagedSender(s, from, src)) return true;
  return b.egressPeers?.has(`${from.ip}|${from.port}`) === true;
}

/** Receives one datagram and answers; a blocking socket waits for one without blocking the daemon. */
function receiveAndAnswer(
  s: AppSession,
  n: Notification,
  dup: number,
  domain: number,
  cap: number,
  ccap: number,
  flags: number,
  deliver: Deliver,
  /** The answer once a datagram arrived (recvmmsg: the count, after taking the rest). */
  answer: (bytes: number) => number = (bytes) => bytes,
): void {
  const a = s.host.addon;
  const finish = (r: number): void => s.settle(n, r < 0 ? r : answer(r));
  const r = receive(s, dup, domain, cap, ccap, flags, deliver);
  const fl = a.fcntl(dup, F_GETFL, 0);
  const blocking = (flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) === 0 && fl >= 0 && (fl & O_NONBLOCK) === 0;
  if (r !== -E.EAGAIN || !blocking) {
    finish(r);
    a.closeShared(dup);
    return;
  }
  s.wait(
    n,
    dup,
    READABLE,
    () => {
      const again = receive(s, dup, domain, cap, ccap, flags, deliver);
      if (again === -E.EAGAIN) return false;
      finish(again);
      return true;
    },
    socketTimeoutMs(s, dup, SO_RCVTIMEO),
  );
}

/** recvfrom(fd, buf, len, flags, src_addr, addrlen). */
export function handleRecvfrom(s: AppSession, n: Notification): void {
  const srcPtr = n.ptr(4);
  if (srcPtr === 0) return s.cont(n);
  const t = takeUdp(s, n);
  if (t === null) return s.cont(n);
  if (typeof t === "number") return s.fail(n, -t);
  const buf = n.ptr(1);
  const len = n.ptr(2);
  const lenPtr = n.ptr(5);
  receiveAndAnswer(s, n, t.dup, t.domain, len, 0, n.int(3), (r) => {
    const w = s.write(n, buf, data, Math.min(r.bytes, len));
    if (w < 0) return w;
    return r.nameLen > 0 ? s.writeSockaddr(n, srcPtr, lenPtr, s.outBuf, r.nameLen) : 0;
  });
}

/** Copies a datagram into the buffers of msghdr m; 0 or -errno. */
function deliverTo(
  s: AppSession,
  n: Notification,
  m: MsgHdr,
  iovs: ReturnType<typeof readIovecs>,
  r: Received,
): number {
  if (typeof iovs === "number") return iovs;
  const c = scatter(s, n, iovs, data, Math.min(r.bytes, totalLength(iovs)));
  if (c < 0) return c;
  if (m.name !== 0 && r.nameLen > 0) {
    const w = s.write(n, m.name, s.outBuf, Math.min(m.namelen, r.nameLen));
    if (w < 0) return w;
  }
  return writeRecvResults(s, n, m, r.nameLen, control, r.controlLen, r.flags);
}

/** recvmsg(fd, msg, flags). */
export function handleRecvmsg(s: AppSession, n: Notification): void {
  const m = readMsgHdr(s, n, n.ptr(1));
  if (typeof m === "number" || m.name === 0) return s.cont(n);
  const iovs = readIovecs(s, n, m);
  if (typeof iovs === "number") return s.fail(n, -iovs);
  const t = takeUdp(s, n);
  if (t === null) return s.cont(n);
  if (typeof t === "number") return s.fail(n, -t);
  const ccap = Math.min(m.control === 0 ? 0 : m.controllen, MAX_CONTROL);
  receiveAndAnswer(s, n, t.dup, t.domain, totalLength(iovs), ccap, n.int(2), (r) =>
    deliverTo(s, n, m, iovs, r),
  );
}

/**
 * recvmmsg(fd, msgvec, vlen, flags, timeout): waits (on a blocking socket) for the first
 * datagram, then takes what else is queued, up to vlen, as with MSG_WAITFORONE.
 */
export function handleRecvmmsg(s: AppSession, n: Notification): void {
  const vec = n.ptr(1);
  const vlen = Math.min(n.uint(2), UIO_MAXIOV);
  const flags = n.int(3);
  const msgs: MsgHdr[] = [];
  for (let i = 0; i < vlen; i++) {
    const m = readMsgHdr(s, n, vec + i * MMSGHDR_SIZE);
    if (typeof m === "number") break;
    msgs.push(m);
  }
  const first = msgs[0];
  if (first === undefined || !msgs.some((m) => m.name !== 0)) return s.cont(n);
  const t = takeUdp(s, n);
  if (t === null) return s.cont(n);
  if (typeof t === "number") return s.fail(n, -t);
  const lenBuf = new Uint8Array(4);
  const deliverAt = (m: MsgHdr) => (r: Received) => {
    const w = deliverTo(s, n, m, readIovecs(s, n, m), r);
    if (w < 0) return w;
    new DataView(lenBuf.buffer).setUint32(0, r.bytes, true);
    return s.write(n, m.at + 56, lenBuf, 4) < 0 ? -E.EFAULT : 0;
  };
  const capOf = (m: MsgHdr) => {
    const iovs = readIovecs(s, n, m);
    return typeof iovs === "number" ? 0 : totalLength(iovs);
  };
  const ccapOf = (m: MsgHdr) => Math.min(m.control === 0 ? 0 : m.controllen, MAX_CONTROL);
  // The first datagram decides whether the call waits; the rest are taken if queued.
  const rest = (): number => {
    let count = 1;
    for (const m of msgs.slice(1)) {
      const r = receive(s, t.dup, t.domain, capOf(m), ccapOf(m), flags | MSG_DONTWAIT, deliverAt(m));
      if (r < 0) break;
      count++;
    }
    return count;
  };
  const wrapped: Deliver = (r) => deliverAt(first)(r);
  receiveAndAnswer(s, n, t.dup, t.domain, capOf(first), ccapOf(first), flags, wrapped, rest);
}
