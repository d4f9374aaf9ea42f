// CIDR blocks: parsing, membership, and walking the addresses of a block (for the pool of
// automatically assigned virtual IPs).

import { InvalidArgumentError } from "../core/errors.js";
import { type Family, type IpAddr, ipFromBytes, parseIp } from "./ip.js";

export interface Cidr {
  readonly family: Family;
  readonly base: Uint8Array;
  readonly prefix: number;
  readonly text: string;
}

export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!ip)
    throw new InvalidArgumentError(`"${text}" is not a CIDR block; write it like 10.77.0.0/16 or fd77::/64`);
  const max = ip.family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max) {
    throw new InvalidArgumentError(`"${text}" has a bad prefix length; it must be 0 to ${max}`);
  }
  const base = ip.bytes.slice();
  for (let bit = prefix; bit < max; bit++) base[bit >> 3] = (base[bit >> 3] as number) & ~(0x80 >> (bit & 7));
  return { family: ip.family, base, prefix, text: `${ipFromBytes(base).text}/${prefix}` };
}

export function cidrContains(cidr: Cidr, ip: IpAddr): boolean {
  if (ip.family !== cidr.family) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (ip.bytes[i] !== cidr.base[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((ip.bytes[full] as number) & mask) === cidr.base[full];
}

/** The address at offset n inside the block (n counts from the base address). */
export function cidrNth(cidr: Cidr, n: number): IpAddr | null {
  const max = cidr.family === 4 ? 32 : 128;
  const hostBits = max - cidr.prefix;
  if (n < 0 || (hostBits < 48 && n >= 2 ** hostBits)) return null;
  const out = cidr.base.slice();
  let carry = n;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const sum = (out[i] as number) + (carry % 256);
    out[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum > 255 ? 1 : 0);
  }
  return ipFromBytes(out);
}

/** How many addresses the block has, capped at 2^48. */
export function cidrSize(cidr: Cidr): number {
  const hostBits = (cidr.family === 4 ? 32 : 128) - cidr.prefix;
  return hostBits >= 48 ? 2 ** 48 : 2 ** hostBits;
}
