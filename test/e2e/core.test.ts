// End-to-end: socket switching on one host. One test host (a network namespace made here)
// runs a daemon; every app runs under `sockswitch run` in its own empty namespace, using
// real programs (python3 -m http.server, curl, busybox wget, small python fixtures).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FIXTURES, type TestHost as Host, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

const ECHO_SERVER = `${FIXTURES}/echo-server.py`;
const ECHO_CLIENT = `${FIXTURES}/echo-client.py`;

interface ClientResult {
  ok: boolean;
  errno?: string;
  reply?: string;
  connect?: string;
  sockname?: [string, number];
  peername?: [string, number];
}

/** Starts an echo server app and waits until it listens. */
async function echoServer(
  host: Host,
  opts: string[],
  addr: string,
  port: number,
  tag: string,
  extra: string[] = [],
): Promise<Proc> {
  const p = host.run(opts, [PYTHON, ECHO_SERVER, addr, String(port), tag, ...extra]);
  await waitFor(`echo server ${tag}`, () => {
    if (!p.running) throw new Error(`server exited: ${p.stderr}`);
    return p.stdout.includes('"listening"');
  });
  return p;
}

async function echoClient(
  host: Host,
  opts: string[],
  addr: string,
  port: number,
  extra: string[] = [],
): Promise<ClientResult> {
  const r = await host.runToEnd(opts, [PYTHON, ECHO_CLIENT, addr, String(port), ...extra]);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as ClientResult;
  } catch {
    throw new Error(`client printed no result (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  }
}

function events(p: Proc): Array<Record<string, unknown>> {
  return p.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("one host", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("core");
    // A test-host address outside every virtual range, for egress (only on this host's lo).
    host.exec(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"]);
    await host.start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("python http.server on a virtual IP is reached by curl and by static busybox wget", async () => {
    const web = host.run(
      ["--ip", "10.77.10.1", "--name", "web"],
      [PYTHON, "-m", "http.server", "8080", "--directory", FIXTURES],
    );
    await waitFor("web service", () =>
      host.getJson<{ address: string }>("services").some((s) => s.address === "10.77.10.1:8080"),
    );
    const curl = await host.runToEnd(
      [],
      [
        "curl",
        "-sS",
        "-m",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{remote_ip}",
        "http://10.77.10.1:8080/",
      ],
    );
    assert.equal(curl.code, 0, curl.stderr);
    assert.equal(curl.stdout, "200 10.77.10.1");
    const wget = await host.runToEnd(
      [],
      ["busybox", "wget", "-q", "-O", "-", "http://10.77.10.1:8080/echo-server.py"],
    );
    assert.equal(wget.code, 0, wget.stderr);
    assert.match(wget.stdout, /Test fixture: a TCP server/);
    web.kill("SIGKILL");
    await web.wait();
  });

  test("servers bound to the virtual IP and to 0.0.0.0 both serve, and both sides see virtual addresses", async () => {
    const specific = await echoServer(host, ["--ip", "10.77.11.1"], "10.77.11.1", 7001, "S");
    const wildcard = await echoServer(host, ["--ip", "10.77.11.2"], "0.0.0.0", 7002, "W");
    const a = await echoClient(host, ["--ip", "10.77.11.9"], "10.77.11.1", 7001);
    const b = await echoClient(host, ["--ip", "10.77.11.9"], "10.77.11.2", 7002);
    assert.equal(a.reply, "S hello");
    assert.equal(b.reply, "W hello");
    // The client sees its own virtual IP and the server's virtual ip:port.
    assert.equal(a.sockname?.[0], "10.77.11.9");
    assert.deepEqual(a.peername, ["10.77.11.1", 7001]);
    assert.deepEqual(b.peername, ["10.77.11.2", 7002]);
    // The server sees the client's virtual IP (accept and getpeername) and its own address.
    await waitFor("accept event", () => events(wildcard).some((e) => e.event === "accepted"));
    const acc = events(wildcard).find((e) => e.event === "accepted") as Record<string, [string, number]>;
    assert.deepEqual(acc.accept_peer, ["10.77.11.9", b.sockname?.[1]]);
    assert.deepEqual(acc.peername, acc.accept_peer);
    assert.deepEqual(acc.sockname, ["10.77.11.2", 7002]);
    assert.deepEqual(events(wildcard)[0]?.sockname, ["0.0.0.0", 7002]);
    assert.deepEqual(events(specific)[0]?.sockname, ["10.77.11.1", 7001]);
    specific.kill();
    wildcard.kill();
  });

  test("two servers on one virtual IP and port both receive connections", async () => {
    const one = await echoServer(host, ["--ip", "10.77.12.1", "--name", "pair"], "0.0.0.0", 7010, "ONE");
    const two = await echoServer(host, ["--ip", "10.77.12.1", "--name", "pair"], "0.0.0.0", 7010, "TWO");
    const replies = new Set<string>();
    for (let i = 0; i < 4; i++) replies.add((await echoClient(host, [], "10.77.12.1", 7010)).reply ?? "");
    assert.deepEqual([...replies].sort(), ["ONE hello", "TWO hello"]);
    one.kill();
    two.kill();
  });

  test("a client whose labels share none with the service is refused (EACCES), and a matching one passes", async () => {
    const srv = await echoServer(
      host,
      ["--ip", "10.77.13.1", "--labels", "zone=blue,tier=db"],
      "0.0.0.0",
      7020,
      "L",
    );
    const denied = await echoClient(host, ["--labels", "zone=red"], "10.77.13.1", 7020);
    assert.deepEqual(denied, { ok: false, errno: "EACCES" });
    const allowed = await echoClient(host, ["--labels", "zone=red,tier=db"], "10.77.13.1", 7020);
    assert.equal(allowed.reply, "L hello");
    assert.match(host.daemon?.stdout ?? "", /connection denied by label policy/);
    srv.kill();
  });

  test("a virtual IP with no backend refuses (ECONNREFUSED)", async () => {
    assert.deepEqual(await echoClient(host, [], "10.77.99.99", 7999), { ok: false, errno: "ECONNREFUSED" });
    // The refusal port (the pool's last) is held by the daemon, bound and not listening, so
    // the kernel never autobinds a client to it (a refused connect would then self-connect).
    const taken = host.exec([
      PYTHON,
      "-c",
      'import socket\ns=socket.socket()\ntry: s.bind(("127.0.0.1", 60000)); print("free")\nexcept OSError as e: print(e.errno)',
    ]);
    assert.equal(taken.stdout.trim(), "98", "EADDRINUSE: the daemon holds 127.0.0.1:60000");
  });

  test("app exit (kill -9) removes its services and frees its host port within a second", async () => {
    const srv = await echoServer(host, ["--ip", "10.77.14.1"], "0.0.0.0", 7030, "K");
    const svc = host
      .getJson<{ address: string; host: string }>("services")
      .find((s) => s.address === "10.77.14.1:7030");
    assert.ok(svc);
    srv.kill("SIGKILL");
    await srv.wait();
    const t0 = Date.now();
    await waitFor(
      "service removal",
      () => !host.getJson<{ address: string }>("services").some((s) => s.address === "10.77.14.1:7030"),
      3000,
    );
    assert.ok(Date.now() - t0 < 1500, `removal took ${Date.now() - t0} ms`);
    assert.ok(!host.getJson<{ ips: string[] }>("apps").some((a) => a.ips.includes("10.77.14.1")));
    // The freed host port can be bound again on the host.
    const port = Number(svc.host.split(":").pop());
    const probe = host.exec([
      PYTHON,
      "-c",
      `import socket; s=socket.socket(); s.bind(("127.0.0.1", ${port})); print("ok")`,
    ]);
    assert.equal(probe.stdout.trim(), "ok", probe.stderr);
  });

  test("non-blocking connect gets EINPROGRESS and completes; blocking connect completes", async () => {
    const srv = await echoServer(host, ["--ip", "10.77.15.1"], "0.0.0.0", 7040, "NB");
    const nb = await echoClient(host, [], "10.77.15.1", 7040, ["--nonblocking"]);
    assert.equal(nb.connect, "EINPROGRESS");
    assert.equal(nb.reply, "NB hello");
    const bl = await echoClient(host, [], "10.77.15.1", 7040);
    assert.equal(bl.connect, "blocking");
    assert.equal(bl.reply, "NB hello");
    const refused = await echoClient(host, [], "10.77.15.1", 7041, ["--nonblocking"]);
    assert.deepEqual(refused, { ok: false, errno: "ECONNREFUSED" });
    srv.kill();
  });

  test("IPv6 virtual IPs: an IPv6 client reaches a dual-stack server, and so does an IPv4 client", async () => {
    const srv = await echoServer(host, ["--ip", "fd77::10", "--ip", "10.77.16.1"], "::", 7050, "V6");
    const v6 = await echoClient(host, ["--ip", "fd77::20"], "fd77::10", 7050);
    assert.equal(v6.reply, "V6 hello");
    assert.equal(v6.sockname?.[0], "fd77::20");
    assert.deepEqual(v6.peername, ["fd77::10", 7050]);
    const v4 = await echoClient(host, [], "10.77.16.1", 7050);
    assert.equal(v4.reply, "V6 hello");
    await waitFor("accept", () => events(srv).filter((e) => e.event === "accepted").length === 2);
    const accepted = events(srv).filter((e) => e.event === "accepted") as Array<
      Record<string, [string, number]>
    >;
    assert.equal(accepted[0]?.peername?.[0], "fd77::20");
    assert.equal(accepted[0]?.sockname?.[0], "fd77::10");
    srv.kill();
  });

  test("an app's loopback listener is private: other apps cannot reach it, the app itself can", async () => {
    const srv = await echoServer(host, ["--ip", "10.77.17.1"], "127.0.0.1", 7060, "LO");
    assert.deepEqual(await echoClient(host, [], "127.0.0.1", 7060), { ok: false, errno: "ECONNREFUSED" });
    assert.deepEqual(await echoClient(host, [], "10.77.17.1", 7060), { ok: false, errno: "ECONNREFUSED" });
    srv.kill();
    const self = await host.runToEnd(
      [],
      [
        "sh",
        "-c",
        `${PYTHON} ${ECHO_SERVER} 127.0.0.1 7061 SELF & sleep 1; ${PYTHON} ${ECHO_CLIENT} 127.0.0.1 7061; kill $!`,
      ],
    );
    assert.match(self.stdout, /"reply": "SELF hello"/, self.stderr);
    assert.match(self.stdout, /"peername": \["127.0.0.1", 7061\]/);
  });

  test("egress: a non-virtual address is reached from the host socket; host pool ports are not", async () => {
    const plain = host.exec([PYTHON, "-c", "print(1)"]);
    assert.equal(plain.code, 0);
    // An unmanaged server on the test host's own address (not a virtual IP).
    const srv = new (await import("./harness.js")).Proc(
      (await import("node:child_process")).spawn(
        "ip",
        ["netns", "exec", host.ns, PYTHON, ECHO_SERVER, "192.0.2.1", "7070", "EG"],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
    await waitFor("unmanaged server", () => srv.stdout.includes("listening"));
    const r = await echoClient(host, [], "192.0.2.1", 7070);
    assert.equal(r.reply, "EG hello");
    assert.deepEqual(r.peername, ["192.0.2.1", 7070]);
    srv.kill();
    await srv.wait();
    const svc = await echoServer(host, ["--ip", "10.77.18.1"], "0.0.0.0", 7071, "P");
    const hostPort = host
      .getJson<{ address: string; host: string }>("services")
      .find((s) => s.address === "10.77.18.1:7071")?.host;
    assert.ok(hostPort);
    const sneaky = await echoClient(host, [], "192.0.2.1", Number(hostPort.split(":").pop()));
    assert.deepEqual(sneaky, { ok: false, errno: "EACCES" });
    svc.kill();
  });

  test("--expose publishes a port to unmanaged clients on the host", async () => {
    const srv = await echoServer(
      host,
      ["--ip", "10.77.19.1", "--expose", "7080:17080"],
      "0.0.0.0",
      7080,
      "EX",
    );
    const r = host.exec([PYTHON, ECHO_CLIENT, "127.0.0.1", "17080"]);
    assert.match(r.stdout, /"reply": "EX hello"/, r.stderr);
    const managed = await echoClient(host, [], "10.77.19.1", 7080);
    assert.equal(managed.reply, "EX hello");
    srv.kill();
  });

  test("malformed and forbidden calls get the kernel's errnos; UNIX sockets keep working", async () => {
    const r = await host.runToEnd(["--ip", "10.77.20.1"], [PYTHON, `${FIXTURES}/hostile-calls.py`]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    assert.deepEqual(out, {
      connect_bad_pointer: "EFAULT",
      connect_short_len: "EINVAL",
      connect_huge_len: "EINVAL",
      connect_bad_family: "EAFNOSUPPORT",
      bind_bad_pointer: "EFAULT",
      bind_not_my_ip: "EADDRNOTAVAIL",
      getsockname_bad_pointer: "EFAULT",
      accept_not_listening: "EINVAL",
      connect_bad_fd: "EBADF",
      raw_socket: "EPERM",
      packet_socket: "EAFNOSUPPORT",
      icmp_dgram_socket: "EACCES",
      sctp_socket: "EPROTONOSUPPORT",
      io_uring_setup: "ENOSYS",
      unix_socketpair: "OK",
    });
    assert.ok(host.daemon?.running, "the daemon survived");
  });

  test("the exit status of run is the app's, 128+N for a signal, and signals sent to run reach the app", async () => {
    assert.equal((await host.runToEnd([], ["sh", "-c", "exit 7"])).code, 7);
    assert.equal((await host.runToEnd([], ["sh", "-c", "kill -TERM $$"])).code, 143);
    const app = host.run(
      [],
      [
        PYTHON,
        "-c",
        "import signal,sys,time\nsignal.signal(signal.SIGUSR1, lambda *a: sys.exit(42))\nprint('ready', flush=True)\ntime.sleep(30)",
      ],
    );
    await waitFor("app ready", () => app.stdout.includes("ready"));
    // `ip netns exec` execs, so the child pid is sockswitch run's (the launcher's) pid.
    app.kill("SIGUSR1");
    assert.equal((await app.wait()).code, 42);
    const missing = await host.runToEnd([], ["/nonexistent/program"]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /cannot run \/nonexistent\/program/);
  });

  test("--user runs the program as that user, still switched", async () => {
    const srv = await echoServer(host, ["--ip", "10.77.21.1"], "0.0.0.0", 7090, "U");
    const id = await host.runToEnd(["--user", "nobody"], ["id", "-u"]);
    assert.equal(id.stdout.trim(), "65534");
    const r = await echoClient(host, ["--user", "nobody"], "10.77.21.1", 7090);
    assert.equal(r.reply, "U hello");
    srv.kill();
  });

  test("get apps|services|sockets print kubectl-like tables and stable JSON", async () => {
    const srv = await echoServer(host, ["--ip", "10.77.22.1", "--name", "tables"], "0.0.0.0", 7095, "T");
    const apps = host.cli(["get", "apps"]);
    assert.match(
      apps.stdout.split("\n")[0] ?? "",
      /^ID\s+NAME\s+STATUS\s+IPS\s+LABELS\s+PID\s+SERVICES\s+NODE\s+AGE$/,
    );
    assert.match(apps.stdout, /tables\s+Running\s+10\.77\.22\.1\s+zone=default/);
    const services = host.cli(["get", "services"]);
    assert.match(services.stdout, /tables\s+\w+\s+tcp\s+10\.77\.22\.1:7095\s+127\.0\.0\.1:\d+/);
    const sockets = host.getJson<{ state: string; local: string }>("sockets");
    assert.ok(sockets.some((s) => s.state === "LISTEN" && s.local === "0.0.0.0:7095"));
    const app = host.getJson<Record<string, unknown>>("apps").find((a) => a.name === "tables");
    assert.deepEqual(Object.keys(app ?? {}).sort(), [
      "command",
      "createdAt",
      "detached",
      "exitCode",
      "expose",
      "finishedAt",
      "id",
      "ips",
      "labels",
      "lb",
      "name",
      "node",
      "pid",
      "restartPolicy",
      "restarts",
      "services",
      "srcPorts",
      "stack",
      "status",
      "user",
    ]);
    srv.kill();
  });
});
