// IP addresses as the daemon keys them: canonical text ("10.1.2.3", "fd00::5", RFC 5952 for
// IPv6) so that tables can use plain string keys, and 4/16-byte forms for the wire. An
// IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address for every lookup.

export type Family = 4 | 6;

export interface IpAddr {
  readonly family: Family;
  /** Canonical text form. */
  readonly text: string;
  readonly bytes: Uint8Array;
}

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4Bytes(text: string): Uint8Array | null {
  const m = V4_RE.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1] as string;
    if (part.length > 1 && part.startsWith("0")) return null; // no octal-looking parts
    const n = Number(part);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6Bytes(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  let head = text;
  let tailV4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.indexOf(".", lastColon) !== -1) {
    tailV4 = parseV4Bytes(text.slice(lastColon + 1));
    if (!tailV4) return null;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === "") return [];
    const groups: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      groups.push(Number.parseInt(g, 16));
    }
    return groups;
  };
  const left = parseGroups(halves[0] as string);
  const right = halves.length === 2 ? parseGroups(halves[1] as string) : [];
  if (!left || !right) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return null;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tailV4) out.set(tailV4, 12);
  return out;
}

export function formatV4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text of 16 bytes at off; IPv4-mapped addresses print as ::ffff:a.b.c.d. */
export function formatV6(b: Uint8Array, off = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[off + i * 2] as number) << 8) | (b[off + i * 2 + 1] as number));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatV4(b, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function isV4MappedBytes(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** Parses an IP address; IPv4-mapped IPv6 becomes IPv4. Returns null when malformed. */
export function parseIp(text: string): IpAddr | null {
  const v4 = parseV4Bytes(text);
  if (v4) return { family: 4, text: formatV4(v4), bytes: v4 };
  const v6 = parseV6Bytes(text);
  if (!v6) return null;
  if (isV4MappedBytes(v6)) {
    const b = v6.slice(12);
    return { family: 4, text: formatV4(b), bytes: b };
  }
  return { family: 6, text: formatV6(v6), bytes: v6 };
}

export function ipFromBytes(bytes: Uint8Array): IpAddr {
  if (bytes.length === 4) return { family: 4, text: formatV4(bytes), bytes };
  if (isV4MappedBytes(bytes)) {
    const b = bytes.slice(12);
    return { family: 4, text: formatV4(b), bytes: b };
  }
  return { family: 6, text: formatV6(bytes), bytes };
}

export function isUnspecified(text: string): boolean {
  return text === "0.0.0.0" || text === "::";
}

export function isLoopback(text: string): boolean {
  return text.startsWith("127.") || text === "::1";
}

/** "ip:port", with brackets for IPv6. */
export function formatHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}
