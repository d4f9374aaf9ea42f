// Unit tests of the native addon (native/addon/*.c) through src/native/addon.ts: loading,
// constants, sockets and watchers. Processes, UNIX sockets and the seccomp ioctls on ordinary
// fds: addon-processes.test.ts.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type Addon, addonPaths, loadAddon } from "../../src/native/addon.js";
import {
  addon,
  C,
  decodeSockaddrIn,
  E,
  FD_CLOEXEC,
  loose,
  nextEvent,
  ok,
  scratch,
  sockaddrIn,
  tcpListener,
  tcpPair,
} from "./addon-helpers.js";

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
