// `sockswitch inject -f FILE|-`: reads Kubernetes manifests (YAML, any number of documents;
// `-` is standard input), rewrites every pod template to run its containers under the static
// launcher (src/kube/inject.ts), and writes the result to standard output, like
// `istioctl kube-inject`: `sockswitch inject -f app.yaml | kubectl apply -f -`. Comments are
// not kept. A mistake in the input gets one sentence that names the object (exit 2).

import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseAllDocuments, stringify } from "yaml";
import {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_VIP_CIDR,
  defaultDnsIp,
  parseDnsDomain,
  parseDnsIp,
  parseVipCidr,
} from "../core/config.js";
import { InvalidArgumentError, messageOf } from "../core/errors.js";
import { type InjectOptions, injectDocument } from "../kube/inject.js";

/** Where the daemon's DaemonSet puts the launcher on each node (deploy/kubernetes/). */
export const DEFAULT_NODE_LAUNCHER = "/opt/sockswitch/bin/sockswitch-launch";
export const DEFAULT_NODE_SOCKET_DIR = "/run/sockswitch";

/** The manifests in text (YAML documents), rewritten; source names the input in errors. */
export function injectText(text: string, source: string, o: InjectOptions): string {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return text; // no document at all
  const out: string[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) throw new InvalidArgumentError(`${source} is not valid YAML: ${err.message.split("\n")[0]}`);
    const value = injectDocument(doc.toJS(), o);
    if (value === null || value === undefined) continue;
    out.push(stringify(value, { lineWidth: 0 }));
  }
  return out.join("---\n");
}

function readInput(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(
      code === "ENOENT" ? `-f ${file}: no such file` : `cannot read -f ${file}: ${messageOf(err)}`,
    );
  }
}

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
    .action((o) => {
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
      process.stdout.write(injectText(readInput(file), file === "-" ? "standard input" : file, options));
    });
}
