// What the API's routes need from the daemon: the table and registries (read), the app
// life-cycle operations, the event stream and the readiness checks. The daemon wiring
// implements it; routes never reach into the daemon's modules.

import type { KernelInfo } from "../core/kernel-info.js";
import type { ProxyView } from "../gateway/ingress.js";
import type { Requirement } from "../table/selector.js";
import type { SocketRegistry } from "../table/sockets.js";
import type { ServiceTable } from "../table/table.js";
import type { AppView } from "./views.js";

/** Who sent a request: the peer of the daemon's UNIX socket (SO_PEERCRED); null over TCP. */
export interface Caller {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** A detached run as the API receives it (schemas.ts RunRequest, defaults applied). */
export interface RunRequestBody {
  readonly name?: string;
  readonly ips?: string[];
  readonly labels?: Record<string, string>;
  readonly expose?: string[];
  readonly lb?: "round-robin" | "random" | null;
  readonly command: string[];
  readonly user?: string | null;
  readonly userIds?: string | null;
  readonly newNetns: boolean;
  readonly dnsOverride: boolean | null;
  readonly env?: string[];
  readonly cwd?: string;
  readonly restart: "no" | "on-failure" | "always" | "unless-stopped";
  readonly rm: boolean;
  readonly stack: string | null;
}

export interface AppControl {
  /** Running apps (every node's), and with all also this node's finished ones. */
  list(all: boolean): AppView[];
  /** By id, else name (running first); throws NotFoundError. */
  get(idOrName: string): AppView;
  /** Starts a detached app; resolves once it runs, rejects with the launcher's sentence. */
  run(req: RunRequestBody, caller: Caller | null): Promise<AppView>;
  /** SIGTERM, then SIGKILL after timeoutS; resolves with the finished app. */
  stop(idOrName: string, timeoutS: number): Promise<AppView>;
  /** Forgets a finished app (force: stops a running one first, with SIGKILL). */
  remove(idOrName: string, force: boolean): Promise<AppView>;
  /** A detached app's output file, and whether more may still come. */
  logs(idOrName: string): { readonly file: string; readonly more: () => boolean };
}

/** One change (schemas.ts Event). */
export interface ApiEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly kind: "app" | "service" | "node" | "denial";
  readonly time: string;
  readonly object: Record<string, unknown>;
}

export interface EventSource {
  /** Calls fn for every later event of those kinds; returns the unsubscribe function. */
  subscribe(
    kinds: ReadonlySet<string>,
    selector: readonly Requirement[] | null,
    fn: (ev: ApiEvent) => void,
  ): () => void;
}

/** The datapath that runs and the state of the CONTINUE guard (daemon/datapath.ts). */
export interface DatapathInfo {
  readonly name: "seccomp" | "bpf";
  /** How it was chosen, and for --datapath auto why: one sentence. */
  readonly selected: string;
  readonly continueGuard: {
    /**
     * True when the guard (seccomp), or the bpf datapath's own hooks (bpf: always), passed
     * their check at start.
     */
    readonly available: boolean;
    /** Why it is off (seccomp; "" when on), or what guards (bpf). */
    readonly reason: string;
  };
}

export interface ApiContext {
  readonly table: ServiceTable;
  readonly sockets: SocketRegistry;
  readonly version: string;
  readonly node: string;
  readonly store: string;
  readonly startedAt: string;
  /** The ingress gateway's forwarding listeners on this node. */
  readonly proxies: () => ProxyView[];
  /** Each readiness check: "ok", or why it fails. */
  readonly readiness: () => Record<string, string>;
  readonly apps: AppControl;
  readonly events: EventSource;
  /** The peer of a request's connection, when it came over the UNIX socket. */
  readonly callerOf: (socket: unknown) => Caller | null;
  /** What the daemon's kernel offers (probed at start). */
  readonly kernel: KernelInfo;
  /** The datapath that runs. */
  readonly datapath: DatapathInfo;
}
