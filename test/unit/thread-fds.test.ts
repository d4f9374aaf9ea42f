// Unit tests of how the daemon reaches a thread's fds (src/trap/thread-fds.ts) with a fake
// addon: a pidfd per thread with PIDFD_THREAD; without it the process's pidfd, checked with
// kcmp on every call, looked up again when the tid may name another thread, and a refusal
// (EOPNOTSUPP, logged once) for a thread with a file table of its own. The thread ids are
// this test process's own (its main thread and a libuv worker), so /proc answers for real.

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { constants } from "node:os";
import { describe, test } from "node:test";
import { KCMP_FILES, PIDFD_THREAD } from "../../src/core/kernel-info.js";
import type { Addon } from "../../src/native/addon.js";
import type { App } from "../../src/table/types.js";
import type { TrapHost, TrapKernel } from "../../src/trap/host.js";
import { ThreadFds, threadGroupOf } from "../../src/trap/thread-fds.js";

const E = constants.errno;
const PID = process.pid;

/** A thread of this process that is not its main one (Node always runs a few). */
function otherThread(): number {
  const tid = readdirSync(`/proc/${PID}/task`)
    .map(Number)
    .find((t) => t !== PID);
  if (tid === undefined) throw new Error("no second thread in this process");
  return tid;
}

interface Fake {
  host: TrapHost;
  calls: string[];
  warnings: string[];
  /** kcmp's answer for (pid, tid). */
  kcmp: (a: number, b: number) => number;
  /** pidfd_getfd's answer. */
  getfd: (pidfd: number, fd: number) => number;
}

function fake(kernel: TrapKernel): Fake {
  let next = 500;
  const f: Fake = {
    calls: [],
    warnings: [],
    kcmp: () => 0,
    getfd: () => 900,
    host: undefined as unknown as TrapHost,
  };
  const addon = {
    pidfdOpen: (pid: number, flags: number) => {
      f.calls.push(`open ${pid} ${flags}`);
      return next++;
    },
    pidfdGetfd: (pidfd: number, fd: number) => {
      f.calls.push(`getfd ${pidfd} ${fd}`);
      return f.getfd(pidfd, fd);
    },
    kcmp: (a: number, b: number, type: number) => {
      f.calls.push(`kcmp ${a} ${b} ${type}`);
      return f.kcmp(a, b);
    },
    close: (fd: number) => {
      f.calls.push(`close ${fd}`);
      return 0;
    },
  } as unknown as Addon;
  const log = { warn: (_o: unknown, msg: string) => f.warnings.push(msg) };
  f.host = { addon, kernel, log } as unknown as TrapHost;
  return f;
}

const APP = { id: "app1", pid: PID } as App;

describe("thread fds", () => {
  test("the thread group of a thread is its process", () => {
    assert.equal(threadGroupOf(otherThread()), PID);
    assert.equal(threadGroupOf(PID), PID);
    assert.equal(threadGroupOf(0x3fffffff), -E.ESRCH);
  });

  test("with PIDFD_THREAD: a pidfd per thread, opened again once it answers ESRCH", () => {
    const f = fake({ pidfdThread: true, kcmp: true, ipLocalPortRange: true });
    const t = new ThreadFds(f.host, APP);
    const tid = otherThread();
    assert.equal(t.take(tid, 3), 900);
    assert.equal(t.take(tid, 4), 900);
    assert.deepEqual(f.calls, [`open ${tid} ${PIDFD_THREAD}`, "getfd 500 3", "getfd 500 4"]);
    f.calls.length = 0;
    const answers = [-E.ESRCH, 901];
    f.getfd = () => answers.shift() as number;
    assert.equal(t.take(tid, 5), 901);
    assert.deepEqual(f.calls, ["getfd 500 5", "close 500", `open ${tid} ${PIDFD_THREAD}`, "getfd 501 5"]);
    assert.deepEqual([...t.tids], [tid]);
  });

  test("without it: the process's pidfd, kcmp(KCMP_FILES) on every call from a thread", () => {
    const f = fake({ pidfdThread: false, kcmp: true, ipLocalPortRange: false });
    const t = new ThreadFds(f.host, APP);
    const tid = otherThread();
    assert.equal(t.take(tid, 3), 900);
    assert.equal(t.take(tid, 4), 900);
    assert.equal(t.take(PID, 5), 900);
    assert.deepEqual(f.calls, [
      `kcmp ${PID} ${tid} ${KCMP_FILES}`,
      `open ${PID} 0`,
      "getfd 500 3",
      `kcmp ${PID} ${tid} ${KCMP_FILES}`,
      "getfd 500 4",
      "getfd 500 5",
    ]);
    assert.deepEqual(f.warnings, []);
  });

  test("a thread with a file table of its own: EOPNOTSUPP, logged once, nothing taken", () => {
    const f = fake({ pidfdThread: false, kcmp: true, ipLocalPortRange: false });
    const t = new ThreadFds(f.host, APP);
    const tid = otherThread();
    f.kcmp = () => 3;
    assert.equal(t.take(tid, 3), -E.EOPNOTSUPP);
    assert.equal(t.take(tid, 3), -E.EOPNOTSUPP);
    assert.equal(f.calls.filter((c) => c.startsWith("getfd")).length, 0);
    assert.equal(f.warnings.length, 1);
    assert.match(f.warnings[0] as string, /the thread has a file table of its own/);
    // It shares again (the tid now names another thread of the process): served.
    f.kcmp = () => 0;
    assert.equal(t.take(tid, 3), 900);
  });

  test("without kcmp either: threads are refused, the main thread is served", () => {
    const f = fake({ pidfdThread: false, kcmp: false, ipLocalPortRange: false });
    const t = new ThreadFds(f.host, APP);
    assert.equal(t.take(otherThread(), 3), -E.EOPNOTSUPP);
    assert.match(f.warnings[0] as string, /kcmp\(2\)/);
    assert.equal(t.take(PID, 3), 900);
  });

  test("a thread that is gone: ESRCH", () => {
    const f = fake({ pidfdThread: false, kcmp: true, ipLocalPortRange: false });
    const t = new ThreadFds(f.host, APP);
    assert.equal(t.take(0x3fffffff, 3), -E.ESRCH);
    f.kcmp = () => -E.ESRCH;
    assert.equal(t.take(otherThread(), 3), -E.ESRCH);
    assert.deepEqual(f.warnings, []);
  });

  test("at most 32 pidfds per app: past that, the one cached first is closed, no other", () => {
    const f = fake({ pidfdThread: true, kcmp: true } as TrapKernel);
    const fds = new ThreadFds(f.host, APP);
    for (let tid = 1; tid <= 32; tid++) fds.take(100000 + tid, 3);
    assert.deepEqual(
      f.calls.filter((c) => c.startsWith("close")),
      [],
      "32 fit",
    );
    fds.take(100033, 3);
    assert.deepEqual(
      f.calls.filter((c) => c.startsWith("close")),
      ["close 500"],
      "the first thread's pidfd goes",
    );
    f.calls.length = 0;
    fds.take(100002, 3);
    assert.deepEqual(f.calls, ["getfd 501 3"], "the second is still cached");
    f.calls.length = 0;
    fds.take(100001, 3);
    assert.deepEqual(
      f.calls,
      ["close 501", "open 100001 128", "getfd 533 3"],
      "the first is opened again; the oldest cached (the second) goes",
    );
  });
});
