// struct sockaddr_in / sockaddr_in6 as the kernel lays them out (ip(7), ipv6(7)): decoding
// what an app passed to a trapped call, and encoding what it should see. Byte order: family
// in host order (little-endian on the machines we run on), port and addresses in network
// order. Checks follow the kernel's so that a malformed address gets the kernel's errno.

import { constants } from "node:os";
import { formatV4, formatV6, type IpAddr, ipFromBytes, isV4MappedBytes } from "./ip.js";

export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCKADDR_IN_LEN = 16;
export const SOCKADDR_IN6_LEN = 28;
/** The shortest sockaddr_in6 the kernel accepts (without sin6_scope_id). */
export const SIN6_LEN_RFC2133 = 24;
export const SOCKADDR_MAX = 128;

const E = constants.errno;

export interface SockAddr {
  ip: IpAddr;
  port: number;
}

/** Result of decoding: an address, AF_UNSPEC (disconnect), or a positive errno. */
export type Decoded = SockAddr | "unspec" | number;

/**
 * Decodes the address an app passed for a socket of `domain`, with the kernel's checks.
 * A sockaddr_in6 carrying an IPv4-mapped address decodes to the IPv4 address. v4OnV6 accepts
 * a sockaddr_in on an AF_INET6 socket, as the kernel does for a UDP connect only.
 */
export function decodeSockaddr(domain: number, buf: Uint8Array, len: number, v4OnV6 = false): Decoded {
  if (len < 2) return E.EINVAL;
  const family = (buf[0] as number) | ((buf[1] as number) << 8);
  if (family === AF_UNSPEC) return "unspec";
  if (domain === AF_INET) {
    if (len < SOCKADDR_IN_LEN) return E.EINVAL;
    if (family !== AF_INET) return E.EAFNOSUPPORT;
    return { ip: ipFromBytes(buf.slice(4, 8)), port: ((buf[2] as number) << 8) | (buf[3] as number) };
  }
  if (domain === AF_INET6) {
    // Only a UDP connect takes a sockaddr_in on an AF_INET6 socket (ip6_datagram_connect).
    if (family === AF_INET && v4OnV6) {
      if (len < SOCKADDR_IN_LEN) return E.EINVAL;
      return { ip: ipFromBytes(buf.slice(4, 8)), port: ((buf[2] as number) << 8) | (buf[3] as number) };
    }
    if (len < SIN6_LEN_RFC2133) return E.EINVAL;
    if (family !== AF_INET6) return E.EAFNOSUPPORT;
    return { ip: ipFromBytes(buf.slice(8, 24)), port: ((buf[2] as number) << 8) | (buf[3] as number) };
  }
  return E.EAFNOSUPPORT;
}

/**
 * Writes addr as the sockaddr an app of socket `domain` expects (IPv4 on an AF_INET6 socket
 * becomes IPv4-mapped) into out; returns its length.
 */
export function encodeSockaddr(domain: number, ip: IpAddr, port: number, out: Uint8Array): number {
  if (domain === AF_INET) {
    out.fill(0, 0, SOCKADDR_IN_LEN);
    out[0] = AF_INET;
    out[2] = port >> 8;
    out[3] = port & 0xff;
    if (ip.family === 4) out.set(ip.bytes, 4);
    return SOCKADDR_IN_LEN;
  }
  out.fill(0, 0, SOCKADDR_IN6_LEN);
  out[0] = AF_INET6;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  if (ip.family === 6) {
    out.set(ip.bytes, 8);
  } else {
    out[18] = 0xff;
    out[19] = 0xff;
    out.set(ip.bytes, 20);
  }
  return SOCKADDR_IN6_LEN;
}

/** Decodes a sockaddr the kernel returned (getsockname, getpeername) into ip text and port. */
export function readKernelSockaddr(buf: Uint8Array, len: number): { ip: string; port: number } | null {
  if (len < 2) return null;
  const family = (buf[0] as number) | ((buf[1] as number) << 8);
  const port = ((buf[2] as number) << 8) | (buf[3] as number);
  if (family === AF_INET && len >= SOCKADDR_IN_LEN) return { ip: formatV4(buf, 4), port };
  if (family === AF_INET6 && len >= SIN6_LEN_RFC2133) {
    return { ip: isV4MappedBytes(buf, 8) ? formatV4(buf, 20) : formatV6(buf, 8), port };
  }
  return null;
}
