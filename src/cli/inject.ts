// `sockswitch inject -f FILE|-`: reads Kubernetes manifests (YAML, any number of documents;
// `-` is standard input), rewrites every pod template to run its containers under the static
// launcher (src/kube/inject.ts, through src/kube/manifests.ts), and writes the result to
// standard output, like `istioctl kube-inject`: `sockswitch inject -f app.yaml | kubectl
// apply -f -`. A mistake in the input gets one sentence that names the object (exit 2).

import type { Command } from "commander";
import {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_VIP_CIDR,
  defaultDnsIp,
  parseDnsDomain,
  parseDnsIp,
  parseVipCidr,
} from "../core/config.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { InjectOptions } from "../kube/inject.js";

/** Where the daemon's DaemonSet puts the launcher on each node (deploy/kubernetes/). */
export const DEFAULT_NODE_LAUNCHER = "/opt/sockswitch/bin/sockswitch-launch";
export const DEFAULT_NODE_SOCKET_DIR = "/run/sockswitch";

/** Adds the `inject` command to the CLI. */
export function registerInject(program: Command): void {
  program
    .command("inject")
    .description("rewrite Kubernetes manifests so that their pods' containers run as sockswitch apps")
    .requiredOption("-f, --filename <file>", "the manifests (YAML, several documents); - reads stdin")
    .option("--launcher <path>", "where the DaemonSet puts the launcher on each node", DEFAULT_NODE_LAUNCHER)
    .option("--socket-dir <dir>", "the daemon's socket directory on each node", DEFAULT_NODE_SOCKET_DIR)
    .option("--dns-ip <ip>", "the daemon's --dns-ip (default: the 53rd address of --vip-cidr)")
    .option("--vip-cidr <cidr>", "the daemon's --vip-cidr, for the default --dns-ip", DEFAULT_VIP_CIDR)
    .option("--dns-domain <domain>", "the daemon's --dns-domain", DEFAULT_DNS_DOMAIN)
    .action(async (o) => {
      for (const [flag, path] of [
        ["--launcher", o.launcher],
        ["--socket-dir", o.socketDir],
      ] as const)
        if (!String(path).startsWith("/"))
          throw new InvalidArgumentError(`${flag} "${path}" must be an absolute path on the nodes`);
      const options: InjectOptions = {
        launcherPath: o.launcher,
        socketDir: o.socketDir,
        dnsIp: o.dnsIp === undefined ? defaultDnsIp(parseVipCidr(o.vipCidr)) : parseDnsIp(o.dnsIp),
        dnsDomain: parseDnsDomain(o.dnsDomain),
      };
      const file = o.filename as string;
      // Loaded here, not with the CLI: the YAML library is for this command only.
      const { injectText, readManifests } = await import("../kube/manifests.js");
      process.stdout.write(injectText(readManifests(file), file === "-" ? "standard input" : file, options));
    });
}
