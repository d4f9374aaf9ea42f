// Unit tests of the native addon (native/addon/*.c) through src/native/addon.ts: every export that
// works as root without seccomp. The seccomp notification ioctls are only checked for not
// blocking on ordinary fds here; the daemon's integration tests drive them for real.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createConnection } from "node:net";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type Addon, addonPaths, loadAddon } from "../../src/native/addon.js";

const addon = loadAddon();
const C = addon.constants;
const E = osConstants.errno;
const FD_CLOEXEC = 1;
const loose = addon as unknown as Record<string, (...args: unknown[]) => unknown>;

const scratch = mkdtempSync(join(tmpdir(), "sockswitch-addon-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function sockaddrIn(ip: string, port: number): Uint8Array {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint16(0, C.AF_INET, true); // sa_family: host order
  new DataView(b.buffer).setUint16(2, port, false); // sin_port: network order
  b.set(ip.split(".").map(Number), 4);
  return b;
}

function decodeSockaddrIn(b: Uint8Array, len: number): { family: number; ip: string; port: number } {
  assert.equal(len, 16);
  const v = new DataView(b.buffer, b.byteOffset, len);
  return {
    family: v.getUint16(0, true),
    ip: Array.from(b.subarray(4, 8)).join("."),
    port: v.getUint16(2, false),
  };
}

/** Resolves with the first callback of a fresh watcher on fd, which is then unwatched. */
function nextEvent(fd: number, events: number): Promise<{ status: number; events: number }> {
  return new Promise((resolve) => {
    const id = addon.watch(fd, events, (status, ev) => {
      assert.equal(addon.unwatch(id), 0);
      resolve({ status, events: ev });
    });
    assert.ok(id > 0, `watch(${fd}, ${events}) = ${id}`);
  });
}

function ok(rc: number, what: string): number {
  assert.ok(rc >= 0, `${what} = ${rc}`);
  return rc;
}

function tcpListener(): { fd: number; addr: Uint8Array; port: number } {
  const fd = ok(addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0), "socket");
  assert.equal(addon.bind(fd, sockaddrIn("127.0.0.1", 0), 16), 0);
  assert.equal(addon.listen(fd, 16), 0);
  const addr = new Uint8Array(128);
  const len = addon.getsockname(fd, addr);
  return { fd, addr: addr.slice(0, len), port: decodeSockaddrIn(addr, len).port };
}

/** A connected non-blocking TCP pair: [client, server]. */
async function tcpPair(): Promise<[number, number]> {
  const l = tcpListener();
  try {
    const c = ok(addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0), "socket");
    const rc = addon.connect(c, l.addr, l.addr.byteLength);
    assert.ok(rc === 0 || rc === -E.EINPROGRESS, `connect = ${rc}`);
    await nextEvent(l.fd, 1);
    return [c, ok(addon.accept4(l.fd, C.SOCK_NONBLOCK), "accept4")];
  } finally {
    addon.close(l.fd);
  }
}

function procStatus(pid: number | "self", field: string): bigint {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  assert.ok(line, `${field} in /proc/${pid}/status`);
  return BigInt(`0x${line.split(/\s+/)[1]}`);
}

describe("constants and loading", () => {
  test("constants describe this build", () => {
    assert.equal(C.SECCOMP_USER_NOTIF_FLAG_CONTINUE, 1);
    assert.equal(C.SECCOMP_RET_USER_NOTIF, 0x7fc00000);
    assert.equal(C.SECCOMP_RET_KILL_PROCESS, 0x80000000);
    assert.equal(C.SECCOMP_RET_DATA, 0xffff);
    assert.equal(C.SIZEOF_SECCOMP_NOTIF, 80);
    assert.equal(C.SIZEOF_SECCOMP_NOTIF_RESP, 24);
    if (process.arch === "x64") {
      assert.equal(C.AUDIT_ARCH, 0xc000003e);
      assert.equal(C.AUDIT_ARCH_X86_64, C.AUDIT_ARCH);
      assert.equal(C.__NR_socket, 41);
      assert.equal(C.__NR_connect, 42);
      assert.equal(C.__NR_accept4, 288);
      assert.equal(C.__NR_io_uring_setup, 425);
    }
    assert.ok(Object.isFrozen(C));
  });

  test("loadAddon is cached and looks in build/Release first", () => {
    assert.equal(loadAddon(), addon);
    const [release, debug] = addonPaths();
    assert.match(release ?? "", /\/build\/Release\/sockswitch\.node$/);
    assert.match(debug ?? "", /\/build\/Debug\/sockswitch\.node$/);
    assert.ok(statSync(release ?? "").isFile());
  });

  test("loadAddon names every path tried when the addon is missing", async () => {
    // A copy of the loader two levels below a directory without build/.
    const dir = join(scratch, "nobuild", "src", "native");
    mkdirSync(dir, { recursive: true });
    copyFileSync(fileURLToPath(new URL("../../src/native/addon.ts", import.meta.url)), join(dir, "addon.ts"));
    const copy = (await import(join(dir, "addon.ts"))) as { loadAddon: () => Addon };
    assert.throws(copy.loadAddon, (err: Error) => {
      assert.match(err.message, /nobuild\/build\/Release\/sockswitch\.node: /);
      assert.match(err.message, /nobuild\/build\/Debug\/sockswitch\.node: /);
      assert.match(err.message, /run `npm install` \(needs make, g\+\+ and python3\)/);
      return true;
    });
  });

  test("wrong argument types and counts throw TypeErrors quoting the usage", () => {
    assert.throws(() => loose.notifRespond?.(1, 2, 3), {
      name: "TypeError",
      message: "notifRespond(fd, idLo, idHi, val, error, flags): expected 6 arguments, got 3",
    });
    assert.throws(() => loose.notifRespond?.("x", 0, 0, 0, 0, 0), {
      name: "TypeError",
      message: "notifRespond(fd, idLo, idHi, val, error, flags): fd must be a number",
    });
    assert.throws(() => loose.notifRecv?.(0, new Uint32Array(17)), /out must have length >= 18/);
    assert.throws(
      () => loose.bind?.(0, new Uint16Array(8), 16),
      /bind\(fd, addr: Uint8Array, len\): addr must be a Uint8Array/,
    );
    assert.throws(() => addon.bind(0, new Uint8Array(8), 16), /len must be between 0 and buf.byteLength/);
    assert.throws(
      () => addon.readMem(1, 0, new Uint8Array(4), 5),
      /len must be between 0 and buf.byteLength/,
    );
    assert.throws(() => addon.writeMem(1, -1, new Uint8Array(4), 4), /addr must be a non-negative integer/);
    assert.throws(
      () => addon.readMem(1, 2 ** 60, new Uint8Array(4), 4),
      /addr must be a non-negative integer/,
    );
    assert.throws(() => addon.fstat(0, new Float64Array(2)), /out must have length >= 3/);
    assert.throws(() => loose.watch?.(0, 1, "not a function"), /callback must be a function/);
    assert.throws(() => addon.watch(0, 8, () => {}), /events must be a mask of 1/);
    assert.throws(() => loose.unixListen?.(5, 1, 0o600), /path must be a string/);
    assert.throws(() => loose.execve?.("/bin/true", ["true", 1], []), /argv must be an array of strings/);
    assert.throws(() => addon.recvPeek(0, new Uint8Array(0)), /buf must not be empty/);
    assert.throws(
      () => addon.recvFds(0, new Uint8Array(4), new Int32Array(0)),
      /fdsOut must have length >= 1/,
    );
    // Buffers are Uint8Arrays and work wherever a Uint8Array does.
    assert.equal(addon.send(-1, Buffer.from("x"), 1), -E.EBADF);
  });
});

describe("sockets", () => {
  test("socket, bind 127.0.0.1:0, listen, getsockname round trip and socket options", () => {
    const l = tcpListener();
    try {
      const addr = new Uint8Array(128);
      const len = addon.getsockname(l.fd, addr);
      const got = decodeSockaddrIn(addr, len);
      assert.equal(got.family, C.AF_INET);
      assert.equal(got.ip, "127.0.0.1");
      assert.ok(got.port > 0);
      assert.equal(addon.getsockname(l.fd, new Uint8Array(4)), 16, "a short buffer reports the full length");
      assert.equal(addon.getsockoptInt(l.fd, C.SOL_SOCKET, C.SO_DOMAIN), C.AF_INET);
      assert.equal(addon.getsockoptInt(l.fd, C.SOL_SOCKET, C.SO_TYPE), C.SOCK_STREAM);
      assert.equal(addon.getsockoptInt(l.fd, C.SOL_SOCKET, C.SO_ACCEPTCONN), 1);
      assert.equal(addon.getsockoptInt(l.fd, C.SOL_SOCKET, C.SO_ERROR), 0);
      assert.equal(addon.getsockoptInt(l.fd, C.SOL_SOCKET, 9999), -E.ENOPROTOOPT);
      assert.equal(
        addon.fcntl(l.fd, 1 /* F_GETFD */, 0) & FD_CLOEXEC,
        FD_CLOEXEC,
        "socket() adds SOCK_CLOEXEC",
      );
      assert.equal(addon.fcntl(l.fd, 5 /* F_GETLK takes a pointer */, 0), -E.EINVAL);
      assert.equal(addon.accept4(l.fd, 0), -E.EAGAIN, "nothing pending");
      assert.equal(addon.getpeername(l.fd, addr), -E.ENOTCONN);
    } finally {
      assert.equal(addon.close(l.fd), 0);
    }
    assert.equal(addon.close(l.fd), -E.EBADF);
  });

  test("non-blocking connect, watch for writable, accept4, getpeername, send, recvPeek", async () => {
    const l = tcpListener();
    const c = ok(addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0), "socket");
    const rc = addon.connect(c, l.addr, l.addr.byteLength);
    assert.ok(rc === 0 || rc === -E.EINPROGRESS, `connect = ${rc}`);
    const ev = await nextEvent(c, 2);
    assert.equal(ev.status, 0);
    assert.equal(ev.events & 2, 2);
    assert.equal(addon.getsockoptInt(c, C.SOL_SOCKET, C.SO_ERROR), 0);

    await nextEvent(l.fd, 1);
    const s = ok(addon.accept4(l.fd, C.SOCK_NONBLOCK), "accept4");
    assert.equal(addon.fcntl(s, C.F_GETFL, 0) & C.O_NONBLOCK, C.O_NONBLOCK);
    assert.equal(addon.fcntl(s, 1 /* F_GETFD */, 0) & FD_CLOEXEC, FD_CLOEXEC, "accept4 adds SOCK_CLOEXEC");
    const peer = new Uint8Array(128);
    const local = new Uint8Array(128);
    const plen = addon.getpeername(s, peer);
    assert.deepEqual(decodeSockaddrIn(peer, plen), decodeSockaddrIn(local, addon.getsockname(c, local)));

    const buf = new Uint8Array(16);
    assert.equal(addon.recvPeek(s, buf), -E.EAGAIN);
    assert.equal(addon.send(c, Buffer.from("hello, world"), 5), 5);
    await nextEvent(s, 1);
    assert.equal(addon.recvPeek(s, buf), 5);
    assert.equal(addon.recvPeek(s, buf), 5, "peeking consumes nothing");
    assert.equal(Buffer.from(buf.subarray(0, 5)).toString(), "hello");

    const fl = addon.fcntl(s, C.F_GETFL, 0);
    assert.equal(addon.fcntl(s, C.F_SETFL, fl & ~C.O_NONBLOCK), 0);
    assert.equal(addon.fcntl(s, C.F_GETFL, 0) & C.O_NONBLOCK, 0);
    assert.equal(addon.accept4(l.fd, 0), -E.EAGAIN);

    for (const fd of [s, c, l.fd]) assert.equal(addon.close(fd), 0);
  });

  test("a refused connect: the watcher gets status UV_EBADF and SO_ERROR says ECONNREFUSED", async () => {
    // Bound but not listening: connecting to it is refused.
    const b = ok(addon.socket(C.AF_INET, C.SOCK_STREAM, 0), "socket");
    assert.equal(addon.bind(b, sockaddrIn("127.0.0.1", 0), 16), 0);
    const addr = new Uint8Array(16);
    addon.getsockname(b, addr);
    const c = ok(addon.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0), "socket");
    const rc = addon.connect(c, addr, 16);
    if (rc === -E.EINPROGRESS) {
      const ev = await nextEvent(c, 2);
      // libuv stops a poll handle on POLLERR and reports UV_EBADF (-EBADF on Linux).
      assert.equal(ev.status, -E.EBADF);
      assert.equal(addon.getsockoptInt(c, C.SOL_SOCKET, C.SO_ERROR), E.ECONNREFUSED);
    } else {
      assert.equal(rc, -E.ECONNREFUSED);
    }
    addon.close(c);
    addon.close(b);
  });

  test("connect on a blocking socket does not block and leaves the socket blocking", () => {
    const b = ok(addon.socket(C.AF_INET, C.SOCK_STREAM, 0), "socket");
    const l = tcpListener();
    // Fill nothing: a loopback connect to a listener completes or is in progress, never blocks.
    const rc = addon.connect(b, l.addr, l.addr.byteLength);
    assert.ok(rc === 0 || rc === -E.EINPROGRESS, `connect = ${rc}`);
    assert.equal(addon.fcntl(b, C.F_GETFL, 0) & C.O_NONBLOCK, 0);
    addon.close(b);
    addon.close(l.fd);
  });

  test("setsockoptInt and IPV6_V6ONLY", () => {
    const s = ok(addon.socket(C.AF_INET6, C.SOCK_STREAM, 0), "socket");
    assert.equal(addon.setsockoptInt(s, C.IPPROTO_IPV6, C.IPV6_V6ONLY, 1), 0);
    assert.equal(addon.getsockoptInt(s, C.IPPROTO_IPV6, C.IPV6_V6ONLY), 1);
    assert.equal(addon.setsockoptInt(s, C.IPPROTO_IPV6, C.IPV6_V6ONLY, 0), 0);
    assert.equal(addon.getsockoptInt(s, C.IPPROTO_IPV6, C.IPV6_V6ONLY), 0);
    assert.equal(addon.getsockoptInt(s, C.SOL_SOCKET, C.SO_DOMAIN), C.AF_INET6);
    addon.close(s);
  });
});

describe("watchers", () => {
  test("microtasks and nextTicks queued by a callback run before the next callback", async () => {
    const [a, b] = await tcpPair();
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      let left = 2;
      for (const [name, fd] of [
        ["a", a],
        ["b", b],
      ] as const) {
        const id = addon.watch(fd, 2, () => {
          addon.unwatch(id);
          order.push(name);
          queueMicrotask(() => order.push(`${name}-micro`));
          process.nextTick(() => order.push(`${name}-tick`));
          void (async () => {
            await null;
            order.push(`${name}-await`);
            if (--left === 0) resolve();
          })();
        });
        ok(id, "watch");
      }
    });
    await done;
    // Both sockets are writable from the start, so both callbacks come from one epoll_wait.
    const first = order[0] ?? "";
    const second = first === "a" ? "b" : "a";
    assert.deepEqual(order, [
      first,
      `${first}-tick`,
      `${first}-micro`,
      `${first}-await`,
      second,
      `${second}-tick`,
      `${second}-micro`,
      `${second}-await`,
    ]);
    addon.close(a);
    addon.close(b);
  });

  test("rewatch, ref, unref and unknown ids", async () => {
    const [a, b] = await tcpPair();
    let calls = 0;
    const id = addon.watch(a, 0, () => {
      calls++;
    });
    ok(id, "watch with no events");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(calls, 0, "events 0: inactive");
    assert.equal(addon.unref(id), 0);
    assert.equal(addon.ref(id), 0);
    assert.equal(addon.rewatch(id, 2), 0);
    assert.equal(
      addon.watch(a, 1, () => {}),
      -E.EEXIST,
      "one active watcher per fd",
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(calls > 0, "writable once rewatched");
    assert.equal(addon.rewatch(id, 0), 0);
    calls = 0;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(calls, 0, "paused");
    assert.equal(addon.unwatch(id), 0);
    for (const stale of [id, 12345, 0, -1]) {
      assert.equal(addon.unwatch(stale), -E.EBADF);
      assert.equal(addon.rewatch(stale, 1), -E.EBADF);
      assert.equal(addon.ref(stale), -E.EBADF);
      assert.equal(addon.unref(stale), -E.EBADF);
    }
    const again = ok(
      addon.watch(a, 1, () => {}),
      "watch after unwatch",
    );
    assert.notEqual(again, id, "ids are not reused");
    addon.unwatch(again);
    assert.equal(
      addon.watch(-1, 1, () => {}),
      -E.EBADF,
    );
    addon.close(a);
    addon.close(b);
  });

  test("readable and disconnect events when the peer closes", async () => {
    const [a, b] = await tcpPair();
    addon.close(b);
    const ev = await nextEvent(a, 1 | 4);
    assert.equal(ev.status, 0);
    assert.equal(ev.events & 1, 1);
    assert.equal(ev.events & 4, 4);
    assert.equal(addon.recvFds(a, new Uint8Array(8), new Int32Array(1)), 0, "EOF");
    addon.close(a);
  });

  test("watch leaves a blocking fd blocking (uv_poll_init would set O_NONBLOCK)", () => {
    const s = ok(addon.socket(C.AF_INET, C.SOCK_STREAM, 0), "socket");
    const id = ok(
      addon.watch(s, 1, () => {}),
      "watch",
    );
    assert.equal(addon.fcntl(s, C.F_GETFL, 0) & C.O_NONBLOCK, 0);
    addon.unwatch(id);
    addon.close(s);
  });

  test("a watcher keeps the process alive until unref", () => {
    const path = addonPaths()[0];
    const script = (unref: boolean) =>
      `const a = require(${JSON.stringify(path)});
       const s = a.socket(a.constants.AF_INET, a.constants.SOCK_STREAM, 0);
       const id = a.watch(s, 1, () => {});
       ${unref ? "a.unref(id);" : ""}`;
    const unrefd = spawnSync(process.execPath, ["-e", script(true)], { timeout: 5000 });
    assert.equal(unrefd.status, 0, unrefd.stderr.toString());
    const refd = spawnSync(process.execPath, ["-e", script(false)], { timeout: 500 });
    assert.equal(refd.signal, "SIGTERM", "still running when the timeout hit");
  });

  test("a worker that exits with live watchers is torn down cleanly", async () => {
    const path = addonPaths()[0];
    const worker = new Worker(
      `const a = require(${JSON.stringify(path)});
       const { parentPort } = require("node:worker_threads");
       for (let i = 0; i < 3; i++) {
         const s = a.socket(a.constants.AF_INET, a.constants.SOCK_STREAM, 0);
         a.watch(s, 1, () => {});
       }
       parentPort.postMessage("watching");`,
      { eval: true },
    );
    const [msg] = await once(worker, "message");
    assert.equal(msg, "watching");
    await worker.terminate();
    // Still alive: the worker's loop closed without open handles (Node aborts otherwise).
    assert.equal(addon.close(-1), -E.EBADF);
  });
});

describe("processes", () => {
  test("pidfdOpen and pidfdGetfd duplicate one of our own fds", () => {
    const l = tcpListener();
    const pidfd = ok(addon.pidfdOpen(process.pid, 0), "pidfdOpen");
    assert.equal(addon.fcntl(pidfd, 1 /* F_GETFD */, 0) & FD_CLOEXEC, FD_CLOEXEC);
    const dup = ok(addon.pidfdGetfd(pidfd, l.fd), "pidfdGetfd");
    assert.notEqual(dup, l.fd);
    assert.equal(addon.fcntl(dup, 1 /* F_GETFD */, 0) & FD_CLOEXEC, FD_CLOEXEC);
    const x = new Float64Array(3);
    const y = new Float64Array(3);
    assert.equal(addon.fstat(l.fd, x), 0);
    assert.equal(addon.fstat(dup, y), 0);
    assert.deepEqual(y, x);
    assert.equal((x[2] ?? 0) & 0o170000, 0o140000, "S_IFSOCK");
    assert.equal(addon.pidfdGetfd(pidfd, 1_000_000), -E.EBADF);
    assert.equal(addon.pidfdOpen(2 ** 30, 0), -E.ESRCH);
    assert.equal(addon.fstat(-1, x), -E.EBADF);
    for (const fd of [dup, pidfd, l.fd]) addon.close(fd);
  });

  test("readMem and writeMem on a child process", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    await once(child, "spawn");
    try {
      const pid = child.pid ?? 0;
      const maps = readFileSync(`/proc/${pid}/maps`, "utf8").trim().split("\n");
      const ranges = maps.map((line) => {
        const [range = "", perms = ""] = line.split(/\s+/);
        const [lo = "0", hi = "0"] = range.split("-");
        return { start: Number(BigInt(`0x${lo}`)), end: Number(BigInt(`0x${hi}`)), perms, line };
      });
      const first = ranges[0];
      assert.ok(first?.line.includes("sleep"), first?.line);
      assert.ok(first);
      const buf = new Uint8Array(16);
      assert.equal(addon.readMem(pid, first.start, buf, 16), 16);
      assert.deepEqual(Array.from(buf.subarray(0, 4)), [0x7f, 0x45, 0x4c, 0x46], "the ELF header of sleep");
      const mem = openSync(`/proc/${pid}/mem`, "r");
      const viaProc = Buffer.alloc(16);
      readSync(mem, viaProc, 0, 16, BigInt(first.start));
      closeSync(mem);
      assert.deepEqual(Buffer.from(buf), viaProc);

      assert.equal(addon.readMem(pid, 0, buf, 8), -E.EFAULT);
      assert.equal(addon.readMem(pid, first.start, buf, 0), 0);
      assert.equal(addon.writeMem(pid, first.start, buf, 4), -E.EFAULT, "read-only mapping");

      // A read running off the end of a mapping into a hole is short.
      const gap = ranges.find((r, i) => r.perms.startsWith("r") && ranges[i + 1]?.start !== r.end);
      assert.ok(gap);
      assert.equal(addon.readMem(pid, gap.end - 8, buf, 16), 8);

      // The lowest bytes of the stack mapping are far from anything sleep uses.
      const stack = ranges.find((r) => r.line.endsWith("[stack]"));
      assert.ok(stack);
      const data = Buffer.from("sockswitch");
      assert.equal(addon.writeMem(pid, stack.start, data, data.length), data.length);
      const back = new Uint8Array(data.length);
      assert.equal(addon.readMem(pid, stack.start, back, back.length), data.length);
      assert.equal(Buffer.from(back).toString(), "sockswitch");
    } finally {
      child.kill();
    }
    await once(child, "exit");
    assert.equal(addon.readMem(child.pid ?? 0, 4096, new Uint8Array(1), 1), -E.ESRCH);
  });

  test("execve failure throws with path and strerror and restores signal state", () => {
    const ignBefore = procStatus("self", "SigIgn");
    const blkBefore = procStatus("self", "SigBlk");
    assert.ok(ignBefore & (1n << 12n), "node ignores SIGPIPE");
    assert.throws(
      () => addon.execve("/nonexistent/sockswitch-test", ["x"], []),
      (err: Error & { code?: string }) => {
        assert.match(err.message, /\/nonexistent\/sockswitch-test/);
        assert.match(err.message, /No such file or directory/);
        assert.equal(err.code, "ENOENT");
        return true;
      },
    );
    assert.equal(procStatus("self", "SigIgn"), ignBefore);
    assert.equal(procStatus("self", "SigBlk"), blkBefore);
  });

  test("execve replaces the process with default signal dispositions and the given argv and env", () => {
    const path = addonPaths()[0];
    const run = (file: string, argv: string[], env: string[]) =>
      spawnSync(process.execPath, [
        "-e",
        `require(${JSON.stringify(path)}).execve(${JSON.stringify(file)}, ${JSON.stringify(argv)}, ${JSON.stringify(env)})`,
      ]);
    const sig = run("/bin/sh", ["sh", "-c", "exec grep -E '^Sig(Ign|Blk)' /proc/self/status"], []);
    assert.equal(sig.status, 0, sig.stderr.toString());
    assert.match(sig.stdout.toString(), /SigBlk:\s+0{16}\n/);
    assert.match(sig.stdout.toString(), /SigIgn:\s+0{16}\n/);
    // Node marks fds 0-2 close-on-exec and may make them non-blocking: the program gets them plain.
    const fdinfo = run("/bin/sh", ["sh", "-c", "exec grep flags /proc/self/fdinfo/1"], []);
    assert.match(fdinfo.stdout.toString(), /^flags:\s+[0-7]+\n$/, "stdout was inherited");
    const flags = Number.parseInt(fdinfo.stdout.toString().split(/\s+/)[1] ?? "", 8);
    assert.equal(flags & (C.O_CLOEXEC | C.O_NONBLOCK), 0, fdinfo.stdout.toString());
    const env = run("/bin/sh", ["sh", "-c", 'echo "$0 $1 $FOO"', "zero", "one"], ["FOO=bar"]);
    assert.equal(env.stdout.toString(), "zero one bar\n");
  });
});

describe("unix sockets", () => {
  test("unixListen, a node client, accept4, peerCred, recvPeek, recvFds and send", async () => {
    const path = join(scratch, "ctl.sock");
    const l = ok(addon.unixListen(path, 16, 0o600), "unixListen");
    assert.ok(statSync(path).isSocket());
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(addon.fcntl(l, C.F_GETFL, 0) & C.O_NONBLOCK, C.O_NONBLOCK);
    assert.equal(addon.fcntl(l, 1 /* F_GETFD */, 0) & FD_CLOEXEC, FD_CLOEXEC);
    assert.equal(addon.getsockoptInt(l, C.SOL_SOCKET, C.SO_ACCEPTCONN), 1);

    const client = createConnection(path);
    await once(client, "connect");
    await nextEvent(l, 1);
    const s = ok(addon.accept4(l, C.SOCK_NONBLOCK), "accept4");
    const cred = new Int32Array(3);
    assert.equal(addon.peerCred(s, cred), 0);
    assert.deepEqual(Array.from(cred), [process.pid, process.getuid?.(), process.getgid?.()]);

    client.write("ping");
    await nextEvent(s, 1);
    const buf = new Uint8Array(64);
    assert.equal(addon.recvPeek(s, buf), 4);
    const fds = new Int32Array([-1, -1]);
    assert.equal(addon.recvFds(s, buf, fds), 4);
    assert.equal(Buffer.from(buf.subarray(0, 4)).toString(), "ping");
    assert.equal(fds[0], 0, "no fds came with it");
    assert.equal(addon.recvFds(s, buf, fds), -E.EAGAIN);

    const data = once(client, "data");
    assert.equal(addon.send(s, Buffer.from("pong"), 4), 4);
    assert.equal(String((await data)[0]), "pong");

    client.end();
    await nextEvent(s, 1);
    assert.equal(addon.recvFds(s, buf, fds), 0, "EOF");
    client.destroy();
    addon.close(s);
    addon.close(l);
  });

  test("recvFds receives fds sent by python's socket.send_fds and closes those that do not fit", async () => {
    const path = join(scratch, "fds.sock");
    const l = ok(addon.unixListen(path, 16, 0o600), "unixListen");
    const files = ["a", "b", "c"].map((n) => {
      const p = join(scratch, `file-${n}`);
      writeFileSync(p, n);
      return p;
    });
    const helper = spawn(
      "python3",
      [
        "-c",
        `import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
socket.send_fds(s, [b"fds"], [os.open(p, os.O_RDONLY) for p in sys.argv[2:]])
s.recv(1)`,
        path,
        ...files,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    try {
      await nextEvent(l, 1);
      const s = ok(addon.accept4(l, C.SOCK_NONBLOCK), "accept4");
      const cred = new Int32Array(3);
      assert.equal(addon.peerCred(s, cred), 0);
      assert.equal(cred[0], helper.pid);
      await nextEvent(s, 1);

      const buf = new Uint8Array(64);
      const fds = new Int32Array(3); // room for two fds; the third must be closed
      const before = readdirSync("/proc/self/fd").length;
      assert.equal(addon.recvFds(s, buf, fds), 3);
      const afterCount = readdirSync("/proc/self/fd").length;
      assert.equal(Buffer.from(buf.subarray(0, 3)).toString(), "fds");
      assert.equal(fds[0], 2);
      assert.equal(afterCount, before + 2, "the fd that did not fit was closed");
      const st = new Float64Array(3);
      for (const [i, file] of files.slice(0, 2).entries()) {
        const fd = fds[i + 1] ?? -1;
        assert.equal(addon.fcntl(fd, 1 /* F_GETFD */, 0) & FD_CLOEXEC, FD_CLOEXEC, "MSG_CMSG_CLOEXEC");
        assert.equal(addon.fstat(fd, st), 0);
        assert.equal(st[1], Number(statSync(file, { bigint: true }).ino));
        addon.close(fd);
      }
      assert.equal(addon.send(s, Buffer.from("x"), 1), 1);
      addon.close(s);
    } finally {
      addon.close(l);
    }
    const [code] = await once(helper, "exit");
    assert.equal(code, 0);
  });

  test("unixListen replaces a stale socket but never another kind of file", () => {
    const path = join(scratch, "stale.sock");
    const first = ok(addon.unixListen(path, 1, 0o600), "unixListen");
    addon.close(first); // leaves the socket file behind
    const second = ok(addon.unixListen(path, 1, 0o640), "unixListen over a stale socket");
    assert.equal(statSync(path).mode & 0o777, 0o640);
    addon.close(second);

    const file = join(scratch, "not-a-socket");
    writeFileSync(file, "keep me");
    assert.equal(addon.unixListen(file, 1, 0o600), -E.EADDRINUSE);
    assert.equal(readFileSync(file, "utf8"), "keep me");
    assert.equal(addon.unixListen(join(scratch, "x".repeat(120)), 1, 0o600), -E.ENAMETOOLONG);
    assert.equal(addon.unixListen(join(scratch, "no-such-dir", "s.sock"), 1, 0o600), -E.ENOENT);
  });
});

describe("seccomp notification ioctls on ordinary fds", () => {
  test("notifRecv never blocks and reports what poll and the ioctl say", () => {
    const out = new Uint32Array(18);
    const started = Date.now();
    const dgram = ok(addon.socket(C.AF_UNIX, C.SOCK_DGRAM, 0), "socket");
    assert.equal(addon.notifRecv(dgram, out), 0, "not readable: nothing pending");
    const tcp = ok(addon.socket(C.AF_INET, C.SOCK_STREAM, 0), "socket");
    assert.equal(addon.notifRecv(tcp, out), -E.EPIPE, "POLLHUP without POLLIN");
    const zero = openSync("/dev/zero", "r");
    assert.equal(addon.notifRecv(zero, out), -E.ENOTTY, "readable, but not a seccomp listener");
    closeSync(zero);
    assert.equal(addon.notifRecv(-1, out), -E.EBADF);
    assert.ok(addon.notifRespond(dgram, 1, 0, 0, 0, 0) < 0);
    assert.ok(addon.notifIdValid(dgram, 1, 0) < 0);
    assert.ok(addon.notifAddFd(dgram, 1, 0, tcp, 0, 0) < 0);
    assert.equal(addon.notifIdValid(-1, 1, 0), -E.EBADF);
    addon.close(dgram);
    addon.close(tcp);
    assert.ok(Date.now() - started < 1000);
  });
});
