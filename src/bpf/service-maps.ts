// The bpf datapath's services in its maps (ssw_svcs, ssw_backends): each virtual proto/vip/vport
// with the backends the hooks balance over (backends.ts), their labels and host addresses, the
// service's load balancing and --prefer-local; and each app's private loopback entries for its
// own listeners (scoped to the app). Kept in step with the service table by the datapath.

import type { Logger } from "pino";
import type { Addon } from "../native/addon.js";
import { isLoopback, isUnspecified } from "../net/ip.js";
import type { Binding } from "../table/sockets.js";
import type { Proto } from "../table/types.js";
import type { TrapHost } from "../trap/host.js";
import { kernelBackends } from "./backends.js";
import { backendKey, backendValue, type LabelBits, MAX_BACKENDS, svcKey, svcValue } from "./layout.js";
import { privateKeys } from "./private-loopback.js";

export class ServiceMaps {
  /** Service keys (proto|vip|vport) written to the maps, with their backend counts. */
  readonly written = new Map<string, number>();
  private readonly found = new Uint8Array(56);

  constructor(
    private readonly addon: Addon,
    private readonly log: Logger,
    private readonly host: TrapHost,
    private readonly labels: LabelBits,
    private readonly fds: Record<string, number>,
  ) {}

  private put(map: string, key: Uint8Array, value: Uint8Array): void {
    const r = this.addon.bpfMapUpdate(this.fds[map] as number, key, value, 0);
    if (r < 0) this.log.error({ map, errno: -r }, "writing a bpf datapath map failed");
  }

  private del(map: string, key: Uint8Array): void {
    this.addon.bpfMapDelete(this.fds[map] as number, key);
  }

  /** Rewrites the backends of virtual proto/vip/vport from the table (after any change there). */
  changed(proto: Proto, vip: string, vport: number): void {
    const key = svcKey(proto, vip, vport);
    const id = `${proto}|${vip}|${vport}`;
    const backends = kernelBackends(this.host.table.backends(proto, vip, vport), (svc) =>
      svc.node === this.host.config.nodeName
        ? this.host.sockets.bindingAt(proto, svc.hostIp, svc.hostPort)
        : undefined,
    ).slice(0, MAX_BACKENDS);
    const before = this.written.get(id) ?? 0;
    const me = this.host.config.nodeName;
    backends.forEach((svc, slot) => {
      const bits = this.labels.of(svc.labels) ?? [0n, 0n, 0n, 0n];
      const hostIp =
        (isUnspecified(svc.hostIp) || isLoopback(svc.hostIp)) && svc.node !== me
          ? (this.host.nodeIpOf(svc.node) ?? svc.hostIp)
          : svc.hostIp;
      const be = backendValue(hostIp, svc.hostPort, bits, svc.node === me);
      this.put("ssw_backends", backendKey(key, slot), be);
    });
    if (backends.length > 0) {
      const random = (backends[0]?.lb ?? this.host.table.defaultLb) === "random";
      this.put("ssw_svcs", key, svcValue(backends.length, random, this.host.table.preferNode === me));
      this.written.set(id, backends.length);
    } else {
      this.del("ssw_svcs", key);
      this.written.delete(id);
    }
    for (let slot = backends.length; slot < before; slot++) this.del("ssw_backends", backendKey(key, slot));
  }

  /**
   * An app's private loopback entries for a listener of its own: bound to a loopback address
   * (that address), or to a wildcard (the loopback of each family it serves), as the kernel's
   * lookup finds them for the app's connects to 127.0.0.1 or ::1.
   */
  privateEntry(app: number, b: Binding): void {
    const all = [~0n, ~0n, ~0n, ~0n].map((w) => w & 0xffffffffffffffffn);
    for (const { key, reach } of privateKeys(app, b)) {
      this.put("ssw_backends", backendKey(key, 0), backendValue(reach, b.hostPort, all));
      this.put("ssw_svcs", key, svcValue(1, false));
    }
  }

  /** The private loopback entries of app index `app` for binding b, gone with its socket. */
  privateGone(app: number, b: Binding): void {
    for (const { key } of privateKeys(app, b)) {
      const bk = backendKey(key, 0);
      const r = this.addon.bpfMapLookup(this.fds.ssw_backends as number, bk, this.found);
      // Only the entry of this binding (another socket of the app may have taken the address since).
      if (r < 0 || new DataView(this.found.buffer).getUint16(16, true) !== b.hostPort) continue;
      this.del("ssw_svcs", key);
      this.del("ssw_backends", bk);
    }
  }

  /** Every written service again (SIGHUP changed --lb). */
  rewriteAll(): void {
    for (const id of [...this.written.keys()]) {
      const [proto, vip, vport] = id.split("|");
      this.changed(proto as Proto, vip as string, Number(vport));
    }
  }
}
