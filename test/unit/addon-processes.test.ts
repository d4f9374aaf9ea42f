// Unit tests of the native addon (native/addon/*.c): processes (pidfds, exec, signals), UNIX
// sockets with SCM_RIGHTS, and the seccomp notification ioctls, which are only checked for not
// blocking on ordinary fds here (the daemon's integration tests drive them for real).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import { addonPaths } from "../../src/native/addon.js";
import { addon, C, E, FD_CLOEXEC, nextEvent, ok, procStatus, scratch, tcpListener } from "./addon-helpers.js";

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
