// The one place that loads the native addon (native/addon/*.c, built by binding.gyp into
// build/Release/sockswitch.node) and the TypeScript description of what it exports.
// The addon is syscalls only: hot-path functions return >= 0 on success or -errno on failure
// and write results into caller-provided typed arrays; they throw a TypeError only for wrong
// argument types or counts.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Numbers from kernel and libc headers, as compiled into the addon. */
export interface AddonConstants {
  /** seccomp_notif_resp.flags: let the trapped syscall run in the target as-is. */
  readonly SECCOMP_USER_NOTIF_FLAG_CONTINUE: number;
  /** seccomp_notif_addfd.flags: install the fd and return it as the syscall's result. */
  readonly SECCOMP_ADDFD_FLAG_SEND: number;
  /** Filter return: kill the whole process. */
  readonly SECCOMP_RET_KILL_PROCESS: number;
  /** Filter return: kill the calling thread. */
  readonly SECCOMP_RET_KILL_THREAD: number;
  /** Filter return: send SIGSYS. */
  readonly SECCOMP_RET_TRAP: number;
  /** Filter return: fail with the errno in the low 16 bits. */
  readonly SECCOMP_RET_ERRNO: number;
  /** Filter return: hand the syscall to the listener fd. */
  readonly SECCOMP_RET_USER_NOTIF: number;
  /** Filter return: notify a ptrace tracer. */
  readonly SECCOMP_RET_TRACE: number;
  /** Filter return: allow and log. */
  readonly SECCOMP_RET_LOG: number;
  /** Filter return: allow. */
  readonly SECCOMP_RET_ALLOW: number;
  /** Mask of the action part of a filter return value. */
  readonly SECCOMP_RET_ACTION_FULL: number;
  /** Mask of the data part (e.g. the errno) of a filter return value. */
  readonly SECCOMP_RET_DATA: number;
  /** seccomp_data.arch of native syscalls on the architecture the addon was built for. */
  readonly AUDIT_ARCH: number;
  /** AUDIT_ARCH on x86_64 builds only. */
  readonly AUDIT_ARCH_X86_64?: number;
  /** AUDIT_ARCH on aarch64 builds only. */
  readonly AUDIT_ARCH_AARCH64?: number;
  /** x86_64 only: x32 syscalls carry AUDIT_ARCH_X86_64 and nr | this bit; a filter must reject them. */
  readonly X32_SYSCALL_BIT?: number;
  /** Syscall number of socket(2). */
  readonly __NR_socket: number;
  /** Syscall number of bind(2). */
  readonly __NR_bind: number;
  /** Syscall number of listen(2). */
  readonly __NR_listen: number;
  /** Syscall number of connect(2). */
  readonly __NR_connect: number;
  /** Syscall number of accept(2). */
  readonly __NR_accept: number;
  /** Syscall number of accept4(2). */
  readonly __NR_accept4: number;
  /** Syscall number of getsockname(2). */
  readonly __NR_getsockname: number;
  /** Syscall number of getpeername(2). */
  readonly __NR_getpeername: number;
  /** Syscall number of sendto(2). */
  readonly __NR_sendto: number;
  /** Syscall number of sendmsg(2). */
  readonly __NR_sendmsg: number;
  /** Syscall number of sendmmsg(2). */
  readonly __NR_sendmmsg: number;
  /** Syscall number of recvfrom(2). */
  readonly __NR_recvfrom: number;
  /** Syscall number of recvmsg(2). */
  readonly __NR_recvmsg: number;
  /** Syscall number of setns(2). */
  readonly __NR_setns: number;
  /** Syscall number of ptrace(2). */
  readonly __NR_ptrace: number;
  /** Syscall number of process_vm_readv(2). */
  readonly __NR_process_vm_readv: number;
  /** Syscall number of process_vm_writev(2). */
  readonly __NR_process_vm_writev: number;
  /** Syscall number of pidfd_getfd(2). */
  readonly __NR_pidfd_getfd: number;
  /** Syscall number of recvmmsg(2). */
  readonly __NR_recvmmsg: number;
  /** Syscall number of io_uring_setup(2). */
  readonly __NR_io_uring_setup: number;
  /** Syscall number of io_uring_enter(2). */
  readonly __NR_io_uring_enter: number;
  /** Syscall number of io_uring_register(2). */
  readonly __NR_io_uring_register: number;
  /** Syscall number of socketpair(2). */
  readonly __NR_socketpair: number;
  /** Syscall number of userfaultfd(2). */
  readonly __NR_userfaultfd: number;
  /** Syscall number of unshare(2). */
  readonly __NR_unshare: number;
  /** Syscall number of clone(2). */
  readonly __NR_clone: number;
  /** Syscall number of clone3(2). */
  readonly __NR_clone3: number;
  /** Syscall number of ioctl(2). */
  readonly __NR_ioctl: number;
  /** sizeof(struct seccomp_notif) in the headers the addon was built with. */
  readonly SIZEOF_SECCOMP_NOTIF: number;
  /** sizeof(struct seccomp_notif_resp) in the headers the addon was built with. */
  readonly SIZEOF_SECCOMP_NOTIF_RESP: number;
  /** Address family: unix sockets. */
  readonly AF_UNIX: number;
  /** Address family: IPv4. */
  readonly AF_INET: number;
  /** Address family: IPv6. */
  readonly AF_INET6: number;
  /** Socket type: stream. */
  readonly SOCK_STREAM: number;
  /** Socket type: datagram. */
  readonly SOCK_DGRAM: number;
  /** socket(2) type flag: non-blocking. */
  readonly SOCK_NONBLOCK: number;
  /** socket(2) type flag: close-on-exec. */
  readonly SOCK_CLOEXEC: number;
  /** File status flag: non-blocking. */
  readonly O_NONBLOCK: number;
  /** File flag: close-on-exec (for notifAddFd's newFdFlags). */
  readonly O_CLOEXEC: number;
  /** fcntl(2): get file status flags. */
  readonly F_GETFL: number;
  /** fcntl(2): set file status flags. */
  readonly F_SETFL: number;
  /** getsockopt(2) level of the generic socket options. */
  readonly SOL_SOCKET: number;
  /** Socket option: the socket's domain (AF_*). */
  readonly SO_DOMAIN: number;
  /** Socket option: the socket's type (SOCK_*). */
  readonly SO_TYPE: number;
  /** Socket option: the socket's protocol. */
  readonly SO_PROTOCOL: number;
  /** Socket option: 1 if the socket is listening. */
  readonly SO_ACCEPTCONN: number;
  /** Socket option: read and clear the pending socket error. */
  readonly SO_ERROR: number;
  /** sendto(2)/sendmsg(2) flag: TCP Fast Open (an implicit connect). */
  readonly MSG_FASTOPEN: number;
  /** getsockopt(2) level of IPv6 options. */
  readonly IPPROTO_IPV6: number;
  /** IPv6 socket option: no IPv4-mapped addresses. */
  readonly IPV6_V6ONLY: number;
}

/** What the socket responder hands the event loop (Addon.responderStart). */
export type ResponderCallback = (kind: 1 | 2, token: number, errno: number, words?: Uint32Array) => void;

/** Watcher events: bit 1 readable, bit 2 writable, bit 4 disconnect (peer shut down writing). */
export type WatchCallback = (status: number, events: number) => void;

/** Everything the native addon exports. Numbers returned as "-errno" are negated Linux errnos. */
export interface Addon {
  /** Receives one pending seccomp notification into out (length >= 18): 1, 0 if none pending, -EPIPE once the filter has no users left, or -errno. */
  notifRecv(listenerFd: number, out: Uint32Array): number;
  /** Answers a notification with val, or with -error if error (a positive errno) is non-zero; flags 1 = CONTINUE. 0 or -errno. */
  notifRespond(fd: number, idLo: number, idHi: number, val: number, error: number, flags: number): number;
  /** 1 if the notification id is still valid (the target still waits), 0 if not, or -errno. */
  notifIdValid(fd: number, idLo: number, idHi: number): number;
  /** Installs srcFd in the target: its new fd number (send = 0) or the value its syscall returned (send = 1), or -errno. */
  notifAddFd(fd: number, idLo: number, idHi: number, srcFd: number, newFdFlags: number, send: number): number;
  /** SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on a listener (Linux 6.6): 0, or -EINVAL on older kernels. */
  notifSyncWakeUp(fd: number): number;
  /**
   * One NETLINK_SOCK_DIAG dump (sock_diag(7)) of a family's TCP or UDP sockets whose state is
   * in the `states` bit mask, as 56-byte records in buf (see native/addon/diag.c): the record
   * count, -ENOBUFS when buf is too small, or -errno.
   */
  sockDiag(family: number, protocol: number, states: number, buf: Uint8Array): number;
  /**
   * One NETLINK_SOCK_DIAG exact lookup (sock_diag(7)) of the socket with address pair
   * src:srcPort, dst:dstPort (16-byte addresses in network order, IPv4 in the first 4;
   * for UDP the kernel looks up as for a datagram from src to dst), written as one 56-byte
   * record into out: 1 found, 0 no such socket, or -errno. Never blocks.
   */
  sockLookup(
    family: number,
    protocol: number,
    src: Uint8Array,
    srcPort: number,
    dst: Uint8Array,
    dstPort: number,
    out: Uint8Array,
  ): number;
  /** pidfd_open(2): a close-on-exec pidfd or -errno. */
  pidfdOpen(pid: number, flags: number): number;
  /** pidfd_getfd(2): a close-on-exec copy of the target's fd or -errno. */
  pidfdGetfd(pidfd: number, targetFd: number): number;
  /** tkill(2): sends signal sig to thread tid (a signal the kernel would have raised in it): 0 or -errno. */
  signalThread(tid: number, sig: number): number;
  /** process_vm_readv(2) of len bytes at addr into buf: bytes read (short at an unmapped page) or -errno. */
  readMem(pid: number, addr: number, buf: Uint8Array, len: number): number;
  /** process_vm_writev(2) of len bytes from buf to addr: bytes written or -errno (-EFAULT on read-only pages). */
  writeMem(pid: number, addr: number, buf: Uint8Array, len: number): number;
  /** socket(2) with SOCK_CLOEXEC added: fd or -errno. */
  socket(domain: number, type: number, protocol: number): number;
  /** bind(2) to the first len bytes of addr (a struct sockaddr): 0 or -errno. */
  bind(fd: number, addr: Uint8Array, len: number): number;
  /** connect(2): 0 or -errno (-EINPROGRESS: watch for writable, then read SO_ERROR); never blocks. */
  connect(fd: number, addr: Uint8Array, len: number): number;
  /** listen(2): 0 or -errno. */
  listen(fd: number, backlog: number): number;
  /** accept4(2) with SOCK_CLOEXEC added: new fd, -EAGAIN if none is pending, or -errno. */
  accept4(fd: number, flags: number): number;
  /** getsockname(2) into out: the address length (larger than out.byteLength means truncated) or -errno. */
  getsockname(fd: number, out: Uint8Array): number;
  /** getpeername(2) into out: the address length (larger than out.byteLength means truncated) or -errno. */
  getpeername(fd: number, out: Uint8Array): number;
  /** getsockopt(2) of an int option: its value or -errno. */
  getsockoptInt(fd: number, level: number, name: number): number;
  /** setsockopt(2) of an int option: 0 or -errno. */
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  /** fcntl(2) with an int argument (F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD_CLOEXEC, ...): result or -errno; other commands -EINVAL. */
  fcntl(fd: number, cmd: number, arg: number): number;
  /** close(2): 0 or -errno. */
  close(fd: number): number;
  /**
   * Closes a descriptor the daemon shares with an app without waiting on it for more than
   * about 2 ms (the app may have made this the last close of a lingering TCP socket, or of
   * a file): UDP, UNIX, netlink and non-lingering TCP sockets at once (under a watchdog),
   * lingering TCP sockets and non-sockets on the addon's closer thread
   * (native/addon/closer.c). tcp = 1: fd is a TCP socket the daemon made itself (two
   * getsockopt calls fewer). 0 or -errno.
   */
  closeShared(fd: number, tcp?: 0 | 1): number;
  /**
   * Readies the socket responder, the threads answering apps' socket() off the event loop
   * (native/addon/responder.c; they start as apps are added): 0, -EALREADY, -EPERM (no close
   * watchdog here) or -errno.
   * callback(kind, token, errno, words): kind 1, a call of app `token` as received (words as
   * notifRecv writes them) for the event loop to answer; kind 2, the app's listener hung up
   * (errno 0) or failed, and is no longer watched.
   */
  responderStart(callback: ResponderCallback): number;
  /**
   * A responder thread serves the listener (nothing else may receive on it), stamping its
   * sockets with value (1–64 bytes) in map mapFd: 0, -ENOTCONN (not started), -EEXIST (token),
   * -EAGAIN (every thread serves its most listeners: RESPONDER_MAX_APPS) or -errno.
   */
  responderAdd(listenerFd: number, mapFd: number, value: Uint8Array, token: number): number;
  /** The responder leaves the app's listener (which may be closed after): 0 or -ENOENT. */
  responderRemove(token: number): number;
  /** Descriptors closeShared has queued and not closed yet. */
  closesPending(): number;
  /** fstat(2) into out (length >= 3) = [st_dev, st_ino, st_mode]: 0 or -errno. */
  fstat(fd: number, out: Float64Array): number;
  /** flock(2) with LOCK_NB: an exclusive (exclusive = 1) or shared lock; 0, -EWOULDBLOCK when held elsewhere, or -errno. */
  flock(fd: number, exclusive: number): number;
  /** Watches fd on the event loop (events: 1 readable, 2 writable, 4 disconnect): a handle id > 0 or -errno; status < 0 in the callback means the watcher stopped (UV_EBADF is also how libuv reports a socket error: read SO_ERROR). */
  watch(fd: number, events: number, callback: WatchCallback): number;
  /** Stops and closes a watcher (do this before closing its fd): 0 or -EBADF for an unknown id. */
  unwatch(handleId: number): number;
  /** Changes a watcher's events (0 pauses it; also restarts one stopped by an error): 0 or -errno. */
  rewatch(handleId: number, events: number): number;
  /** Lets the watcher keep the event loop alive again (the default): 0 or -EBADF. */
  ref(handleId: number): number;
  /** Stops the watcher from keeping the event loop alive: 0 or -EBADF. */
  unref(handleId: number): number;
  /** A non-blocking close-on-exec unix stream socket listening at path (a stale socket file is replaced), chmod'ed to mode: fd or -errno. */
  unixListen(path: string, backlog: number, mode: number): number;
  /** recvmsg(2) of bytes into buf and up to 8 SCM_RIGHTS fds: bytes (0 = EOF) or -errno; fdsOut[0] = fd count, fdsOut[1..] = fds (extras closed). */
  recvFds(fd: number, buf: Uint8Array, fdsOut: Int32Array): number;
  /** send(2) of the first len bytes of buf with MSG_NOSIGNAL | MSG_DONTWAIT: bytes or -errno. */
  send(fd: number, buf: Uint8Array, len: number): number;
  /** recv(2) with MSG_PEEK | MSG_DONTWAIT (nothing consumed): bytes or -errno. */
  recvPeek(fd: number, buf: Uint8Array): number;
  /** sendmsg(2) of the first len bytes of data to addr (empty: the connected peer) with control (empty: none), flags | MSG_DONTWAIT | MSG_NOSIGNAL: bytes or -errno. */
  sendmsg(
    fd: number,
    data: Uint8Array,
    len: number,
    addr: Uint8Array,
    addrLen: number,
    control: Uint8Array,
    controlLen: number,
    flags: number,
  ): number;
  /** recvmsg(2) into all of data, name and control, flags | MSG_DONTWAIT: bytes or -errno; out = [namelen, controllen, msg_flags]. */
  recvmsg(
    fd: number,
    data: Uint8Array,
    name: Uint8Array,
    control: Uint8Array,
    flags: number,
    out: Int32Array,
  ): number;
  /** getsockopt(2) of an option of any shape into out: its length or -errno. */
  getsockoptBytes(fd: number, level: number, name: number, out: Uint8Array): number;
  /** setsockopt(2) of an option of any shape (all of value): 0 or -errno. */
  setsockoptBytes(fd: number, level: number, name: number, value: Uint8Array): number;
  /**
   * ioctl(SIOCGSTAMPNS), socket(7): when the kernel received the datagram the socket passed
   * last, in µs since the epoch (CLOCK_REALTIME), or -errno (ENOENT: none yet). Sets
   * SOCK_TIMESTAMP on the socket: from then on every receive keeps its datagram's time
   * (before, the kernel answers the current time). Adds no cmsg to anyone's receives.
   */
  recvStampUs(fd: number): number;
  /** clock_gettime(CLOCK_REALTIME) in µs since the epoch: the clock of recvStampUs. */
  realtimeUs(): number;
  /** Interrupts the system call thread tid is blocked in (PTRACE_SEIZE + PTRACE_INTERRUPT, wait, PTRACE_DETACH) so the kernel restarts it: 0 or -errno. */
  interruptSyscall(tid: number): number;
  /** kcmp(2): 0 when the two tasks' resources (type: KCMP_FILES 2, KCMP_FILE 0 with fds idx1/idx2) are the same, 1-3 when not, or -errno. */
  kcmp(pid1: number, pid2: number, type: number, idx1: number, idx2: number): number;
  /** seccomp(SECCOMP_SET_MODE_FILTER, flags, NULL): -EFAULT when the kernel knows every flag (nothing is installed), -EINVAL when not, or another -errno. */
  seccompFlagsProbe(flags: number): number;
  /** A seccomp notification listener of a filter that allows everything, made by a short-lived child (for probing the listener ioctls): fd or -errno. */
  seccompListenerProbe(): number;
  /** bpf(BPF_PROG_LOAD) of a two-instruction program of progType for expectedAttachType, closed at once: 0 when it loads, or -errno. */
  bpfProgLoadProbe(progType: number, expectedAttachType: number): number;
  /** SO_PEERCRED into out (length >= 3) = [pid, uid, gid]: 0 or -errno. */
  peerCred(fd: number, out: Int32Array): number;
  /** execve(2) after resetting all signal dispositions and the signal mask; returns only by throwing (Error with the path, strerror and code = errno name). */
  execve(path: string, argv: readonly string[], env: readonly string[]): never;
  /**
   * A new network namespace with lo up and the given addresses on it (17-byte records: 4 or
   * 6, then 16 address bytes): an fd referring to it, or -errno. The calling thread is back
   * in its own namespace when this returns.
   */
  netnsCreate(addrs: Uint8Array): number;
  /** socket(2) (SOCK_CLOEXEC added) made inside the network namespace nsFd: fd or -errno. */
  socketIn(nsFd: number, domain: number, type: number, protocol: number): number;
  /** bind(2) without CAP_NET_BIND_SERVICE for the call (EACCES below ip_unprivileged_port_start): 0 or -errno. */
  bindUnprivileged(fd: number, addr: Uint8Array, len: number): number;
  /** 1 when the addon was built with the BPF programs (native/bpf), 0 when not (every other bpf* call: -ENOSYS). */
  bpfBuilt(): number;
  /** mount(2) of a bpffs (mode 0700) or of the cgroup v2 hierarchy at path (an existing directory): 0 or -errno. */
  bpfMount(fstype: "bpf" | "cgroup2", path: string): number;
  /**
   * Opens and loads the embedded BPF object `name` (native/bpf/NAME.bpf.c): a handle >= 1 or
   * -errno (bpfLog() says why). pinDir (a bpffs directory, "" for none): every map is pinned
   * there by its name, and one already pinned there is reused with its contents.
   */
  bpfOpen(name: string, pinDir: string): number;
  /** The fd of a map of a loaded object (owned by the object: never close it), or -errno. */
  bpfMapFd(handle: number, map: string): number;
  /**
   * Attaches a cgroup program of a loaded object to the cgroup (an fd of its directory) through a
   * link, alongside other programs: 0 or -errno. linkPath ("" for none): a link pinned there
   * already gets this program instead (the hook is never empty); otherwise the new link is
   * pinned there and outlives the daemon.
   */
  bpfAttachCgroup(handle: number, program: string, cgroupFd: number, linkPath: string): number;
  /** Closes a loaded object and its links (unpinned links detach): 0 or -EBADF. */
  bpfClose(handle: number): number;
  /** libbpf's warnings since the last call (cleared). */
  bpfLog(): string;
  /** bpf(BPF_MAP_UPDATE_ELEM) (flags BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2; socket storage: the key is a socket fd): 0 or -errno. */
  bpfMapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): number;
  /** bpf(BPF_MAP_LOOKUP_ELEM) into valueOut: 0 or -errno (-ENOENT: no such key). */
  bpfMapLookup(fd: number, key: Uint8Array, valueOut: Uint8Array): number;
  /** bpf(BPF_MAP_DELETE_ELEM): 0 or -errno. */
  bpfMapDelete(fd: number, key: Uint8Array): number;
  /** bpf(BPF_MAP_GET_NEXT_KEY) (key null: the first): 0 or -errno (-ENOENT after the last). */
  bpfMapNextKey(fd: number, key: Uint8Array | null, nextOut: Uint8Array): number;
  /** Maps a BPF ring buffer (its map fd; watch that fd for readability): an id >= 1 or -errno. */
  bpfRingOpen(mapFd: number): number;
  /**
   * Copies whole records into out (each a little-endian u32 length, then its bytes padded to 8)
   * and consumes exactly those: bytes used, or -errno.
   */
  bpfRingRead(id: number, out: Uint8Array): number;
  /** Unmaps a ring buffer: 0 or -EBADF. */
  bpfRingClose(id: number): number;
  /** Numbers from kernel and libc headers. */
  readonly constants: AddonConstants;
}

let cached: Addon | undefined;

/** Where loadAddon looks, in order: build/Release then build/Debug at the repository root. */
export function addonPaths(): string[] {
  // This file runs as src/native/addon.ts (tsx) and as dist/native/addon.js (tsc): the repo
  // root is two levels up in both cases.
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  return [join(root, "build", "Release", "sockswitch.node"), join(root, "build", "Debug", "sockswitch.node")];
}

/** Loads the addon once and returns it; throws an Error listing every path tried and why it failed. */
export function loadAddon(): Addon {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of addonPaths()) {
    try {
      cached = require(path) as Addon;
      return cached;
    } catch (err) {
      // First line only: require() appends a multi-line "Require stack".
      const why = (err instanceof Error ? err.message : String(err)).split("\n")[0];
      failures.push(`  ${path}: ${why}`);
    }
  }
  throw new Error(
    `cannot load the sockswitch native addon; tried:\n${failures.join("\n")}\n` +
      "run `npm install` (needs make, g++ and python3) to build it",
  );
}
