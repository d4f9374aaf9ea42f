// The app's struct msghdr / mmsghdr / iovec, read from its memory for the datagram calls
// (sendmsg(2), recvmsg(2), sendmmsg(2), recvmmsg(2)); LP64 layout (x86_64, arm64):
//
//   struct msghdr  { void *name; u32 namelen; (pad); struct iovec *iov; size_t iovlen;
//                    void *control; size_t controllen; int flags; (pad) }    56 bytes
//   struct mmsghdr { struct msghdr hdr; unsigned int len; (pad) }            64 bytes
//   struct iovec   { void *base; size_t len; }                               16 bytes
//
// The daemon copies what it needs once (its own copy: no TOCTOU) and gathers or scatters
// the payload itself.

import type { Notification } from "./notification.js";
import type { AppSession } from "./session.js";

export const MSGHDR_SIZE = 56;
export const MMSGHDR_SIZE = 64;
const IOVEC_SIZE = 16;
/** UIO_MAXIOV: the kernel's limit on iovecs per call (and on messages per *mmsg call). */
export const UIO_MAXIOV = 1024;
/** A UDP payload cannot exceed 65535 bytes; more room is never needed. */
export const MAX_DATAGRAM = 65536;
/** Ancillary data copied through, at most (the kernel's optmem limit is of this order). */
export const MAX_CONTROL = 20480;

const E_FAULT = 14;
const E_MSGSIZE = 90;
const E_INVAL = 22;
const E_NOBUFS = 105;

export interface MsgHdr {
  readonly name: number;
  readonly namelen: number;
  readonly iov: number;
  readonly iovlen: number;
  readonly control: number;
  readonly controllen: number;
  /** Where msg_namelen, msg_controllen and msg_flags live, for recvmsg's answers. */
  readonly at: number;
}

export interface Iov {
  readonly base: number;
  readonly len: number;
}

const u64 = (v: DataView, off: number): number => Number(v.getBigUint64(off, true));

/** Reads the msghdr at ptr; -errno on a bad pointer. */
export function readMsgHdr(s: AppSession, n: Notification, ptr: number): MsgHdr | number {
  const buf = new Uint8Array(MSGHDR_SIZE);
  const r = s.read(n, ptr, buf, MSGHDR_SIZE);
  if (r < 0) return r;
  const v = new DataView(buf.buffer);
  return {
    name: u64(v, 0),
    namelen: v.getUint32(8, true),
    iov: u64(v, 16),
    iovlen: u64(v, 24),
    control: u64(v, 32),
    controllen: u64(v, 40),
    at: ptr,
  };
}

/** Reads the iovec array of m; -errno (EMSGSIZE for too many, EFAULT for a bad pointer). */
export function readIovecs(s: AppSession, n: Notification, m: MsgHdr): Iov[] | number {
  if (m.iovlen > UIO_MAXIOV) return -E_MSGSIZE;
  if (m.iovlen === 0) return [];
  const buf = new Uint8Array(m.iovlen * IOVEC_SIZE);
  const r = s.read(n, m.iov, buf, buf.length);
  if (r < 0) return r;
  const v = new DataView(buf.buffer);
  const out: Iov[] = [];
  for (let i = 0; i < m.iovlen; i++) {
    const len = u64(v, i * IOVEC_SIZE + 8);
    if (len > 0x7fffffff) return -E_INVAL;
    out.push({ base: u64(v, i * IOVEC_SIZE), len });
  }
  return out;
}

export function totalLength(iovs: readonly Iov[]): number {
  let t = 0;
  for (const v of iovs) t += v.len;
  return t;
}

/** Copies the payload out of the app's buffers into one; -errno. */
export function gather(s: AppSession, n: Notification, iovs: readonly Iov[]): Uint8Array | number {
  const total = totalLength(iovs);
  if (total > MAX_DATAGRAM) return -E_MSGSIZE;
  const out = new Uint8Array(total);
  let off = 0;
  for (const v of iovs) {
    if (v.len === 0) continue;
    const r = s.read(n, v.base, out.subarray(off), v.len);
    if (r < 0) return r;
    off += v.len;
  }
  return out;
}

/** Copies len bytes of data into the app's buffers in order; -errno. */
export function scatter(
  s: AppSession,
  n: Notification,
  iovs: readonly Iov[],
  data: Uint8Array,
  len: number,
): number {
  let off = 0;
  for (const v of iovs) {
    if (off >= len) break;
    const k = Math.min(v.len, len - off);
    if (k === 0) continue;
    const w = s.write(n, v.base, data.subarray(off), k);
    if (w < 0) return w;
    off += k;
  }
  return 0;
}

/** The app's ancillary data for a send (copied through unchanged); -errno. */
export function readControl(s: AppSession, n: Notification, m: MsgHdr): Uint8Array | number {
  if (m.control === 0 || m.controllen === 0) return new Uint8Array(0);
  if (m.controllen > MAX_CONTROL) return -E_NOBUFS;
  const out = new Uint8Array(m.controllen);
  const r = s.read(n, m.control, out, m.controllen);
  return r < 0 ? r : out;
}

/** Writes recvmsg's results: msg_namelen, msg_controllen (and the control bytes), msg_flags. */
export function writeRecvResults(
  s: AppSession,
  n: Notification,
  m: MsgHdr,
  namelen: number,
  control: Uint8Array,
  controllen: number,
  flags: number,
): number {
  const four = new Uint8Array(4);
  const eight = new Uint8Array(8);
  new DataView(four.buffer).setUint32(0, namelen, true);
  let r = s.write(n, m.at + 8, four, 4);
  if (r < 0) return r;
  if (controllen > 0 && m.control !== 0) {
    r = s.write(n, m.control, control, Math.min(controllen, m.controllen));
    if (r < 0) return r;
  }
  new DataView(eight.buffer).setBigUint64(0, BigInt(Math.min(controllen, m.controllen)), true);
  r = s.write(n, m.at + 40, eight, 8);
  if (r < 0) return r;
  new DataView(four.buffer).setInt32(0, flags, true);
  r = s.write(n, m.at + 48, four, 4);
  return Math.min(r, 0);
}

export { E_FAULT, E_MSGSIZE };
