// The kernel's socket list through NETLINK_SOCK_DIAG (sock_diag(7)), filtered by state in
// the kernel: the reconcile pass asks only for listening TCP and all UDP sockets, so that a
// host busy with short connections (hundreds of thousands of TIME_WAIT sockets) costs it
// nothing. Records come from the addon's sockDiag; the shape is proc-net's KernelSocket.
// lookupSocket asks the kernel for the one socket at an address pair, now (the addon's
// sockLookup): what admission checks a recorded client against.

import type { Logger } from "pino";
import { messageOf } from "../core/errors.js";
import type { Addon } from "../native/addon.js";
import type { Proto } from "../table/types.js";
import { formatV4, formatV6, type IpAddr, isV4MappedBytes } from "./ip.js";
import { type KernelSocket, kernelSockets, TCP_STATES } from "./proc-net.js";
import { AF_INET, AF_INET6 } from "./sockaddr.js";

const RECORD = 56;
const TCP_LISTEN = 10;
const TCP_TIME_WAIT = 6;
const ALL_STATES = 0xffffffff;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const ENOBUFS = 105;
const MAX_BUFFER = 64 * 1024 * 1024;

function address(family: number, rec: Uint8Array, off: number): string {
  if (family === AF_INET) return formatV4(rec, off);
  const b = rec.subarray(off, off + 16);
  return isV4MappedBytes(b) ? formatV4(b, 12) : formatV6(b);
}

/** The cookie at offset 48 of a record (exact below 2^53: the kernel counts up from 1). */
function cookieOf(view: DataView, off: number): number {
  return view.getUint32(off + 48, true) + view.getUint32(off + 52, true) * 0x100000000;
}

export class SockDiag {
  private buf = new Uint8Array(RECORD * 1024);

  constructor(private readonly addon: Addon) {}

  /** Sockets of one protocol, both families, in `states` (a bit per TCP state number). */
  private dump(proto: Proto, states: number): KernelSocket[] {
    const out: KernelSocket[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      let n: number;
      for (;;) {
        const protocol = proto === "tcp" ? IPPROTO_TCP : IPPROTO_UDP;
        n = this.addon.sockDiag(family, protocol, states, this.buf);
        if (n !== -ENOBUFS || this.buf.length >= MAX_BUFFER) break;
        this.buf = new Uint8Array(this.buf.length * 4);
      }
      if (n < 0) throw new Error(`sock_diag dump of ${proto} (family ${family}) failed: errno ${-n}`);
      const view = new DataView(this.buf.buffer, this.buf.byteOffset);
      for (let i = 0; i < n; i++) {
        const off = i * RECORD;
        const rec = this.buf.subarray(off, off + RECORD);
        const st = rec[1] as number;
        out.push({
          proto,
          localIp: address(family, rec, 16),
          localPort: view.getUint16(off + 2),
          remoteIp: address(family, rec, 32),
          remotePort: view.getUint16(off + 4),
          state: proto === "tcp" ? (TCP_STATES[st] ?? String(st)) : st === 1 ? "CONNECTED" : "BOUND",
          inode: view.getUint32(off + 8, true),
          cookie: cookieOf(view, off),
        });
      }
    }
    return out;
  }

  /** Listening TCP sockets and every UDP socket: what the reconcile pass checks. */
  listeningAndUdp(): KernelSocket[] {
    return [...this.dump("tcp", 1 << TCP_LISTEN), ...this.dump("udp", ALL_STATES)];
  }

  /**
   * Every socket but TIME_WAIT ones (they belong to no process any more): what a restarted
   * daemon rebuilds its records from.
   */
  allButTimeWait(): KernelSocket[] {
    return [...this.dump("tcp", (ALL_STATES & ~(1 << TCP_TIME_WAIT)) >>> 0), ...this.dump("udp", ALL_STATES)];
  }
}

/** One socket as the kernel's exact lookup found it. */
export interface FoundSocket {
  readonly inode: number;
  readonly cookie: number;
}

const found = new Uint8Array(RECORD);
const foundView = new DataView(found.buffer);
const src = new Uint8Array(16);
const dst = new Uint8Array(16);

/** An address as sock_diag wants it: 16 bytes, IPv4 in the first 4. */
function put(out: Uint8Array, ip: IpAddr): void {
  out.fill(0);
  out.set(ip.bytes);
}

/**
 * The socket of this host whose own address is `local` and which talks to `remote` (TCP:
 * the connection local → remote, in any state but listening; UDP: the socket a datagram
 * from remote to local reaches, connected or bound), or null when there is none now;
 * -errno when the kernel cannot be asked. Both addresses of one family (IPv4 for an
 * IPv4-mapped socket). sock_diag(7), an exact lookup (no dump); no allocation.
 */
export function lookupSocket(
  addon: Addon,
  proto: Proto,
  local: IpAddr,
  localPort: number,
  remote: IpAddr,
  remotePort: number,
): FoundSocket | null | number {
  const family = local.family === 4 ? AF_INET : AF_INET6;
  let r: number;
  if (proto === "tcp") {
    put(src, local);
    put(dst, remote);
    r = addon.sockLookup(family, IPPROTO_TCP, src, localPort, dst, remotePort, found);
  } else {
    // udp_diag looks a socket up as for a packet: from idiag_src to idiag_dst.
    put(src, remote);
    put(dst, local);
    r = addon.sockLookup(family, IPPROTO_UDP, src, remotePort, dst, localPort, found);
  }
  if (r < 0) return r;
  if (r === 0) return null;
  return { inode: foundView.getUint32(8, true), cookie: cookieOf(foundView, 0) };
}

/** The two lists the daemon reads, whichever way this kernel offers them. */
export interface KernelLists {
  listeningAndUdp(): Promise<KernelSocket[]>;
  allButTimeWait(): Promise<KernelSocket[]>;
}

/**
 * sock_diag, or /proc/net (every socket, TIME_WAIT included, parsed as text) where this
 * kernel has no inet sock_diag (or useDiag is false: the probe says so) — said once, at start.
 */
export function kernelLists(addon: Addon, log: Logger, useDiag = true): KernelLists {
  const diag = new SockDiag(addon);
  try {
    if (!useDiag) throw new Error("sock_diag is hidden (SOCKSWITCH_TEST_HIDE_FEATURES)");
    diag.listeningAndUdp();
    return {
      listeningAndUdp: async () => diag.listeningAndUdp(),
      allButTimeWait: async () => diag.allButTimeWait(),
    };
  } catch (err) {
    log.warn({ err: messageOf(err) }, "sock_diag is not available; reading /proc/net instead (slower)");
    return { listeningAndUdp: kernelSockets, allButTimeWait: kernelSockets };
  }
}
