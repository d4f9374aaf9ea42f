// After a restart, the bpf datapath's pinned maps hold what the daemon before knew: entries of
// apps, services and virtual IPs that ended while no daemon ran would stay (a stale service
// would route to a host port nobody serves instead of the refusal port). Once the table is
// restored and mirrored, everything the daemon did not write again is removed here. Keys are
// the layouts of native/bpf/datapath.h (layout.ts). bpf(2) (BPF_MAP_GET_NEXT_KEY).

import type { Addon } from "../native/addon.js";
import type { TrapHost } from "../trap/host.js";
import type { AppIndex } from "./app-index.js";
import { addrText, backendKey } from "./layout.js";

export interface Keep {
  /** A service key (struct ssw_svc_key: address text, port, proto number) of scope 0 still written. */
  service(ip: string, port: number, proto: number): boolean;
  /** An app index still in use. */
  index(i: number): boolean;
  /** A virtual IP still in use. */
  vip(ip: string): boolean;
}

/** Every key of map fd (keySize bytes); bounded by the map's size, which the kernel bounds. */
function keys(addon: Addon, fd: number, keySize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array | null = null;
  const k = new Uint8Array(keySize);
  while (addon.bpfMapNextKey(fd, prev, k) === 0) {
    prev = k.slice();
    out.push(prev);
  }
  return out;
}

/** Removes what keep does not keep from ssw_apps, ssw_svcs (with their backends), ssw_vips, ssw_cgroups. Returns how many. */
export function pruneMaps(addon: Addon, fds: Record<string, number>, keep: Keep): number {
  let n = 0;
  const drop = (fd: number, k: Uint8Array): void => {
    if (addon.bpfMapDelete(fd, k) === 0) n++;
  };
  const apps = fds.ssw_apps as number;
  for (const k of keys(addon, apps, 4))
    if (!keep.index(new DataView(k.buffer).getUint32(0, true))) drop(apps, k);
  const svcs = fds.ssw_svcs as number;
  const backends = fds.ssw_backends as number;
  const svc = new Uint8Array(16);
  for (const k of keys(addon, svcs, 24)) {
    const v = new DataView(k.buffer);
    const scope = v.getUint32(20, true);
    const kept =
      scope === 0 ? keep.service(addrText(k), v.getUint16(16, true), k[18] as number) : keep.index(scope);
    if (kept) continue;
    const count = addon.bpfMapLookup(svcs, k, svc) === 0 ? new DataView(svc.buffer).getUint32(0, true) : 0;
    for (let slot = 0; slot < count; slot++) addon.bpfMapDelete(backends, backendKey(k, slot));
    drop(svcs, k);
  }
  const vips = fds.ssw_vips as number;
  for (const k of keys(addon, vips, 16)) if (!keep.vip(addrText(k))) drop(vips, k);
  const cgroups = fds.ssw_cgroups as number;
  const index = new Uint8Array(4);
  for (const k of keys(addon, cgroups, 8))
    if (
      addon.bpfMapLookup(cgroups, k, index) < 0 ||
      !keep.index(new DataView(index.buffer).getUint32(0, true))
    )
      drop(cgroups, k);
  return n;
}

/**
 * After the table's restore: gives up the indexes of apps this node no longer runs, and prunes
 * the maps to what the daemon wrote again (written: the services' keys, "proto|vip|vport").
 */
export function pruneRestored(
  addon: Addon,
  fds: Record<string, number>,
  host: TrapHost,
  index: AppIndex,
  written: ReadonlyMap<string, number>,
): number {
  const node = host.config.nodeName;
  const apps = host.table.listApps();
  const local = new Set(apps.flatMap((a) => (a.node === node ? [a.id] : [])));
  for (const id of index.ids()) if (!local.has(id)) index.remove(id);
  const vips = new Set(apps.flatMap((a) => a.ips));
  if (host.resolver) vips.add(host.resolver.ip);
  return pruneMaps(addon, fds, {
    service: (ip, port, proto) => written.has(`${proto === 17 ? "udp" : "tcp"}|${ip}|${port}`),
    index: (i) => index.idOf(i) !== undefined,
    vip: (ip) => vips.has(ip),
  });
}
