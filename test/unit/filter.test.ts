// Unit tests of src/trap/filter.ts: the seccomp filter is run through a small classic-BPF
// interpreter (only the opcodes the filter uses) over struct seccomp_data buffers.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BPF_CALLS,
  buildFilter,
  type FilterConstants,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_USER_NOTIF,
  SOCKET_FAMILIES,
  TRAPPED_CALLS,
} from "../../src/trap/filter.js";
import { decode, run } from "./cbpf.js";

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;

const X86_64: FilterConstants = {
  auditArch: AUDIT_ARCH_X86_64,
  nr: {
    socket: 41,
    bind: 49,
    listen: 50,
    connect: 42,
    accept: 43,
    accept4: 288,
    getsockname: 51,
    getpeername: 52,
    sendto: 44,
    sendmsg: 46,
    sendmmsg: 307,
    recvfrom: 45,
    recvmsg: 47,
    recvmmsg: 299,
    setns: 308,
    ptrace: 101,
    process_vm_readv: 310,
    process_vm_writev: 311,
    pidfd_getfd: 438,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    socketpair: 53,
    userfaultfd: 323,
    unshare: 272,
    clone: 56,
    clone3: 435,
    ioctl: 16,
  },
};

const NR = X86_64.nr as Record<string, number>;
const nr = (name: string): number => {
  const n = NR[name];
  assert.ok(n !== undefined, name);
  return n;
};

const USER_NOTIF = 0x7fc00000;
const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const MSG_FASTOPEN = 0x20000000;
const EAFNOSUPPORT = 97;

/** struct seccomp_data: nr u32, arch u32, instruction_pointer u64, args[6] u64. */
function seccompData(sysNr: number, args: number[] = [], arch = AUDIT_ARCH_X86_64): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(sysNr >>> 0, 0);
  b.writeUInt32LE(arch >>> 0, 4);
  b.writeBigUInt64LE(0x401000n, 8);
  args.forEach((v, i) => {
    b.writeBigUInt64LE(BigInt(v), 16 + 8 * i);
  });
  return b;
}

const prog = buildFilter(X86_64);
const verdict = (sysNr: number, args: number[] = [], arch?: number) =>
  run(prog, seccompData(sysNr, args, arch));

describe("buildFilter layout", () => {
  test("a whole number of 8-byte sock_filter entries, within BPF_MAXINSNS", () => {
    assert.ok(prog.length > 0);
    assert.equal(prog.length % 8, 0);
    assert.ok(prog.length / 8 <= 4096);
  });

  test("uses only the opcodes the interpreter knows and forward jumps in range", () => {
    const insns = decode(prog);
    insns.forEach((insn, i) => {
      assert.ok([0x20, 0x15, 0x35, 0x45, 0x54, 0x06].includes(insn.code), `opcode at ${i}`);
      if (insn.code !== 0x20 && insn.code !== 0x06 && insn.code !== 0x54) {
        assert.ok(i + 1 + insn.jt < insns.length, `jt at ${i}`);
        assert.ok(i + 1 + insn.jf < insns.length, `jf at ${i}`);
      }
    });
    assert.equal(insns[insns.length - 1]?.code, 0x06, "ends with a return");
  });

  test("starts by checking the architecture", () => {
    const insns = decode(prog);
    assert.deepEqual(insns[0], { code: 0x20, jt: 0, jf: 0, k: 4 });
    assert.equal(insns[1]?.code, 0x15);
    assert.equal(insns[1]?.k, AUDIT_ARCH_X86_64);
  });

  test("is deterministic", () => {
    assert.deepEqual(buildFilter(X86_64), prog);
  });

  test("exported action constants match seccomp(2)", () => {
    assert.equal(SECCOMP_RET_USER_NOTIF, USER_NOTIF);
    assert.equal(SECCOMP_RET_ALLOW, ALLOW);
    assert.equal(SECCOMP_RET_KILL_PROCESS, KILL_PROCESS);
    assert.equal(SECCOMP_RET_ERRNO, 0x00050000);
  });

  test("a missing syscall number is an error naming it", () => {
    const { sendmmsg: _omit, ...rest } = NR;
    assert.throws(
      () => buildFilter({ auditArch: AUDIT_ARCH_X86_64, nr: rest }),
      /no syscall number for sendmmsg/,
    );
  });
});

describe("buildFilter verdicts", () => {
  test("socket(AF_INET) and socket(AF_INET6) are trapped", () => {
    assert.equal(verdict(nr("socket"), [2, 1, 0]), USER_NOTIF);
    assert.equal(verdict(nr("socket"), [10, 2, 0]), USER_NOTIF);
  });

  test("socket(AF_UNIX) and socket(AF_NETLINK) are allowed", () => {
    assert.equal(verdict(nr("socket"), [1, 1, 0]), ALLOW);
    assert.equal(verdict(nr("socket"), [16, 3, 0]), ALLOW);
  });

  test("every other family fails with EAFNOSUPPORT (an allowlist): packet, vsock, bluetooth, …", () => {
    const families: Record<string, number> = {
      AF_UNSPEC: 0,
      AF_AX25: 3,
      AF_IPX: 4,
      AF_APPLETALK: 5,
      AF_X25: 9,
      AF_KEY: 15,
      AF_PACKET: 17,
      AF_LLC: 26,
      AF_CAN: 29,
      AF_TIPC: 30,
      AF_BLUETOOTH: 31,
      AF_ALG: 38,
      AF_NFC: 39,
      AF_VSOCK: 40,
      AF_KCM: 41,
      AF_QIPCRTR: 42,
      AF_SMC: 43,
      AF_XDP: 44,
      AF_MCTP: 45,
      AF_RDS: 21,
      beyond_AF_MAX: 46,
      huge: 0x7fffffff,
    };
    for (const [name, family] of Object.entries(families))
      assert.equal(verdict(nr("socket"), [family, 1, 0]), SECCOMP_RET_ERRNO | EAFNOSUPPORT, name);

    assert.deepEqual(
      Object.keys(SOCKET_FAMILIES)
        .map(Number)
        .sort((a, b) => a - b),
      [1, 2, 10, 16],
    );
  });

  test("a refused family: the kernel's checks before the family's come first (net/socket.c)", () => {
    const EINVAL = 22;
    const SOCK_NONBLOCK = 0o4000;
    const SOCK_CLOEXEC = 0o2000000;
    const cases: [string, number, number, number][] = [
      ["an unknown type flag", 17, 2 | 0x100, EINVAL],
      ["a type out of range", 17, 15, EINVAL],
      ["SOCK_MAX itself", 40, 11, EINVAL],
      ["a family out of range with a type out of range", 99, 15, EAFNOSUPPORT],
      ["a family out of range with an unknown flag", 99, 1 | 0x100, EINVAL],
      ["the flags socket(2) takes", 17, 2 | SOCK_NONBLOCK | SOCK_CLOEXEC, EAFNOSUPPORT],
      ["SOCK_PACKET", 17, 10, EAFNOSUPPORT],
    ];
    for (const [what, family, type, errno] of cases)
      assert.equal(verdict(nr("socket"), [family, type, 0]), SECCOMP_RET_ERRNO | errno, what);
    // The trapped and allowed families are the kernel's (and the daemon's) to check.
    assert.equal(verdict(nr("socket"), [2, 15, 0]), SECCOMP_RET_USER_NOTIF);
    assert.equal(verdict(nr("socket"), [1, 15, 0]), SECCOMP_RET_ALLOW);
  });

  test("socketpair: AF_UNIX and AF_NETLINK go to the kernel, inet gets EOPNOTSUPP, the rest EAFNOSUPPORT", () => {
    assert.equal(verdict(nr("socketpair"), [1, 1, 0, 0x1000]), ALLOW);
    assert.equal(verdict(nr("socketpair"), [16, 3, 0, 0x1000]), ALLOW);
    assert.equal(verdict(nr("socketpair"), [2, 1, 0, 0x1000]), SECCOMP_RET_ERRNO | 95);
    assert.equal(verdict(nr("socketpair"), [10, 2, 0, 0x1000]), SECCOMP_RET_ERRNO | 95);
    for (const family of [0, 17, 30, 40, 44])
      assert.equal(verdict(nr("socketpair"), [family, 1, 0, 0x1000]), SECCOMP_RET_ERRNO | EAFNOSUPPORT);
  });

  test("socket's family is compared on the low 32 bits", () => {
    assert.equal(verdict(nr("socket"), [2 + 2 ** 32, 1, 0]), USER_NOTIF);
  });

  for (const name of ["bind", "listen", "connect", "accept", "accept4", "getsockname", "getpeername"]) {
    test(`${name} is trapped unconditionally`, () => {
      assert.equal(verdict(nr(name)), USER_NOTIF);
      assert.equal(verdict(nr(name), [3, 0x1234, 16, 0, 0, 0]), USER_NOTIF);
    });
  }

  test("TRAPPED_CALLS is the list above", () => {
    assert.deepEqual([...TRAPPED_CALLS].sort(), [
      "accept",
      "accept4",
      "bind",
      "connect",
      "getpeername",
      "getsockname",
      "listen",
    ]);
  });

  test("ordinary syscalls are allowed", () => {
    assert.equal(verdict(0, [0, 0, 0]), ALLOW); // read(0)
    assert.equal(verdict(1), ALLOW); // write
    assert.equal(verdict(59), ALLOW); // execve
    assert.equal(verdict(17), ALLOW); // pread64
    assert.equal(verdict(20), ALLOW); // writev
    assert.equal(verdict(424), ALLOW); // pidfd_send_signal, just below io_uring_setup
  });

  test("sendto: no destination and no MSG_FASTOPEN is allowed (connected sockets, send())", () => {
    assert.equal(verdict(nr("sendto"), [3, 0x1000, 10, 0, 0, 0]), ALLOW);
    assert.equal(verdict(nr("sendto"), [3, 0x1000, 10, 0x40 | 0x4000, 0, 0]), ALLOW); // DONTWAIT|NOSIGNAL
    assert.equal(verdict(nr("sendto"), [3, 0x1000, MSG_FASTOPEN, 0, 0, 0]), ALLOW); // flag in arg2
  });

  test("sendto: MSG_FASTOPEN or a destination address (arg4, either half) is trapped", () => {
    assert.equal(verdict(nr("sendto"), [3, 0x1000, 10, MSG_FASTOPEN, 0, 0]), USER_NOTIF);
    assert.equal(verdict(nr("sendto"), [3, 0x1000, 10, MSG_FASTOPEN | 0x40, 0x2000, 16]), USER_NOTIF);
    assert.equal(verdict(nr("sendto"), [3, 0x1000, 10, 0, 0x2000, 16]), USER_NOTIF);
    assert.equal(verdict(nr("sendto"), [3, 0x1000, 10, 0, 0x7ffd00000000, 16]), USER_NOTIF);
  });

  test("recvfrom: trapped only with a source address buffer (arg4)", () => {
    assert.equal(verdict(nr("recvfrom"), [3, 0x1000, 10, 0, 0, 0]), ALLOW);
    assert.equal(verdict(nr("recvfrom"), [3, 0x1000, 10, 0, 0x2000, 0x3000]), USER_NOTIF);
    assert.equal(verdict(nr("recvfrom"), [3, 0x1000, 10, 0, 0x7ffd00000000, 0x3000]), USER_NOTIF);
  });

  for (const name of ["sendmsg", "sendmmsg", "recvmsg", "recvmmsg"]) {
    test(`${name} is trapped whatever its arguments (the address is inside struct msghdr)`, () => {
      assert.equal(verdict(nr(name), [3, 0x1000, 0, 0]), USER_NOTIF);
      assert.equal(verdict(nr(name), [3, 0x1000, MSG_FASTOPEN, MSG_FASTOPEN]), USER_NOTIF);
    });
  }

  for (const name of ["setns", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"]) {
    test(`${name} fails with EPERM`, () => {
      assert.equal(verdict(nr(name), [3, 0]), SECCOMP_RET_ERRNO | 1);
    });
  }

  test("userfaultfd fails with EPERM, and so does /dev/userfaultfd's USERFAULTFD_IOC_NEW", () => {
    assert.equal(verdict(nr("userfaultfd"), [0x80000]), SECCOMP_RET_ERRNO | 1);
    assert.equal(verdict(nr("ioctl"), [5, 0xaa00, 0x80000]), SECCOMP_RET_ERRNO | 1);
    assert.equal(verdict(nr("ioctl"), [5, 0x5401, 0x1000]), ALLOW); // TCGETS
    assert.equal(verdict(nr("ioctl"), [5, 0x8912, 0x1000]), ALLOW); // SIOCGIFCONF
  });

  test("a new user namespace fails with EPERM (unshare, clone); clone3 gets ENOSYS", () => {
    const CLONE_NEWUSER = 0x10000000;
    const CLONE_NEWNET = 0x40000000;
    const THREAD = 0x3d0f00; // glibc's pthread_create flags
    assert.equal(verdict(nr("unshare"), [CLONE_NEWUSER]), SECCOMP_RET_ERRNO | 1);
    assert.equal(verdict(nr("unshare"), [CLONE_NEWUSER | CLONE_NEWNET]), SECCOMP_RET_ERRNO | 1);
    assert.equal(verdict(nr("unshare"), [CLONE_NEWNET]), ALLOW);
    assert.equal(verdict(nr("clone"), [CLONE_NEWUSER | 17]), SECCOMP_RET_ERRNO | 1);
    assert.equal(verdict(nr("clone"), [THREAD, 0x7000]), ALLOW);
    assert.equal(verdict(nr("clone"), [17]), ALLOW); // fork()
    assert.equal(verdict(nr("clone3"), [0x7000, 88]), SECCOMP_RET_ERRNO | 38);
  });

  for (const name of ["io_uring_setup", "io_uring_enter", "io_uring_register"]) {
    test(`${name} fails with ENOSYS`, () => {
      assert.equal(verdict(nr(name), [8, 0x1000]), 0x00050026);
      assert.equal(verdict(nr(name)), SECCOMP_RET_ERRNO | 38);
    });
  }

  test("another architecture is killed, whatever the call", () => {
    assert.equal(verdict(0, [], AUDIT_ARCH_I386), KILL_PROCESS);
    assert.equal(verdict(102, [], AUDIT_ARCH_I386), KILL_PROCESS); // i386 socketcall
    assert.equal(verdict(nr("socket"), [1], 0), KILL_PROCESS);
  });

  test("x32 syscall numbers are killed", () => {
    assert.equal(verdict(0x40000000 | 41, [2, 1, 0]), KILL_PROCESS);
    assert.equal(verdict(0x40000000 | 41, [1, 1, 0]), KILL_PROCESS);
    assert.equal(verdict(0x40000000), KILL_PROCESS);
    assert.equal(verdict(0xffffffff), KILL_PROCESS);
  });

  test("the numbers come from the constants, not hard-coded", () => {
    const other = buildFilter({ auditArch: 0xc00000b7, nr: { ...NR, socket: 198, connect: 203 } });
    assert.equal(run(other, seccompData(198, [2], 0xc00000b7)), USER_NOTIF);
    assert.equal(run(other, seccompData(203, [], 0xc00000b7)), USER_NOTIF);
    assert.equal(run(other, seccompData(198, [2], AUDIT_ARCH_X86_64)), KILL_PROCESS);
  });
});

describe("buildFilter for the bpf datapath", () => {
  const bpf = buildFilter({ ...X86_64, mode: "bpf" });
  const v = (sysNr: number, args: number[] = []) => run(bpf, seccompData(sysNr, args));

  test("socket, bind and listen are trapped (binds judged and registered by the daemon)", () => {
    assert.equal(v(nr("socket"), [2, 1, 0]), USER_NOTIF);
    for (const name of BPF_CALLS) assert.equal(v(nr(name), [3]), USER_NOTIF, name);
    assert.deepEqual(BPF_CALLS, ["bind", "listen"]);
  });

  test("the per-connection calls run in the kernel (its socket hooks)", () => {
    for (const name of ["connect", "accept", "accept4", "getsockname", "getpeername", "sendmsg", "recvmsg"])
      assert.equal(v(nr(name), [3]), ALLOW, name);
    assert.equal(v(nr("sendto"), [3, 0, 0, 0, 0x1000]), ALLOW);
    assert.equal(v(nr("recvfrom"), [3, 0, 0, 0, 0x1000]), ALLOW);
  });

  test("what no datapath allows stays refused", () => {
    assert.equal(v(nr("socket"), [17, 3, 0]), SECCOMP_RET_ERRNO | 97);
    assert.equal(v(nr("setns")), SECCOMP_RET_ERRNO | 1);
    assert.equal(v(nr("io_uring_setup")), SECCOMP_RET_ERRNO | 38);
  });

  test("bpf-host (host placement): INET sockets go to the kernel; the allowlist and the refusals stay", () => {
    const p = buildFilter({ ...X86_64, mode: "bpf-host" });
    assert.equal(run(p, seccompData(nr("socket"), [2, 1, 0])), ALLOW);
    assert.equal(run(p, seccompData(nr("socket"), [10, 2, 0])), ALLOW);
    assert.equal(run(p, seccompData(nr("connect"), [3, 0, 16])), ALLOW);
    assert.equal(run(p, seccompData(nr("socket"), [17, 3, 0])), SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    assert.equal(run(p, seccompData(nr("io_uring_setup"), [])), SECCOMP_RET_ERRNO | 38);
  });
});
