// The launcher's handshake on the daemon socket, daemon side. Lines end in \n:
//   launcher → daemon  SSW1 HELLO <registration>   (the run options as JSON: app-spec.ts)
//   daemon → launcher  OK, then IP <addr> (one per virtual IP), FILTER <hex>, END
//                      or ERR <sentence>, or USAGE <sentence> for a bad option value
//                      (and the connection closes)
//   launcher → daemon  SSW1 FD   with the seccomp listener and a pidfd of the app (SCM_RIGHTS)
//   daemon → launcher  APP <id>, GO   or   ERR <sentence>
// After a daemon restart the launcher hands the listener it kept to the new daemon:
//   launcher → daemon  SSW1 REATTACH <id>   with the listener and the app's pidfd
//   daemon → launcher  GO   or   ERR <sentence>
// The connection then stays open for the launcher's life. When the app has ended:
//   launcher → daemon  SSW1 EXIT <status>   (its exit status, 128+N for signal N)
// No pid travels as a number: the
// launcher is identified by SO_PEERCRED and the app by its pidfd, both as the kernel shows
// them in the daemon's PID namespace (identity.ts), whatever namespace the launcher runs
// in. Every fd received is either handed over (the listener, with FD or REATTACH) or
// closed: the pidfd once the app is identified, with a refused line, with any other line,
// and when the connection ends (handshake-lines.ts says which line an fd came with). A
// handshake that has not reached GO within HANDSHAKE_MS is refused: a peer that stalls
// half-way holds a descriptor and reserved IPs.

import { readdirSync } from "node:fs";
import type { Logger } from "pino";
import { InvalidArgumentError, messageOf } from "../core/errors.js";
import type { Addon } from "../native/addon.js";
import type { AppSpec } from "../table/app-spec.js";
import { descriptorLimit, isOutOfDescriptors, outOfDescriptors } from "../trap/limits.js";
import { READABLE } from "../trap/session.js";
import type { Placement } from "./datapath.js";
import { LineAssembler } from "./handshake-lines.js";

const EAGAIN = 11;
const MAX_LINE = 64 * 1024;
/** The whole handshake, from the first line to GO. */
const HANDSHAKE_MS = 30_000;

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** A registration between HELLO and FD. */
export interface Pending {
  readonly spec: AppSpec;
  readonly ips: string[];
  /** The filter the launcher installs and where the datapath puts the app (datapath.ts). */
  readonly placement: Placement;
}

export interface LaunchHandler {
  /** Validates the registration and assigns the app's identity; throws a sentence for the
   * user (an InvalidArgumentError for a bad option value). */
  hello(registration: string, cred: PeerCred): Pending;
  /** Takes over the app's seccomp listener (the app named by pidfd); returns the app's id;
   * throws a sentence for the user. */
  handover(p: Pending, listenerFd: number, pidfd: number, cred: PeerCred): string;
  /** Takes over the listener of a running app known from the state dir; throws a sentence. */
  reattach(appId: string, listenerFd: number, pidfd: number, cred: PeerCred): void;
  /** The launcher went away before handing over. */
  abandon(p: Pending): void;
  /** Resolves when the apps registered so far are on disk (GO waits for it). */
  persisted(): Promise<void>;
  /** The app's launcher reported its exit status (0–255; 128+N for signal N). */
  exited?(appId: string, status: number): void;
}

export class LauncherConnection {
  private handle = 0;
  private readonly lines = new LineAssembler(MAX_LINE);
  private readonly chunk = new Uint8Array(4096);
  private readonly fds = new Int32Array(9);
  private pending: Pending | null = null;
  private done = false;
  /** The app this launcher handed over (FD or REATTACH). */
  private appId: string | null = null;
  private closed = false;
  private deadline: NodeJS.Timeout | null = null;
  private readonly cred: PeerCred;

  constructor(
    private readonly addon: Addon,
    private readonly fd: number,
    private readonly handler: LaunchHandler,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {
    const c = new Int32Array(3);
    addon.peerCred(fd, c);
    this.cred = { pid: c[0] as number, uid: c[1] as number, gid: c[2] as number };
  }

  start(): void {
    this.handle = this.addon.watch(this.fd, READABLE, () => this.onReadable());
    this.deadline = setTimeout(() => {
      if (!this.done && !this.closed) this.reject(`the handshake did not finish in ${HANDSHAKE_MS / 1000} s`);
    }, HANDSHAKE_MS);
    this.deadline.unref();
  }

  private onReadable(): void {
    for (;;) {
      const n = this.addon.recvFds(this.fd, this.chunk, this.fds);
      if (n === -EAGAIN) return;
      const received: number[] = [];
      for (let i = 0; i < (this.fds[0] as number); i++) received.push(this.fds[i + 1] as number);
      this.fds[0] = 0;
      if (n <= 0) {
        this.closeFds(received);
        return this.close();
      }
      const lines = this.lines.push(this.chunk.subarray(0, n), received);
      if (lines === null) return this.reject("handshake line too long");
      for (const [i, { line, fds }] of lines.entries()) {
        if (this.closed) {
          this.closeFds(lines.slice(i).flatMap((l) => l.fds));
          return;
        }
        this.onLine(line, fds);
      }
      if (this.closed) return;
    }
  }

  /** Handles one line; every fd in fds that is not handed over is closed here. */
  private onLine(line: string, fds: number[]): void {
    let kept = -1;
    try {
      kept = this.answer(line, fds);
    } catch (err) {
      this.reject(messageOf(err), err instanceof InvalidArgumentError ? "USAGE" : "ERR");
    } finally {
      this.closeFds(fds.filter((f) => f !== kept));
    }
  }

  /** Answers one line; returns the fd handed over to the handler (then its owner), or -1. */
  private answer(line: string, fds: number[]): number {
    if (this.done) {
      const exit = /^SSW1 EXIT ([0-9]{1,3})$/.exec(line);
      if (exit && this.appId !== null && Number(exit[1]) <= 255)
        this.handler.exited?.(this.appId, Number(exit[1]));
      return -1;
    }
    if (line.startsWith("SSW1 HELLO ") && this.pending === null) {
      if (fds.length > 0) throw new Error("the HELLO message carries no fd");
      this.pending = this.handler.hello(line.slice(11), this.cred);
      const lines = [
        "OK",
        ...this.pending.ips.map((ip) => `IP ${ip}`),
        `FILTER ${this.pending.placement.filter.toString("hex")}`,
        "END",
      ];
      this.send(`${lines.join("\n")}\n`);
      return -1;
    }
    if (line === "SSW1 FD" && this.pending !== null) {
      const [listener, pidfd] = fds;
      if (listener === undefined || pidfd === undefined || fds.length !== 2)
        throw fdsMissing("FD", fds.length);
      const p = this.pending;
      this.pending = null;
      let id: string;
      try {
        id = this.handler.handover(p, listener, pidfd, this.cred);
      } catch (err) {
        this.handler.abandon(p);
        throw err;
      }
      this.done = true;
      this.appId = id;
      // GO only once the app is on disk: a daemon that dies right after must still know
      // the app when its launcher comes back, or the launcher would have to stop it.
      void this.handler.persisted().then(() => {
        if (!this.closed) this.send(`APP ${id}\nGO\n`);
      });
      return listener;
    }
    if (/^SSW1 (FD|REATTACH [0-9a-f]{1,32}) [0-9]+$/.test(line))
      throw new Error(
        "this launcher is older than the daemon (it names the app by pid); use the sockswitch-launch of the daemon's version",
      );
    const re = /^SSW1 REATTACH ([0-9a-f]{1,32})$/.exec(line);
    if (re && this.pending === null) {
      const [listener, pidfd] = fds;
      if (listener === undefined || pidfd === undefined || fds.length !== 2)
        throw fdsMissing("REATTACH", fds.length);
      this.handler.reattach(re[1] as string, listener, pidfd, this.cred);
      this.done = true;
      this.appId = re[1] as string;
      this.send("GO\n");
      return listener;
    }
    throw new Error(`unexpected handshake line "${line.slice(0, 40)}"`);
  }

  private closeFds(fds: readonly number[]): void {
    for (const f of fds) this.addon.closeShared(f); // anything a peer sent: never wait on it
  }

  private send(text: string): void {
    const b = Buffer.from(text);
    const n = this.addon.send(this.fd, b, b.length);
    if (n !== b.length) this.log.warn({ errno: n < 0 ? -n : 0 }, "short write to a launcher");
  }

  private reject(message: string, kind: "ERR" | "USAGE" = "ERR"): void {
    this.log.warn({ launcher: this.cred.pid, reason: message }, "launcher handshake refused");
    this.send(`${kind} ${message.replace(/\n/g, " ")}\n`);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.deadline) clearTimeout(this.deadline);
    if (this.pending) this.handler.abandon(this.pending);
    this.pending = null;
    this.addon.unwatch(this.handle);
    this.closeFds(this.lines.drain());
    this.addon.close(this.fd);
    this.onClose();
  }
}

/**
 * A handshake message that came without its two fds. The kernel drops the fds of a message
 * (SCM_RIGHTS, MSG_CTRUNC) when the receiver's fd table is full: then that is what to fix.
 */
function fdsMissing(message: string, got: number): Error {
  try {
    if (readdirSync("/proc/self/fd").length >= descriptorLimit() - 8) return outOfDescriptors();
  } catch (err) {
    if (isOutOfDescriptors(err)) return outOfDescriptors();
  }
  return new Error(
    `the ${message} message needs exactly two fds (it had ${got}): the seccomp listener and a pidfd of the app`,
  );
}
