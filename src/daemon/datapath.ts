// The one interface between the daemon's wiring and the datapath that runs: how the daemon's
// decisions reach the kernel. Both share the table, policy, selection and store (one control
// plane); they differ in what the launcher's seccomp filter traps and in what the kernel does
// with the daemon's host sockets:
//
//   seccomp  every network call is trapped and carried out by the daemon (src/trap); the
//            CONTINUE guard (bpf/guard.ts), when this host allows it, keeps the calls it lets
//            the kernel run off app sockets (host.guard; trap/continue.ts relies on it)
//   bpf      socket(), bind() and listen() are trapped (the daemon stamps the app's identity on
//            the host socket; it judges binds in the app's shadow namespace, picks the pool
//            port and registers services before the call returns, as the seccomp datapath
//            does); cgroup socket hooks carry out connect, accept, get*name and the sends and
//            receives with the table's decisions in the kernel (bpf/datapath.ts)
//
// --datapath auto picks seccomp for now, and says so: the bpf datapath does not yet keep every
// promise the seccomp one does (docs/how-it-works.md, "The bpf datapath").

import type { Logger } from "pino";
import type { DatapathInfo } from "../api/context.js";
import { inDaemonNetns } from "../bpf/cgroups.js";
import type { AppIdentity } from "../bpf/datapath.js";
import { BpfDatapath } from "../bpf/datapath.js";
import { openGuard } from "../bpf/guard.js";
import type { DaemonConfig } from "../core/config.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { KernelInfo } from "../core/kernel-info.js";
import type { Addon } from "../native/addon.js";
import type { AppSpec } from "../table/app-spec.js";
import { buildFilter, type FilterMode } from "../trap/filter.js";
import type { Host } from "./host.js";

export interface Datapath {
  /** The filter an app's launcher installs (the bpf datapath's host placement traps nothing). */
  filterFor(spec: AppSpec): Buffer;
  /**
   * After the handover, before the app runs its command: puts the app where the datapath needs
   * it (the bpf datapath's host placement: a cgroup of its own). Throws a sentence.
   */
  place(app: AppIdentity, spec: AppSpec, pid: number): void;
  /** What the daemon reports about it (ready line, /v1/health, /v1/info). */
  readonly info: DatapathInfo;
  close(): void;
}

/** Sets up the datapath config.datapath asks for; throws a sentence when bpf cannot run. */
export function openDatapath(
  addon: Addon,
  host: Host,
  log: Logger,
  config: DaemonConfig,
  nr: Record<string, number>,
  kernel: KernelInfo,
): Datapath {
  const filterOf = (mode: FilterMode): Buffer =>
    buildFilter({ auditArch: addon.constants.AUDIT_ARCH, nr, mode });
  if (config.datapath === "bpf") {
    const dp = BpfDatapath.open(addon, host, log, {
      stateDir: config.stateDir,
      vipCidr: config.vipCidr,
      localAddresses: host.localAddresses(),
    });
    if (typeof dp === "string")
      throw new InvalidArgumentError(
        `--datapath bpf cannot run here: ${dp}; use --datapath seccomp (or auto)`,
      );
    host.bpf = dp;
    // The daemon chains the event stream after this mirror (daemon.ts).
    host.table.observer = (c) => dp.tableChanged(c);
    for (const node of host.table.listNodes()) dp.tableChanged({ kind: "node", op: "put", node });
    for (const app of host.table.listApps()) dp.tableChanged({ kind: "app", op: "put", app });
    for (const svc of host.table.listServices()) dp.serviceChanged(svc.proto, svc.vip, svc.vport);
    const reason =
      "not used: the one call the bpf datapath continues (a bind on a UNIX socket) is guarded by its own bind hooks";
    const inApp = filterOf("bpf");
    const inHost = filterOf("bpf-host");
    return {
      filterFor: (spec) => (spec.newNetns === false ? inHost : inApp),
      place: (app, spec, pid) => {
        if (spec.newNetns !== false) return;
        if (!inDaemonNetns(pid))
          throw new Error(
            "--new-netns=false with the bpf datapath runs the app in the daemon's network namespace; start it there (or without --new-netns=false)",
          );
        dp.place(app, pid);
      },
      info: { name: "bpf", continueGuard: { available: false, reason } },
      close: () => dp.close(),
    };
  }
  const guard = openGuard(addon, log, { stateDir: config.stateDir, kernel });
  host.guard = typeof guard === "string" ? null : guard;
  if (typeof guard === "string")
    log.warn(
      { reason: guard },
      config.strictUnixSockets
        ? "the CONTINUE guard is off: a bind, connect or send on a UNIX socket from a multithreaded app is refused (EPERM, --strict-unix-sockets), and the daemon carries out every send on an INET socket (docs/security.md)"
        : "the CONTINUE guard is off: a bind, connect or send on a UNIX socket from a multithreaded app is continued with a window in which another thread can swap an INET socket in (docs/security.md; --strict-unix-sockets refuses them), and the daemon carries out every send on an INET socket",
    );
  if (config.datapath === "auto")
    log.info(
      "--datapath auto: seccomp (the bpf datapath does not keep every promise yet; --datapath bpf selects it)",
    );
  const filter = filterOf("seccomp");
  return {
    filterFor: () => filter,
    place: () => {},
    info: {
      name: "seccomp",
      continueGuard: { available: host.guard !== null, reason: typeof guard === "string" ? guard : "" },
    },
    close: () => {
      host.guard?.close();
      host.guard = null;
    },
  };
}
