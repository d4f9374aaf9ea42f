// End-to-end: socket calls from threads other than a process's main one (python threads, a
// thread-pool server, a Go program with many goroutines), once on the kernel's own features
// and once with PIDFD_THREAD hidden from the daemon (SOCKSWITCH_TEST_HIDE_FEATURES), which
// is how kernels before 6.9 are served: through the process's pidfd, checked with kcmp. On
// such a kernel (the kernel VM run, `npm run test:kernels`) both passes take that path.
// A thread with a file table of its own is served where PIDFD_THREAD exists and refused
// with EOPNOTSUPP and a log line where it does not, for every call the daemon carries out on
// its socket: under SSW_DATAPATH=bpf those are bind and listen (its connect is not trapped and
// is served by the kernel; socket() is answered with ADDFD, which reaches any thread).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PIDFD_THREAD } from "../../src/core/kernel-info.js";
import { loadAddon } from "../../src/native/addon.js";
import { BPF_DATAPATH, FIXTURES, PYTHON, TestHost, waitFor } from "./harness.js";
import { goEcho, HIDE, hasFeature } from "./kernel-helpers.js";

const THREADS = `${FIXTURES}/threads.py`;

interface Summary {
  ok: number;
  errors: string[];
  from_main: number;
  threads: number;
  results: {
    ok: boolean;
    reply?: string;
    sockname?: [string, number];
    peername?: [string, number];
    peer?: [string, number];
  }[];
}

function lastJson<T>(text: string): T {
  return JSON.parse(text.trim().split("\n").pop() ?? "{}") as T;
}

function events(text: string, kind: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.includes(`"${kind}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Whether this kernel has PIDFD_THREAD (else the second pass would repeat the first). */
function kernelHasPidfdThread(): boolean {
  const a = loadAddon();
  const fd = a.pidfdOpen(process.pid, PIDFD_THREAD);
  if (fd >= 0) a.close(fd);
  return fd >= 0;
}

const MODES = [
  { name: "the kernel's own features", env: {} as Record<string, string>, net: 61 },
  { name: "PIDFD_THREAD hidden", env: { [HIDE]: "PIDFD_THREAD" }, net: 62 },
];

const skipHidden = kernelHasPidfdThread()
  ? false
  : "this kernel has no PIDFD_THREAD: the first pass took that path";

for (const mode of MODES) {
  describe(`threads (${mode.name})`, { skip: mode.env[HIDE] ? skipHidden : false }, () => {
    let host: TestHost;
    let pidfdThread = false;
    const vip = (n: number) => `10.77.${mode.net}.${n}`;

    before(async () => {
      host = new TestHost("thr");
      await host.start({ env: mode.env });
      pidfdThread = hasFeature(host, "PIDFD_THREAD");
      if (mode.env[HIDE]) assert.equal(pidfdThread, false);
    });

    after(async () => {
      await host?.cleanup();
    });

    test("python: 16 client threads connect at once; a thread-pool server accepts in its workers", async () => {
      const srv = host.run(["--ip", vip(1)], [PYTHON, THREADS, "server", "0.0.0.0", "7600", "T", "4"]);
      await waitFor("thread-pool server", () => srv.stdout.includes('"listening"'));
      const r = await host.runToEnd(
        ["--ip", vip(2)],
        [PYTHON, THREADS, "client", vip(1), "7600", "16"],
        60_000,
      );
      const sum = lastJson<Summary>(r.stdout);
      assert.equal(sum.ok, 16, `${r.stdout} ${r.stderr}`);
      assert.deepEqual(sum.errors, []);
      assert.equal(sum.from_main, 0, "every call came from a thread that is not the main one");
      for (const x of sum.results) {
        assert.match(x.reply ?? "", /^T hello \d+$/);
        assert.deepEqual(x.peername, [vip(1), 7600]);
        assert.equal(x.sockname?.[0], vip(2));
      }
      await waitFor("16 accepts", () => events(srv.stdout, "accepted").length === 16);
      for (const ev of events(srv.stdout, "accepted")) {
        assert.equal((ev.accept_peer as string[])[0], vip(2), srv.stdout);
        assert.equal((ev.peername as string[])[0], vip(2));
        assert.deepEqual(ev.sockname, [vip(1), 7600]);
      }
      srv.kill("SIGKILL");
      await srv.wait();
    });

    test("python: 8 threads send and receive UDP datagrams at once", async () => {
      const srv = host.run(
        ["--ip", vip(3)],
        [PYTHON, `${FIXTURES}/udp-echo.py`, "server", "0.0.0.0", "5600", "U"],
      );
      await waitFor("udp server", () => srv.stdout.includes('"listening"'));
      const r = await host.runToEnd(["--ip", vip(4)], [PYTHON, THREADS, "udp", vip(3), "5600", "8"], 60_000);
      const sum = lastJson<Summary>(r.stdout);
      assert.equal(sum.ok, 8, `${r.stdout} ${r.stderr}`);
      assert.equal(sum.from_main, 0);
      for (const x of sum.results) {
        assert.match(x.reply ?? "", /^U hello \d+$/);
        assert.deepEqual(x.peer, [vip(3), 5600]);
      }
      const peers = events(srv.stdout, "datagram").map((e) => (e.peer as string[])[0]);
      assert.deepEqual(peers, Array(8).fill(vip(4)));
      srv.kill("SIGKILL");
      await srv.wait();
    });

    test("Go: a server and a client with 200 goroutines", async () => {
      const bin = goEcho();
      const srv = host.run(["--ip", vip(5)], [bin, "server", "0.0.0.0:7700", "G"]);
      await waitFor("go server", () => srv.stdout.includes('"listening"'));
      const r = await host.runToEnd(["--ip", vip(6)], [bin, "client", `${vip(5)}:7700`, "200"], 90_000);
      const sum = lastJson<{
        ok: number;
        bad: number;
        errors: string[];
        localIps: string[];
        remotes: string[];
      }>(r.stdout);
      assert.deepEqual(
        { ok: sum.ok, bad: sum.bad, errors: sum.errors },
        { ok: 200, bad: 0, errors: [] },
        `${r.stdout} ${r.stderr}`,
      );
      assert.deepEqual(sum.localIps, [vip(6)]);
      assert.deepEqual(sum.remotes, [`${vip(5)}:7700`]);
      await waitFor("200 accepts", () => events(srv.stdout, "accepted").length === 200);
      for (const ev of events(srv.stdout, "accepted"))
        assert.match(ev.peer as string, new RegExp(`^${vip(6)}:\\d+$`));
      srv.kill("SIGKILL");
      await srv.wait();
    });

    test("a thread with a file table of its own: served with PIDFD_THREAD, else EOPNOTSUPP and a log line", async () => {
      const srv = host.run(["--ip", vip(7)], [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7800", "O"]);
      await waitFor("echo server", () => srv.stdout.includes('"listening"'));
      const r = await host.runToEnd(["--ip", vip(8)], [PYTHON, THREADS, "own-files", vip(7), "7800"], 60_000);
      const res = lastJson<{ ok?: boolean; reply?: string; errno?: string; setup?: string; bind?: string }>(
        r.stdout,
      );
      assert.equal(res.setup, undefined, `unshare(CLONE_FILES) failed: ${r.stdout}`);
      // Python names errno 95 ENOTSUP (the same number as EOPNOTSUPP on Linux).
      const refused = /^(EOPNOTSUPP|ENOTSUP)$/;
      if (pidfdThread || BPF_DATAPATH) {
        assert.equal(res.reply, "O hello 0", `${r.stdout} ${r.stderr}`);
        assert.deepEqual(res, { ...res, ok: true, peername: [vip(7), 7800] });
      } else {
        assert.match(res.errno ?? "", refused, `${r.stdout} ${r.stderr}`);
      }
      if (pidfdThread) {
        assert.equal(res.bind, "OK", `${r.stdout} ${r.stderr}`);
      } else {
        assert.match(res.bind ?? "", refused, `${r.stdout} ${r.stderr}`);
        await waitFor("the refusal in the daemon's log", () =>
          host.daemon?.stdout.includes("the thread has a file table of its own"),
        );
      }
      srv.kill("SIGKILL");
      await srv.wait();
    });
  });
}
