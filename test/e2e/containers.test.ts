// End-to-end: containers (podman) as sockswitch apps. Each container has no network of its
// own (--network none), the daemon's socket directory and the static launcher mounted in,
// and `sockswitch-launch run … -- CMD` as its entrypoint, in the container's own PID
// namespace (the runtime's default). Containers reach each other by name and virtual IP,
// labels apply, the server sees the client's virtual IP, a stopped container leaves the
// table, and containers and plain `sockswitch run` apps talk both ways; a container in the
// daemon's own network namespace is served too. The README's podman example is run as written. Images are imported from a busybox root filesystem (no
// registry); podman keeps all its state in a temporary directory (podman.ts).

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { nsPids, parentPid } from "../../src/daemon/identity.js";
import { injectText } from "../../src/kube/manifests.js";
import { CLI, PYTHON, type Result, ROOT, sh, TestHost, waitFor } from "./harness.js";
import { Podman, podmanMissing } from "./podman.js";

const LAUNCHER = join(ROOT, "build", "sockswitch-launch");

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form here
type Manifest = Record<string, any>;

interface AppRow {
  id: string;
  name: string;
  ips: string[];
  pid: number;
}

/** The README's podman example (the sh block after its marker). */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const m = /<!-- podman-example -->\n```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, "README.md has a podman example after <!-- podman-example -->");
  return m[1] as string;
}

/** text with each [from, to] replaced, every one of which must occur. */
function replaced(text: string, pairs: Array<[string, string]>): string {
  for (const [from, to] of pairs) {
    assert.ok(text.includes(from), `the README example contains ${JSON.stringify(from)}`);
    text = text.split(from).join(to);
  }
  return text;
}

describe("containers (podman)", { skip: podmanMissing() ?? false }, () => {
  let host: TestHost;
  let pod: Podman;
  let image = "";
  /** The options that make a container a sockswitch app (README: `ssw`). */
  let ssw: string[] = [];
  const RUN = ["run", "--new-netns=false", "--dns-override=false"];
  /** busybox httpd serving /www (its cgi-bin/ip prints the client's address) on 8080. */
  const HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"];

  // Podman runs outside the test host's namespace (`ip netns exec` remounts /sys, hiding the
  // cgroup mounts runc needs); with --network none a container has no network anyway, and the
  // daemon, in the test host, makes every socket of its apps.

  /** Runs a container to its end. */
  const container = (opts: string[], args: string[]): Result =>
    pod.run(["run", "--rm", ...ssw, ...opts, image, ...args]);

  /** Starts a detached container; returns its name. */
  const detached = (name: string, args: string[]): string => {
    const r = pod.run(["run", "-d", "--name", name, ...ssw, image, ...args]);
    assert.equal(r.code, 0, r.stderr);
    return name;
  };

  const apps = () => host.getJson<AppRow>("apps");
  const served = (address: string) =>
    host.getJson<{ address: string }>("services").some((s) => s.address === address);

  before(async () => {
    host = new TestHost("podman");
    await host.start();
    pod = new Podman();
    image = pod.busyboxImage("bb");
    ssw = [
      "--network",
      "none",
      "--entrypoint",
      "/sockswitch-launch",
      "-v",
      `${LAUNCHER}:/sockswitch-launch:ro`,
      "-v",
      `${host.dir}:/run/sockswitch`,
      "-v",
      `${host.dir}/sockswitch.resolv.conf:/etc/resolv.conf:ro`,
    ];
  });

  after(async () => {
    pod?.cleanup();
    await host?.cleanup();
  });

  test("the README's podman example runs as shown", () => {
    // Host-side paths become the test's; the wait for the server gets a bound.
    const script = replaced(readmeExample(), [
      ["img=$(mktemp -d)", `img=${pod.dir}/readme`],
      ["-v /run/sockswitch:", `-v ${host.dir}:`],
      ["-v /run/sockswitch/sockswitch.resolv.conf:", `-v ${host.dir}/sockswitch.resolv.conf:`],
      [
        "until bin/sockswitch get services | grep -q '^web '; do sleep 0.2; done",
        "for i in $(seq 150); do bin/sockswitch get services | grep -q '^web ' && break; sleep 0.2; done",
      ],
    ]);
    // The example's env (podman's storage) and its daemon; bounded as a whole.
    const r = sh("env", [
      `SOCKSWITCH_SOCKET=${host.socket}`,
      `CONTAINERS_CONF=${pod.env.CONTAINERS_CONF}`,
      "bash",
      "-c",
      `cd ${ROOT}\n${pod.shellFunction()}\n${script}`,
    ]);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^\[::ffff:10\.77\.\d+\.\d+\]$/, r.stdout + r.stderr);
    assert.equal(lines[1], "hello from a container", r.stdout + r.stderr);
    assert.match(r.stderr, /wget: bad address 'web:8080'/);
    assert.equal(lines[lines.length - 1], "No apps found.", r.stdout);
    assert.equal(r.code, 0, r.stderr);
    pod.run(["rm", "-f", "web"]);
  });

  test("a container in its own PID namespace is served: its launcher is pid 1 there", async () => {
    detached("srv-pidns", [...RUN, "--name", "pidns", "--ip", "10.77.131.1", "--", ...HTTPD]);
    await waitFor("the container's service", () => served("10.77.131.1:8080"), 30_000);
    const app = apps().find((a) => a.name === "pidns");
    assert.ok(app);
    // The daemon shows the app's pid in its own namespace; the kernel maps it to another in
    // the container's, under the launcher (pid 1 there), the process podman started.
    assert.equal(nsPids(app.pid)?.length, 2);
    const launcher = parentPid(app.pid) as number;
    assert.equal(nsPids(launcher)?.at(-1), 1);
    assert.equal(Number(pod.must(["inspect", "--format", "{{.State.Pid}}", "srv-pidns"]).trim()), launcher);
    const r = container([], [...RUN, "--", "wget", "-q", "-O-", "http://10.77.131.1:8080/"]);
    assert.equal(r.stdout, "hello from a container\n", r.stderr);
    pod.run(["rm", "-f", "-t", "0", "srv-pidns"]);
  });

  test("containers reach each other by name and virtual IP, labels apply, the server sees the client's IP", async () => {
    detached("srv-web", [
      ...RUN,
      "--name",
      "web2",
      "--ip",
      "10.77.132.1",
      "--labels",
      "zone=a",
      "--",
      ...HTTPD,
    ]);
    await waitFor("the web container", () => served("10.77.132.1:8080"), 30_000);
    const byName = container(
      [],
      [
        ...RUN,
        "--ip",
        "10.77.132.2",
        "--labels",
        "zone=a",
        "--",
        "wget",
        "-q",
        "-O-",
        "http://web2:8080/cgi-bin/ip",
      ],
    );
    assert.equal(byName.stdout.trim(), "[::ffff:10.77.132.2]", byName.stderr);
    const byIp = container(
      [],
      [...RUN, "--labels", "zone=a", "--", "wget", "-q", "-O-", "http://10.77.132.1:8080/"],
    );
    assert.equal(byIp.stdout, "hello from a container\n", byIp.stderr);
    const denied = container(
      [],
      [...RUN, "--labels", "zone=b", "--", "wget", "-q", "-O-", "http://10.77.132.1:8080/"],
    );
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /can't connect to remote host \(10\.77\.132\.1\): Permission denied/);
  });

  test("a container and a plain sockswitch run app talk both ways", async () => {
    const plain = host.run(
      ["--name", "plainweb", "--ip", "10.77.133.1", "--labels", "zone=a"],
      [
        PYTHON,
        "-m",
        "http.server",
        "--bind",
        "0.0.0.0",
        "8000",
        "--directory",
        join(ROOT, "test", "fixtures"),
      ],
    );
    await waitFor("the plain app", () => served("10.77.133.1:8000"), 30_000);
    const toPlain = container(
      [],
      [
        ...RUN,
        "--ip",
        "10.77.133.2",
        "--labels",
        "zone=a",
        "--",
        "wget",
        "-q",
        "-O-",
        "http://plainweb:8000/echo-server.py",
      ],
    );
    assert.match(toPlain.stdout, /^#!\/usr\/bin\/env python3/, toPlain.stderr);
    await waitFor("the access log", () => plain.stderr.includes("10.77.133.2 - - "), 10_000);
    await waitFor("the web container", () => served("10.77.132.1:8080"), 30_000);
    const toContainer = await host.runToEnd(
      ["--ip", "10.77.133.3", "--labels", "zone=a"],
      ["curl", "-s", "http://web2:8080/cgi-bin/ip"],
    );
    assert.equal(toContainer.stdout.trim(), "[::ffff:10.77.133.3]", toContainer.stderr);
    plain.kill();
  });

  test("a stopped container leaves the table: podman stop reaches the app through its launcher", async () => {
    assert.ok(apps().some((a) => a.name === "web2"));
    const stop = pod.run(["stop", "-t", "10", "srv-web"]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(pod.must(["inspect", "--format", "{{.State.ExitCode}}", "srv-web"]).trim(), "143");
    await waitFor("the app's removal", () => !apps().some((a) => a.name === "web2"), 5_000);
    assert.ok(!served("10.77.132.1:8080"));
  });

  test("a container in the daemon's network namespace is served (under bpf: the host placement)", async () => {
    // --network ns:… puts the container in the daemon's namespace instead of an empty one of
    // its own; under --datapath bpf its launcher then gets the host placement (no trapped
    // call, a cgroup of its own that stamps its sockets), under seccomp the usual traps.
    const inDaemonNs = ssw.map((o) => (o === "none" ? `ns:/run/netns/${host.ns}` : o));
    const r0 = pod.run([
      "run",
      "-d",
      "--name",
      "srv-hostns",
      ...inDaemonNs,
      image,
      ...RUN,
      "--name",
      "hostns",
      "--ip",
      "10.77.134.1",
      "--labels",
      "zone=h",
      "--",
      ...HTTPD,
    ]);
    assert.equal(r0.code, 0, r0.stderr);
    await waitFor("the container's service", () => served("10.77.134.1:8080"), 30_000);
    const app = apps().find((a) => a.name === "hostns");
    assert.ok(app);
    const cgroup = readFileSync(`/proc/${app.pid}/cgroup`, "utf8");
    if (process.env.SSW_DATAPATH === "bpf") assert.match(cgroup, /^0::.*\/sockswitch-app-/m);
    else assert.doesNotMatch(cgroup, /sockswitch-app-/);
    const r = container(
      [],
      [
        ...RUN,
        "--ip",
        "10.77.134.2",
        "--labels",
        "zone=h",
        "--",
        "wget",
        "-q",
        "-O-",
        "http://hostns:8080/cgi-bin/ip",
      ],
    );
    assert.equal(r.stdout.trim(), "[::ffff:10.77.134.2]", r.stderr);
    const stop = pod.run(["stop", "-t", "10", "srv-hostns"]);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor("the app's removal", () => !apps().some((a) => a.name === "hostns"), 5_000);
    pod.run(["rm", "-f", "-t", "0", "srv-hostns"]);
  });

  /**
   * Runs the first container of a pod manifest, after `sockswitch inject`, the way a kubelet
   * would: its command as the entrypoint, its args, its hostPath volume mounts, a resolv.conf
   * from its dnsConfig; --network none stands for the pod's own network, which nothing under
   * sockswitch uses. Detached when name is given.
   */
  const runInjected = (manifest: string, name?: string): Result => {
    const injected = parseYaml(
      injectText(manifest, "pod.yaml", {
        launcherPath: LAUNCHER,
        socketDir: host.dir,
        dnsIp: "10.77.0.53",
        dnsDomain: "sockswitch.local",
      }),
    ) as { metadata: { name: string }; spec: Manifest };
    const spec = injected.spec;
    const c = spec.containers[0];
    const hostPaths = new Map<string, string>(spec.volumes.map((v: Manifest) => [v.name, v.hostPath.path]));
    const mounts = c.volumeMounts.flatMap((m: Manifest) => [
      "-v",
      `${hostPaths.get(m.name)}:${m.mountPath}${m.readOnly ? ":ro" : ""}`,
    ]);
    const resolv = join(pod.dir, `resolv-${injected.metadata.name}.conf`);
    const dns = spec.dnsConfig;
    writeFileSync(
      resolv,
      `nameserver ${dns.nameservers.join(" ")}\nsearch ${dns.searches.join(" ")}\noptions ndots:${dns.options[0].value}\n`,
    );
    return pod.run([
      "run",
      ...(name ? ["-d", "--name", name] : ["--rm"]),
      "--network",
      "none",
      ...mounts,
      "-v",
      `${resolv}:/etc/resolv.conf:ro`,
      "--entrypoint",
      c.command[0],
      c.image,
      ...c.args,
    ]);
  };

  test("pods rewritten by sockswitch inject run as apps with the pod's name and labels", async () => {
    const server = `apiVersion: v1
kind: Pod
metadata:
  name: k8s-web
  labels: {zone: k8s, tier: front}
spec:
  containers:
    - name: httpd
      image: ${image}
      command: [httpd]
      args: [-f, -p, "8080", -h, /www]
`;
    const client = `apiVersion: v1
kind: Pod
metadata: {name: k8s-client, labels: {zone: k8s}}
spec:
  restartPolicy: Never
  containers:
    - {name: wget, image: ${image}, command: [wget, -q, -O-, "http://k8s-web:8080/cgi-bin/ip"]}
`;
    const started = runInjected(server, "k8s-web");
    assert.equal(started.code, 0, started.stderr);
    await waitFor("the pod's app", () => apps().some((a) => a.name === "k8s-web"), 30_000);
    const row = host
      .getJson<{ name: string; labels: Record<string, string>; ips: string[] }>("apps")
      .find((a) => a.name === "k8s-web");
    assert.deepEqual(row?.labels, { zone: "k8s", tier: "front" });
    await waitFor("its service", () => served(`${row?.ips[0]}:8080`), 30_000);
    const r = runInjected(client);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^\[::ffff:10\.77\.\d+\.\d+\]$/);
    pod.run(["rm", "-f", "-t", "0", "k8s-web"]);
  });

  test("inside a container the launcher says what is wrong, as sockswitch run does", () => {
    const bad = container([], [...RUN, "--ip", "127.0.0.1", "--", "true"]);
    const cli = sh(CLI, ["--socket", host.socket, "run", "--ip", "127.0.0.1", "--", "true"]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, cli.stderr);
    assert.equal(cli.code, 2);
    const netns = container([], ["run", "--dns-override=false", "--", "true"]);
    assert.equal(netns.code, 125);
    assert.match(
      netns.stderr,
      /creating a network namespace needs root or CAP_SYS_ADMIN; use --new-netns=false/,
    );
    const dns = container([], ["run", "--new-netns=false", "--", "true"]);
    assert.equal(dns.code, 125);
    assert.match(
      dns.stderr,
      /--dns-override needs a mount namespace of the app's own.*use --dns-override=false/,
    );
    // Not the container's first process: no PID namespace of the app's own can be made.
    const second = pod.run([
      "run",
      "--rm",
      ...ssw,
      "--entrypoint",
      "/bin/sh",
      image,
      "-c",
      "/sockswitch-launch run --new-netns=false --dns-override=false -- true; echo exit $?",
    ]);
    assert.match(
      second.stderr,
      /the app needs a PID namespace of its own, which needs root or CAP_SYS_ADMIN; in a container, make sockswitch-launch the container's first process/,
    );
    assert.equal(second.stdout.trim(), "exit 125");
  });
});
