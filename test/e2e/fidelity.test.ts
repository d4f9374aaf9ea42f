// End-to-end: kernel fidelity across app lifetimes, which the conformance suite's long-lived
// apps cannot show (../shared/cases/fidelity: client-exit-drops-queued-traffic,
// connected-udp-stale-backend). Each server here is told when to read by the test (a line
// on stdin), never by a sleep.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PYTHON, TestHost, waitFor } from "./harness.js";

const COLLECTOR = `
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8125))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("0.0.0.0", 8126)); t.listen(16)
print("ready", flush=True)
sys.stdin.readline()
u.settimeout(1)
try:
    while True:
        d, a = u.recvfrom(100); print("udp", d.decode(), a[0], flush=True)
except socket.timeout:
    pass
t.settimeout(3)
c, a = t.accept(); print("tcp", c.recv(100).decode().strip(), a[0], flush=True)
`;

const FIRE_AND_FORGET = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5): s.sendto(b"metric%d" % i, ("10.77.31.10", 8125))
c = socket.create_connection(("10.77.31.10", 8126)); c.sendall(b"log line\\n"); c.close()
`;

const ECHO = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
print("ready", flush=True)
while True:
    d, p = s.recvfrom(100); s.sendto(b"echo:" + d, p)
`;

const PINNED = `
import socket, sys
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(1); c.connect(("10.77.32.10", 5353))
def ask():
    try:
        c.send(b"q"); return c.recv(100).decode()
    except OSError as e:
        return type(e).__name__
print("before", ask(), flush=True)
while sys.stdin.readline():
    print("now", ask(), flush=True)
`;

describe("kernel fidelity across app lifetimes", () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("fid");
    await host.start({ daemonArgs: ["--node-ip", "127.0.0.1"] });
  });

  after(async () => {
    await host?.cleanup();
  });

  test("datagrams and a connection a client sent just before it exited reach the server, from its virtual IP", async () => {
    const srv = host.steered(["--ip", "10.77.31.10"], [PYTHON, "-u", "-c", COLLECTOR]);
    await waitFor("the collector", () => srv.stdout.includes("ready"));
    const cli = await host.runToEnd(["--ip", "10.77.31.20"], [PYTHON, "-c", FIRE_AND_FORGET]);
    assert.equal(cli.code, 0, cli.stderr);
    await waitFor(
      "the client's removal",
      () => !host.getJson<{ ips: string[] }>("apps").some((a) => a.ips.includes("10.77.31.20")),
    );
    srv.go();
    await waitFor("the accepted connection", () => srv.stdout.includes("tcp ")).catch((e) => {
      throw new Error(
        `${e}: ${srv.stdout} ${srv.stderr} ${host.daemon?.stdout
          .split("\n")
          .filter((l) => /"level":(30|40|50)/.test(l))
          .slice(-12)
          .join("\n")}`,
      );
    });
    const lines = srv.stdout.trim().split("\n").slice(1);
    assert.deepEqual(lines, [
      ...[0, 1, 2, 3, 4].map((i) => `udp metric${i} 10.77.31.20`),
      "tcp log line 10.77.31.20",
    ]);
    srv.kill();
  });

  test("a connected UDP client keeps working when its server restarts at the same virtual address", async () => {
    const one = host.run(["--ip", "10.77.32.10", "--name", "echo32"], [PYTHON, "-u", "-c", ECHO]);
    await waitFor("the first server", () => one.stdout.includes("ready"));
    const cli = host.steered(["--ip", "10.77.32.20"], [PYTHON, "-u", "-c", PINNED]);
    await waitFor("the first answer", () => cli.stdout.includes("before"));
    assert.match(cli.stdout, /before echo:q/);
    one.kill("SIGKILL");
    await one.wait();
    await waitFor(
      "the server's removal",
      () => !host.getJson<{ ips: string[] }>("apps").some((a) => a.ips.includes("10.77.32.10")),
    );
    cli.go();
    await waitFor("an answer while the server is down", () => cli.stdout.includes("now"));
    assert.match(
      cli.stdout,
      /now ConnectionRefusedError/,
      "nothing there: refused, as the kernel's ICMP says",
    );
    const two = host.run(["--ip", "10.77.32.10", "--name", "echo32"], [PYTHON, "-u", "-c", ECHO]);
    await waitFor("the second server", () => two.stdout.includes("ready"));
    cli.go();
    await waitFor("an answer from the new server", () => (cli.stdout.match(/now /g) ?? []).length === 2);
    assert.match(cli.stdout.trim().split("\n").pop() ?? "", /^now echo:q$/);
    cli.kill();
    two.kill();
  });

  test("an app without an IPv6 virtual IP has no route to IPv6 virtual IPs (ENETUNREACH), as the kernel", async () => {
    const srv = host.run(["--ip", "10.77.33.10", "--ip", "fd77::33:10"], [PYTHON, "-u", "-c", ECHO]);
    await waitFor("the server", () => srv.stdout.includes("ready"));
    const r = await host.runToEnd(
      ["--ip", "10.77.33.20"],
      [
        PYTHON,
        "-c",
        [
          "import socket",
          "for t in (socket.SOCK_STREAM, socket.SOCK_DGRAM):",
          "    s = socket.socket(socket.AF_INET6, t)",
          "    try: s.connect(('fd77::33:10', 5353)); print('connected')",
          "    except OSError as e: print(e.errno)",
        ].join("\n"),
      ],
    );
    assert.deepEqual(r.stdout.trim().split("\n"), ["101", "101"], r.stderr); // ENETUNREACH
    srv.kill();
  });

  test("a multithreaded app binds, connects and sends on UNIX sockets (as MariaDB and Java do), with the peer's credentials its own", async () => {
    const r = await host.runToEnd(
      ["--ip", "10.77.33.30"],
      [
        PYTHON,
        "-c",
        [
          "import os, socket, struct, tempfile, threading, time",
          "threading.Thread(target=time.sleep, args=(3,), daemon=True).start()  # a second thread",
          "d = tempfile.mkdtemp(); path = os.path.join(d, 's')",
          "srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(path); srv.listen()",
          "c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(path)",
          "a, _ = srv.accept()",
          "pid, uid, gid = struct.unpack('3i', a.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))",
          "print('peer is me', pid == os.getpid(), uid == os.getuid())",
          "g = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); g.bind(path + 'g')",
          "h = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); h.sendto(b'x', path + 'g')",
          "print('datagram', g.recv(10))",
        ].join("\n"),
      ],
    );
    assert.deepEqual(r.stdout.trim().split("\n"), ["peer is me True True", "datagram b'x'"], r.stderr);
  });
});
