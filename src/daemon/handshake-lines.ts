// Splits the launcher's byte stream into lines and gives each fd received (SCM_RIGHTS) to
// the line it was sent with. Linux ends a stream read at the end of a message that carried
// fds (unix(7); net/unix/af_unix.c, unix_stream_read_generic), so the fds of a read belong
// to the line that holds the read's last byte: the last line completed by the read when it
// ends with "\n", or else the line still being received (a message longer than one read).
// Pure logic: the caller closes the fds of lines it refuses and of drain().

/** A complete line (without its "\n") and the fds that came with it. */
export interface HandshakeLine {
  readonly line: string;
  readonly fds: number[];
}

export class LineAssembler {
  private buf = Buffer.alloc(0);
  /** fds received with the line at the end of the buffer, not complete yet. */
  private held: number[] = [];

  constructor(private readonly maxLine: number) {}

  /** Bytes buffered, not yet a complete line. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Adds one read (its bytes and fds); returns the lines it completes, or null when the
   * line being received is over maxLine (every fd is then returned by drain()). */
  push(bytes: Uint8Array, fds: readonly number[]): HandshakeLine[] | null {
    this.buf = Buffer.concat([this.buf, bytes]);
    this.held.push(...fds);
    const lines: HandshakeLine[] = [];
    let nl = this.buf.indexOf(10);
    while (nl !== -1) {
      const line = this.buf.subarray(0, nl).toString("utf8");
      this.buf = this.buf.subarray(nl + 1);
      // The held fds go with the line that holds the read's last byte.
      const last = this.buf.length === 0;
      lines.push({ line, fds: last ? this.held.splice(0) : [] });
      nl = this.buf.indexOf(10);
    }
    if (this.buf.length > this.maxLine) {
      this.held.push(...lines.flatMap((l) => l.fds));
      return null;
    }
    return lines;
  }

  /** Takes every fd still held (the connection ends); they are the caller's to close. */
  drain(): number[] {
    this.buf = Buffer.alloc(0);
    return this.held.splice(0);
  }
}
