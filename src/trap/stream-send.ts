// TCP sends that the filter traps: sendmsg(2) and sendmmsg(2) always (their destination is
// inside struct msghdr, where the filter cannot look), sendto(2) with an address. The daemon
// carries them out itself on its duplicate of the app's socket, with its own copy of the data
// (copied from the app in chunks as it goes): continuing them would let another thread of
// the app swap what the call means between the daemon's look and the kernel's run (a UDP
// socket dup2()ed onto the fd number, a destination written into msg_name). A TCP send never
// reaches an address of its own: msg_name is ignored (tcp_sendmsg), as the kernel does.
//
// As the kernel's tcp_sendmsg: a blocking socket sends everything, waiting for room (without
// blocking the daemon; SO_SNDTIMEO honoured), and returns the count; a non-blocking one sends
// what fits (EAGAIN if nothing); an error after some data returns the count; EPIPE raises
// SIGPIPE in the calling thread unless MSG_NOSIGNAL. send(2), tcp(7), socket(7).

import { E, F_GETFL, O_NONBLOCK, SO_SNDTIMEO, socketTimeoutMs } from "./addresses.js";
import { type Iov, totalLength } from "./msghdr.js";
import type { Notification } from "./notification.js";
import { type AppSession, WRITABLE } from "./session.js";

const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const SIGPIPE = 13;
/** Copied from the app and sent per round. */
const CHUNK = 256 * 1024;
const EMPTY = new Uint8Array(0);
/** Scratch, used only synchronously within one round. */
const chunk = new Uint8Array(CHUNK);

/**
 * One TCP send of the app's iovecs (with control data on the first round): answers the
 * notification when done. Takes ownership of dup.
 */
export function streamSend(
  s: AppSession,
  n: Notification,
  dup: number,
  iovs: readonly Iov[],
  control: Uint8Array,
  flags: number,
): void {
  const a = s.host.addon;
  const total = totalLength(iovs);
  const fl = a.fcntl(dup, F_GETFL, 0);
  const blocking = (flags & MSG_DONTWAIT) === 0 && fl >= 0 && (fl & O_NONBLOCK) === 0;
  let sent = 0;
  /** One or more rounds until done or the socket is full; true when answered. */
  const pump = (): boolean => {
    for (;;) {
      const len = Math.min(CHUNK, total - sent);
      const copied = copyRange(s, n, iovs, sent, len);
      if (copied < 0) return finish(sent > 0 ? sent : copied);
      const ctl = sent === 0 ? control : EMPTY;
      const r = a.sendmsg(dup, chunk, len, EMPTY, 0, ctl, ctl.length, flags & ~MSG_DONTWAIT);
      if (r >= 0) {
        sent += r;
        if (sent >= total) return finish(sent);
        if (r < len && !blocking) return finish(sent);
        if (r < len) return false; // full: wait for room
        continue;
      }
      if (r === -E.EAGAIN && blocking) return false;
      if (sent > 0) return finish(sent);
      if (r === -E.EPIPE && (flags & MSG_NOSIGNAL) === 0) a.signalThread(n.pid, SIGPIPE);
      return finish(r);
    }
  };
  const finish = (r: number): true => {
    s.settle(n, r);
    return true;
  };
  if (pump()) {
    a.closeShared(dup);
    return;
  }
  // SO_SNDTIMEO: what was sent by then, or EAGAIN.
  s.wait(n, dup, WRITABLE, pump, socketTimeoutMs(s, dup, SO_SNDTIMEO), () =>
    s.settle(n, sent > 0 ? sent : -E.EAGAIN),
  );
}

/** Copies bytes [from, from+len) of the app's iovecs into the chunk buffer; len or -errno. */
function copyRange(s: AppSession, n: Notification, iovs: readonly Iov[], from: number, len: number): number {
  let skip = from;
  let at = 0;
  for (const v of iovs) {
    if (at >= len) break;
    if (skip >= v.len) {
      skip -= v.len;
      continue;
    }
    const k = Math.min(v.len - skip, len - at);
    const r = s.read(n, v.base + skip, chunk.subarray(at), k);
    if (r < 0) return r;
    at += k;
    skip = 0;
  }
  return at;
}
