// The host ports an app's virtual ports last had (bpf datapath). A connected UDP client's
// kernel connection goes to the host port its server had when it connected; when the server's
// socket is bound again (by the same app, or by an app restarted with the same virtual IPs),
// taking that host port back keeps the client reaching it, as it would on a host where the
// virtual address was real. Remembered by the app's virtual IPs; both maps are bounded, the
// oldest entry forgotten first.

import type { Binding } from "../table/sockets.js";
import type { App, Proto } from "../table/types.js";

export class LastPorts {
  /** App id → its virtual IPs, as one key (kept after the app is gone). */
  private readonly ipsOf = new Map<string, string>();
  /** IPs|proto|vport|hostIp → host port. */
  private readonly ports = new Map<string, number>();

  constructor(private readonly max = 4096) {}

  /** Learns (again) an app's virtual IPs. */
  app(app: Pick<App, "id" | "ips">): void {
    bump(this.ipsOf, app.id, [...app.ips].sort().join(","), this.max);
  }

  /** A binding is withdrawn: its host port is remembered (not an --expose port: not the pool's). */
  withdrawn(b: Binding): void {
    if (!b.exposed) bump(this.ports, this.key(b.appId, b.proto, b.vport, b.hostIp), b.hostPort, this.max);
  }

  /** The host port to try first for the app's bind of vport on hostIp; null: none known. */
  preferred(appId: string, proto: Proto, vport: number, hostIp: string): number | null {
    return this.ports.get(this.key(appId, proto, vport, hostIp)) ?? null;
  }

  private key(appId: string, proto: Proto, vport: number, hostIp: string): string {
    return `${this.ipsOf.get(appId) ?? appId}|${proto}|${vport}|${hostIp}`;
  }
}

function bump<V>(m: Map<string, V>, key: string, value: V, max: number): void {
  m.delete(key);
  m.set(key, value);
  if (m.size > max) m.delete(m.keys().next().value as string);
}
