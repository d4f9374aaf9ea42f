// `sockswitch inject`: rewrites Kubernetes manifests so that every container of a pod runs
// as a sockswitch app, under the static launcher, with the pod's name and labels. Pure: it
// takes the parsed documents and returns the rewritten ones (src/cli/inject.ts reads and
// writes YAML).
//
// For each pod template (a Pod, or the template of a Deployment, StatefulSet, DaemonSet,
// ReplicaSet, ReplicationController, Job or CronJob; items of a List; other kinds pass
// through untouched):
//   - each container (and init container) gets `command: [LAUNCHER]` and
//     `args: [run, --new-netns=false, --dns-override=false, --name NAME, --labels K=V,…,
//     (--ip IP), --, <what the container ran>]`; what it ran is its command and args, or,
//     when it has no command, the image's ENTRYPOINT and CMD from the annotation
//     `image.sockswitch.io/<container>: '{"entrypoint": […], "cmd": […]}'` (Kubernetes'
//     rules: args replace CMD); without either, a sentence saying so;
//   - hostPath volumes for the launcher (a file on the node, put there by the daemon's
//     DaemonSet) and the daemon's socket directory, mounted into each container;
//   - `dnsPolicy: None` and a dnsConfig that names the daemon's DNS server;
//   - probes that connect to the pod's IP (httpGet, tcpSocket, grpc) are refused: nothing
//     listens there, an app's sockets are the node's;
//   - the annotation `sockswitch.io/injected: "true"`; a template that has it is left as it
//     is, so injecting twice changes nothing.
// NAME is the pod's name (a Pod) or the workload's (so that every replica answers to it);
// `sockswitch.io/ip` on the pod template gives every container of it that virtual IP, and
// `sockswitch.io/publish: "[HOST_IP:]HOST_PORT:APP_PORT,…"` publishes ports on the nodes.
// Kubernetes objects: https://kubernetes.io/docs/reference/kubernetes-api/ (PodSpec, Container,
// Volume, PodDNSConfig).

import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodDNSConfig } from "kubernetes-models/v1/PodDNSConfig";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import { InvalidArgumentError } from "../core/errors.js";
import { parseAppIps, parsePublish, validateName } from "../table/app-spec.js";
import { parseLabels } from "../table/policy.js";

export interface InjectOptions {
  /** Where the launcher is on every node (the DaemonSet copies it there). */
  readonly launcherPath: string;
  /** The daemon's socket directory on every node. */
  readonly socketDir: string;
  /** The daemon's DNS server (its --dns-ip) and domain (--dns-domain). */
  readonly dnsIp: string;
  readonly dnsDomain: string;
}

/** Where the launcher and the socket directory appear inside each container. */
export const LAUNCHER_IN_CONTAINER = "/sockswitch-launch";
export const SOCKET_DIR_IN_CONTAINER = "/run/sockswitch";
export const INJECTED = "sockswitch.io/injected";
export const IP_ANNOTATION = "sockswitch.io/ip";
export const PUBLISH_ANNOTATION = "sockswitch.io/publish";
export const IMAGE_ANNOTATION_PREFIX = "image.sockswitch.io/";
const LAUNCHER_VOLUME = "sockswitch-launch";
const SOCKET_VOLUME = "sockswitch-run";

type Obj = Record<string, unknown>;

const TEMPLATE_KINDS = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "ReplicationController",
  "Job",
]);

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(where: string, what: string): never {
  throw new InvalidArgumentError(`${where}: ${what}`);
}

/** fn's result; an InvalidArgumentError it throws gets where and a preface. */
function within<T>(where: string, fn: () => T, preface: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) bad(where, preface + err.message);
    throw err;
  }
}

function strings(v: unknown, where: string, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    bad(where, `${what} must be a list of strings`);
  return v as string[];
}

/** Kubernetes expands $(VAR) in command and args and turns $$ into $: keep text literal. */
function literal(args: readonly string[]): string[] {
  return args.map((a) => a.replace(/\$/g, "$$$$"));
}

/** What a container runs, by Kubernetes' rules, with the image's part from the annotation. */
function commandOf(c: Obj, annotations: Obj, where: string): string[] {
  const args = c.args === undefined ? undefined : strings(c.args, where, "args");
  if (c.command !== undefined) return [...strings(c.command, where, "command"), ...(args ?? [])];
  const key = `${IMAGE_ANNOTATION_PREFIX}${c.name as string}`;
  const raw = annotations[key];
  if (raw === undefined)
    bad(
      where,
      `has no command, and its image's ENTRYPOINT and CMD are not known here; give the container a command ` +
        `(and args), or annotate the pod with ${key}: '{"entrypoint": [...], "cmd": [...]}' ` +
        `(podman image inspect IMAGE --format '{{json .Config}}' shows them)`,
    );
  let image: unknown;
  try {
    image = JSON.parse(String(raw));
  } catch {
    bad(
      where,
      `the annotation ${key} is not JSON; write it like '{"entrypoint": ["/app"], "cmd": ["serve"]}'`,
    );
  }
  if (!isObj(image) || Object.keys(image).some((k) => k !== "entrypoint" && k !== "cmd"))
    bad(where, `the annotation ${key} must be an object with "entrypoint" and "cmd" lists`);
  const entrypoint = literal(strings(image.entrypoint ?? [], where, `${key} "entrypoint"`));
  const cmd = literal(strings(image.cmd ?? [], where, `${key} "cmd"`));
  const full = [...entrypoint, ...(args ?? cmd)];
  if (full.length === 0) bad(where, `the annotation ${key} gives no command`);
  return full;
}

function mounts(c: Obj, where: string): IVolumeMount[] {
  const existing = c.volumeMounts === undefined ? [] : c.volumeMounts;
  if (!Array.isArray(existing)) bad(where, "volumeMounts must be a list");
  for (const m of existing as Obj[])
    if (isObj(m) && (m.mountPath === LAUNCHER_IN_CONTAINER || m.mountPath === SOCKET_DIR_IN_CONTAINER))
      bad(where, `already mounts something at ${m.mountPath as string}, where sockswitch mounts its own`);
  return [
    ...(existing as IVolumeMount[]),
    { name: LAUNCHER_VOLUME, mountPath: LAUNCHER_IN_CONTAINER, readOnly: true },
    { name: SOCKET_VOLUME, mountPath: SOCKET_DIR_IN_CONTAINER },
  ];
}

/** Rewrites one pod template (metadata + spec) in place; name is the app's name. */
function injectPod(meta: Obj, spec: Obj, name: string, where: string, o: InjectOptions): void {
  const annotations = isObj(meta.annotations) ? meta.annotations : {};
  if (annotations[INJECTED] === "true") return;
  if (spec.hostNetwork === true)
    bad(where, "uses hostNetwork: its containers would share the node's network; remove hostNetwork");
  if (spec.shareProcessNamespace === true)
    bad(where, "sets shareProcessNamespace: each container's launcher must be its first process; remove it");
  if (spec.dnsConfig !== undefined)
    bad(where, "has a dnsConfig of its own; sockswitch sets the pod's DNS to its daemon's server");
  const appName = within(where, () => validateName(name), `its name "${name}" cannot be an app's name: `);
  const labels = isObj(meta.labels) ? Object.entries(meta.labels) : [];
  if (labels.some(([, v]) => typeof v !== "string")) bad(where, "label values must be strings");
  const labelText = labels.map(([k, v]) => `${k}=${v as string}`).join(",");
  if (labelText !== "") within(where, () => parseLabels(labelText), "its labels cannot be an app's: ");
  const ipText = annotations[IP_ANNOTATION];
  const ips =
    ipText === undefined
      ? []
      : within(where, () => parseAppIps([String(ipText)]), `the annotation ${IP_ANNOTATION}: `);
  const publishText = annotations[PUBLISH_ANNOTATION];
  const publish =
    publishText === undefined
      ? []
      : String(publishText)
          .split(",")
          .map((p) => p.trim());
  for (const p of publish) within(where, () => parsePublish(p), `the annotation ${PUBLISH_ANNOTATION}: `);

  const volumes = spec.volumes === undefined ? [] : spec.volumes;
  if (!Array.isArray(volumes)) bad(where, "volumes must be a list");
  for (const v of volumes as Obj[])
    if (isObj(v) && (v.name === LAUNCHER_VOLUME || v.name === SOCKET_VOLUME))
      bad(where, `already has a volume named ${v.name as string}`);
  const added: IVolume[] = [
    { name: LAUNCHER_VOLUME, hostPath: { path: o.launcherPath, type: "File" } },
    { name: SOCKET_VOLUME, hostPath: { path: o.socketDir, type: "Directory" } },
  ];
  spec.volumes = [...(volumes as IVolume[]), ...added];

  for (const field of ["initContainers", "containers"] as const) {
    const list = spec[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) bad(where, `${field} must be a list`);
    for (const c of list as unknown[]) {
      if (!isObj(c) || typeof c.name !== "string") bad(where, `each of ${field} needs a name`);
      const at = `${where}, container "${c.name}"`;
      for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"])
        if (
          isObj(c[probe]) &&
          ["httpGet", "tcpSocket", "grpc"].some((k) => (c[probe] as Obj)[k] !== undefined)
        )
          bad(
            at,
            `its ${probe} connects to the pod's IP, where an app under sockswitch does not listen ` +
              "(its sockets are the node's); remove it or use an exec probe",
          );
      const runs = commandOf(c, annotations, at);
      const args = ["run", "--new-netns=false", "--dns-override=false", "--name", appName];
      if (labelText !== "") args.push("--labels", labelText);
      if (ips.length > 0) args.push("--ip", ips.join(","));
      for (const p of publish) args.push("--publish", p);
      const rewritten: IContainer = {
        ...(c as unknown as IContainer),
        command: [LAUNCHER_IN_CONTAINER],
        args: [...args, "--", ...runs],
        volumeMounts: mounts(c, at),
      };
      Object.assign(c, rewritten);
    }
  }
  const dns: IPodDNSConfig = {
    nameservers: [o.dnsIp],
    searches: [o.dnsDomain],
    options: [{ name: "ndots", value: "1" }],
  };
  spec.dnsPolicy = "None";
  spec.dnsConfig = dns;
  meta.annotations = { ...annotations, [INJECTED]: "true" };
}

function metadataOf(o: Obj): Obj {
  if (o.metadata === undefined) o.metadata = {};
  if (!isObj(o.metadata)) bad(String(o.kind), "metadata must be an object");
  return o.metadata;
}

/** Rewrites a template ({metadata, spec}) found at path in a workload. */
function injectTemplate(template: unknown, name: string, where: string, o: InjectOptions): void {
  if (!isObj(template) || !isObj(template.spec)) bad(where, "has no pod template (spec.template.spec)");
  injectPod(metadataOf(template), template.spec, name, where, o);
}

/**
 * Rewrites one manifest document in place (see the file's header) and returns it. A
 * document of any other kind, or empty, is returned as it is. Throws an
 * InvalidArgumentError with a sentence that names the object.
 */
export function injectDocument(doc: unknown, o: InjectOptions): unknown {
  if (!isObj(doc)) return doc;
  const kind = doc.kind;
  if (kind === "List") {
    if (!Array.isArray(doc.items)) bad("List", "items must be a list");
    for (const item of doc.items) injectDocument(item, o);
    return doc;
  }
  if (typeof kind !== "string") return doc;
  const meta = isObj(doc.metadata) ? doc.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : "";
  const where = `${kind} "${name}"`;
  if (kind === "Pod") {
    if (!isObj(doc.spec)) bad(where, "has no spec");
    injectPod(metadataOf(doc), doc.spec, name, where, o);
  } else if (TEMPLATE_KINDS.has(kind)) {
    injectTemplate(isObj(doc.spec) ? doc.spec.template : undefined, name, where, o);
  } else if (kind === "CronJob") {
    const job = isObj(doc.spec) && isObj(doc.spec.jobTemplate) ? doc.spec.jobTemplate.spec : undefined;
    injectTemplate(isObj(job) ? job.template : undefined, name, where, o);
  }
  return doc;
}
