// The seccomp filter the launcher installs in every app (seccomp(2), seccomp_unotify(2)).
// It is assembled here, not in C, so that what is trapped is decided in one place; the
// daemon sends it to the launcher in the handshake and the launcher installs it verbatim.
//
// Trapped (SECCOMP_RET_USER_NOTIF): socket() for AF_INET and AF_INET6 (by argument),
// bind, listen, connect, accept, accept4, getsockname, getpeername; sendto and recvfrom
// only when they carry an address (a UDP datagram to or from a virtual address) or
// MSG_FASTOPEN (TCP Fast Open connects without connect()); sendmsg, sendmmsg, recvmsg and
// recvmmsg always, since their address is inside struct msghdr where BPF cannot look.
//
// socket() and socketpair() families are an allowlist (SOCKET_FAMILIES): besides the two
// the daemon carries out, only AF_UNIX and AF_NETLINK reach the kernel, both scoped to the
// app's own network namespace or its host's filesystem; every other family gets
// EAFNOSUPPORT, the kernel's answer for a family it does not have (socket(2)).
//
// setns, ptrace, process_vm_readv, process_vm_writev and pidfd_getfd are refused with
// EPERM. So are the ways to make memory whose page faults wait on a process:
// userfaultfd(2) and /dev/userfaultfd, and a new user namespace (how an unprivileged
// process mounts FUSE). The daemon reads and writes app memory with process_vm_readv/writev
// on its only thread, and a fault there would stop it (clone3 gets ENOSYS, since its flags
// are in memory BPF cannot read; libc then falls back to clone).
// io_uring is refused with ENOSYS: its socket operations would bypass the trap. Syscalls
// of another architecture (i386, x32) kill the process: they would reach the network
// through other numbers.

import { AF_INET, AF_INET6, AF_NETLINK, AF_UNIX } from "../net/sockaddr.js";

export interface FilterConstants {
  readonly auditArch: number;
  readonly nr: Readonly<Record<string, number>>;
  /**
   * What is trapped (default "seccomp"):
   * - "seccomp": every call above;
   * - "bpf": socket(), bind() and listen() only (BPF_CALLS); connect, accept, get*name and the
   *   sends and receives run in the kernel, whose socket hooks handle them on the daemon's
   *   host sockets;
   * - "bpf-host": nothing of the network (the bpf datapath's host placement, --new-netns=false:
   *   the app's sockets are made in its cgroup, whose socket hooks stamp them); AF_INET and
   *   AF_INET6 sockets are made by the kernel.
   * The other rules stay in every mode.
   */
  readonly mode?: FilterMode;
}

export type FilterMode = "seccomp" | "bpf" | "bpf-host";

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;
const BPF_ALU_AND_K = 0x54;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
const X32_SYSCALL_BIT = 0x40000000;
const ENOSYS = 38;
const EPERM = 1;
const EOPNOTSUPP = 95;
const EAFNOSUPPORT = 97;
const EINVAL = 22;
/** socket(2)'s type: the kind (SOCK_TYPE_MASK) and the flags it may carry; kinds below SOCK_MAX. */
const SOCK_TYPE_MASK = 0xf;
const SOCK_TYPE_FLAGS = 0o4000 | 0o2000000; // SOCK_NONBLOCK, SOCK_CLOEXEC
const SOCK_MAX = 11;
/** Families the kernel knows the number of (AF_MAX, Linux 5.15 to 6.18). */
const NPROTO = 46;
const MSG_FASTOPEN = 0x20000000;
const CLONE_NEWUSER = 0x10000000;
/** ioctl(2) on /dev/userfaultfd that makes a userfaultfd (_IO(0xAA, 0x00), Linux 6.1). */
const USERFAULTFD_IOC_NEW = 0xaa00;

/**
 * socket(2) families and what the filter does with them; any other family fails with
 * EAFNOSUPPORT. AF_INET and AF_INET6 are carried out by the daemon on host sockets.
 * AF_UNIX: abstract names belong to the network namespace, filesystem names to the host's
 * files (unix(7)); nothing leaves the host. AF_NETLINK: every netlink socket belongs to
 * the network namespace it was made in (netlink(7)), the app's own, empty one, and
 * families not made for namespaces answer only in the host's initial one. Refused, among
 * others: AF_PACKET (raw frames), AF_VSOCK (the hypervisor and other VMs: not namespaced
 * at all), AF_BLUETOOTH, AF_CAN, AF_XDP, AF_KEY, AF_TIPC, AF_RDS, AF_SMC, AF_ALG (the
 * kernel's crypto API, not networking, refused as attack surface).
 */
export const SOCKET_FAMILIES: Readonly<Record<number, "notify" | "allow">> = {
  [AF_INET]: "notify",
  [AF_INET6]: "notify",
  [AF_UNIX]: "allow",
  [AF_NETLINK]: "allow",
};

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

/**
 * Calls the bpf datapath traps besides socket(): binds are judged by the app's shadow
 * namespace and registered before they return (trap/binding.ts), as in the seccomp datapath.
 */
export const BPF_CALLS = ["bind", "listen"];

export function buildFilter(c: FilterConstants): Buffer {
  const mode = c.mode ?? "seccomp";
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
    jeq(nr("socketpair"), "socketpair"),
    ...(mode === "bpf-host" ? [] : mode === "bpf" ? BPF_CALLS : TRAPPED_CALLS).map((name) =>
      jeq(nr(name), "notify"),
    ),
    ...(mode === "seccomp"
      ? [
          jeq(nr("sendto"), "sendto"),
          jeq(nr("recvfrom"), "addr4"),
          jeq(nr("sendmsg"), "notify"),
          jeq(nr("sendmmsg"), "notify"),
          jeq(nr("recvmsg"), "notify"),
          jeq(nr("recvmmsg"), "notify"),
        ]
      : []),
    ...DENIED_CALLS.map((name) => jeq(nr(name), "eperm")),
    jeq(nr("io_uring_setup"), "enosys"),
    jeq(nr("io_uring_enter"), "enosys"),
    jeq(nr("io_uring_register"), "enosys"),
    jeq(nr("userfaultfd"), "eperm"),
    jeq(nr("clone3"), "enosys"),
    jeq(nr("unshare"), "newuser"),
    jeq(nr("clone"), "newuser"),
    jeq(nr("ioctl"), "ioctl"),
    ret(SECCOMP_RET_ALLOW),
    label("socket"),
    ld(argLow(0)),
    ...Object.entries(SOCKET_FAMILIES).map(([family, action]) =>
      jeq(Number(family), mode === "bpf-host" && action === "notify" ? "allow" : action),
    ),
    // A refused family, as a kernel without it answers: what __sys_socket and __sock_create
    // check before the family's own code comes first (net/socket.c): unknown type flags
    // EINVAL, a family out of range EAFNOSUPPORT, a type out of range EINVAL.
    ld(argLow(1)),
    { code: BPF_JSET_K, jt: "einval", jf: 0, k: ~(SOCK_TYPE_MASK | SOCK_TYPE_FLAGS) >>> 0 },
    ld(argLow(0)),
    { code: BPF_JGE_K, jt: "eafnosupport", jf: 0, k: NPROTO },
    ld(argLow(1)),
    { code: BPF_ALU_AND_K, jt: 0, jf: 0, k: SOCK_TYPE_MASK },
    { code: BPF_JGE_K, jt: "einval", jf: "eafnosupport", k: SOCK_MAX },
    label("eafnosupport"),
    ret(SECCOMP_RET_ERRNO | EAFNOSUPPORT),
    label("einval"),
    ret(SECCOMP_RET_ERRNO | EINVAL),
    label("socketpair"),
    // Only AF_UNIX makes pairs (the kernel answers EOPNOTSUPP for netlink itself).
    ld(argLow(0)),
    jeq(AF_UNIX, "allow"),
    jeq(AF_NETLINK, "allow"),
    jeq(AF_INET, "eopnotsupp"), // inet has no socketpair (inet_stream_ops: sock_no_socketpair)
    jeq(AF_INET6, "eopnotsupp"),
    ret(SECCOMP_RET_ERRNO | EAFNOSUPPORT),
    label("newuser"),
    // unshare(flags) and clone(flags, …) on x86_64 and arm64: the flags are argument 0.
    ld(argLow(0)),
    { code: BPF_JSET_K, jt: "eperm", jf: "allow", k: CLONE_NEWUSER },
    label("ioctl"),
    ld(argLow(1)),
    jeq(USERFAULTFD_IOC_NEW, "eperm", "allow"),
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
    label("eopnotsupp"),
    ret(SECCOMP_RET_ERRNO | EOPNOTSUPP),
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
