// Hand-written conformance cases: the handed examples of ../shared/cases/fidelity (each one
// example of a kind) and their siblings, as sequences run against the kernel like the
// generated ones. Each name says the rule it checks.

import type { Sequence, Step } from "./sequence.js";
import type { AppName, Call } from "./world.js";

const on =
  (app: AppName) =>
  (call: Call): Step => ({ app, call });
const A = on("A");
const B = on("B");

/** socket + options in one go: opts like "reuseaddr,v6only". */
function sock(app: (c: Call) => Step, s: string, family: 4 | 6, type: "tcp" | "udp", opts = ""): Step[] {
  const steps = [app({ op: "socket", s, family, type })];
  for (const opt of opts.split(",").filter(Boolean)) steps.push(app({ op: "setsockopt", s, opt, val: 1 }));
  return steps;
}

/** nginx/redis/sshd: 0.0.0.0:P and [::]:P (IPV6_V6ONLY) coexist, either order, TCP and UDP. */
function dualBind(type: "tcp" | "udp", v4First: boolean, v6opts: string): Sequence {
  const p = type === "tcp" ? 8080 : 8053;
  const v4 = [...sock(A, "v4", 4, type, "reuseaddr"), A({ op: "bind", s: "v4", addr: "any4", port: p })];
  const v6 = [...sock(A, "v6", 6, type, v6opts), A({ op: "bind", s: "v6", addr: "any6", port: p })];
  const listen = type === "tcp" ? [A({ op: "listen", s: "v4" }), A({ op: "listen", s: "v6" })] : [];
  return {
    name: `dual bind: 0.0.0.0 and [::] (${v6opts || "dual-stack"}) on one ${type} port, ${v4First ? "IPv4" : "IPv6"} first`,
    steps: [...(v4First ? [...v4, ...v6] : [...v6, ...v4]), ...listen],
  };
}

/** Which of two listeners (IPv4 and IPv6-only) gets connections of each family. */
const dualListeners: Sequence = {
  name: "dual listeners: IPv4 clients reach the AF_INET socket, IPv6 clients the IPV6_V6ONLY one",
  steps: [
    ...sock(A, "l4", 4, "tcp"),
    A({ op: "bind", s: "l4", addr: "any4", port: 8081 }),
    A({ op: "listen", s: "l4" }),
    ...sock(A, "l6", 6, "tcp", "v6only"),
    A({ op: "bind", s: "l6", addr: "any6", port: 8081 }),
    A({ op: "listen", s: "l6" }),
    ...sock(B, "c4", 4, "tcp"),
    B({ op: "connect", s: "c4", addr: "A4", port: 8081 }),
    ...sock(B, "c6", 6, "tcp"),
    B({ op: "connect", s: "c6", addr: "A6", port: 8081 }),
    A({ op: "accept", s: "l4", as: "a4" }),
    A({ op: "accept", s: "l6", as: "a6" }),
    A({ op: "accept", s: "l4", as: "x4" }),
    A({ op: "accept", s: "l6", as: "x6" }),
    A({ op: "getpeername", s: "a4" }),
    A({ op: "getpeername", s: "a6" }),
    A({ op: "getsockname", s: "a6" }),
  ],
};

/** An IPV6_V6ONLY socket binds [::] and the app's IPv6 VIP on any node, and serves IPv6. */
const v6onlyBinds: Sequence = {
  name: "IPV6_V6ONLY sockets bind [::] and the app's own IPv6 VIP, and take IPv6 connections",
  steps: [
    ...sock(A, "w", 6, "tcp", "v6only"),
    A({ op: "bind", s: "w", addr: "any6", port: 8082 }),
    A({ op: "listen", s: "w" }),
    ...sock(A, "v", 6, "tcp", "v6only,reuseaddr"),
    A({ op: "bind", s: "v", addr: "A6", port: 8083 }),
    A({ op: "listen", s: "v" }),
    ...sock(B, "c", 6, "tcp", "v6only"),
    B({ op: "connect", s: "c", addr: "A6", port: 8083 }),
    A({ op: "accept", s: "v", as: "a" }),
    A({ op: "getpeername", s: "a" }),
    B({ op: "getpeername", s: "c" }),
    ...sock(B, "d", 6, "tcp", "v6only"),
    B({ op: "connect", s: "d", addr: "A4m", port: 8082 }),
  ],
};

/** socat UDP-LISTEN:P,fork with four clients: connected sockets serve only their peer. */
function udpFork(clients: number): Sequence {
  const steps: Step[] = [
    ...sock(A, "l0", 4, "udp", "reuseaddr"),
    A({ op: "bind", s: "l0", addr: "any4", port: 5353 }),
  ];
  for (let i = 0; i < clients; i++) {
    steps.push(...sock(B, `c${i}`, 4, "udp"));
    steps.push(B({ op: "connect", s: `c${i}`, addr: "A4", port: 5353 }));
    steps.push(B({ op: "send", s: `c${i}`, data: `hello ${i}` }));
    steps.push(A({ op: "recvfrom", s: `l${i}` }));
    steps.push(A({ op: "connectpeer", s: `l${i}` }));
    steps.push(A({ op: "send", s: `l${i}`, data: `echo ${i}` }));
    steps.push(B({ op: "recv", s: `c${i}` }));
    steps.push(
      ...sock(A, `l${i + 1}`, 4, "udp", "reuseaddr"),
      A({ op: "bind", s: `l${i + 1}`, addr: "any4", port: 5353 }),
    );
  }
  steps.push(B({ op: "send", s: "c0", data: "again 0" }), A({ op: "recv", s: "l0" }));
  return { name: `fork-style UDP server (socat UDP-LISTEN,fork) with ${clients} clients`, steps };
}

/** recvmsg(MSG_ERRQUEUE) with nothing queued: EAGAIN at once, blocking socket or not. */
const errQueue: Sequence = {
  name: "recvmsg(MSG_ERRQUEUE) on an empty error queue returns EAGAIN at once",
  steps: [
    ...sock(A, "u", 4, "udp"),
    A({ op: "recverr", s: "u" }),
    A({ op: "connect", s: "u", addr: "B4", port: 9 }),
    A({ op: "recverr", s: "u" }),
    ...sock(A, "u6", 6, "udp"),
    A({ op: "bind", s: "u6", addr: "any6", port: 0 }),
    A({ op: "recverr", s: "u6" }),
  ],
};

/** Port 0 never yields a port the app already holds (gVisor#6209), and P keeps its listener. */
const port0: Sequence = {
  name: "port 0 never yields a port the app holds; connections to that port reach its listener",
  steps: [
    ...sock(A, "a1", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "a1", addr: "lo4", port: 31337 }),
    ...sock(A, "a2", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "a2", addr: "lo4", port: 0 }),
    A({ op: "listen", s: "a1" }),
    A({ op: "listen", s: "a2" }),
    A({ op: "getsockname", s: "a2" }),
    ...sock(A, "f", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "f", addr: "any4", port: 40003 }),
    A({ op: "listen", s: "f" }),
    ...sock(A, "e", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "e", addr: "any4", port: 0 }),
    A({ op: "listen", s: "e" }),
    A({ op: "getsockname", s: "e" }),
    ...sock(B, "c", 4, "tcp"),
    B({ op: "connect", s: "c", addr: "A4", port: 40003 }),
    A({ op: "accept", s: "f", as: "x" }),
    A({ op: "accept", s: "e", as: "y" }),
  ],
};

/** ::1 does not reach a listener on 127.0.0.1 only, nor 127.0.0.1 one on ::1 only. */
function loopbackFamilies(srv: [4 | 6, string, string], cli: [4 | 6, string]): Sequence {
  const [sf, saddr, sopts] = srv;
  const [cf, caddr] = cli;
  return {
    name: `loopback across families: listener ${saddr} (${sopts || "default"}), client dials ${caddr}`,
    steps: [
      ...sock(A, "l", sf, "tcp", sopts),
      A({ op: "bind", s: "l", addr: saddr, port: 3100 }),
      A({ op: "listen", s: "l" }),
      ...sock(A, "c", cf, "tcp"),
      A({ op: "connect", s: "c", addr: caddr, port: 3100 }),
      A({ op: "accept", s: "l", as: "a" }),
      A({ op: "getpeername", s: "a" }),
      A({ op: "getsockname", s: "c" }),
    ],
  };
}

/** A connected UDP client keeps working when the server's socket is made again at the same address. */
function udpServerAgain(reuse: string): Sequence {
  return {
    name: `connected UDP client after its server socket is closed and bound again (${reuse || "no options"})`,
    steps: [
      ...sock(A, "s1", 4, "udp", reuse),
      A({ op: "bind", s: "s1", addr: "any4", port: 5354 }),
      ...sock(B, "c", 4, "udp"),
      B({ op: "connect", s: "c", addr: "A4", port: 5354 }),
      B({ op: "send", s: "c", data: "one" }),
      A({ op: "recvfrom", s: "s1" }),
      A({ op: "close", s: "s1" }),
      ...sock(A, "s2", 4, "udp", reuse),
      A({ op: "bind", s: "s2", addr: "A4", port: 5354 }),
      B({ op: "send", s: "c", data: "two" }),
      A({ op: "recvfrom", s: "s2" }),
      A({ op: "reply", s: "s2", data: "answer" }),
      B({ op: "recv", s: "c" }),
    ],
  };
}

/** A server that closed its connections first (TIME_WAIT on its port) binds the port again. */
const rebindAfterTimeWait: Sequence = {
  name: "rebind of a port whose connections the server closed first (TIME_WAIT), without SO_REUSEADDR",
  steps: [
    ...sock(A, "l", 4, "tcp"),
    A({ op: "bind", s: "l", addr: "any4", port: 8090 }),
    A({ op: "listen", s: "l" }),
    ...sock(B, "c", 4, "tcp"),
    B({ op: "connect", s: "c", addr: "A4", port: 8090 }),
    A({ op: "accept", s: "l", as: "a" }),
    A({ op: "close", s: "a" }),
    B({ op: "recv", s: "c" }),
    B({ op: "close", s: "c" }),
    A({ op: "close", s: "l" }),
    ...sock(A, "l2", 4, "tcp"),
    A({ op: "bind", s: "l2", addr: "any4", port: 8090 }),
  ],
};

/**
 * connect() on a listening or connected TCP socket is EISCONN and changes nothing: the
 * listener still serves, the connection keeps its peer (blocking connects, as most programs
 * make them; the daemon makes them without blocking and must leave the socket as the
 * kernel's own wait does).
 */
const connectAgain: Sequence = {
  name: "connect() again on a listener or a connected socket: EISCONN, nothing changes",
  steps: [
    ...sock(A, "l", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "l", addr: "A4", port: 9220 }),
    A({ op: "listen", s: "l" }),
    ...sock(A, "l2", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "l2", addr: "A4", port: 9221 }),
    A({ op: "listen", s: "l2" }),
    A({ op: "connectblock", s: "l", addr: "A4", port: 9999 }),
    ...sock(B, "c", 4, "tcp"),
    B({ op: "connectblock", s: "c", addr: "A4", port: 9220 }),
    A({ op: "accept", s: "l", as: "a" }),
    B({ op: "connectblock", s: "c", addr: "A4", port: 9220 }),
    B({ op: "connectblock", s: "c", addr: "A4", port: 9221 }),
    B({ op: "connectblock", s: "c", addr: "A4", port: 9239 }),
    B({ op: "getpeername", s: "c" }),
    B({ op: "send", s: "c", data: "hi" }),
    A({ op: "recv", s: "a" }),
    A({ op: "getsockname", s: "l" }),
    ...sock(B, "d", 4, "tcp"),
    B({ op: "connectblock", s: "d", addr: "A4", port: 9220 }),
    B({ op: "shutdown", s: "d" }),
    B({ op: "connectblock", s: "d", addr: "A4", port: 9221 }),
    B({ op: "getpeername", s: "d" }),
    A({ op: "accept", s: "l", as: "b" }),
    A({ op: "getpeername", s: "b" }),
  ],
};

/**
 * A blocking call's timeout (socket(7)): SO_SNDTIMEO ends a connect that waits (its SYN
 * dropped: the listener's accept queue is full) with EINPROGRESS, the handshake going on;
 * SO_RCVTIMEO ends an accept with nothing to accept with EAGAIN. (The daemon waits for the
 * app; it must give up when the kernel would.)
 */
const blockingTimeouts: Sequence = {
  name: "SO_SNDTIMEO ends a blocking connect (EINPROGRESS), SO_RCVTIMEO a blocking accept (EAGAIN)",
  steps: [
    ...sock(A, "l", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "l", addr: "A4", port: 9240 }),
    A({ op: "listen", s: "l", backlog: 0 }),
    ...sock(B, "c1", 4, "tcp"),
    B({ op: "connectblock", s: "c1", addr: "A4", port: 9240 }),
    ...sock(B, "c2", 4, "tcp"),
    B({ op: "setsockopt", s: "c2", opt: "sndtimeo", val: 300 }),
    B({ op: "connectblock", s: "c2", addr: "A4", port: 9240 }),
    B({ op: "getpeername", s: "c2" }),
    ...sock(A, "l2", 4, "tcp", "reuseaddr"),
    A({ op: "bind", s: "l2", addr: "A4", port: 9241 }),
    A({ op: "listen", s: "l2" }),
    A({ op: "setsockopt", s: "l2", opt: "rcvtimeo", val: 300 }),
    A({ op: "acceptblock", s: "l2", as: "a" }),
    A({ op: "acceptblock", s: "l", as: "b" }),
    A({ op: "getpeername", s: "b" }),
  ],
};

/**
 * socket(2) with arguments the kernel refuses before any protocol runs, or that no protocol of
 * the family takes: the kernel's own errno (net/socket.c, inet_create, inet6_create), from the
 * daemon (AF_INET, AF_INET6) and from the filter (a family it refuses), never a refusal's.
 */
const socketArgs: Sequence = (() => {
  const [INET, INET6, PACKET] = [2, 10, 17];
  const [STREAM, DGRAM, RAW] = [1, 2, 3];
  const BAD_FLAG = 0x100;
  const rows: [number, number, number][] = [
    [INET, 15, 0], // a type out of range: EINVAL
    [INET6, 11, 0],
    [INET, STREAM | BAD_FLAG, 0], // an unknown type flag: EINVAL
    [INET, STREAM | BAD_FLAG, 17],
    [INET6, DGRAM | BAD_FLAG, 0],
    [INET, STREAM, -1], // a protocol out of range: EINVAL
    [INET6, DGRAM, 300],
    [INET, 0, 0], // no protocol of the family has this type: ESOCKTNOSUPPORT
    [INET, DGRAM, 58], // the other family's ping protocol: EPROTONOSUPPORT
    [INET6, DGRAM, 1],
    [INET, RAW, 0], // a raw socket without a protocol: EPROTONOSUPPORT
    [INET6, RAW, 0],
    [PACKET, 15, 0], // a refused family: the kernel's checks before the family's come first
    [PACKET, DGRAM | BAD_FLAG, 0],
    [99, STREAM, 0], // a family out of range: EAFNOSUPPORT
    [99, 15, 0],
  ];
  return {
    name: "socket() with arguments the kernel refuses gets the kernel's errno",
    steps: rows.map(([family, type, protocol]) => A({ op: "socketargs", family, type, protocol })),
  };
})();

export const CASES: readonly Sequence[] = [
  dualBind("tcp", true, "v6only,reuseaddr"),
  dualBind("tcp", false, "v6only,reuseaddr"),
  dualBind("tcp", true, "v6only"),
  dualBind("udp", true, "v6only"),
  dualBind("udp", false, "v6only,reuseaddr"),
  dualBind("tcp", true, "reuseaddr"),
  dualBind("tcp", false, ""),
  dualListeners,
  v6onlyBinds,
  udpFork(4),
  errQueue,
  port0,
  loopbackFamilies([4, "lo4", ""], [6, "lo6"]),
  loopbackFamilies([4, "any4", ""], [6, "lo6"]),
  loopbackFamilies([6, "lo6", "v6only"], [4, "lo4"]),
  loopbackFamilies([6, "lo6", ""], [6, "lo4m"]),
  loopbackFamilies([6, "any6", ""], [4, "lo4"]),
  loopbackFamilies([6, "any6", "v6only"], [6, "lo4m"]),
  loopbackFamilies([4, "lo4b", ""], [4, "lo4"]),
  udpServerAgain(""),
  udpServerAgain("reuseaddr"),
  rebindAfterTimeWait,
  connectAgain,
  blockingTimeouts,
  socketArgs,
];
