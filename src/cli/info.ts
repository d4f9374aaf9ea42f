// `sockswitch info [-o table|json]`: the daemon's version and node, its datapath and whether
// the CONTINUE guard holds, and what its kernel offers: each feature sockswitch probes, the
// release that brought it, whether sockswitch needs it, and what it does without it
// (GET /v1/info).

import { apiGet } from "../api/client.js";
import type { InfoResponse } from "../api/info.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { FeatureReport } from "../core/kernel-info.js";
import { table } from "./format.js";

function yesNo(f: FeatureReport): string {
  return f.available === true ? "yes" : f.available === false ? "no" : "unknown";
}

/** The info answer as people read it. */
export function formatInfo(info: InfoResponse): string {
  const k = info.kernel;
  const head = table(
    ["NODE", "VERSION", "KERNEL", "MACHINE", "CGROUP2", "BPFFS"],
    [[info.node, info.version, k.release, k.machine, k.cgroup2 ?? "<none>", k.bpffs ?? "<none>"]],
  );
  const d = info.datapath;
  const guard = table(
    ["DATAPATH", "SELECTED", "CONTINUE GUARD", "NOTE"],
    [[d.name, d.selected, d.continueGuard.available ? "on" : "off", d.continueGuard.reason]],
  );
  const features = table(
    ["FEATURE", "SINCE", "NEED", "AVAILABLE", "NOTE"],
    k.features.map((f) => [f.name, f.since, f.need, yesNo(f), f.reason ?? ""]),
  );
  const missing = k.features
    .filter((f) => (f.need === "required" || f.need === "optional") && f.available !== true)
    .map((f) => `- without ${f.name}: ${f.without}`);
  return [head, "", guard, "", features, ...(missing.length > 0 ? ["", ...missing] : [])].join("\n");
}

export async function info(socket: string, output: string): Promise<string> {
  if (output !== "table" && output !== "json") {
    throw new InvalidArgumentError(`-o "${output}" is not an output format; use table or json`);
  }
  const body = await apiGet<InfoResponse>(socket, "/v1/info");
  return output === "json" ? JSON.stringify(body, null, 2) : formatInfo(body);
}
