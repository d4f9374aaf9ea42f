// The app's source-port block on the sockets the daemon makes for it under the bpf datapath
// (docs/cluster.md): connect is not trapped there, so the block is given at socket() time
// with IP_LOCAL_PORT_RANGE (Linux 6.3, ip(7)) and holds for every connection and autobound
// datagram of the socket, to other nodes and elsewhere. Without the option the programs bind
// a connection to another node into the block themselves (native/bpf/datapath-cluster.h).

import type { App } from "../table/types.js";
import type { TrapHost } from "../trap/host.js";
import { IP_LOCAL_PORT_RANGE } from "../trap/source-block.js";

const SOL_IP = 0;
/** The option's value, reused by every socket (no allocation on the trapped path). */
const RANGE = new Uint8Array(4);
const RANGE_VIEW = new DataView(RANGE.buffer);

/** Sets IP_LOCAL_PORT_RANGE on fd to app's block (the caller checked there is one); logs a failure. */
export function setSourceBlock(host: TrapHost, fd: number, app: App): void {
  const b = app.srcPorts;
  if (!b) return;
  RANGE_VIEW.setUint32(0, ((b.last & 0xffff) << 16) | (b.first & 0xffff), true);
  const r = host.addon.setsockoptBytes(fd, SOL_IP, IP_LOCAL_PORT_RANGE, RANGE);
  if (r < 0) host.log.warn({ app: app.id, errno: -r }, "IP_LOCAL_PORT_RANGE failed");
}
