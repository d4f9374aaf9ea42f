// Seeded generator of conformance sequences (issue "Kernel fidelity"): short call sequences
// of two apps over address family (IPv4, IPv6, IPv6 with IPv4-mapped addresses),
// IPV6_V6ONLY, the bound address (wildcard, the app's own virtual IP, the other app's,
// loopback), the port (0, fixed, a number inside the daemon's pool range),
// SO_REUSEADDR/SO_REUSEPORT, TCP and UDP, connected and unconnected UDP, bind before
// connect, two binds in either order, close then rebind. Each sequence is drawn from one of
// a few shapes that real programs have, with every choice random, so that most calls do
// something rather than fail early. Sequence i of seed S is the same on every run.

import { Rng } from "../fuzz/prng.js";
import type { Sequence, Step } from "./sequence.js";
import type { AppName, Call } from "./world.js";

type Family = 4 | 6;
type Type = "tcp" | "udp";

const OTHER: Record<AppName, AppName> = { A: "B", B: "A" };

/** Addresses an app may bind, by socket family (IPv4 symbols on AF_INET6 become mapped). */
function bindable(app: AppName, family: Family): string[] {
  const own =
    family === 4
      ? [`${app}4`, "any4", "lo4", "lo4b"]
      : [`${app}6`, "any6", "lo6", `${app}4m`, "any4m", "lo4m"];
  // Now and then the other app's address: EADDRNOTAVAIL.
  return [...own, ...own, family === 4 ? `${OTHER[app]}4` : `${OTHER[app]}6`];
}

/** Destinations a client of `family` in app `from` may dial for a server in app `to`. */
function dialable(from: AppName, to: AppName, family: Family): string[] {
  const loop = from === to ? (family === 4 ? ["lo4", "any4"] : ["lo6", "lo4m", "any6"]) : [];
  const vip = family === 4 ? [`${to}4`] : [`${to}6`, `${to}4m`];
  return [...vip, ...vip, ...loop];
}

class Builder {
  readonly steps: Step[] = [];
  private n = 0;

  constructor(readonly rng: Rng) {}

  call(app: AppName, call: Call): void {
    this.steps.push({ app, call });
  }

  /** A socket with random bind options; returns its name. */
  socket(app: AppName, family: Family, type: Type, opts: { v6only?: boolean } = {}): string {
    const s = `s${++this.n}`;
    const r = this.rng;
    this.call(app, { op: "socket", s, family, type });
    if (r.chance(0.5)) this.call(app, { op: "setsockopt", s, opt: "reuseaddr", val: 1 });
    if (r.chance(0.15)) this.call(app, { op: "setsockopt", s, opt: "reuseport", val: 1 });
    const v6only = opts.v6only ?? r.chance(0.5);
    if (family === 6 && v6only) this.call(app, { op: "setsockopt", s, opt: "v6only", val: 1 });
    return s;
  }

  name(): string {
    return `s${++this.n}`;
  }
}

const family = (r: Rng): Family => (r.chance(0.5) ? 4 : 6);

/** Two sockets of one app on one port, either order, maybe listening; maybe close and rebind. */
function bindPair(b: Builder, port: number): void {
  const r = b.rng;
  const app: AppName = r.pick(["A", "B"]);
  const type: Type = r.pick(["tcp", "udp"]);
  const f1 = family(r);
  const f2 = family(r);
  const a1 = r.pick(bindable(app, f1));
  const a2 = r.chance(0.3) && (f1 === f2 || f2 === 6) ? a1 : r.pick(bindable(app, f2));
  const s1 = b.socket(app, f1, type);
  const p1 = r.chance(0.25) ? 0 : port;
  b.call(app, { op: "bind", s: s1, addr: a1, port: p1 });
  const listen1 = type === "tcp" && r.chance(0.6);
  if (listen1) b.call(app, { op: "listen", s: s1 });
  b.call(app, { op: "getsockname", s: s1 });
  const s2 = b.socket(app, f2, type);
  const p2 = p1 === 0 && r.chance(0.5) ? { of: s1 } : r.chance(0.15) ? 0 : port;
  b.call(app, { op: "bind", s: s2, addr: f2 === 6 && a2.endsWith("4") ? `${a2}m` : a2, port: p2 });
  if (type === "tcp" && r.chance(0.6)) b.call(app, { op: "listen", s: s2 });
  if (!listen1 && type === "tcp" && r.chance(0.4)) b.call(app, { op: "listen", s: s1 });
  b.call(app, { op: "getsockname", s: s2 });
  if (r.chance(0.4)) {
    b.call(app, { op: "close", s: s1 });
    const s3 = b.socket(app, f1, type);
    b.call(app, { op: "bind", s: s3, addr: a1, port: p1 === 0 ? 0 : port });
    if (type === "tcp" && listen1) b.call(app, { op: "listen", s: s3 });
    b.call(app, { op: "getsockname", s: s3 });
  }
}

/** A TCP server (one or two listeners on a port) and a client that connects, talks, closes. */
function tcpExchange(b: Builder, port: number): void {
  const r = b.rng;
  const server: AppName = r.pick(["A", "B"]);
  const client: AppName = r.chance(0.25) ? server : OTHER[server];
  const fs = family(r);
  const l1 = b.socket(server, fs, "tcp");
  const as = r.pick(bindable(server, fs).slice(0, -1));
  const p = r.chance(0.2) ? 0 : port;
  b.call(server, { op: "bind", s: l1, addr: as, port: p });
  b.call(server, { op: "listen", s: l1 });
  const listeners = [l1];
  if (r.chance(0.35)) {
    // nginx's default site: the other family on the same port.
    const l2 = b.socket(server, fs === 4 ? 6 : 4, "tcp", { v6only: true });
    b.call(server, { op: "bind", s: l2, addr: fs === 4 ? "any6" : "any4", port: p === 0 ? { of: l1 } : p });
    b.call(server, { op: "listen", s: l2 });
    listeners.push(l2);
  }
  const fc = family(r);
  const c = b.socket(client, fc, "tcp");
  if (r.chance(0.25)) {
    const own = fc === 4 ? [`${client}4`, "any4", "lo4"] : [`${client}6`, "any6", `${client}4m`, "lo4m"];
    b.call(client, { op: "bind", s: c, addr: r.pick(own), port: 0 });
  }
  const dest = r.pick(dialable(client, server, fc));
  b.call(client, { op: "connect", s: c, addr: dest, port: p === 0 ? { of: l1 } : p });
  const accepted: string[] = [];
  for (const l of listeners) {
    const a = b.name();
    b.call(server, { op: "accept", s: l, as: a });
    accepted.push(a);
  }
  b.call(client, { op: "getsockname", s: c });
  b.call(client, { op: "getpeername", s: c });
  for (const a of accepted) {
    b.call(server, { op: "getsockname", s: a });
    b.call(server, { op: "getpeername", s: a });
  }
  b.call(client, { op: "send", s: c, data: "ping" });
  for (const a of accepted) b.call(server, { op: "recv", s: a });
  for (const a of accepted) b.call(server, { op: "send", s: a, data: "pong" });
  b.call(client, { op: "recv", s: c });
}

/** A UDP server and a client (connected or not) exchanging one datagram each way. */
function udpExchange(b: Builder, port: number): void {
  const r = b.rng;
  const server: AppName = r.pick(["A", "B"]);
  const client: AppName = r.chance(0.25) ? server : OTHER[server];
  const fs = family(r);
  const sv = b.socket(server, fs, "udp");
  const p = r.chance(0.2) ? 0 : port;
  b.call(server, { op: "bind", s: sv, addr: r.pick(bindable(server, fs).slice(0, -1)), port: p });
  const fc = family(r);
  const c = b.socket(client, fc, "udp");
  if (r.chance(0.3)) {
    const own = fc === 4 ? [`${client}4`, "any4", "lo4"] : [`${client}6`, "any6", `${client}4m`, "lo4m"];
    b.call(client, { op: "bind", s: c, addr: r.pick(own), port: 0 });
  }
  const dest = r.pick(dialable(client, server, fc));
  const to = { addr: dest, port: p === 0 ? { of: sv } : p };
  const connected = r.chance(0.5);
  if (connected) {
    b.call(client, { op: "connect", s: c, ...to });
    b.call(client, { op: "send", s: c, data: "ping" });
  } else {
    b.call(client, { op: "sendto", s: c, ...to, data: "ping" });
  }
  b.call(server, { op: "recvfrom", s: sv });
  b.call(server, { op: "reply", s: sv, data: "pong" });
  b.call(client, { op: r.chance(0.5) ? "recvfrom" : "recv", s: c });
  b.call(client, { op: "getsockname", s: c });
  if (connected) b.call(client, { op: "getpeername", s: c });
}

/** socat's UDP-LISTEN:…,fork: the socket that got a peer connects to it; a new one takes the port. */
function udpFork(b: Builder, port: number): void {
  const r = b.rng;
  const server: AppName = r.pick(["A", "B"]);
  const client = OTHER[server];
  const f = family(r);
  const any = f === 4 ? "any4" : "any6";
  const mk = (): string => {
    const s = b.name();
    b.call(server, { op: "socket", s, family: f, type: "udp" });
    b.call(server, { op: "setsockopt", s, opt: "reuseaddr", val: 1 });
    b.call(server, { op: "bind", s, addr: any, port });
    return s;
  };
  const s1 = mk();
  const cf = family(r);
  const dest = r.pick(dialable(client, server, cf));
  const c1 = b.socket(client, cf, "udp", { v6only: false });
  b.call(client, { op: "sendto", s: c1, addr: dest, port, data: "one" });
  b.call(server, { op: "recvfrom", s: s1 });
  b.call(server, { op: "connectpeer", s: s1 });
  const s2 = mk();
  const c2 = b.socket(client, cf, "udp", { v6only: false });
  b.call(client, { op: "sendto", s: c2, addr: dest, port, data: "two" });
  b.call(server, { op: "recvfrom", s: s2 });
  b.call(server, { op: "recv", s: s1 });
  b.call(client, { op: "sendto", s: c1, addr: dest, port, data: "three" });
  b.call(server, { op: "recv", s: s1 });
  b.call(server, { op: "getpeername", s: s1 });
}

/** Two UDP sockets of one app on one port (SO_REUSEADDR or SO_REUSEPORT): who gets which datagram. */
function udpShared(b: Builder, port: number): void {
  const r = b.rng;
  const server: AppName = r.pick(["A", "B"]);
  const client: AppName = r.chance(0.3) ? server : OTHER[server];
  const f = family(r);
  const opt = r.pick(["reuseaddr", "reuseport"]);
  const socks: string[] = [];
  for (let i = 0; i < 2; i++) {
    const s = b.name();
    b.call(server, { op: "socket", s, family: f, type: "udp" });
    b.call(server, { op: "setsockopt", s, opt, val: 1 });
    const addr = r.pick(f === 4 ? ["any4", `${server}4`] : ["any6", `${server}6`, `${server}4m`]);
    b.call(server, { op: "bind", s, addr, port });
    socks.push(s);
  }
  const cf = family(r);
  const c = b.socket(client, cf, "udp", { v6only: false });
  const dest = r.pick(dialable(client, server, cf));
  for (let i = 0; i < 3; i++) b.call(client, { op: "sendto", s: c, addr: dest, port, data: `d${i}` });
  for (const s of socks) for (let i = 0; i < 3; i++) b.call(server, { op: "recvfrom", s });
}

const SHAPES: ReadonlyArray<readonly [number, (b: Builder, port: number) => void]> = [
  [35, bindPair],
  [30, tcpExchange],
  [25, udpExchange],
  [10, udpFork],
  [10, udpShared],
];

/** Sequence i of a run with this seed: ports from the sequence's own range (see file header). */
export function generate(seed: number, i: number): Sequence {
  const rng = new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  const b = new Builder(rng);
  const shape = rng.weighted(SHAPES.map(([w, f]) => [w, f] as const));
  // Fixed ports: mostly low ones, sometimes inside the daemon's pool (40000-60000).
  const port = rng.chance(0.15) ? 41000 + ((i * 7) % 9000) : 20000 + ((i * 7) % 9000);
  shape(b, port);
  return { name: `seed ${seed} #${i} (${shape.name})`, steps: b.steps };
}
