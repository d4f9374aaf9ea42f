// Our own answers: the names of managed apps, from the daemon's name table. Pure: a
// question in, a decision out (answer it ourselves, or forward it upstream).
//
// What is ours:
// - NAME.DOMAIN (NAME one label): A/AAAA from the table, AA set. A name that exists but
//   has no address of the asked family, or is asked another type (MX, TXT…), gets NOERROR
//   with no answer; a name the table does not know gets NXDOMAIN. Both carry our SOA in
//   the authority section, so that resolvers cache the negative answer for the SOA's
//   minimum (RFC 2308). Anything deeper (a.b.DOMAIN) does not exist.
// - DOMAIN itself exists (it has an SOA) but holds no addresses.
// - A bare NAME (one label, no dots) that the table knows: answered like NAME.DOMAIN.
//   A bare name that the table does not know is forwarded upstream unchanged, not
//   answered NXDOMAIN: glibc and musl try the search list (our DOMAIN, in the resolv.conf
//   we give apps) before a single-label name anyway, so a bare query reaches us only from
//   a client that asks it literally (dig web, a resolver without our search list), and
//   the upstream may know it (a site's own single-label names). Known names never leave.
// Everything else, names outside DOMAIN and any class but IN/ANY outside it, is forwarded.
// The TTL is short: an app's addresses follow it as it comes and goes.

import { isIPv4, isIPv6 } from "node:net";
import type { Answer } from "dns-packet";
import { InvalidArgumentError } from "../core/errors.js";
import { QCLASS, QTYPE, type Question, RCODE } from "./wire.js";

export interface DnsAddresses {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/**
 * The daemon's name table: a bare name (lower case, no domain) to its addresses, as the
 * client asking may see them (client: what the server's admit() said about the asker;
 * null when the server admits everyone).
 */
export type DnsLookup = (name: string, client: string | null) => DnsAddresses | undefined;

export interface Zone {
  /** Lower case, no trailing dot, e.g. "sockswitch.local". */
  readonly domain: string;
  readonly ttl: number;
  readonly lookup: DnsLookup;
}

export type ZoneDecision =
  | { readonly kind: "forward" }
  | {
      readonly kind: "answer";
      readonly rcode: number;
      readonly authoritative: boolean;
      readonly answers: Answer[];
      readonly authorities: Answer[];
    };

const FORWARD: ZoneDecision = { kind: "forward" };
/** An RFC 1123 label: what app names are (see table/app-spec.ts), in any case. */
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Checks and normalizes a --dns-domain value. */
export function normalizeDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, "");
  const labels = d.split(".");
  if (d.length > 253 || !labels.every((l) => LABEL.test(l))) {
    throw new InvalidArgumentError(
      `DNS domain "${domain}" is not a valid domain name; use labels of letters, digits and '-' joined by dots, e.g. sockswitch.local`,
    );
  }
  return d;
}

export function decide(q: Question, zone: Zone, client: string | null = null): ZoneDecision {
  // Labels that are not plain LDH (a '.' inside one, binary bytes) are never ours.
  if (q.labels.length === 0 || !q.labels.every((l) => LABEL.test(l))) return FORWARD;
  const labels = q.labels.map((l) => l.toLowerCase());
  const domain = zone.domain.split(".");
  const inDomain =
    labels.length >= domain.length && domain.every((l, i) => labels[labels.length - domain.length + i] === l);

  if (!inDomain) {
    if (labels.length !== 1) return FORWARD;
    if (q.qclass !== QCLASS.IN && q.qclass !== QCLASS.ANY) return FORWARD;
    const addrs = zone.lookup(labels[0] ?? "", client);
    if (!addrs) return FORWARD;
    // Not our zone (it sits under the root), so no SOA to cite for an empty answer.
    return { ...records(q, addrs, zone.ttl), authoritative: true, authorities: [] };
  }

  const soa = [soaRecord(zone)];
  if (q.qclass !== QCLASS.IN && q.qclass !== QCLASS.ANY) return refuse();
  if (q.qtype === QTYPE.AXFR || q.qtype === QTYPE.IXFR) return refuse();
  const rest = labels.slice(0, labels.length - domain.length);
  if (rest.length === 0) {
    // The apex: it has an SOA, and nothing else.
    if (q.qtype === QTYPE.SOA || q.qtype === QTYPE.ANY) {
      return { kind: "answer", rcode: RCODE.NOERROR, authoritative: true, answers: soa, authorities: [] };
    }
    return { kind: "answer", rcode: RCODE.NOERROR, authoritative: true, answers: [], authorities: soa };
  }
  const addrs = rest.length === 1 ? zone.lookup(rest[0] ?? "", client) : undefined;
  if (!addrs) {
    return { kind: "answer", rcode: RCODE.NXDOMAIN, authoritative: true, answers: [], authorities: soa };
  }
  const found = records(q, addrs, zone.ttl);
  return { ...found, authoritative: true, authorities: found.answers.length === 0 ? soa : [] };
}

function refuse(): ZoneDecision {
  return { kind: "answer", rcode: RCODE.REFUSED, authoritative: false, answers: [], authorities: [] };
}

/** The A and/or AAAA records a question asks for; none (NOERROR) for another type. */
function records(
  q: Question,
  addrs: DnsAddresses,
  ttl: number,
): { kind: "answer"; rcode: number; answers: Answer[] } {
  // The owner name is the question's, case and all (resolvers using 0x20 compare it).
  const name = q.name;
  const answers: Answer[] = [];
  if (q.qtype === QTYPE.A || q.qtype === QTYPE.ANY) {
    for (const ip of addrs.v4) if (isIPv4(ip)) answers.push({ type: "A", name, ttl, data: ip });
  }
  if (q.qtype === QTYPE.AAAA || q.qtype === QTYPE.ANY) {
    for (const ip of addrs.v6) if (isIPv6(ip)) answers.push({ type: "AAAA", name, ttl, data: ip });
  }
  return { kind: "answer", rcode: RCODE.NOERROR, answers };
}

function soaRecord(zone: Zone): Answer {
  return {
    type: "SOA",
    name: zone.domain,
    ttl: zone.ttl,
    data: {
      mname: `ns.${zone.domain}`,
      rname: `hostmaster.${zone.domain}`,
      // Constant: nothing transfers this zone, and a changing serial would only mislead.
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      // The negative-caching TTL (RFC 2308 §4): as short as the positive one.
      minimum: zone.ttl,
    },
  };
}
