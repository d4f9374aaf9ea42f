// The seccomp filter the launcher installs in every app (seccomp(2), seccomp_unotify(2)).
// It is assembled here, not in C, so that what is trapped is decided in one place; the
// daemon sends it to the launcher in the handshake and the launcher installs it verbatim.
//
// Trapped (SECCOMP_RET_USER_NOTIF): socket() for AF_INET, AF_INET6 and AF_PACKET (by
// argument, so UNIX sockets and netlink never reach the daemon), bind, listen, connect,
// accept, accept4, getsockname, getpeername; sendto and recvfrom only when they carry an
// address (a UDP datagram to or from a virtual address) or MSG_FASTOPEN (TCP Fast Open
// connects without connect()); sendmsg, sendmmsg, recvmsg and recvmmsg always, since their
// address is inside struct msghdr where BPF cannot look. setns, ptrace, process_vm_readv,
// process_vm_writev and pidfd_getfd are refused with EPERM. io_uring is refused with
// ENOSYS: its socket operations would bypass the trap. Syscalls of another architecture
// (i386, x32) kill the process: they would reach the network through other numbers.

export interface FilterConstants {
  readonly auditArch: number;
  readonly nr: Readonly<Record<string, number>>;
  /**
   * Trap socket() only (the bpf datapath: every other call on the daemon's host sockets is
   * handled by the kernel's socket hooks). Default false: every call above.
   */
  readonly socketOnly?: boolean;
}

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
const X32_SYSCALL_BIT = 0x40000000;
const ENOSYS = 38;
const EPERM = 1;
const MSG_FASTOPEN = 0x20000000;

const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;

type Insn = { code: number; jt: number | string; jf: number | string; k: number } | { label: string };

/**
 * Calls refused with EPERM: joining another namespace (setns: the host's network
 * namespace would give a root app the host's netlink and abstract sockets), and reaching
 * into other processes (ptrace, process_vm_readv/writev, pidfd_getfd: another app's
 * memory or sockets). Debuggers and strace do not work inside an app.
 */
export const DENIED_CALLS = ["setns", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"];

/** Calls trapped unconditionally. */
export const TRAPPED_CALLS = ["bind", "listen", "connect", "accept", "accept4", "getsockname", "getpeername"];

export function buildFilter(c: FilterConstants): Buffer {
  const nr = (name: string): number => {
    const n = c.nr[name];
    if (n === undefined) throw new Error(`no syscall number for ${name}`);
    return n;
  };
  const ld = (off: number): Insn => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: off });
  const jeq = (k: number, jt: number | string, jf: number | string = 0): Insn => ({
    code: BPF_JEQ_K,
    jt,
    jf,
    k,
  });
  const ret = (k: number): Insn => ({ code: BPF_RET_K, jt: 0, jf: 0, k });
  const label = (name: string): Insn => ({ label: name });

  const prog: Insn[] = [
    ld(OFF_ARCH),
    jeq(c.auditArch, 0, "kill"),
    ld(OFF_NR),
    { code: BPF_JGE_K, jt: "kill", jf: 0, k: X32_SYSCALL_BIT },
    jeq(nr("socket"), "socket"),
    ...(c.socketOnly
      ? []
      : [
          ...TRAPPED_CALLS.map((name) => jeq(nr(name), "notify")),
          jeq(nr("sendto"), "sendto"),
          jeq(nr("recvfrom"), "addr4"),
          jeq(nr("sendmsg"), "notify"),
          jeq(nr("sendmmsg"), "notify"),
          jeq(nr("recvmsg"), "notify"),
          jeq(nr("recvmmsg"), "notify"),
        ]),
    ...DENIED_CALLS.map((name) => jeq(nr(name), "eperm")),
    jeq(nr("io_uring_setup"), "enosys"),
    jeq(nr("io_uring_enter"), "enosys"),
    jeq(nr("io_uring_register"), "enosys"),
    ret(SECCOMP_RET_ALLOW),
    label("socket"),
    ld(argLow(0)),
    jeq(2, "notify"), // AF_INET
    jeq(10, "notify"), // AF_INET6
    jeq(17, "notify"), // AF_PACKET: refused by the daemon with EPERM, and logged
    ret(SECCOMP_RET_ALLOW),
    label("sendto"),
    ld(argLow(3)),
    { code: BPF_JSET_K, jt: "notify", jf: 0, k: MSG_FASTOPEN },
    label("addr4"),
    // A destination (sendto) or source (recvfrom) address: argument 4, a pointer, not NULL.
    ld(argLow(4)),
    jeq(0, 0, "notify"),
    ld(argLow(4) + 4),
    jeq(0, "allow", "notify"),
    label("notify"),
    ret(SECCOMP_RET_USER_NOTIF),
    label("allow"),
    ret(SECCOMP_RET_ALLOW),
    label("enosys"),
    ret(SECCOMP_RET_ERRNO | ENOSYS),
    label("eperm"),
    ret(SECCOMP_RET_ERRNO | EPERM),
    label("kill"),
    ret(SECCOMP_RET_KILL_PROCESS),
  ];
  return assemble(prog);
}

/** Resolves labels into forward jump offsets and lays out struct sock_filter[]. */
function assemble(prog: Insn[]): Buffer {
  const labels = new Map<string, number>();
  const insns: Array<Exclude<Insn, { label: string }>> = [];
  for (const p of prog) {
    if ("label" in p) labels.set(p.label, insns.length);
    else insns.push(p);
  }
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    const off = (j: number | string): number => {
      if (typeof j === "number") return j;
      const target = labels.get(j);
      if (target === undefined) throw new Error(`filter: unknown label ${j}`);
      const d = target - i - 1;
      if (d < 0 || d > 255) throw new Error(`filter: jump to ${j} out of range`);
      return d;
    };
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(off(insn.jt), i * 8 + 2);
    out.writeUInt8(off(insn.jf), i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}
