// Taking over running apps after a daemon restart (the launcher re-hands each app's
// seccomp listener): the socket records rebuilt from the restored services and the
// kernel's socket list (listening and bound sockets from the services; the apps' client
// connections from the sockets their processes hold, so that a connection made before the
// restart and accepted after it is still admitted and named), and the app's threads kicked
// out of trapped calls that the previous daemon had received but never answered. The kernel
// never delivers such a notification again; interrupted, the call restarts and is trapped
// anew (it never ran). The app's processes are its launcher's subtree (the init of its PID
// namespace), found through the daemon's own /proc: pids of the daemon's namespace.

import { readdirSync, readFileSync } from "node:fs";
import { type KernelSocket, openSocketInodes } from "../net/proc-net.js";
import { AF_INET, AF_INET6 } from "../net/sockaddr.js";
import type { Binding } from "../table/sockets.js";
import type { App, Service } from "../table/types.js";
import { appIp, ipOf } from "../trap/addresses.js";
import type { Host } from "./host.js";
import { nsPids, parentPid } from "./identity.js";

/** Re-creates the bound-socket records of an app's services that still exist in the kernel. */
export function rebuildBindings(host: Host, app: App, kernel: readonly KernelSocket[]): number {
  let rebuilt = 0;
  const byHost = new Map<string, string[]>();
  for (const svc of host.table.servicesOfApp(app.id)) {
    if (svc.node !== host.config.nodeName) continue;
    const key = `${svc.proto}|${svc.hostPort}`; // one socket per host port (a dual-stack one serves two host IPs)
    byHost.set(key, [...(byHost.get(key) ?? []), svc.id]);
  }
  for (const ids of byHost.values()) {
    const svc = host.table.getService(ids[0] as string);
    if (!svc) continue;
    // By port: a dual-stack socket is bound to the host's `::`, its services name the node IP.
    // Several UDP sockets of the app may share the port (bpf datapath: binding.ts shareable).
    const found = kernel.filter(
      (s) =>
        s.proto === svc.proto &&
        s.localPort === svc.hostPort &&
        (svc.proto === "udp" || s.state === "LISTEN"),
    );
    const wildcard = ids.length > 1 || svc.wildcard === true;
    const v6 = ids.some((id) => host.table.getService(id)?.vip.includes(":"));
    found.forEach((k, i) => {
      const vip = wildcard ? (v6 || k.localIp.includes(":") ? "::" : "0.0.0.0") : svc.vip;
      host.sockets.addBinding(recordOf(app, svc, vip, k, i === 0 ? ids : []), i > 0);
      rebuilt++;
    });
  }
  return rebuilt;
}

/** The record of kernel socket k bound for the app's service svc; ids: the services it holds. */
function recordOf(app: App, svc: Service, vip: string, k: KernelSocket, ids: string[]): Binding {
  return {
    appId: app.id,
    proto: svc.proto,
    inode: k.inode,
    vip,
    vport: svc.vport,
    hostIp: k.localIp,
    hostPort: svc.hostPort,
    // Guessed from the kernel's list; the shadow's restore reads them off the socket itself.
    domain: k.localIp.includes(":") ? AF_INET6 : AF_INET,
    reusePort: false,
    reuseAddr: false,
    loopback: false,
    v6only: false,
    exposed: svc.exposed,
    listening: svc.proto === "tcp",
    serviceIds: ids,
    shadowFd: -1,
    connectedTo: null,
  };
}

/**
 * Re-creates the records of the app's outgoing connections (TCP, and connected UDP) that
 * still exist: what each connected to, virtually — a service's address, the app's own
 * loopback listener, or (egress) the real destination. Returns how many.
 */
export function rebuildSources(host: Host, app: App, kernel: readonly KernelSocket[]): number {
  const inodes = openSocketInodes(processTree(appRoot(app)));
  let rebuilt = 0;
  for (const k of kernel) {
    if (k.inode === 0 || !inodes.has(k.inode) || k.state === "LISTEN" || k.state === "BOUND") continue;
    // A server's own socket (accepted on a listener's address), not a client's:
    if (host.sockets.binding(k.proto, k.localIp, k.localPort)) continue;
    if (host.table.serviceAtHost(k.proto, k.localIp, k.localPort)) continue;
    const family = ipOf(k.remoteIp).family;
    const own = host.sockets.binding(k.proto, k.remoteIp, k.remotePort);
    const svc = host.table.serviceAtHost(k.proto, k.remoteIp, k.remotePort);
    let local = appIp(app, family);
    let peer = { ip: k.remoteIp, port: k.remotePort };
    if (own?.loopback && own.appId === app.id) {
      local = family === 4 ? "127.0.0.1" : "::1";
      peer = { ip: local, port: own.vport };
    } else if (svc) {
      peer = { ip: svc.vip, port: svc.vport };
    }
    host.sockets.addSource(k.proto, k.localIp, k.localPort, {
      appId: app.id,
      local: { ip: local, port: k.localPort },
      peer,
      cookie: k.cookie ?? 0,
      inode: k.inode,
    });
    rebuilt++;
  }
  return rebuilt;
}

/**
 * The root of an app's process tree: its launcher, the first process of the app's PID
 * namespace, whose subtree holds every process of the app, orphans included (they are
 * reparented to it). The app's own pid for an app whose parent is no such launcher.
 */
export function appRoot(app: App): number {
  const launcher = parentPid(app.pid);
  if (launcher === null || launcher <= 0) return app.pid;
  const ns = nsPids(launcher);
  return ns !== null && ns.length > 1 && ns[ns.length - 1] === 1 ? launcher : app.pid;
}

/** A process and all its descendants. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0 && out.length < 100_000) {
    const pid = todo.pop() as number;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** True when the thread waits in a seccomp user notification (its kernel stack says so). */
function waitsOnSeccomp(pid: number, tid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/stack`, "utf8").includes("seccomp_do_user_notification");
  } catch {
    return false;
  }
}

/** Kicks every thread of the app's tree that waits on a trapped call; returns how many. */
export function kickTrappedThreads(host: Host, app: App): number {
  let kicked = 0;
  for (const pid of processTree(appRoot(app))) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      const tid = Number(t);
      if (!waitsOnSeccomp(pid, tid)) continue;
      const r = host.addon.interruptSyscall(tid);
      if (r === 0) kicked++;
      else host.log.warn({ app: app.id, tid, errno: -r }, "could not restart a thread's trapped call");
    }
  }
  return kicked;
}
