// systemd's readiness protocol (sd_notify(3), Type=notify): one datagram of newline-separated
// VAR=VALUE assignments to the AF_UNIX datagram socket named by $NOTIFY_SOCKET ("READY=1",
// "STOPPING=1", "RELOADING=1", "STATUS=…"). Node's dgram module has no AF_UNIX datagram
// sockets, so the send is the addon's socket(2) and sendmsg(2); it never blocks (MSG_DONTWAIT).
// A path that starts with "@" is in the abstract namespace (unix(7)). Without $NOTIFY_SOCKET
// (not started by systemd) nothing is sent.

import type { Addon } from "../native/addon.js";

const SUN_PATH_MAX = 108;

/** struct sockaddr_un for path ("@name": abstract), and its length; null if it does not fit. */
export function unixSockaddr(path: string, afUnix: number): { addr: Buffer; len: number } | null {
  const abstract = path.startsWith("@");
  const name = Buffer.from(abstract ? path.slice(1) : path);
  const pathLen = abstract ? 1 + name.length : name.length + 1;
  if (name.length === 0 || pathLen > SUN_PATH_MAX) return null;
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(afUnix, 0);
  name.copy(addr, abstract ? 3 : 2);
  // Abstract names are exactly as long as given; a filesystem path ends with its NUL.
  return { addr, len: 2 + pathLen };
}

export class SdNotify {
  private readonly target: { addr: Buffer; len: number } | null;

  constructor(
    private readonly addon: Addon,
    socket = process.env.NOTIFY_SOCKET,
  ) {
    this.target = socket ? unixSockaddr(socket, addon.constants.AF_UNIX) : null;
  }

  /** Whether $NOTIFY_SOCKET named a usable socket. */
  get enabled(): boolean {
    return this.target !== null;
  }

  /** Sends the assignments ("READY=1", …): 0 when sent or not under systemd, else -errno. */
  send(...assignments: string[]): number {
    if (!this.target) return 0;
    const k = this.addon.constants;
    const fd = this.addon.socket(k.AF_UNIX, k.SOCK_DGRAM, 0);
    if (fd < 0) return fd;
    const data = Buffer.from(assignments.join("\n"));
    const rc = this.addon.sendmsg(
      fd,
      data,
      data.length,
      this.target.addr,
      this.target.len,
      Buffer.alloc(0),
      0,
      0,
    );
    this.addon.close(fd);
    return Math.min(rc, 0);
  }
}
