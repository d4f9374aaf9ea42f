// The bytes of the bpf datapath's maps and events (native/bpf/datapath.h: change both
// together). Addresses are 16 bytes, IPv4 as IPv4-mapped; ports in records are host order
// (little-endian here), as the programs use them. Pure encoders and decoders.

import { formatV4, formatV6, isV4MappedBytes, parseIp } from "../net/ip.js";
import type { Proto } from "../table/types.js";

export const LABEL_WORDS = 4;
export const MAX_BACKENDS = 32;
export const EV_BIND = 1;
export const EV_LISTEN = 2;
export const EV_DENIED_POLICY = 3;
export const EV_DENIED_EGRESS = 4;
export const EV_DENIED_POOL = 5;
export const EV_UDP_CONNECTED = 6;
export const EV_DENIED_PEER = 7;
export const EV_BLOCK_FULL = 8;
export const SK_BOUND = 1;
export const SK_LOOPBACK = 2;
/** The app's binds and listens are trapped: the daemon carries them out (datapath.h). */
export const SK_TRAPPED = 16;
/** The daemon's registration socket: its bind records the daemon's tgid. */
export const SK_REGISTER = 32;
/** Bound to an --expose host port: admits anyone (datapath.h). */
export const SK_EXPOSED = 64;
export const EVENT_SIZE = 64;

const PROTO: Record<Proto, number> = { tcp: 6, udp: 17 };

/** An address as the programs key it: 16 bytes, IPv4-mapped for IPv4. */
export function addr16(text: string, out = new Uint8Array(16), off = 0): Uint8Array {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP address: ${text}`);
  out.fill(0, off, off + 16);
  if (ip.family === 4) {
    out[off + 10] = 0xff;
    out[off + 11] = 0xff;
    out.set(ip.bytes, off + 12);
  } else out.set(ip.bytes, off);
  return out;
}

/** The text of a 16-byte address (an IPv4-mapped one as IPv4). */
export function addrText(b: Uint8Array, off = 0): string {
  const a = b.subarray(off, off + 16);
  return isV4MappedBytes(a) ? formatV4(a, 12) : formatV6(a);
}

/** struct ssw_svc_key (24 bytes): a virtual ip:port (scope 0) or an app's private one. */
export function svcKey(proto: Proto, ip: string, port: number, scope = 0): Uint8Array {
  const k = new Uint8Array(24);
  addr16(ip, k, 0);
  const v = new DataView(k.buffer);
  v.setUint16(16, port, true);
  k[18] = PROTO[proto];
  v.setUint32(20, scope, true);
  return k;
}

/** struct ssw_svc (16 bytes); preferLocal: among allowed backends, this node's while there are any. */
export function svcValue(count: number, random: boolean, preferLocal = false): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setUint32(0, count, true);
  v.setUint32(4, random ? 1 : 0, true);
  v.setUint32(12, preferLocal ? 1 : 0, true);
  return out;
}

/** struct ssw_be_key (32 bytes). */
export function backendKey(svc: Uint8Array, slot: number): Uint8Array {
  const k = new Uint8Array(32);
  k.set(svc, 0);
  new DataView(k.buffer).setUint32(24, slot, true);
  return k;
}

/** struct ssw_be (56 bytes): where a backend listens, and its labels' bits; local: on this node. */
export function backendValue(
  hostIp: string,
  hostPort: number,
  labels: readonly bigint[],
  local = true,
): Uint8Array {
  const out = new Uint8Array(56);
  addr16(hostIp, out, 0);
  const v = new DataView(out.buffer);
  v.setUint16(16, hostPort, true);
  v.setUint16(18, local ? 1 : 0, true);
  labels.forEach((w, i) => {
    v.setBigUint64(24 + 8 * i, w, true);
  });
  return out;
}

/** The app's source-port block is applied by the programs' bind (no IP_LOCAL_PORT_RANGE). */
export const APP_BLOCK_BIND = 4;

/**
 * struct ssw_app (80 bytes): an app's addresses and labels' bits, its source-port block
 * (null: none) and flags (APP_BLOCK_BIND).
 */
export function appValue(
  ips: readonly string[],
  labels: readonly bigint[],
  block: { readonly first: number; readonly last: number } | null = null,
  extra = 0,
): Uint8Array {
  const out = new Uint8Array(80);
  let flags = 0;
  for (const ip of ips) {
    const fam = parseIp(ip)?.family;
    if (fam === 4 && !(flags & 1)) {
      addr16(ip, out, 0);
      flags |= 1;
    } else if (fam === 6 && !(flags & 2)) {
      addr16(ip, out, 16);
      flags |= 2;
    }
  }
  const v = new DataView(out.buffer);
  v.setUint32(32, flags | extra, true);
  labels.forEach((w, i) => {
    v.setBigUint64(40 + 8 * i, w, true);
  });
  if (block) {
    v.setUint16(72, block.first, true);
    v.setUint16(74, block.last, true);
  }
  return out;
}

/** struct ssw_host_key (20 bytes): a host ip:port (proto 0: any, as a block's ports are). */
export function hostKey(ip: string, port: number, proto = 0): Uint8Array {
  const k = new Uint8Array(20);
  addr16(ip, k, 0);
  new DataView(k.buffer).setUint16(16, port, true);
  k[18] = proto;
  return k;
}

/** struct ssw_client (40 bytes) of a UDP socket bound at a host address: the virtual ip:port it shows. */
export function boundValue(vip: string, vport: number, app = 0): Uint8Array {
  const out = new Uint8Array(40);
  addr16(vip, out, 0);
  const v = new DataView(out.buffer);
  v.setUint16(32, vport, true);
  v.setUint32(36, app, true);
  return out;
}

/** struct ssw_range (8 bytes): a node's client-port range. */
export function rangeValue(first: number, last: number): Uint8Array {
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  v.setUint32(0, first, true);
  v.setUint32(4, last, true);
  return out;
}

/** struct ssw_sock (48 bytes), as the daemon stamps a new socket: its app's index and flags. */
export function sockValue(app: number, out = new Uint8Array(48), flags = 0): Uint8Array {
  out.fill(0);
  const v = new DataView(out.buffer, out.byteOffset);
  v.setUint32(0, app, true);
  v.setUint32(4, flags, true);
  return out;
}

/**
 * struct ssw_sock of a socket the daemon binds for the app's bind of vip:vport (flags
 * SK_BOUND and the given ones): what getsockname, connect and recvmsg show of it.
 */
export function boundSockValue(
  app: number,
  flags: number,
  vip: string,
  vport: number,
  out = new Uint8Array(48),
): Uint8Array {
  sockValue(app, out, flags | SK_BOUND);
  addr16(vip, out, 8);
  new DataView(out.buffer, out.byteOffset).setUint16(40, vport, true);
  return out;
}

export interface DatapathConfig {
  readonly egressDeny: boolean;
  readonly refusePort: number;
  readonly pool: { readonly first: number; readonly last: number };
  readonly nodeIp: string;
  readonly nodeIp6: string | null;
  readonly dns: { readonly vip: string; readonly hostIp: string; readonly hostPort: number } | null;
  /** --vip-cidr when it is IPv4: network and mask, as bytes. */
  readonly vipNet4: Uint8Array | null;
  readonly vipMask4: Uint8Array | null;
}

/** struct ssw_config (96 bytes). */
export function configValue(c: DatapathConfig): Uint8Array {
  const out = new Uint8Array(96);
  const v = new DataView(out.buffer);
  v.setUint32(0, c.egressDeny ? 1 : 0, true);
  v.setUint32(4, c.refusePort, true);
  v.setUint32(8, c.pool.first, true);
  v.setUint32(12, c.pool.last, true);
  addr16(c.nodeIp, out, 16);
  addr16(c.nodeIp6 ?? "::", out, 32);
  if (c.dns) {
    addr16(c.dns.vip, out, 48);
    addr16(c.dns.hostIp, out, 64);
    v.setUint32(80, c.dns.hostPort, true);
  }
  if (c.vipNet4 && c.vipMask4) {
    out.set(c.vipNet4, 84);
    out.set(c.vipMask4, 88);
  }
  return out;
}

/** struct ssw_event, decoded. */
export interface DatapathEvent {
  readonly kind: number;
  readonly app: number;
  readonly vip: string;
  readonly host: string;
  readonly vport: number;
  readonly hostPort: number;
  readonly flags: number;
  readonly family: number;
  /** The socket's cookie (EV_UDP_CONNECTED, and the events that carry one); else 0. */
  readonly cookie: number;
}

export function decodeEvent(b: Uint8Array, off: number): DatapathEvent {
  const v = new DataView(b.buffer, b.byteOffset + off);
  return {
    kind: v.getUint32(0, true),
    app: v.getUint32(4, true),
    vip: addrText(b, off + 8),
    host: addrText(b, off + 24),
    vport: v.getUint16(40, true),
    hostPort: v.getUint16(42, true),
    flags: v.getUint32(44, true),
    family: v.getUint32(48, true),
    cookie: Number(v.getBigUint64(56, true)),
  };
}

/**
 * Label bits: each distinct key=value gets a bit (LABEL_WORDS × 64 in all), so that "shares a
 * label" (table/policy.ts) is a bitwise AND in the kernel. Bits are never reused while the
 * daemon runs; null when they are used up (the caller fails closed and says so).
 */
export class LabelBits {
  private readonly bits = new Map<string, number>();

  of(labels: Readonly<Record<string, string>>): bigint[] | null {
    const words = new Array<bigint>(LABEL_WORDS).fill(0n);
    for (const [k, val] of Object.entries(labels)) {
      const key = `${k}=${val}`;
      let bit = this.bits.get(key);
      if (bit === undefined) {
        if (this.bits.size >= LABEL_WORDS * 64) return null;
        bit = this.bits.size;
        this.bits.set(key, bit);
      }
      words[bit >> 6] = (words[bit >> 6] as bigint) | (1n << BigInt(bit & 63));
    }
    return words;
  }
}
