// The daemon's wiring: every module, in the order it starts, with what it is for.
//
//   config      validated options (core/daemon-config.ts: flags over the config file)
//   logger      structured lines on stdout (core/log.ts)
//   containment uncaught exceptions logged, never fatal (daemon/containment.ts)
//   addon       the syscalls Node cannot make (native/addon.ts)
//   instance    directories, one daemon per socket and state dir (daemon/instance.ts)
//   kernel      what the kernel offers, probed once; a kernel without a requirement is refused (daemon/kernel-probe.ts)
//   store       embedded state in --state-dir (store/embedded.ts), or etcd (store/etcd.ts)
//   host        table + socket registry + port pool + store writes (daemon/host.ts)
//   datapath    how decisions reach the kernel: seccomp (+ the CONTINUE guard) or bpf (daemon/datapath.ts)
//   supervisor  trapped-call dispatch, one handler per call (trap/supervisor.ts)
//   dns         the embedded DNS server and its well-known virtual IP (daemon/dns.ts)
//   apps        app lifecycle: identity, sessions, removal (daemon/apps.ts)
//   history     finished apps and their exit status (daemon/app-history.ts)
//   runner      detached apps: their launchers, output, restart policy (daemon/runner.ts)
//   control     the API's app operations: lists, run -d, stop, rm, logs (daemon/app-control.ts)
//   events      the event stream: table changes, app ends, refusals (daemon/event-bus.ts)
//   cluster     other nodes' records into the table, this node's record (daemon/cluster.ts)
//   ingress     node-port forwarding listeners for other nodes' --expose (gateway/ingress.ts)
//   api         REST routes on fastify (api/server.ts)
//   socket      the UNIX socket shared by the API and the launcher handshake (daemon/socket-server.ts)
//   systemd     READY=1 once serving, STOPPING=1, RELOADING=1 (daemon/sd-notify.ts)
//
// Start: any failure is thrown as one sentence (the CLI prints it and exits 1); what was
// opened is closed first. Shutdown (SIGTERM/SIGINT): stop accepting, close sessions, flush
// the store, all within STOP_MS, then exit 0. Apps keep running (their listeners are kernel
// sockets) and their launchers hand them to the next daemon. SIGHUP: reload (reload.ts).

import { createApiServer } from "../api/server.js";
import { cleanPins, mountsInUse } from "../bpf/system.js";
import type { DaemonConfig } from "../core/config.js";
import {
  InvalidArgumentError,
  KernelError,
  messageOf,
  NativeError,
  PermissionError,
  SockswitchError,
} from "../core/errors.js";
import { feature, HIDE_ENV, missingRequirement, parseHidden } from "../core/kernel-info.js";
import { createLogger, type LogTap } from "../core/log.js";
import { VERSION } from "../core/version.js";
import { Ingress } from "../gateway/ingress.js";
import { loadAddon } from "../native/addon.js";
import { kernelLists } from "../net/sock-diag.js";
import { specFromRegistration } from "../table/app-spec.js";
import type { App } from "../table/types.js";
import { Supervisor } from "../trap/supervisor.js";
import { DaemonApps } from "./app-control.js";
import { AppHistory } from "./app-history.js";
import { AppManager, newAppId } from "./apps.js";
import { createStore, joinCluster } from "./cluster.js";
import { containUncaught } from "./containment.js";
import { openDatapath } from "./datapath.js";
import { DaemonDns } from "./dns.js";
import { EventBus, tableEvents } from "./event-bus.js";
import { Host } from "./host.js";
import { appOfLauncher, mustBeListener, parentPid } from "./identity.js";
import { claimInstance } from "./instance.js";
import { logKernel, probeKernel, trapKernel, withMounts } from "./kernel-probe.js";
import type { LaunchHandler, Pending } from "./launcher-protocol.js";
import { checkPublish } from "./publish-check.js";
import { readiness } from "./readiness.js";
import { Reconciler } from "./reconcile.js";
import { type Reload, reloader } from "./reload.js";
import { Runner } from "./runner.js";
import { SdNotify } from "./sd-notify.js";
import { callerOf, SocketServer } from "./socket-server.js";

/** Shutdown is bounded: systemd (and operators) expect a daemon to be gone within 2 s. */
const STOP_MS = 1500;

const SYSCALLS = [
  "socket",
  "bind",
  "listen",
  "connect",
  "accept",
  "accept4",
  "getsockname",
  "getpeername",
  "sendto",
  "sendmsg",
  "sendmmsg",
  "recvfrom",
  "recvmsg",
  "recvmmsg",
  "setns",
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "pidfd_getfd",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
  "socketpair",
  "userfaultfd",
  "unshare",
  "clone",
  "clone3",
  "ioctl",
];

export interface DaemonOptions {
  /** SIGHUP: the configuration read again (file and flags); throws one sentence. */
  readonly reload?: Reload;
}

/** Runs the daemon until SIGTERM or SIGINT; rejects with one sentence if it cannot start. */
export async function runDaemon(config: DaemonConfig, opts: DaemonOptions = {}): Promise<void> {
  const bus: { tap: LogTap | null } = { tap: null };
  const log = createLogger(config.logLevel, (fields, msg) => bus.tap?.(fields, msg));
  const uncontain = containUncaught(log);
  const cleanups: (() => unknown)[] = [uncontain];
  try {
    await serve(config, opts, log, cleanups, bus);
  } finally {
    // In reverse order of opening, all of it within STOP_MS.
    const run = async () => {
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch (err) {
          log.warn({ err: messageOf(err) }, "cleanup failed");
        }
      }
    };
    await bounded(run());
  }
  log.info("sockswitch daemon stopped");
}

async function serve(
  config: DaemonConfig,
  opts: DaemonOptions,
  log: ReturnType<typeof createLogger>,
  cleanups: (() => unknown)[],
  logTap: { tap: LogTap | null },
): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new PermissionError(
      "sockswitch daemon must run as root (it needs CAP_SYS_ADMIN and CAP_SYS_PTRACE)",
    );
  }
  let addon: ReturnType<typeof loadAddon>;
  try {
    addon = loadAddon();
  } catch (err) {
    throw new NativeError(`${messageOf(err).split("\n")[0]}; run \`npm install\` to build it`);
  }
  const hidden = parseHidden(process.env[HIDE_ENV]);
  const kernelInfo = probeKernel(addon, hidden);
  logKernel(kernelInfo, hidden, log);
  const missing = missingRequirement(kernelInfo);
  if (missing) throw new KernelError(missing);
  const systemd = new SdNotify(addon);
  await claimInstance(addon, config.socket, config.stateDir);
  const store = await createStore(config, log);
  const snapshot = await store.open();
  cleanups.push(() => store.close());
  const host = new Host(addon, config, store, log, trapKernel(kernelInfo));
  // The state dir names the daemon's BPF pins (bpf/system.ts).
  if (config.clean) cleanPins(addon, config.stateDir);

  const k = addon.constants as unknown as Record<string, number>;
  const nr: Record<string, number> = {};
  for (const name of SYSCALLS) nr[name] = k[`__NR_${name}`] as number;
  const supervisor = new Supervisor(nr);
  const dns = await DaemonDns.start(host, config.dns, config.limits, config.socket, log);
  if (dns) cleanups.push(() => dns.close());
  host.resolver = dns?.resolver ?? null;
  const datapath = openDatapath(addon, host, log, config, nr, kernelInfo);
  cleanups.push(() => datapath.close());
  // The datapath may have mounted cgroup2 and bpffs (or pins in an outer namespace's): info shows them.
  const kernelInUse = withMounts(kernelInfo, mountsInUse());
  const apps = new AppManager(host, supervisor);
  if (dns) apps.reserveIp(dns.resolver.ip);
  const kernel = kernelLists(addon, log, feature(kernelInfo, "sock_diag").available !== false);
  // Apps that ended while the daemon was down are told to the history once it serves.
  const endedWhileDown: App[] = [];
  apps.onRemoved = (app) => endedWhileDown.push(app);
  apps.restore(snapshot, snapshot.apps.length > 0 ? await kernel.allButTimeWait() : []);
  datapath.restored();
  const events = new EventBus(log);
  logTap.tap = (fields, msg) => events.tap(fields, msg);
  const history = new AppHistory(config.stateDir, log, config.clean);
  const runner = new Runner(config.stateDir, config.socket, log, config.clean);
  cleanups.push(() => runner.close());
  const control = new DaemonApps(host, history, runner, events);
  for (const a of host.table.listApps()) {
    const run = a.node === config.nodeName ? runner.runOf(a.id) : undefined;
    if (run)
      history.started(a.id, {
        detached: true,
        restartPolicy: run.req.restart,
        restarts: run.restarts,
        rm: run.req.rm,
        stack: run.req.stack ?? null,
      });
  }
  // After the restore: the event stream tells changes, the bpf datapath's mirror sees them all.
  const mirror = host.table.observer;
  const toEvents = tableEvents(events, host, config.nodeName);
  host.table.observer = mirror
    ? (c) => {
        mirror(c);
        toEvents(c);
      }
    : toEvents;

  const launch: LaunchHandler = {
    hello(registration, cred) {
      let json: unknown;
      try {
        json = JSON.parse(registration);
      } catch {
        throw new Error("bad app registration: not JSON");
      }
      const inside = apps.appOfProcess(cred.pid);
      if (inside)
        throw new Error(`a managed app may not start apps (the launcher runs inside app ${inside.id})`);
      const spec = specFromRegistration(json);
      if (host.resolver && spec.ips.includes(host.resolver.ip))
        throw new InvalidArgumentError(
          `${host.resolver.ip} is the address of sockswitch's DNS server (--dns-ip); choose another --ip`,
        );
      checkPublish(host, spec, new Set(ingress.list().map((p) => Number(p.listen.split(":").pop()))));
      const ips = apps.assignIps(spec);
      log.debug({ launcher: cred.pid, uid: cred.uid, name: spec.name }, "launcher hello");
      return { spec, ips, placement: datapath.placementFor(spec, cred.pid) };
    },
    handover(p: Pending, listenerFd, pidfd, cred) {
      mustBeListener(listenerFd);
      const pid = appOfLauncher(pidfd, cred.pid);
      const id = newAppId();
      // Before the app is started (and owns the listener): a placement that fails refuses it.
      datapath.place({ id, ips: p.ips, labels: p.spec.labels }, p.placement, pid);
      const app = apps.start(p.spec, p.ips, pid, listenerFd, id);
      // A launcher the daemon started (run -d) is the one it spawned, or on a host the init
      // of the app's PID namespace that launcher forked (native/launcher/pidns.c).
      const spawned = runner.isOurs(cred.pid) ? cred.pid : parentPid(cred.pid);
      if (spawned !== null && runner.isOurs(spawned)) runner.registered(spawned, app.id);
      else
        history.started(app.id, {
          detached: false,
          restartPolicy: "no",
          restarts: 0,
          rm: p.spec.rm === true,
          stack: null,
        });
      control.started(app);
      return app.id;
    },
    reattach(appId, listenerFd, pidfd, cred) {
      apps.adopt(appId, pidfd, listenerFd, cred.pid);
    },
    exited: (appId, status) => history.exited(appId, status),
    abandon(p) {
      apps.releaseIps(p.ips);
    },
    persisted: () => store.persisted(),
  };

  const ingress = new Ingress(host, log);
  cleanups.push(() => ingress.close());
  const reconciler = new Reconciler(host, log, kernel.listeningAndUdp);
  reconciler.start();
  cleanups.push(() => reconciler.stop());
  const leave = joinCluster(
    host,
    store,
    () => apps.count,
    () => ingress.schedule(),
  );
  cleanups.push(leave);
  ingress.plan();
  cleanups.push(() => apps.closeAll());

  const ctx = {
    table: host.table,
    sockets: host.sockets,
    version: VERSION,
    node: config.nodeName,
    store: store.kind,
    startedAt: new Date().toISOString(),
    proxies: () => ingress.list(),
    readiness: () => readiness(store, server),
    apps: control,
    events,
    callerOf,
    kernel: kernelInUse,
    datapath: datapath.info,
  };
  const server = new SocketServer(addon, launch, log);
  const api = await createApiServer(ctx);
  server.http = api.http;
  cleanups.push(() => api.fastify.close());
  // The TCP API first: a port that is taken must stop the start before the socket is served.
  const apiToken = config.api ? { value: config.api.token } : null;
  const tcpApi = apiToken
    ? await createApiServer(ctx, apiToken, {
        maxConnectionsPerPeer: config.limits.apiConnectionsPerPeer,
        onRefused: (peer) =>
          host.limited.warn(
            `api|${peer}`,
            { peer, limit: config.limits.apiConnectionsPerPeer },
            "the peer holds as many API connections as it may (--api-max-connections-per-peer); closed",
          ),
      })
    : null;
  if (tcpApi && config.api) {
    cleanups.push(() => tcpApi.fastify.close());
    try {
      await tcpApi.fastify.listen({ host: config.api.host, port: config.api.port });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SockswitchError(
        "SOCKSWITCH_ERR_SOCKET",
        `cannot serve the API on ${config.api.host}:${config.api.port}: ${
          code === "EADDRINUSE" ? "the port is taken; choose another --api-listen" : messageOf(err)
        }`,
        500,
      );
    }
  }
  server.listen({ path: config.socket, gid: config.socketGroup });
  cleanups.push(() => server.close());
  apps.onRemoved = (app) => history.removed(app);
  for (const app of endedWhileDown.splice(0)) history.removed(app);
  log.info(
    {
      version: VERSION,
      socket: config.socket,
      node: config.nodeName,
      nodeIp: config.nodeIp,
      nodeIp6: config.nodeIp6,
      ports: `${config.ports.first}-${config.ports.last}`,
      vipCidr: config.vipCidr.text,
      egress: config.egress,
      lb: config.lb,
      store: config.store.kind === "etcd" ? `etcd://${config.store.endpoints.join(",")}` : "embedded",
      cluster: config.store.kind === "etcd" ? config.store.cluster : undefined,
      stateDir: config.stateDir,
      restoredApps: snapshot.apps.length,
      dns: dns ? `${dns.resolver.ip}:53` : "off",
      api: config.api ? `${config.api.host}:${config.api.port}` : "unix socket only",
      datapath: datapath.info.name,
      continueGuard: datapath.info.continueGuard.available ? "on" : "off",
    },
    "sockswitch daemon ready",
  );

  systemd.send("READY=1", `STATUS=serving on ${config.socket}`, `MAINPID=${process.pid}`);
  const reload = reloader(opts.reload, { host, dns, log, systemd, apiToken, running: config });

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      process.off("SIGHUP", onHup);
      log.info({ signal }, "shutting down");
      systemd.send("STOPPING=1");
      // Closing the socket first: launchers see their connection end and wait for the next
      // daemon (their apps keep running); then sessions, gateways, and the store's last write.
      server.close();
      resolve();
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    const onHup = () => reload();
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
    process.on("SIGHUP", onHup);
  });
}

/** p, or nothing after STOP_MS: shutdown never waits long on a peer that does not answer. */
function bounded(p: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise((resolve) => {
      timer = setTimeout(resolve, STOP_MS);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
