// What the trap handlers need from the rest of the daemon: the table (read), the socket
// registry, the host port pool, and the few writes that must reach the store. The daemon
// wiring implements it; handlers never import the store or the API.

import type { Logger } from "pino";
import type { LogLimiter } from "../core/log-limit.js";
import type { Addon } from "../native/addon.js";
import type { PortPool } from "../net/port-pool.js";
import type { Binding, SocketRegistry } from "../table/sockets.js";
import type { ServiceTable } from "../table/table.js";
import type { App, Proto, Service } from "../table/types.js";
import type { AppSession } from "./session.js";

export interface TrapConfig {
  /** IPv4 address that managed listeners bind to on this host. */
  readonly nodeIp: string;
  /** IPv6 address for IPv6-only listeners; null when the host has none. */
  readonly nodeIp6: string | null;
  readonly nodeName: string;
  readonly egress: "allow" | "deny";
  /** Trapped calls one app may have waiting at once (--max-waits-per-app). */
  readonly waitsPerApp: number;
  /** Host ports one app may hold (--max-ports-per-app). */
  readonly portsPerApp: number;
  /** --strict-unix-sockets: no continued call of a multithreaded app without the guard. */
  readonly strictUnixSockets: boolean;
}

/**
 * What this kernel offers that changes how calls are carried out (probed once at daemon
 * start, src/daemon/kernel-probe.ts; docs/how-it-works.md, Kernels).
 */
export interface TrapKernel {
  /** pidfd_open(tid, PIDFD_THREAD) (Linux 6.9): a pidfd for any thread. */
  readonly pidfdThread: boolean;
  /** kcmp(2) with KCMP_FILES: does a thread share its process's file table. */
  readonly kcmp: boolean;
  /** IP_LOCAL_PORT_RANGE (Linux 6.3): the kernel picks a source port within a range. */
  readonly ipLocalPortRange: boolean;
}

/** The daemon's DNS server: its well-known virtual IP (port 53) and where it really listens. */
export interface Resolver {
  readonly ip: string;
  readonly hostIp: string;
  readonly hostPort: number;
}

/**
 * The bpf datapath's part in the calls it traps (bind, listen): the kernel's hooks carry out
 * the rest on the daemon's host sockets, so they must know what the daemon decided.
 */
export interface KernelHooks {
  /**
   * What a socket the daemon makes for app is stamped with when mark() would do nothing more
   * (the socket responder then answers the app's socket() calls off the event loop:
   * responder.ts): the socket storage map's fd and the value; null when mark() is needed
   * (the app's source-port block).
   */
  socketStamp(app: App): { map: number; value: Uint8Array } | null;
  /**
   * Before the daemon binds app's host socket fd for the app's bind of vip:vport: what the
   * kernel's hooks show of it (getsockname, a client's source, a datagram's sender). It first
   * serves the events the kernel queued before (a UDP server's socket that connected). 0 or -errno.
   */
  binding(fd: number, app: App, vip: string, vport: number, loopback: boolean): number;
  /**
   * The host port to try first for a bind of the app's virtual port on hostIp: the one its
   * last socket there had (a connected UDP client of it, whose kernel connection is to that
   * host port, then reaches the new socket as it would on a host); null: none.
   */
  preferredPort(appId: string, proto: Proto, vport: number, hostIp: string): number | null;
  /** The daemon's bind of fd failed after binding(): the socket is unbound again. */
  unbound(fd: number, app: App): void;
  /** A binding serves (UDP bound, TCP listening): the app's private loopback reaches it. */
  served(b: Binding): void;
  /** A binding is withdrawn: its private loopback entries go (if still its own). */
  withdrawn(b: Binding): void;
}

export interface TrapHost {
  readonly addon: Addon;
  readonly config: TrapConfig;
  readonly kernel: TrapKernel;
  readonly table: ServiceTable;
  readonly sockets: SocketRegistry;
  readonly pool: PortPool;
  /**
   * A pool port where nothing ever listens (never handed out): connects to a virtual address
   * with nothing behind it go there, so that the kernel refuses them as it would.
   */
  readonly refusePort: number;
  readonly log: Logger;
  /** For events an app can repeat at will (a bound reached): rate-limited warnings. */
  readonly limited: LogLimiter;
  /** The DNS server, when the daemon runs one. */
  readonly resolver: Resolver | null;
  /**
   * Marks a socket the daemon made for app before the app sees it: for the CONTINUE guard
   * (bpf/guard.ts: a call answered with CONTINUE cannot bind, connect or send on it once another
   * thread has swapped it in under the call's fd number), or with the app's identity for the bpf
   * datapath (bpf/datapath.ts). 0 or -errno. No allocation: it is on the trapped-call path.
   */
  markSocket(fd: number, app: App): number;
  /** Adds a service to the table and the store. */
  registerService(svc: Service): void;
  /** Removes a service from the table and the store. */
  withdrawService(id: string): void;
  /** True when ip is one of this host's own addresses (node IPs, loopback, any local address). */
  isLocalAddress(ip: string): boolean;
  /** The IP of a cluster node (this one's node IP for itself); null when unknown. */
  nodeIpOf(node: string): string | null;
  /**
   * The kernel guard that makes continued calls on non-INET sockets safe (BPF programs that
   * refuse bind, connect and sends on app sockets from anyone but the daemon); null: none.
   */
  readonly guard: { readonly available: boolean } | null;
  /** The bpf datapath, when it runs (null: the seccomp datapath). */
  readonly bpf: KernelHooks | null;
  /** The trap side of a running app of this node, if it is served here. */
  sessionOf(appId: string): AppSession | undefined;
  /** Frees a host port that an ingress proxy holds, before a local app binds it. */
  releaseProxyPort(port: number): void;
}
