// One trapped system call as the kernel reported it (struct seccomp_notif, seccomp_unotify(2)).
// The addon fills a shared Uint32Array; handlers copy what they need out of it before any
// wait, because the next notification reuses the buffer.

export const NOTIF_WORDS = 18;

export class Notification {
  readonly idLo: number;
  readonly idHi: number;
  /** Thread id of the trapped thread, in the daemon's pid namespace. */
  readonly pid: number;
  readonly nr: number;
  private readonly args: Uint32Array;

  constructor(buf: Uint32Array) {
    this.idLo = buf[0] as number;
    this.idHi = buf[1] as number;
    this.pid = buf[2] as number;
    this.nr = buf[3] as number;
    this.args = buf.slice(6, 18);
  }

  /** Argument i as a C int (sign-extended low 32 bits). */
  int(i: number): number {
    return (this.args[i * 2] as number) | 0;
  }

  /** Argument i as an unsigned 32-bit value (flags, lengths). */
  uint(i: number): number {
    return this.args[i * 2] as number;
  }

  /** Argument i as a pointer (exact below 2^53, which covers every user address). */
  ptr(i: number): number {
    return (this.args[i * 2] as number) + (this.args[i * 2 + 1] as number) * 0x100000000;
  }
}
