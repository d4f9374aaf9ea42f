// End-to-end: the bpf datapath's socket responder (native/addon/responder.c,
// src/trap/responder.ts). Threads of the daemon (one per 16 apps) answer the apps' socket()
// calls off the event loop; every call they do not serve, or cannot make, goes to the event loop's handler
// (src/trap/socket.ts). Each answer is the kernel's, whichever side gives it: a switched
// socket, the refusals of sockets the daemon does not switch, EMFILE when the app's own fd
// table is full (the responder's ADDFD fails there), and EINVAL for flags socket(2) rejects.
// Skipped where this build cannot run the bpf datapath.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { loadAddon } from "../../src/native/addon.js";
import { FIXTURES, PYTHON, TestHost, waitFor } from "./harness.js";

const bpfBuilt = (() => {
  try {
    return loadAddon().bpfBuilt() === 1;
  } catch {
    return false;
  }
})();

/** The names of a process's threads (comm). */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((t) =>
    readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim(),
  );
}

// Each line: the call, then what it gave (an fd's domain/type, or the errno's name).
const CALLS = `import errno, resource, socket
def one(what, f):
    try:
        s = f()
        print(what, "ok", s.family.name, s.type.name, flush=True)
        return s
    except OSError as e:
        print(what, errno.errorcode[e.errno], flush=True)
one("tcp4", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
one("udp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
one("tcp-proto", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP))
one("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
one("icmp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP))
one("sctp-stream", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132))
one("bad-flags", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM | 0x40000000))
held = []
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
for i in range(100):
    s = one("fill", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    if s is None:
        break
    held.append(s)
print("held", len(held) > 0, flush=True)
`;

describe("bpf datapath: the socket responder", { skip: !bpfBuilt && "no BPF in this build" }, () => {
  let host: TestHost;

  before(async () => {
    host = new TestHost("bpfresp");
    await host.start({ daemonArgs: ["--datapath", "bpf"] });
  });

  after(async () => {
    await host?.cleanup();
  });

  test("an app's socket() calls get the kernel's answers, from the responder or the event loop", async () => {
    const r = await host.runToEnd(["--ip", "10.77.61.1"], [PYTHON, "-c", CALLS]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const lines = r.stdout.trim().split("\n");
    const got = (what: string): string[] => lines.filter((l) => l.startsWith(`${what} `));
    assert.deepEqual(got("tcp4"), ["tcp4 ok AF_INET SOCK_STREAM"]);
    assert.deepEqual(got("udp6"), ["udp6 ok AF_INET6 SOCK_DGRAM"]);
    assert.deepEqual(got("tcp-proto"), ["tcp-proto ok AF_INET SOCK_STREAM"]);
    // Not switched (docs/errors.md): raw sockets EPERM, ICMP sockets EACCES, other protocols.
    assert.deepEqual(got("raw"), ["raw EPERM"]);
    assert.deepEqual(got("icmp"), ["icmp EACCES"]);
    assert.deepEqual(got("sctp-stream"), ["sctp-stream EPROTONOSUPPORT"]);
    // socket(2) rejects unknown type flags: the daemon's own socket() gives the same EINVAL.
    assert.deepEqual(got("bad-flags"), ["bad-flags EINVAL"]);
    // The app's table full: the kernel says EMFILE, and so does the failed install.
    const fill = got("fill");
    assert.equal(fill.at(-1), "fill EMFILE", fill.join("\n"));
    assert.ok(fill.length > 1 && fill.length < 64, fill.join("\n"));
    assert.deepEqual(got("held"), ["held True"]);
  });

  test("the responder runs as a thread of the daemon, and apps end as before", async () => {
    const pid = host.daemon?.pid as number;
    assert.ok(threadNames(pid).includes("ssw-responder"), threadNames(pid).join(", "));
    // A server and a client: the client's socket() is the responder's, its connect the kernel's.
    const server = host.run(
      ["--ip", "10.77.61.2", "--name", "respsrv"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "R"],
    );
    await waitFor("the server", () => server.stdout.includes('"listening"'));
    for (let i = 0; i < 3; i++) {
      const c = await host.runToEnd(
        ["--name", `respc${i}`],
        [PYTHON, `${FIXTURES}/echo-client.py`, "respsrv.sockswitch.local", "7000"],
      );
      assert.equal(c.code, 0, c.stderr + c.stdout);
      assert.equal(JSON.parse(c.stdout.trim().split("\n").pop() ?? "").reply, "R hello");
    }
    // Each client ended: the daemon knows (the responder reported its listener's hang-up).
    await waitFor("the clients gone", () => !/respc/.test(host.cli(["get", "apps"]).stdout), 10_000);
    server.kill();
  });

  test("a thread serves 16 apps; the 17th starts another, and every app is answered", async () => {
    const pid = host.daemon?.pid as number;
    const responders = (): number => threadNames(pid).filter((n) => n === "ssw-responder").length;
    // Each app makes a socket, waits for the test's go, makes another and ends.
    const code = `import socket, sys
a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
print("first", a.family.name, a.type.name, flush=True)
sys.stdin.readline()
b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
print("second", b.family.name, b.type.name, flush=True)
`;
    const apps = Array.from({ length: 17 }, (_, i) =>
      host.steered(["--name", `respmany${i}`], [PYTHON, "-c", code]),
    );
    for (const a of apps) await waitFor("the app's first socket", () => a.stdout.includes("first "), 20_000);
    for (const a of apps) assert.match(a.stdout, /^first AF_INET SOCK_STREAM$/m);
    // 17 apps at once (the earlier tests' apps have ended): two threads, of 16 and of 1.
    assert.equal(responders(), 2);
    for (const a of apps) a.go();
    for (const a of apps) {
      const r = await a.wait(20_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /^second AF_INET6 SOCK_DGRAM$/m);
    }
    await waitFor("the apps gone", () => !/respmany/.test(host.cli(["get", "apps"]).stdout), 10_000);
  });
});
