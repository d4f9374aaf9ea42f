// The daemon's wiring: every module, in the order it starts, with what it is for.
//
//   config      validated options (core/config.ts)
//   logger      structured lines on stdout (core/log.ts)
//   addon       the syscalls Node cannot make (native/addon.ts)
//   store       embedded state in --state-dir (store/embedded.ts), or etcd (store/etcd.ts)
//   host        table + socket registry + port pool + store writes (daemon/host.ts)
//   datapath    how decisions reach the kernel: seccomp (+ the CONTINUE guard) or bpf (daemon/datapath.ts)
//   supervisor  trapped-call dispatch, one handler per call (trap/supervisor.ts)
//   dns         the embedded DNS server and its well-known virtual IP (daemon/dns.ts)
//   apps        app lifecycle: identity, sessions, removal (daemon/apps.ts)
//   cluster     other nodes' records into the table, this node's record (daemon/cluster.ts)
//   ingress     node-port forwarding listeners for other nodes' --expose (gateway/ingress.ts)
//   api         REST routes on fastify (api/server.ts)
//   socket      the UNIX socket shared by the API and the launcher handshake (daemon/socket-server.ts)
//
// Shutdown (SIGTERM/SIGINT): stop accepting, flush the store, close sessions. Apps keep
// running; their listeners are kernel sockets and keep serving.

import { mkdirSync } from "node:fs";
import { createApiServer } from "../api/server.js";
import { pinDirOf, removePins } from "../bpf/system.js";
import type { DaemonConfig } from "../core/config.js";
import { messageOf, PermissionError, SockswitchError } from "../core/errors.js";
import { createLogger } from "../core/log.js";
import { VERSION } from "../core/version.js";
import { Ingress } from "../gateway/ingress.js";
import { loadAddon } from "../native/addon.js";
import { kernelLists } from "../net/sock-diag.js";
import { specFromJson } from "../table/app-spec.js";
import { Supervisor } from "../trap/supervisor.js";
import { AppManager, parentPid } from "./apps.js";
import { createStore, joinCluster } from "./cluster.js";
import { openDatapath } from "./datapath.js";
import { DaemonDns } from "./dns.js";
import { Host } from "./host.js";
import type { LaunchHandler, Pending } from "./launcher-protocol.js";
import { Reconciler } from "./reconcile.js";
import { SocketServer } from "./socket-server.js";

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
];

export async function runDaemon(config: DaemonConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  if (process.getuid?.() !== 0) {
    throw new PermissionError(
      "sockswitch daemon must run as root (it needs CAP_SYS_ADMIN and CAP_SYS_PTRACE)",
    );
  }
  const addon = loadAddon();
  const store = createStore(config, log);
  const snapshot = await store.open();
  const host = new Host(addon, config, store, log);
  // The state dir names the daemon's BPF pins (bpf/system.ts): it must exist while they do.
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  if (config.clean) removePins(pinDirOf(config.stateDir));

  const k = addon.constants as unknown as Record<string, number>;
  const nr: Record<string, number> = {};
  for (const name of SYSCALLS) nr[name] = k[`__NR_${name}`] as number;
  const supervisor = new Supervisor(nr);
  const dns = await DaemonDns.start(host, config.dns, config.socket, log);
  host.resolver = dns?.resolver ?? null;
  const datapath = openDatapath(addon, host, log, config, nr);
  const filter = datapath.filter;
  const apps = new AppManager(host, supervisor);
  if (dns) apps.reserveIp(dns.resolver.ip);
  const kernel = kernelLists(addon, log);
  apps.restore(snapshot, snapshot.apps.length > 0 ? await kernel.allButTimeWait() : []);

  const launch: LaunchHandler = {
    hello(meta, cred) {
      let json: unknown;
      try {
        json = JSON.parse(meta);
      } catch {
        throw new Error("bad app registration: not JSON");
      }
      const inside = apps.appOfProcess(cred.pid);
      if (inside)
        throw new Error(`a managed app may not start apps (the launcher runs inside app ${inside.id})`);
      const spec = specFromJson(json);
      if (host.resolver && spec.ips.includes(host.resolver.ip))
        throw new Error(
          `${host.resolver.ip} is the address of sockswitch's DNS server (--dns-ip); choose another --ip`,
        );
      const ips = apps.assignIps(spec);
      log.debug({ launcher: cred.pid, uid: cred.uid, name: spec.name }, "launcher hello");
      return { spec, ips, filter };
    },
    handover(p: Pending, childPid, listenerFd, cred) {
      if (parentPid(childPid) !== cred.pid) {
        throw new Error(`process ${childPid} is not a child of the launcher ${cred.pid}`);
      }
      return apps.start(p.spec, p.ips, childPid, listenerFd).id;
    },
    reattach(appId, pid, listenerFd, cred) {
      apps.adopt(appId, pid, listenerFd, cred.pid);
    },
    abandon(p) {
      apps.releaseIps(p.ips);
    },
    persisted: () => store.persisted(),
  };

  const reconciler = new Reconciler(host, log, kernel.listeningAndUdp);
  reconciler.start();
  const ingress = new Ingress(host, log);
  const leave = joinCluster(
    host,
    store,
    () => apps.count,
    () => ingress.schedule(),
  );
  ingress.plan();

  const ctx = {
    table: host.table,
    sockets: host.sockets,
    version: VERSION,
    node: config.nodeName,
    store: store.kind,
    startedAt: new Date().toISOString(),
    datapath: datapath.info,
    proxies: () => ingress.list(),
  };
  const api = await createApiServer(ctx);
  const server = new SocketServer(addon, api.http, launch, log);
  server.listen({ path: config.socket, gid: config.socketGroup });
  const tcpApi = config.api ? await createApiServer(ctx, config.api.token) : null;
  if (tcpApi && config.api) {
    try {
      await tcpApi.fastify.listen({ host: config.api.host, port: config.api.port });
    } catch (err) {
      throw new SockswitchError(
        "SOCKSWITCH_ERR_SOCKET",
        `cannot serve the API on ${config.api.host}:${config.api.port}: ${messageOf(err)}`,
        500,
      );
    }
  }
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
      ...datapath.info,
    },
    "sockswitch daemon ready",
  );

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      server.close();
      reconciler.stop();
      leave();
      ingress.close();
      apps.closeAll();
      datapath.close();
      Promise.all([store.close(), api.fastify.close(), tcpApi?.fastify.close(), dns?.close()])
        .catch((err) => log.error({ err: messageOf(err) }, "shutdown"))
        .finally(resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
