// The bpf datapath's app indexes: the number the daemon stamps on an app's sockets (ssw_socks)
// and keys its record by (ssw_apps, ssw_cgroups, private services' scope). Kept in the pinned
// map ssw_app_ids (native/bpf/datapath-lifetime.h) as well as in memory, so that a restarted
// daemon reads back which index is whose: sockets made before the restart keep naming their
// apps, and a new app never gets an index an old socket still carries (indexes are not reused:
// key 0 holds the next one to give). bpf(2) (BPF_MAP_GET_NEXT_KEY).

import type { Addon } from "../native/addon.js";

const ID_LEN = 16;
const NEXT = new Uint8Array(4); // key 0

function text(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

function bytes(s: string): Uint8Array {
  const out = new Uint8Array(ID_LEN);
  out.set(new TextEncoder().encode(s).subarray(0, ID_LEN));
  return out;
}

function key(i: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, i, true);
  return k;
}

export class AppIndex {
  private readonly byId = new Map<string, number>();
  private readonly byIndex = new Map<number, string>();
  private next = 1;

  /** fd: the map ssw_app_ids. Reads back what an earlier daemon recorded there. */
  constructor(
    private readonly addon: Addon,
    private readonly fd: number,
  ) {
    const k = new Uint8Array(4);
    const v = new Uint8Array(ID_LEN);
    const view = new DataView(k.buffer);
    let prev: Uint8Array | null = null;
    while (addon.bpfMapNextKey(fd, prev, k) === 0) {
      prev = k.slice();
      if (addon.bpfMapLookup(fd, k, v) < 0) continue;
      const i = view.getUint32(0, true);
      if (i === 0) this.next = Math.max(this.next, Number(text(v)) || 1);
      else {
        this.byId.set(text(v), i);
        this.byIndex.set(i, text(v));
        this.next = Math.max(this.next, i + 1);
      }
    }
  }

  get(id: string): number | undefined {
    return this.byId.get(id);
  }

  idOf(index: number): string | undefined {
    return this.byIndex.get(index);
  }

  /** The app's index, given now (and recorded) when it has none: [index, new]. */
  give(id: string): [number, boolean] {
    const had = this.byId.get(id);
    if (had !== undefined) return [had, false];
    const i = this.next++;
    this.byId.set(id, i);
    this.byIndex.set(i, id);
    this.addon.bpfMapUpdate(this.fd, key(i), bytes(id), 0);
    this.addon.bpfMapUpdate(this.fd, NEXT, bytes(String(this.next)), 0);
    return [i, true];
  }

  /** The app is gone: its index is forgotten (never given again). Returns it, if it had one. */
  remove(id: string): number | undefined {
    const i = this.byId.get(id);
    if (i === undefined) return undefined;
    this.byId.delete(id);
    this.byIndex.delete(i);
    this.addon.bpfMapDelete(this.fd, key(i));
    return i;
  }

  /** The ids of apps that have an index (a restarted daemon prunes those it no longer knows). */
  ids(): string[] {
    return [...this.byId.keys()];
  }
}
