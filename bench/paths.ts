// The paths that the benchmark compares, each built in network namespaces of its own
// (../../shared/TESTING.md: the harness's own namespaces, no traffic anywhere else):
//
//   host        client and server in one namespace, over loopback: the limit.
//   bridge      Docker's default layout: a "docker host" namespace with a Linux bridge
//               (172.17.0.1/16, like docker0) and two "containers", each a namespace with a
//               veth pair into the bridge; nftables does what Docker's iptables rules do:
//               MASQUERADE for outbound and a published port (DNAT of the host's ports to
//               the server container). The client container reaches the server through the
//               published port on the host side (172.17.0.1:PORT). Docker sends that hairpin
//               back through br_netfilter; here it is masqueraded to the bridge address so the
//               replies also come back through the host's conntrack (no br_netfilter needed).
//   sockswitch  a namespace with a sockswitch daemon (node IP 127.0.0.1); client and server
//               each under `sockswitch run` in their own empty namespace, the client
//               connecting to the server's virtual IP.
//   sockswitch-bpf       the same with a daemon of its own on `--datapath bpf` (only socket()
//                        trapped; the kernel's socket hooks do the rest)
//   sockswitch-bpf-host  that daemon's host placement: client and server under
//                        `sockswitch run --new-netns=false` (no trapped call; cgroup-stamped)
// The two bpf paths exist where the bpf datapath can run (a build with BPF, root, cgroup v2);
// elsewhere they are left out and the run says why.

import { writeFileSync } from "node:fs";
import { makeNetns, must, type Proc, runToEnd, start, tempDir, waitFor } from "./env.js";

export type PathName = "host" | "bridge" | "sockswitch" | "sockswitch-bpf" | "sockswitch-bpf-host";
export const PATH_NAMES: readonly PathName[] = [
  "host",
  "bridge",
  "sockswitch",
  "sockswitch-bpf",
  "sockswitch-bpf-host",
];

/** TCP ports of the benchmark's servers: published on the bridge path. */
export const PORTS = { iperf: 5201, redis: 6379, netbench: 7001 } as const;

const BRIDGE = "sswb0";
const BRIDGE_IP = "172.17.0.1";
const CLIENT_IP = "172.17.0.2";
const SERVER_IP = "172.17.0.3";
export const SERVER_VIP = "10.77.1.1";

export interface Path {
  readonly name: PathName;
  /** The address a client uses to reach the server's ports on this path. */
  readonly target: string;
  /** Starts a server; resolves once `ready` matches its output. */
  server(what: string, argv: string[], ready: RegExp): Promise<Proc>;
  /** Runs a client to its end (within ms) and returns its stdout. */
  client(what: string, argv: string[], ms: number): Promise<string>;
  /** The sockswitch daemon this path goes through (its CPU use is measured), if any. */
  readonly daemonPid?: number;
}

async function until(p: Proc, ready: RegExp): Promise<Proc> {
  try {
    await waitFor(`${p.what} to be ready`, () => {
      if (ready.test(p.stdout) || ready.test(p.stderr)) return true;
      if (!p.running) throw new Error(`exited with ${p.child.exitCode ?? p.child.signalCode}`);
      return false;
    });
  } catch (err) {
    const out = `${p.stderr.trim().slice(-1000)}\n${p.stdout.trim().slice(-1000)}`.trim();
    throw new Error(`${String(err)}; its output: ${out || "(none)"}`);
  }
  return p;
}

/** A plain namespace: client and server share it and talk over loopback. */
function hostPath(): Path {
  const ns = makeNetns("host");
  return {
    name: "host",
    target: "127.0.0.1",
    server: (what, argv, ready) => until(start(what, ns, argv), ready),
    client: (what, argv, ms) => runToEnd(what, ns, argv, ms),
  };
}

function nftRules(ports: readonly number[]): string {
  return `table ip sswbench {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local tcp dport { ${ports.join(", ")} } dnat to ${SERVER_IP}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 172.17.0.0/16 oifname != "${BRIDGE}" masquerade
    ip saddr 172.17.0.0/16 oifname "${BRIDGE}" ct status dnat masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    oifname "${BRIDGE}" ct state established,related accept
    oifname "${BRIDGE}" ct status dnat accept
    iifname "${BRIDGE}" accept
  }
}
`;
}

/** Docker's default bridge network, built by hand. */
function bridgePath(): Path {
  const dock = makeNetns("dock");
  const ns = { client: makeNetns("cli"), server: makeNetns("srv") };
  const ip = (n: string, ...args: string[]): void => void must("ip", ["-n", n, ...args]);
  ip(dock, "link", "add", BRIDGE, "type", "bridge");
  ip(dock, "addr", "add", `${BRIDGE_IP}/16`, "dev", BRIDGE);
  ip(dock, "link", "set", BRIDGE, "up");
  must("ip", ["netns", "exec", dock, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  for (const [role, addr] of [
    ["client", CLIENT_IP],
    ["server", SERVER_IP],
  ] as const) {
    const veth = `veth-${role}`;
    ip(dock, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns[role]);
    ip(dock, "link", "set", veth, "master", BRIDGE, "up");
    ip(ns[role], "addr", "add", `${addr}/16`, "dev", "eth0");
    ip(ns[role], "link", "set", "eth0", "up");
    ip(ns[role], "route", "add", "default", "via", BRIDGE_IP);
  }
  const dir = tempDir();
  const rules = `${dir}/rules.nft`;
  writeFileSync(rules, nftRules(Object.values(PORTS)));
  must("ip", ["netns", "exec", dock, "nft", "-f", rules]);
  return {
    name: "bridge",
    target: BRIDGE_IP,
    server: (what, argv, ready) => until(start(what, ns.server, argv), ready),
    client: (what, argv, ms) => runToEnd(what, ns.client, argv, ms),
  };
}

export interface DaemonHandle {
  /** The sockswitch CLI (bin/sockswitch of the product measured). */
  cli: string;
  ns: string;
  socket: string;
  proc: Proc;
}

/** Starts a sockswitch daemon in a namespace of its own (node IP 127.0.0.1, clean state). */
export async function startDaemon(
  cli: string,
  role: string,
  nodeFlags: string[] = [],
  daemonFlags: string[] = [],
): Promise<DaemonHandle> {
  const ns = makeNetns(role);
  const dir = tempDir();
  const socket = `${dir}/sockswitch.sock`;
  const argv = [process.execPath, ...nodeFlags, cli, "--socket", socket, "daemon"];
  argv.push("--state-dir", `${dir}/state`, "--node-ip", "127.0.0.1", "--clean", ...daemonFlags);
  const proc = start(`daemon (${role})`, ns, argv);
  await until(proc, /sockswitch daemon ready/);
  return { cli, ns, socket, proc };
}

/** `sockswitch run OPTS -- CMD...` inside the daemon's namespace. */
export function runArgv(d: DaemonHandle, opts: string[], cmd: string[]): string[] {
  return [process.execPath, d.cli, "--socket", d.socket, "run", ...opts, "--", ...cmd];
}

/**
 * A path through daemon d; opts go to every `sockswitch run`. Two paths through one daemon
 * need servers of their own: `vip` (and the name made from it) keeps them apart.
 */
function sockswitchPath(
  d: DaemonHandle,
  name: PathName = "sockswitch",
  opts: string[] = [],
  vip = SERVER_VIP,
): Path {
  let clients = 0;
  const server = vip === SERVER_VIP ? "bench-server" : `bench-server-${vip.replaceAll(".", "-")}`;
  return {
    name,
    target: vip,
    server: (what, argv, ready) =>
      until(start(what, d.ns, runArgv(d, [...opts, "--ip", vip, "--name", server], argv)), ready),
    client: (what, argv, ms) =>
      runToEnd(what, d.ns, runArgv(d, [...opts, "--name", `bench-client-${++clients}`], argv), ms),
    daemonPid: d.proc.pid,
  };
}

/**
 * For the trap measure: one plain server in the daemon's namespace on an address of its own
 * (TEST-NET-1, on that namespace's lo only), reached by the same client once plain and once
 * under `sockswitch run` (for sockswitch an egress address: no service, no trapped accept
 * on the server side), so that the only difference is the trapping of the client's calls.
 */
export const TRAP_IP = "192.0.2.1";

function trapPaths(d: DaemonHandle): { plain: Path; trapped: Path } {
  must("ip", ["-n", d.ns, "addr", "add", `${TRAP_IP}/32`, "dev", "lo"]);
  const server = (what: string, argv: string[], ready: RegExp): Promise<Proc> =>
    until(start(what, d.ns, argv), ready);
  return {
    plain: {
      name: "host",
      target: TRAP_IP,
      server,
      client: (what, argv, ms) => runToEnd(what, d.ns, argv, ms),
    },
    trapped: {
      name: "sockswitch",
      target: TRAP_IP,
      server,
      client: (what, argv, ms) => runToEnd(what, d.ns, runArgv(d, ["--name", "trap-client"], argv), ms),
    },
  };
}

export interface Lab {
  /** Every path this machine can build (the bpf ones may be missing: skipped says why). */
  paths: Partial<Record<PathName, Path>>;
  skipped: string[];
  trap: { plain: Path; trapped: Path };
  daemon: DaemonHandle;
  /** The bpf paths' daemon, where they could be built. */
  bpfDaemon?: DaemonHandle;
}

/** Builds the paths; nodeFlags go to the daemons' node. Everything is removed by env.cleanup(). */
export async function buildLab(cli: string, nodeFlags: string[]): Promise<Lab> {
  const daemon = await startDaemon(cli, "ssw", nodeFlags, ["--datapath", "seccomp"]);
  const paths: Partial<Record<PathName, Path>> = {
    host: hostPath(),
    bridge: bridgePath(),
    sockswitch: sockswitchPath(daemon),
  };
  const skipped: string[] = [];
  let bpfDaemon: DaemonHandle | undefined;
  try {
    const bpf = await startDaemon(cli, "sswbpf", nodeFlags, ["--datapath", "bpf"]);
    paths["sockswitch-bpf"] = sockswitchPath(bpf, "sockswitch-bpf");
    paths["sockswitch-bpf-host"] = sockswitchPath(
      bpf,
      "sockswitch-bpf-host",
      ["--new-netns=false"],
      "10.77.1.2",
    );
    bpfDaemon = bpf;
  } catch (err) {
    // The daemon's own sentence ("sockswitch: …", on stderr) says why.
    const [why = "", out = ""] = String(err).split("; its output: ");
    const said = out.split("\n").find((l) => l.startsWith("sockswitch: ")) ?? out.slice(0, 300);
    skipped.push(`sockswitch-bpf, sockswitch-bpf-host: the bpf datapath cannot run here (${why}: ${said})`);
  }
  return {
    paths,
    skipped,
    trap: trapPaths(daemon),
    daemon,
    bpfDaemon,
  };
}
