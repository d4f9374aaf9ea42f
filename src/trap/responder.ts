// The socket responder: on the bpf datapath an app's socket() is the one call trapped per
// connection, and a thread of the addon (native/addon/responder.c) answers it off the event
// loop, as socket.ts would: the same socket in the daemon's namespace, stamped with what
// KernelHooks.socketStamp gives for the app, installed in the app. Every other call of such an
// app (its binds and listens, a socket() the thread does not serve or could not make) comes
// back here as received and goes to its handler as usual. Which apps it serves, and with
// which stamp, is decided here and in the datapath; the thread only carries it out.
//
// Measured (bench crr, bpf datapath): see bench/README.md, "The trapped socket()".

import type { Addon } from "../native/addon.js";

const KIND_CALL = 1;

/** The most apps the responder's threads serve at once (64 threads of 16 listeners). */
export const RESPONDER_MAX_APPS = 64 * 16;

/** An app the responder serves. */
export interface ResponderApp {
  /** A call the responder did not answer, as received (words as Addon.notifRecv writes them). */
  call(words: Uint32Array): void;
  /** The app's listener hung up (errno 0: its last task is gone) or failed (errno). */
  gone(errno: number): void;
  /** A callback threw: a daemon bug, contained. */
  failed(err: unknown): void;
}

export class SocketResponder {
  private readonly apps = new Map<number, ResponderApp>();
  private next = 1;

  private constructor(private readonly addon: Addon) {}

  /**
   * The process's responder, readied on first use (its threads start as apps are added, one
   * per 16 apps): the responder, or a sentence saying why it cannot run here.
   */
  static get(addon: Addon): SocketResponder | string {
    if (started === undefined) {
      const r = new SocketResponder(addon);
      const rc = addon.responderStart((kind, token, errno, words) => r.deliver(kind, token, errno, words));
      started =
        rc === 0
          ? r
          : `the socket responder cannot start (errno ${-rc}${rc === -1 ? ": its close watchdog cannot run" : ""})`;
    }
    return started;
  }

  /**
   * Serves the app's seccomp listener from now on (nothing else may receive on it); its
   * socket()s are answered with sockets stamped value in the socket storage map map. A token
   * for remove(), or -errno.
   */
  add(listenerFd: number, stamp: { map: number; value: Uint8Array }, app: ResponderApp): number {
    const token = this.next;
    this.next = this.next >= 0x7fffffff ? 1 : this.next + 1;
    const r = this.addon.responderAdd(listenerFd, stamp.map, stamp.value, token);
    if (r < 0) return r;
    this.apps.set(token, app);
    return token;
  }

  /** The responder leaves the app's listener: it may be closed once this returns. */
  remove(token: number): void {
    if (!this.apps.delete(token)) return;
    this.addon.responderRemove(token);
  }

  private deliver(kind: number, token: number, errno: number, words: Uint32Array | undefined): void {
    const app = this.apps.get(token);
    if (!app) return; // removed meanwhile: its listener is closed, the call went with it
    try {
      if (kind === KIND_CALL) {
        if (words) app.call(words);
      } else {
        this.remove(token);
        app.gone(errno);
      }
    } catch (err) {
      app.failed(err);
    }
  }
}

let started: SocketResponder | string | undefined;
