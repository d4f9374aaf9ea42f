// The supervisor loop of one app: wait (on the event loop) for its seccomp listener to be
// readable, receive each trapped call, dispatch it to the handler named after the call,
// and notice when the app is gone (the listener hangs up once no task uses the filter).
// A handler that throws is a daemon bug: the call gets EIO and the daemon goes on.
//
// Fair service: one trapped call per app per turn of the event loop. Every app's listener
// is a level-triggered watch, so an app with calls queued is reported again on the next
// turn, after every other app that was ready; an app that floods the daemon delays
// another app's call by at most one of its own per turn, not by a batch of them.

import { handleAccept } from "./accept.js";
import { handleBind } from "./bind.js";
import { handleConnect } from "./connect.js";
import { handleRecvfrom, handleRecvmmsg, handleRecvmsg } from "./dgram-recv.js";
import { handleSendmmsg, handleSendmsg, handleSendto } from "./dgram-send.js";
import { handleGetpeername } from "./getpeername.js";
import { handleGetsockname } from "./getsockname.js";
import { handleListen } from "./listen.js";
import { NOTIF_WORDS, Notification } from "./notification.js";
import { RESPONDER_MAX_APPS, SocketResponder } from "./responder.js";
import { type AppSession, DISCONNECT, READABLE } from "./session.js";
import { handleSocket } from "./socket.js";

type Handler = (s: AppSession, n: Notification) => void;

const EIO = 5;
const ENOENT = 2;
const EINTR = 4;
const EPIPE = 32;
const EAGAIN = 11;
/** Notifications handled per app per turn of the event loop (fairness, above). */
const BATCH = 1;

export class Supervisor {
  private readonly handlers: Handler[] = [];
  private readonly buf = new Uint32Array(NOTIF_WORDS);
  private warned = false;

  constructor(nr: Readonly<Record<string, number>>) {
    const on = (name: string, h: Handler): void => {
      const n = nr[name];
      if (n === undefined) throw new Error(`the addon has no syscall number for ${name}`);
      this.handlers[n] = h;
    };
    on("socket", handleSocket);
    on("bind", handleBind);
    on("listen", handleListen);
    on("connect", handleConnect);
    on("accept", (s, n) => handleAccept(s, n, false));
    on("accept4", (s, n) => handleAccept(s, n, true));
    on("getsockname", handleGetsockname);
    on("getpeername", handleGetpeername);
    on("sendto", handleSendto);
    on("sendmsg", handleSendmsg);
    on("sendmmsg", handleSendmmsg);
    on("recvfrom", handleRecvfrom);
    on("recvmsg", handleRecvmsg);
    on("recvmmsg", handleRecvmmsg);
  }

  /**
   * Starts serving the app; onGone runs once when the app's last task has exited. On the bpf
   * datapath the socket responder's thread receives the app's calls (responder.ts) and hands
   * over those it does not answer; else the event loop watches its listener.
   */
  serve(s: AppSession, onGone: () => void): void {
    const stamp = s.host.bpf?.socketStamp(s.app) ?? null;
    if (stamp && this.serveByResponder(s, stamp, onGone)) return;
    this.watch(s, onGone);
  }

  private serveByResponder(
    s: AppSession,
    stamp: { map: number; value: Uint8Array },
    onGone: () => void,
  ): boolean {
    const responder = SocketResponder.get(s.host.addon);
    if (typeof responder === "string") {
      if (!this.warned)
        s.host.log.warn(`socket() calls are answered on the event loop (slower): ${responder}`);
      this.warned = true;
      return false;
    }
    let gone = false;
    const token = responder.add(s.listenerFd, stamp, {
      call: (words) => {
        if (!gone && !s.isClosed) this.dispatch(s, new Notification(words));
      },
      gone: (errno) => {
        if (errno !== 0 && errno !== EPIPE)
          s.host.log.error({ app: s.app.id, errno }, "receiving a trapped call failed");
        if (gone) return;
        gone = true;
        onGone();
      },
      failed: (err) =>
        s.host.log.error({ app: s.app.id, err }, "a trapped call handed over by the socket responder failed"),
    });
    if (token < 0) {
      s.host.log.warn(
        { app: s.app.id, errno: -token },
        -token === EAGAIN
          ? `the socket responder serves its most apps (${RESPONDER_MAX_APPS}): this app's calls go to the event loop (slower)`
          : "the socket responder cannot serve the app: its calls go to the event loop (slower)",
      );
      return false;
    }
    s.onClose(() => responder.remove(token));
    return true;
  }

  private watch(s: AppSession, onGone: () => void): void {
    const a = s.host.addon;
    let gone = false;
    const finish = (): void => {
      if (gone) return;
      gone = true;
      a.unwatch(handle);
      onGone();
    };
    const handle = a.watch(s.listenerFd, READABLE, (status, events) => {
      if (gone) return;
      for (let i = 0; i < BATCH; i++) {
        const r = a.notifRecv(s.listenerFd, this.buf);
        if (r === 0) break;
        if (r === -ENOENT || r === -EINTR) continue; // gone meanwhile; a signal (e.g. a profiler's)
        if (r < 0) {
          if (r !== -EPIPE) s.host.log.error({ app: s.app.id, errno: -r }, "receiving a trapped call failed");
          return finish();
        }
        this.dispatch(s, new Notification(this.buf));
      }
      if (status < 0 || (events & DISCONNECT) !== 0) {
        // Drain what is left, then the app is gone.
        while (a.notifRecv(s.listenerFd, this.buf) === 1) this.dispatch(s, new Notification(this.buf));
        finish();
      }
    });
    if (handle < 0) {
      // Not a pollable listener: nothing would ever report the app's end, so end it now.
      s.host.log.error({ app: s.app.id, errno: -handle }, "cannot watch the app's seccomp listener");
      queueMicrotask(finish);
    }
  }

  private dispatch(s: AppSession, n: Notification): void {
    const h = this.handlers[n.nr];
    try {
      if (h) h(s, n);
      else s.cont(n);
    } catch (err) {
      s.host.log.error({ app: s.app.id, nr: n.nr, err }, "trap handler failed; answered EIO");
      s.fail(n, EIO);
    }
  }
}
