// The kernel's list of sockets in the daemon's network namespace (/proc/net/tcp, tcp6,
// udp, udp6; proc(5)): what `get sockets` joins with the registry, so that it shows only
// sockets that really exist, with their real state; and which sockets a process holds
// (/proc/PID/fd).

import { readdirSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Proto } from "../table/types.js";
import { formatV4, formatV6, isV4MappedBytes } from "./ip.js";

export interface KernelSocket {
  readonly proto: Proto;
  readonly localIp: string;
  readonly localPort: number;
  readonly remoteIp: string;
  readonly remotePort: number;
  readonly state: string;
  readonly inode: number;
  /** The socket's cookie (SO_COOKIE), when read through sock_diag; 0 from /proc/net. */
  readonly cookie?: number;
}

export const TCP_STATES = [
  "",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "NEW_SYN_RECV",
];

/** Decodes "0100007F:1F90" (each 32-bit word in host byte order, little-endian). */
function decodeAddr(text: string): { ip: string; port: number } {
  const [hex, portHex] = text.split(":") as [string, string];
  const words = hex.length / 8;
  const bytes = new Uint8Array(words * 4);
  for (let w = 0; w < words; w++) {
    const word = Number.parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    bytes[w * 4] = word & 0xff;
    bytes[w * 4 + 1] = (word >>> 8) & 0xff;
    bytes[w * 4 + 2] = (word >>> 16) & 0xff;
    bytes[w * 4 + 3] = (word >>> 24) & 0xff;
  }
  let ip: string;
  if (words === 1) ip = formatV4(bytes);
  else ip = isV4MappedBytes(bytes) ? formatV4(bytes, 12) : formatV6(bytes);
  return { ip, port: Number.parseInt(portHex, 16) };
}

export function parseProcNet(text: string, proto: Proto): KernelSocket[] {
  const out: KernelSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = decodeAddr(f[1] as string);
    const remote = decodeAddr(f[2] as string);
    const st = Number.parseInt(f[3] as string, 16);
    const state = proto === "tcp" ? (TCP_STATES[st] ?? String(st)) : st === 1 ? "CONNECTED" : "BOUND";
    out.push({
      proto,
      localIp: local.ip,
      localPort: local.port,
      remoteIp: remote.ip,
      remotePort: remote.port,
      state,
      inode: Number(f[9]),
    });
  }
  return out;
}

/** Every TCP and UDP socket of this network namespace. */
export async function kernelSockets(): Promise<KernelSocket[]> {
  const files: Array<[string, Proto]> = [
    ["/proc/net/tcp", "tcp"],
    ["/proc/net/tcp6", "tcp"],
    ["/proc/net/udp", "udp"],
    ["/proc/net/udp6", "udp"],
  ];
  const texts = await Promise.all(files.map(([f]) => readFile(f, "utf8").catch(() => "")));
  return texts.flatMap((t, i) => parseProcNet(t, (files[i] as [string, Proto])[1]));
}

/** Inodes of the sockets open in the given processes (their /proc/PID/fd links). */
export function openSocketInodes(pids: Iterable<number>): Set<number> {
  const out = new Set<number>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone meanwhile
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) out.add(Number(m[1]));
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}
