// SIGHUP: the configuration is read again (the same file and command line as at start;
// flags still override the file) and what can change in a running daemon changes now:
//
//   log-level       the logger's level
//   egress          allow/deny for connections that start after the reload
//   lb              the default load balancing of services whose app set none
//   dns-servers     the upstreams of names outside the domain (queries in flight keep theirs)
//   api-token-file  the TCP API's token (read again; the old one stops working)
//
// Every other option takes effect at the next start: a changed one is named in a warning.
// A configuration that does not parse changes nothing and is logged as an error; the
// daemon keeps running on what it had. systemd is told RELOADING=1, then READY=1.

import type { Logger } from "pino";
import type { DaemonConfig } from "../core/config.js";
import { messageOf } from "../core/errors.js";
import { readResolvConf } from "../dns/upstreams.js";
import type { DaemonDns } from "./dns.js";
import type { Host } from "./host.js";
import type { SdNotify } from "./sd-notify.js";

/** Reads the configuration again: the new one, and the options whose change needs a restart. */
export type Reload = () => { config: DaemonConfig; restartNeeded: string[] };

export interface Reloadable {
  readonly host: Host;
  readonly dns: DaemonDns | null;
  readonly log: Logger;
  readonly systemd: SdNotify;
  /** The TCP API's token, when there is one. */
  readonly apiToken: { value: string } | null;
  running: DaemonConfig;
}

/** The SIGHUP handler: never throws. */
export function reloader(read: Reload | undefined, r: Reloadable): () => void {
  return () => {
    r.systemd.send("RELOADING=1", `MONOTONIC_USEC=${monotonicUsec()}`);
    try {
      if (!read) {
        r.log.warn("SIGHUP: nothing to reload (the daemon was not started from the command line)");
        return;
      }
      let next: ReturnType<Reload>;
      try {
        next = read();
      } catch (err) {
        r.log.error({ err: messageOf(err) }, "SIGHUP: the configuration is not valid; nothing changed");
        return;
      }
      const { config, restartNeeded } = next;
      const old = r.running;
      const changed: string[] = [];
      if (config.logLevel !== old.logLevel) {
        r.log.level = config.logLevel;
        changed.push("log-level");
      }
      if (config.egress !== old.egress) {
        r.host.config = { ...r.host.config, egress: config.egress };
        changed.push("egress");
      }
      if (config.lb !== old.lb) {
        r.host.table.setDefaultLb(config.lb);
        changed.push("lb");
      }
      if (r.dns && JSON.stringify(config.dns.upstreams) !== JSON.stringify(old.dns.upstreams)) {
        r.dns.setUpstreams(config.dns.upstreams ?? readResolvConf());
        changed.push("dns-servers");
      }
      if (r.apiToken && config.api && config.api.token !== r.apiToken.value) {
        r.apiToken.value = config.api.token;
        changed.push("api-token-file");
      }
      // The bpf datapath's maps hold --egress and each service's load balancing.
      if (changed.includes("egress") || changed.includes("lb")) r.host.bpf?.reconfigured();
      r.running = {
        ...old,
        logLevel: config.logLevel,
        egress: config.egress,
        lb: config.lb,
        dns: { ...old.dns, upstreams: config.dns.upstreams },
        api: old.api && config.api ? { ...old.api, token: config.api.token } : old.api,
      };
      r.log.info({ changed }, "configuration reloaded");
      if (restartNeeded.length > 0)
        r.log.warn(
          { options: restartNeeded },
          "SIGHUP: these options changed but take effect only at the next start",
        );
    } finally {
      r.systemd.send("READY=1", "STATUS=configuration reloaded");
    }
  };
}

/** CLOCK_MONOTONIC in microseconds, as sd_notify's MONOTONIC_USEC wants it. */
function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}
