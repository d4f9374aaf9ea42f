// Publish rules are checked when an app starts (`run --publish/--expose`), not when the app
// first binds the port: a host port that another app already publishes, or that something
// on the host holds, refuses the start with the reason, instead of surfacing later as the
// app's own EADDRINUSE. The check is a trial bind(2) of the host address (with
// SO_REUSEADDR, so connections in TIME_WAIT do not count), released at once; it is
// non-blocking. A port held by this node's own ingress proxy is not a conflict (the proxy
// gives way when the app binds). A rule on another node's address is that node's to check.

import { ConflictError, InvalidArgumentError } from "../core/errors.js";
import { parseIp } from "../net/ip.js";
import { AF_INET, AF_INET6, encodeSockaddr, SOCKADDR_MAX } from "../net/sockaddr.js";
import type { AppSpec } from "../table/app-spec.js";
import type { ExposeRule } from "../table/types.js";
import type { Host } from "./host.js";

const SO_REUSEADDR = 2;
const EADDRINUSE = 98;
const EADDRNOTAVAIL = 99;

function where(r: ExposeRule, nodeIp: string): string {
  const ip = r.hostIp ?? nodeIp;
  return ip.includes(":") ? `[${ip}]:${r.hostPort}` : `${ip}:${r.hostPort}`;
}

function overlaps(a: ExposeRule, b: ExposeRule, nodeIp: string): boolean {
  if (a.hostPort !== b.hostPort) return false;
  const ia = a.hostIp ?? nodeIp;
  const ib = b.hostIp ?? nodeIp;
  const any = (ip: string) => ip === "0.0.0.0" || ip === "::";
  return ia === ib || any(ia) || any(ib);
}

/**
 * Throws one sentence when a rule of spec cannot get its host port on this node: a
 * ConflictError when another app or process holds it (the launcher exits 125, as `docker
 * run -p` does), an InvalidArgumentError for an address that is not this host's (exit 2).
 */
export function checkPublish(host: Host, spec: AppSpec, proxyPorts: ReadonlySet<number>): void {
  const nodeIp = host.config.nodeIp;
  for (const rule of spec.expose) {
    for (const other of host.table.listApps()) {
      const clash = other.expose.find((e) => overlaps(e, rule, nodeIp));
      if (clash && other.node === host.config.nodeName)
        throw new ConflictError(
          `host port ${where(rule, nodeIp)} is already published by app ${other.name || other.id}; choose another host port`,
        );
    }
    const ip = rule.hostIp ?? nodeIp;
    if (ip !== "0.0.0.0" && ip !== "::" && !host.isLocalAddress(ip)) {
      // Another node's IP: that node's ingress forwards to this one (docs/cluster.md). Any
      // other address would leave the port published on this node's IP instead.
      if (host.table.listNodes().some((n) => n.ip === ip || n.ip6 === ip)) continue;
      throw new InvalidArgumentError(
        `${ip} (host port ${where(rule, nodeIp)}, --publish or --expose) is not an address of this host or of a node of its cluster; use one of them, or leave HOST_IP out`,
      );
    }
    if (proxyPorts.has(rule.hostPort)) continue;
    const err = trialBind(host, ip, rule.hostPort, rule.proto ?? "tcp");
    if (err === EADDRINUSE)
      throw new ConflictError(
        `host port ${where(rule, nodeIp)}${rule.proto === "udp" ? "/udp" : ""} is taken on this host; choose another host port or stop what holds it`,
      );
    if (err === EADDRNOTAVAIL)
      throw new InvalidArgumentError(
        `${ip} (host port ${where(rule, nodeIp)}, --publish or --expose) is not an address of this host`,
      );
  }
}

/** 0, or the errno of binding ip:port on a fresh socket of the protocol. */
function trialBind(host: Host, ip: string, port: number, proto: "tcp" | "udp"): number {
  const a = host.addon;
  const parsed = parseIp(ip);
  if (!parsed) return 0;
  const domain = parsed.family === 4 ? AF_INET : AF_INET6;
  const fd = a.socket(domain, proto === "tcp" ? a.constants.SOCK_STREAM : a.constants.SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  try {
    if (proto === "tcp") a.setsockoptInt(fd, a.constants.SOL_SOCKET, SO_REUSEADDR, 1);
    const buf = new Uint8Array(SOCKADDR_MAX);
    const len = encodeSockaddr(domain, parsed, port, buf);
    const rc = a.bind(fd, buf, len);
    return rc < 0 ? -rc : 0;
  } finally {
    a.close(fd);
  }
}
