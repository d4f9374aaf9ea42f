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
// --datapath auto picks bpf where this kernel, this build and the daemon's privileges let it
// load and attach its programs, else seccomp; it says which, and why, in its log, the ready
// line's datapath and `sockswitch info`. Rootless daemons run seccomp.

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

/** How an app runs, decided at its launcher's HELLO. */
export interface Placement {
  /** The seccomp filter the app's launcher installs (the host placement traps nothing). */
  readonly filter: Buffer;
  /**
   * The bpf datapath's host placement: the app runs in the daemon's network namespace, in a
   * cgroup of its own whose sockets the programs stamp. False for every other app, which gets
   * its host sockets from the daemon (its network namespace, own or a container's, is empty).
   */
  readonly host: boolean;
}

export interface Datapath {
  /**
   * The placement of an app of spec whose launcher is process launcherPid (the daemon's PID
   * namespace): under bpf, --new-netns=false is the host placement when the launcher runs in
   * the daemon's network namespace, and the default one when it runs in another (a
   * container's), which is then the app's own, as under seccomp.
   */
  placementFor(spec: AppSpec, launcherPid: number): Placement;
  /**
   * After the handover, before the app runs its command: puts the app process pid where the
   * datapath needs it (the bpf datapath: a cgroup of its own, by which its hooks know its
   * calls). Throws a sentence.
   */
  place(app: AppIdentity, placement: Placement, pid: number): void;
  /** The table is restored from the state dir (at start): what the kernel holds from before follows it. */
  restored(): void;
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
  let notBpf = "";
  if (config.datapath === "bpf" || config.datapath === "auto") {
    const dp =
      missingHooks(kernel) ??
      BpfDatapath.open(addon, host, log, {
        stateDir: config.stateDir,
        vipCidr: config.vipCidr,
        localAddresses: host.localAddresses(),
      });
    if (typeof dp === "string" && config.datapath === "bpf")
      throw new InvalidArgumentError(
        `--datapath bpf cannot run here: ${dp}; use --datapath seccomp (or auto)`,
      );
    if (typeof dp === "string") notBpf = dp;
    else return bpfDatapath(dp, host, log, config, filterOf);
  }
  return seccompDatapath(addon, host, log, config, kernel, filterOf, notBpf);
}

/**
 * Why the bpf datapath cannot run on this kernel: the first of its hooks the probe found
 * missing (every BPF_CGROUP_* one, those the CONTINUE guard also uses among them; cgroup2 and
 * bpffs the datapath mounts itself), as one clause; null: none is.
 */
function missingHooks(kernel: KernelInfo): string | null {
  const f = kernel.features.find(
    (x) =>
      (x.need === "bpf" || x.name.startsWith("BPF_CGROUP_")) &&
      x.available === false &&
      x.name !== "cgroup2" &&
      x.name !== "bpffs",
  );
  return f ? `this kernel lacks ${f.name} (Linux ${f.since}; ${f.reason ?? "not offered"})` : null;
}

/** The bpf datapath, open: its maps follow the table from now on. */
function bpfDatapath(
  dp: BpfDatapath,
  host: Host,
  log: Logger,
  config: DaemonConfig,
  filterOf: (mode: FilterMode) => Buffer,
): Datapath {
  host.bpf = dp;
  // The daemon chains the event stream after this mirror (daemon.ts).
  host.table.observer = (c) => dp.tableChanged(c);
  for (const node of host.table.listNodes()) dp.tableChanged({ kind: "node", op: "put", node });
  for (const app of host.table.listApps()) dp.tableChanged({ kind: "app", op: "put", app });
  for (const svc of host.table.listServices()) dp.serviceChanged(svc.proto, svc.vip, svc.vport);
  // No connect or send is trapped, so none is continued: the kernel runs them, and the
  // datapath's hooks judge whatever socket they find. The one continued call, a bind on a
  // UNIX socket, is guarded by the datapath's bind hooks, checked at start (bpf/preflight.ts).
  const reason =
    "the bpf datapath's own hooks: no connect or send is continued, and its bind hooks refuse a continued bind on an app's socket (checked at start)";
  const inApp: Placement = { filter: filterOf("bpf"), host: false };
  const inHost: Placement = { filter: filterOf("bpf-host"), host: true };
  const selected =
    config.datapath === "auto"
      ? "--datapath auto: bpf (this kernel, this build and the daemon's privileges allow it)"
      : "--datapath bpf";
  log.info(selected);
  return {
    placementFor: (spec, launcherPid) =>
      spec.newNetns === false && inDaemonNetns(launcherPid) ? inHost : inApp,
    place: (app, placement, pid) => {
      // The host placement traps nothing: its sockets are the daemon's only in the daemon's namespace.
      if (placement.host && !inDaemonNetns(pid))
        throw new Error(
          "the app left the daemon's network namespace, where its launcher registered it (--new-netns=false with the bpf datapath); start it again",
        );
      // Every app gets a cgroup of its own: the hooks know whose call it is by it.
      dp.place(app, pid, placement.host);
    },
    restored: () => dp.restored(),
    info: { name: "bpf", selected, continueGuard: { available: true, reason } },
    close: () => dp.close(),
  };
}

/** The seccomp datapath, with the CONTINUE guard where this host allows it. notBpf: why auto did not pick bpf. */
function seccompDatapath(
  addon: Addon,
  host: Host,
  log: Logger,
  config: DaemonConfig,
  kernel: KernelInfo,
  filterOf: (mode: FilterMode) => Buffer,
  notBpf: string,
): Datapath {
  const guard = openGuard(addon, log, { stateDir: config.stateDir, kernel });
  host.guard = typeof guard === "string" ? null : guard;
  if (typeof guard === "string")
    log.warn(
      { reason: guard },
      config.strictUnixSockets
        ? "the CONTINUE guard is off: a bind, connect or send on a UNIX socket from a multithreaded app is refused (EPERM, --strict-unix-sockets), and the daemon carries out every send on an INET socket (docs/security.md)"
        : "the CONTINUE guard is off: a bind, connect or send on a UNIX socket from a multithreaded app is continued with a window in which another thread can swap an INET socket in (docs/security.md; --strict-unix-sockets refuses them), and the daemon carries out every send on an INET socket",
    );
  const selected =
    config.datapath === "auto"
      ? `--datapath auto: seccomp (the bpf datapath cannot run here: ${notBpf})`
      : "--datapath seccomp";
  if (config.datapath === "auto") log.warn({ reason: notBpf }, selected);
  const placement: Placement = { filter: filterOf("seccomp"), host: false };
  return {
    placementFor: () => placement,
    place: () => {},
    restored: () => {},
    info: {
      name: "seccomp",
      selected,
      continueGuard: { available: host.guard !== null, reason: typeof guard === "string" ? guard : "" },
    },
    close: () => {
      host.guard?.close();
      host.guard = null;
    },
  };
}
