// End-to-end: the bpf datapath across daemon restarts, and when its programs are gone.
// - kill -9 and start: the pinned programs and maps are taken over (the same maps), a socket an
//   app made before the restart keeps its app's identity after it, and apps started after the
//   restart get indexes of their own (src/bpf/app-index.ts), not those old sockets carry;
// - a bound UDP socket's host address is forgotten when the socket is closed (ssw_bound,
//   native/bpf/datapath-lifetime.h);
// - fail closed: with the daemon dead and its pins removed, the programs detach; an app's connect
//   or send to a virtual IP then fails (the blackhole route for --vip-cidr: EINVAL), and no
//   packet leaves by the host's default route; a new daemon serves again.
// Skipped where this build cannot run the bpf datapath.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cgroup2Mount, pinDirOf } from "../../src/bpf/system.js";
import { loadAddon } from "../../src/native/addon.js";
import { FIXTURES, must, PYTHON, sh, TestHost, waitFor } from "./harness.js";

const bpfBuilt = (() => {
  try {
    return loadAddon().bpfBuilt() === 1;
  } catch {
    return false;
  }
})();

/** Makes a TCP and a UDP socket, says "made", waits for a line on stdin, then uses them. */
const LATER = `import errno, json, socket, sys
vip, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("made", flush=True)
sys.stdin.readline()
out = {}
try:
    s.settimeout(10)
    s.connect((vip, port))
    s.sendall(b"x\\n")
    out["reply"] = s.makefile("rb").readline().decode().strip()
    out["sockname"] = s.getsockname()[0]
except OSError as e:
    out["connect"] = errno.errorcode.get(e.errno, str(e))
try:
    u.sendto(b"x", (vip, port))
    out["sendto"] = "ok"
except OSError as e:
    out["sendto"] = errno.errorcode.get(e.errno, str(e))
print(json.dumps(out), flush=True)
`;

const HOLD = "import socket, time\ns = socket.socket()\nprint('made', flush=True)\ntime.sleep(120)";

function bpftool(args: string[]): unknown {
  return JSON.parse(must("bpftool", ["-j", ...args]));
}

function last(out: string): Record<string, string> {
  return JSON.parse(out.trim().split("\n").pop() ?? "{}");
}

describe("bpf datapath: restarts and failing closed", { skip: !bpfBuilt && "no BPF in this build" }, () => {
  let host: TestHost;
  let pins: string;
  const start = () => host.start({ daemonArgs: ["--datapath", "bpf"] });
  const accepted = (srv: { stdout: string }) =>
    srv.stdout
      .split("\n")
      .filter((l) => l.includes('"accepted"'))
      .map((l) => (JSON.parse(l) as { accept_peer: string[] }).accept_peer[0]);

  before(async () => {
    // Every host mounts bpffs at /sys/fs/bpf (systemd does); the daemon pins there.
    if (!sh("findmnt", ["-t", "bpf", "/sys/fs/bpf"]).stdout.includes("/sys/fs/bpf"))
      must("mount", ["-t", "bpf", "bpf", "/sys/fs/bpf"]);
    host = new TestHost("bpfrst");
    // A default route out of the test host (a veth pair whose both ends are in it: what v0
    // sends arrives at v1 and goes nowhere), to count what would take it.
    must("ip", ["-n", host.ns, "link", "add", "ssw0", "type", "veth", "peer", "name", "ssw1"]);
    for (const dev of ["ssw0", "ssw1"]) must("ip", ["-n", host.ns, "link", "set", dev, "up"]);
    must("ip", ["-n", host.ns, "route", "add", "default", "dev", "ssw0"]);
    pins = join(pinDirOf(join(host.dir, "state")), "datapath");
    await start();
  });

  after(async () => {
    await host?.cleanup();
  });

  test("kill -9 and start: the same maps; an old socket keeps its app; new apps get indexes of their own", async () => {
    const srv = host.run(
      ["--ip", "10.77.72.1", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "A"],
    );
    await waitFor("the server", () => srv.stdout.includes('"listening"'));
    const old = host.steered(
      ["--ip", "10.77.72.2", "--labels", "zone=a"],
      [PYTHON, "-c", LATER, "10.77.72.1", "7000"],
    );
    await waitFor("the old client's sockets", () => old.stdout.includes("made"));
    // The cgroup the daemon made for it, below the one it was started in (the default placement).
    const oldApp = host
      .getJson<{ ips: string[]; pid: number }>("apps")
      .find((a) => a.ips.includes("10.77.72.2"));
    const oldCgroup = readFileSync(`/proc/${oldApp?.pid}/cgroup`, "utf8").match(/^0::(.*)$/m)?.[1] ?? "";
    assert.match(oldCgroup, /\/sockswitch-app-[^/]+$/);
    const maps = (bpftool(["map", "show", "pinned", join(pins, "ssw_apps")]) as { id: number }).id;

    await host.stopDaemon("SIGKILL");
    await start();
    assert.equal((bpftool(["map", "show", "pinned", join(pins, "ssw_apps")]) as { id: number }).id, maps);

    // Two apps started after the restart: had they been given the old indexes again, the
    // first would take the server's and the second the old client's (another zone).
    const fresh = await host.runToEnd(
      ["--ip", "10.77.72.3", "--labels", "zone=a"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.72.1", "7000"],
    );
    assert.equal(fresh.code, 0, fresh.stderr + fresh.stdout);
    assert.equal(last(fresh.stdout).reply, "A hello");
    const other = host.run(["--ip", "10.77.72.4", "--labels", "zone=b"], [PYTHON, "-c", HOLD]);
    await waitFor("the other zone's app", () => other.stdout.includes("made"));

    old.go();
    const r = await old.wait(20_000);
    assert.equal(r.code, 0, r.stderr);
    const got = last(r.stdout);
    assert.equal(got.reply, "A x", r.stdout);
    assert.equal(got.sockname, "10.77.72.2");
    await waitFor("both accepts", () => accepted(srv).length === 2);
    assert.deepEqual(accepted(srv), ["10.77.72.3", "10.77.72.2"]);
    // The app from before the restart ended after it: its cgroup goes too.
    const cgroupDir = join(cgroup2Mount() ?? "/sys/fs/cgroup", oldCgroup);
    await waitFor(`the removal of ${cgroupDir}`, () => !existsSync(cgroupDir), 10_000);
    other.kill("SIGKILL");
    srv.kill("SIGKILL");
    await Promise.all([other.wait(), srv.wait()]);
  });

  test("a bound UDP socket's host address is forgotten when it is closed", async () => {
    const bound = () => (bpftool(["map", "dump", "pinned", join(pins, "ssw_bound")]) as unknown[]).length;
    const before = bound();
    const srv = host.run(
      ["--ip", "10.77.72.5"],
      [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", "5300", "U"],
    );
    await waitFor("the UDP server", () => srv.stdout.includes('"listening"'));
    assert.equal(bound(), before + 1);
    srv.kill("SIGKILL");
    await srv.wait();
    await waitFor("its entry gone", () => bound() === before);
  });

  test("fail closed: programs gone, a virtual IP is unreachable and nothing takes the default route", async () => {
    assert.match(
      host.exec(["ip", "route", "show", "type", "blackhole"]).stdout,
      /^blackhole 10\.77\.0\.0\/16/m,
    );
    const srv = host.run(
      ["--ip", "10.77.72.6"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "F"],
    );
    await waitFor("the server", () => srv.stdout.includes('"listening"'));
    const app = host.steered(["--ip", "10.77.72.7"], [PYTHON, "-c", LATER, "10.77.72.6", "7000"]);
    await waitFor("the app's sockets", () => app.stdout.includes("made"));
    const links = readdirSync(pins)
      .filter((n) => n.startsWith("link_"))
      .map((n) => (bpftool(["link", "show", "pinned", join(pins, n)]) as { id: number }).id);
    assert.ok(links.length > 0);

    await host.stopDaemon("SIGKILL");
    rmSync(pinDirOf(join(host.dir, "state")), { recursive: true, force: true });
    await waitFor("the programs detached", () =>
      links.every((id) => sh("bpftool", ["link", "show", "id", String(id)]).code !== 0),
    );
    const sent = () => {
      const [dev] = JSON.parse(
        must("ip", ["netns", "exec", host.ns, "ip", "-s", "-j", "link", "show", "ssw0"]),
      );
      return dev.stats64.tx.packets as number;
    };
    const before = sent();
    app.go();
    const r = await app.wait(20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(last(r.stdout), { connect: "EINVAL", sendto: "EINVAL" });
    assert.equal(sent(), before, "no packet took the default route");

    // A new daemon attaches its programs again: apps started now are served.
    await start();
    const srv2 = host.run(
      ["--ip", "10.77.72.8"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "N"],
    );
    await waitFor("the new server", () => srv2.stdout.includes('"listening"'));
    const c = await host.runToEnd(
      ["--ip", "10.77.72.9"],
      [PYTHON, `${FIXTURES}/echo-client.py`, "10.77.72.8", "7000"],
    );
    assert.equal(c.code, 0, c.stderr + c.stdout);
    assert.equal(last(c.stdout).reply, "N hello");
    assert.deepEqual(accepted(srv2), ["10.77.72.9"]);
  });
});
