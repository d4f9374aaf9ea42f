// A test cluster (../shared/TESTING.md): a "LAN" network namespace with a bridge, N host
// namespaces joined to it by veth pairs (addresses from the test-only 10.250.0.0/24, which
// exists only inside these namespaces), etcd (Debian's etcd-server) in a namespace of its
// own on the LAN, and a daemon in each host with --store etcd://…. Everything is removed
// afterwards, also on failure: processes first, then the namespaces.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FIXTURES, must, Proc, PYTHON, sh, TestHost, waitFor } from "./harness.js";

export const ETCD = "/usr/bin/etcd";
const SUBNET = "10.250.0";

/** A host namespace's address on the LAN: .10, .11, … for hosts; .2 for etcd. */
function lanIp(i: number): string {
  return `${SUBNET}.${i}`;
}

export interface ClusterOptions {
  hosts: number;
  /** Lease TTL of every daemon, seconds. */
  ttl?: number;
  cluster?: string;
  daemonArgs?: string[];
  /** etcd with client TLS: certificates made for the test (openssl), client certs required. */
  tls?: boolean;
  /** Start the daemons one after another (an emulated machine is slow enough already). */
  sequential?: boolean;
  /** Extra environment for the daemons: the same for each, or by host index (0-based). */
  env?: Record<string, string> | ((host: number) => Record<string, string> | undefined);
}

/** A CA, etcd's server certificate (for ip) and a client certificate, in dir (openssl). */
function makeCerts(dir: string, ip: string): void {
  const o = (args: string[]) => must("openssl", args);
  o([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=ssw-test-ca",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
  ]);
  for (const [name, ext] of [
    ["server", `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth`],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    o([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=ssw-${name}`,
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.csr`,
    ]);
    writeFileSync(`${dir}/${name}.ext`, `${ext}\n`);
    o([
      "x509",
      "-req",
      "-in",
      `${dir}/${name}.csr`,
      "-CA",
      `${dir}/ca.pem`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${dir}/${name}.ext`,
      "-out",
      `${dir}/${name}.pem`,
    ]);
  }
}

export class TestCluster {
  readonly lan: string;
  readonly etcdNs: string;
  readonly hosts: TestHost[] = [];
  readonly ips: string[] = [];
  readonly etcdIp = lanIp(2);
  readonly etcdPort: number;
  readonly cluster: string;
  readonly ttl: number;
  private readonly dir: string;
  private readonly suffix = `${process.pid}-${randomBytes(2).toString("hex")}`;
  private etcd: Proc | null = null;
  private links = 0;

  constructor(private readonly opts: ClusterOptions) {
    this.lan = `ssw-lan-${this.suffix}`;
    this.etcdNs = `ssw-etcd-${this.suffix}`;
    this.etcdPort = 20000 + Math.floor(Math.random() * 10000);
    this.cluster = opts.cluster ?? "test";
    this.ttl = opts.ttl ?? 3;
    this.dir = mkdtempSync(join(tmpdir(), "ssw-cluster-"));
  }

  get store(): string {
    return `etcd://${this.etcdIp}:${this.etcdPort}`;
  }

  /** Where the test certificates are (with tls). */
  get certs(): string {
    return this.dir;
  }

  /** The daemon options for etcd's client TLS (none without tls). */
  tlsArgs(): string[] {
    if (!this.opts.tls) return [];
    const d = this.dir;
    return ["--etcd-ca", `${d}/ca.pem`, "--etcd-cert", `${d}/client.pem`, "--etcd-key", `${d}/client.key`];
  }

  /** Makes the LAN, etcd and the hosts, and starts a daemon on each. */
  async start(): Promise<void> {
    must("ip", ["netns", "add", this.lan]);
    must("ip", ["-n", this.lan, "link", "set", "lo", "up"]);
    must("ip", ["-n", this.lan, "link", "add", "br0", "type", "bridge"]);
    must("ip", ["-n", this.lan, "link", "set", "br0", "up"]);
    must("ip", ["netns", "add", this.etcdNs]);
    must("ip", ["-n", this.etcdNs, "link", "set", "lo", "up"]);
    this.plug(this.etcdNs, this.etcdIp);
    if (this.opts.tls) makeCerts(this.dir, this.etcdIp);
    await this.startEtcd();
    for (let i = 0; i < this.opts.hosts; i++) {
      const h = new TestHost(`c${i + 1}`);
      this.hosts.push(h);
      this.ips.push(lanIp(10 + i));
      this.plug(h.ns, lanIp(10 + i));
    }
    if (this.opts.sequential) for (let i = 0; i < this.hosts.length; i++) await this.startDaemon(i);
    else await Promise.all(this.hosts.map((_, i) => this.startDaemon(i)));
  }

  /** A veth from ns (eth0, address ip/24) to the LAN's bridge. */
  private plug(ns: string, ip: string): void {
    const port = `p${this.links++}`;
    must("ip", ["-n", this.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    must("ip", ["-n", this.lan, "link", "set", port, "master", "br0", "up"]);
    must("ip", ["-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    must("ip", ["-n", ns, "link", "set", "eth0", "up"]);
  }

  /** Starts etcd (again, on the same data dir) and waits until it answers. */
  async startEtcd(): Promise<void> {
    const url = `${this.opts.tls ? "https" : "http"}://${this.etcdIp}:${this.etcdPort}`;
    const d = this.dir;
    const tls = this.opts.tls
      ? [
          "--cert-file",
          `${d}/server.pem`,
          "--key-file",
          `${d}/server.key`,
          "--trusted-ca-file",
          `${d}/ca.pem`,
          "--client-cert-auth",
        ]
      : [];
    const curlTls = this.opts.tls
      ? ["--cacert", `${d}/ca.pem`, "--cert", `${d}/client.pem`, "--key", `${d}/client.key`]
      : [];
    const peer = `http://127.0.0.1:${this.etcdPort + 1}`;
    const args = [
      "netns",
      "exec",
      this.etcdNs,
      ETCD,
      "--name",
      "e",
      "--data-dir",
      join(this.dir, "etcd"),
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `e=${peer}`,
      "--log-level",
      "warn",
      ...tls,
    ];
    const p = new Proc(spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"] }));
    this.etcd = p;
    await waitFor(
      "etcd to answer",
      () => {
        if (!p.running) throw new Error(`etcd exited: ${p.stderr.slice(-2000)}`);
        const r = sh("ip", [
          "netns",
          "exec",
          this.etcdNs,
          "curl",
          "-s",
          "-m",
          "1",
          ...curlTls,
          `${url}/health`,
        ]);
        return r.stdout.includes('"health":"true"');
      },
      20_000,
    );
  }

  /** Compacts etcd's history up to its current revision (gRPC gateway, from etcd's namespace); returns it. */
  compactEtcd(): number {
    const url = `http://${this.etcdIp}:${this.etcdPort}/v3/kv`;
    const post = (path: string, body: string) =>
      must("ip", [
        "netns",
        "exec",
        this.etcdNs,
        "curl",
        "-sS",
        "-m",
        "5",
        "-X",
        "POST",
        `${url}/${path}`,
        "-d",
        body,
      ]);
    const rev = Number(
      (JSON.parse(post("range", '{"key":"AA=="}')) as { header: { revision: string } }).header.revision,
    );
    post("compaction", JSON.stringify({ revision: String(rev), physical: true }));
    return rev;
  }

  /** Cuts host i off the LAN (its link down), or reconnects it. */
  setLink(i: number, up: boolean): void {
    const h = this.hosts[i] as TestHost;
    must("ip", ["-n", h.ns, "link", "set", "eth0", up ? "up" : "down"]);
    if (up) must("ip", ["-n", h.ns, "addr", "replace", `${this.ips[i]}/24`, "dev", "eth0"]);
  }

  /** Stops etcd (SIGTERM), keeping its data. */
  async stopEtcd(): Promise<void> {
    const p = this.etcd;
    this.etcd = null;
    p?.kill("SIGTERM");
    await p?.wait(10_000);
  }

  /** Starts host i's daemon on the cluster. */
  async startDaemon(i: number, extra: string[] = []): Promise<void> {
    const h = this.hosts[i] as TestHost;
    await h.start({
      daemonArgs: [
        "--store",
        this.store,
        "--cluster",
        this.cluster,
        "--lease-ttl",
        String(this.ttl),
        "--node-name",
        `h${i + 1}`,
        "--node-ip",
        this.ips[i] as string,
        ...this.tlsArgs(),
        ...(this.opts.daemonArgs ?? []),
        ...extra,
      ],
      env: typeof this.opts.env === "function" ? this.opts.env(i) : this.opts.env,
    });
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.cleanup()));
    await this.stopEtcd();
    for (const ns of [this.etcdNs, this.lan]) {
      for (const pid of sh("ip", ["netns", "pids", ns]).stdout.split("\n").filter(Boolean))
        sh("kill", ["-9", pid]);
      sh("ip", ["netns", "del", ns]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- helpers the cluster tests share ----

export interface NodeJson {
  name: string;
  cluster: string;
  ip: string;
  apps: number;
}
export interface ServiceJson {
  address: string;
  name: string;
  node: string;
  host: string;
}

export function curl(
  host: TestHost,
  url: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return host.runToEnd([], ["curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", url]);
}

export function services(host: TestHost): ServiceJson[] {
  return host.getJson<ServiceJson>("services");
}

export async function httpServer(host: TestHost, opts: string[], port: number): Promise<Proc> {
  const p = host.run(opts, [PYTHON, "-m", "http.server", String(port), "--directory", FIXTURES]);
  await waitFor("http server", () => {
    if (!p.running) throw new Error(`server exited: ${p.stderr}`);
    return services(host).some((s) => s.address.endsWith(`:${port}`));
  });
  return p;
}

/** Waits until every host's table has (or lacks) a service matching pred. */
export function everywhere(c: TestCluster, what: string, pred: (s: ServiceJson) => boolean, present = true) {
  return waitFor(what, () => c.hosts.every((h) => services(h).some(pred) === present), 15_000);
}
