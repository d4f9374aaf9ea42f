// Where forwarded queries go: a --dns-upstream list, or the host's resolv.conf.
// Leaving out an address that is the daemon's own DNS server (it would forward to
// itself) is the caller's job: only it knows where it listens. resolv.conf(5).

import { readFileSync } from "node:fs";
import { isIP, isIPv6 } from "node:net";
import { InvalidArgumentError } from "../core/errors.js";
import type { Upstream } from "./forward.js";

const DNS_PORT = 53;

/**
 * Parses "IP[:port],…": IPv4 as 192.0.2.1 or 192.0.2.1:5353, IPv6 as [2001:db8::1]:5353,
 * [2001:db8::1] or bare 2001:db8::1 (port 53). Spaces around entries are allowed.
 */
export function parseDnsServers(list: string): Upstream[] {
  const out: Upstream[] = [];
  for (const raw of list.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    out.push(parseOne(entry));
  }
  return out;
}

function parseOne(entry: string): Upstream {
  let host = entry;
  let port = DNS_PORT;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    host = bracketed[1] ?? "";
    if (!isIPv6(host)) throw bad(entry);
    if (bracketed[2] !== undefined) port = portOf(bracketed[2], entry);
  } else if (!isIPv6(entry)) {
    const colon = entry.lastIndexOf(":");
    if (colon >= 0) {
      host = entry.slice(0, colon);
      port = portOf(entry.slice(colon + 1), entry);
    }
    if (isIP(host) !== 4) throw bad(entry);
  }
  return { host, port };
}

function portOf(text: string, entry: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw bad(entry);
  return port;
}

function bad(entry: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `DNS server "${entry}" is not an address; write IP or IP:port, IPv6 as [addr] or [addr]:port, separated by commas`,
  );
}

/**
 * The nameserver lines of a resolv.conf, in order, port 53 (the format has no port).
 * A missing file gives none; a line that does not hold an IP address is skipped, as the
 * C library skips it.
 */
export function readResolvConf(path = "/etc/resolv.conf"): Upstream[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: Upstream[] = [];
  for (const line of text.split("\n")) {
    const words = line
      .replace(/[#;].*$/, "")
      .trim()
      .split(/\s+/);
    if (words[0] !== "nameserver" || words[1] === undefined) continue;
    if (isIP(words[1]) === 0) continue;
    out.push({ host: words[1], port: DNS_PORT });
  }
  return out;
}
