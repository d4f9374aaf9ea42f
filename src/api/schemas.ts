// The JSON Schemas of the REST API: what every route accepts (fastify validates requests
// with them) and answers (fastify serializes with them), and from which the OpenAPI
// document is generated (openapi.ts, served at /openapi.json, written to docs/openapi.yaml).
// Shared shapes are added once with an $id and referenced as { $ref: "Name#" }.

const str = (description: string, extra: Record<string, unknown> = {}) => ({
  type: "string",
  description,
  ...extra,
});
const int = (description: string) => ({ type: "integer", minimum: 0, description });
const nullable = (type: string, description: string) => ({ type: [type, "null"], description });
const time = (description: string) => str(description, { format: "date-time" });
const list = (ref: string) => ({
  type: "object",
  required: ["items"],
  properties: { items: { type: "array", items: { $ref: `${ref}#` } } },
});

export const Labels = {
  $id: "Labels",
  type: "object",
  description: "Label key → value. A client reaches a service only if they share one pair.",
  additionalProperties: { type: "string" },
};

export const ErrorBody = {
  $id: "Error",
  type: "object",
  description: "Every error of the API, with a stable code (docs/errors.md).",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: str("A stable SOCKSWITCH_ERR_* code.", { pattern: "^SOCKSWITCH_ERR_[A-Z_]+$" }),
        message: str("One sentence that says what to do."),
      },
    },
  },
};

export const Health = {
  $id: "Health",
  type: "object",
  required: [
    "status",
    "version",
    "node",
    "store",
    "apps",
    "services",
    "startedAt",
    "datapath",
    "continueGuard",
  ],
  properties: {
    status: { type: "string", const: "ok" },
    version: str("The daemon's version."),
    node: str("This node's name (--node-name)."),
    store: str("The store in use: embedded or etcd."),
    apps: int("Number of apps in the table."),
    services: int("Number of services in the table."),
    startedAt: time("When the daemon started."),
    datapath: str("How decisions reach the kernel (--datapath): seccomp or bpf.", {
      enum: ["seccomp", "bpf"],
    }),
    continueGuard: str(
      "on: no call the daemon lets the kernel run can act on an app's host socket: the CONTINUE guard's BPF programs (seccomp datapath) or the bpf datapath's own hooks passed their check at start (docs/security.md, promise 17); off: the seccomp datapath runs without the guard.",
      { enum: ["on", "off"] },
    ),
  },
};

export const Probe = {
  $id: "Probe",
  type: "object",
  required: ["status", "checks"],
  properties: {
    status: { type: "string", enum: ["ok", "failing"] },
    checks: {
      type: "object",
      description: "Each check: ok, or why it fails.",
      additionalProperties: { type: "string" },
    },
  },
};

export const App = {
  $id: "App",
  type: "object",
  required: [
    "id",
    "name",
    "ips",
    "labels",
    "expose",
    "lb",
    "node",
    "pid",
    "command",
    "user",
    "services",
    "createdAt",
    "srcPorts",
    "status",
    "exitCode",
    "finishedAt",
    "detached",
    "restartPolicy",
    "restarts",
    "stack",
  ],
  properties: {
    id: str("Random, 12 hex digits, assigned at start.", { pattern: "^[0-9a-f]{12}$" }),
    name: str('--name (a DNS label), or "" when none.'),
    ips: { type: "array", items: { type: "string" }, description: "Virtual IPs (at most one per family)." },
    labels: { $ref: "Labels#" },
    expose: {
      type: "array",
      items: { type: "string" },
      description: "Publish rules as APP_PORT:[HOST_IP:]HOST_PORT[/proto] (--expose order).",
    },
    lb: {
      type: ["string", "null"],
      enum: ["round-robin", "random", null],
      description: "null: the daemon's --lb.",
    },
    node: str("The node it runs on."),
    pid: int("Its main process, in the daemon's pid namespace."),
    command: { type: "array", items: { type: "string" } },
    user: nullable("string", "--user as given, or null."),
    services: int("Services it provides now."),
    createdAt: time("When the daemon accepted it."),
    srcPorts: nullable("string", '"first-last": its block of --client-ports, or null.'),
    status: { type: "string", enum: ["running", "exited"] },
    exitCode: {
      type: ["integer", "null"],
      description: "A finished app's status (128+N: signal N); null: unknown.",
    },
    finishedAt: { type: ["string", "null"], format: "date-time" },
    detached: { type: "boolean", description: "Started with run -d (the daemon keeps its output)." },
    restartPolicy: { type: "string", enum: ["no", "on-failure", "always", "unless-stopped"] },
    restarts: int("How often the daemon started it again."),
    stack: nullable("string", "The stack it belongs to (sockswitch up -f FILE), or null."),
  },
};

export const Service = {
  $id: "Service",
  type: "object",
  required: [
    "id",
    "app",
    "name",
    "proto",
    "vip",
    "port",
    "address",
    "host",
    "labels",
    "lb",
    "node",
    "exposed",
    "createdAt",
  ],
  properties: {
    id: str("proto/hostIp/hostPort/vip/port; unique."),
    app: str("Id of the app that serves it."),
    name: str("The app's name."),
    proto: { type: "string", enum: ["tcp", "udp"] },
    vip: str("Virtual IP."),
    port: { type: "integer", minimum: 0, maximum: 65535 },
    address: str("vip:port ([vip]:port for IPv6)."),
    host: str("The host ip:port that carries it."),
    labels: { $ref: "Labels#" },
    lb: { type: ["string", "null"], enum: ["round-robin", "random", null] },
    node: str("The listener's node."),
    exposed: { type: "boolean", description: "host is a publish address (reachable by unmanaged clients)." },
    createdAt: time("When it was registered."),
  },
};

export const Socket = {
  $id: "Socket",
  type: "object",
  required: ["app", "proto", "state", "local", "peer", "hostLocal", "hostPeer"],
  properties: {
    app: str("App id."),
    proto: { type: "string", enum: ["tcp", "udp"] },
    state: str("The kernel's state (LISTEN, ESTABLISHED, BOUND, …)."),
    local: str("What the app sees as its local address."),
    peer: nullable("string", "What the app dialed, or null."),
    hostLocal: str("The host socket's local address."),
    hostPeer: nullable("string", "The host socket's peer, or null."),
  },
};

export const Node = {
  $id: "Node",
  type: "object",
  required: ["name", "cluster", "ip", "ip6", "roles", "apps", "version", "self", "startedAt"],
  properties: {
    name: str("--node-name."),
    cluster: str('--cluster; "" on the embedded store.'),
    ip: str("IPv4 node IP."),
    ip6: nullable("string", "IPv6 node IP."),
    roles: { type: "array", items: { type: "string" } },
    apps: int("Apps running on it."),
    version: str("Its sockswitch version."),
    self: { type: "boolean", description: "The node whose daemon answered." },
    startedAt: time("When its daemon started."),
  },
};

export const ProxySchema = {
  $id: "Proxy",
  type: "object",
  required: ["listen", "target", "backends", "active", "total", "createdAt"],
  properties: {
    listen: str("Host ip:port it listens on."),
    target: str("The app's name (or id) and port."),
    backends: { type: "array", items: { type: "string" } },
    active: int("Connections open now."),
    total: int("Connections since it opened."),
    createdAt: time("When it opened."),
  },
};

export const Event = {
  $id: "Event",
  type: "object",
  description: "One change, as a server-sent event (event: KIND, data: this object).",
  required: ["type", "kind", "time", "object"],
  properties: {
    type: { type: "string", enum: ["ADDED", "MODIFIED", "DELETED"] },
    kind: { type: "string", enum: ["app", "service", "node", "denial"] },
    time: time("When it happened."),
    object: {
      type: "object",
      description: "An App, Service or Node; a denial: {app, name, proto, destination, reason}.",
      additionalProperties: true,
    },
  },
};

export const RunRequest = {
  $id: "RunRequest",
  type: "object",
  description: "A detached app (sockswitch run -d): the daemon starts its launcher.",
  required: ["command"],
  additionalProperties: false,
  properties: {
    name: str("A DNS label, or empty."),
    ips: { type: "array", items: { type: "string" }, maxItems: 2 },
    labels: { $ref: "Labels#" },
    expose: {
      type: "array",
      items: { type: "string" },
      maxItems: 64,
      description: "APP_PORT:[HOST_IP:]HOST_PORT[/proto].",
    },
    lb: { type: ["string", "null"], enum: ["round-robin", "random", null] },
    command: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 4096 },
    user: nullable("string", "--user as given (shown by get apps)."),
    userIds: nullable("string", "UID:GID[:G1,G2,...] resolved by the CLI, for the launcher."),
    newNetns: { type: "boolean", default: true },
    dnsOverride: { type: ["boolean", "null"], default: null },
    env: { type: "array", items: { type: "string" }, maxItems: 4096, description: "NAME=value." },
    cwd: str("The working directory."),
    restart: { type: "string", enum: ["no", "on-failure", "always", "unless-stopped"], default: "no" },
    rm: { type: "boolean", default: false },
    stack: {
      type: ["string", "null"],
      default: null,
      description: "The stack it belongs to (sockswitch up).",
    },
  },
};

export const SHARED = [
  Labels,
  ErrorBody,
  Health,
  Probe,
  App,
  Service,
  Socket,
  Node,
  ProxySchema,
  Event,
  RunRequest,
];

export const refs = {
  error: { $ref: "Error#" },
  app: { $ref: "App#" },
  appList: list("App"),
  serviceList: list("Service"),
  socketList: list("Socket"),
  nodeList: list("Node"),
  proxyList: list("Proxy"),
};

/** Every error status a route may answer, all in the documented shape. */
export function errors(...codes: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const c of codes) out[c] = refs.error;
  return out;
}
