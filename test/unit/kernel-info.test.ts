// Unit tests of the kernel feature report: how each probe's answer is read (with a fake
// addon that answers as a given kernel would), mountinfo parsing, the test-only hide list,
// the sentence a daemon refuses to start with, the answers the trap handlers get, and the
// `sockswitch info` table. No privileges needed.

import assert from "node:assert/strict";
import { constants } from "node:os";
import { describe, test } from "node:test";
import { formatInfo } from "../../src/cli/info.js";
import {
  compareReleases,
  feature,
  type KernelInfo,
  missingRequirement,
  mountsByType,
  parseHidden,
} from "../../src/core/kernel-info.js";
import { probeKernel, trapKernel, withMounts } from "../../src/daemon/kernel-probe.js";
import type { Addon } from "../../src/native/addon.js";

const E = constants.errno;

const MOUNTINFO = [
  "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
  "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "41 22 0:38 / /sys/fs/bpf\\040maps rw,relatime shared:7 master:3 - bpf bpf rw,mode=700",
  "",
].join("\n");

/** What a kernel answers: the version numbers below decide each probe, as the real calls do. */
function fakeAddon(k: {
  addfd: boolean;
  send: boolean;
  pidfdThread: boolean;
  range: boolean;
  diag: boolean;
}): Addon {
  const fake = {
    constants: { AF_INET: 2, SOCK_DGRAM: 2 },
    seccompListenerProbe: () => 100,
    notifAddFd: (_fd: number, _lo: number, _hi: number, _src: number, _fl: number, send: number) =>
      !k.addfd || (send && !k.send) ? -E.EINVAL : -E.ENOENT,
    notifSyncWakeUp: () => -E.EINVAL,
    seccompFlagsProbe: () => -E.EFAULT,
    pidfdOpen: (_pid: number, flags: number) => (flags !== 0 && !k.pidfdThread ? -E.EINVAL : 101),
    pidfdGetfd: () => 102,
    kcmp: () => 0,
    readMem: () => -E.EFAULT,
    socket: () => 103,
    setsockoptBytes: () => (k.range ? 0 : -E.ENOPROTOOPT),
    sockDiag: () => (k.diag ? 0 : -E.ENOENT),
    bpfProgLoadProbe: (_t: number, attach: number) => (attach >= 29 ? -E.EINVAL : 0),
    close: () => 0,
  };
  return fake as unknown as Addon;
}

describe("kernel feature probe", () => {
  test("a 6.1-like kernel: no PIDFD_THREAD, no SYNC_WAKE_UP; everything required is there", () => {
    const info = probeKernel(
      fakeAddon({ addfd: true, send: true, pidfdThread: false, range: false, diag: false }),
      new Set(),
      MOUNTINFO,
    );
    assert.equal(feature(info, "PIDFD_THREAD").available, false);
    assert.equal(feature(info, "PIDFD_THREAD").reason, "EINVAL");
    assert.equal(feature(info, "IP_LOCAL_PORT_RANGE").available, false);
    assert.equal(feature(info, "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP").available, false);
    assert.equal(feature(info, "sock_diag").available, false);
    assert.equal(feature(info, "SECCOMP_ADDFD_FLAG_SEND").available, true);
    assert.equal(feature(info, "BPF_CGROUP_INET{4,6}_CONNECT").available, true);
    assert.equal(feature(info, "BPF_CGROUP_INET{4,6}_GETPEERNAME").available, false);
    assert.equal(info.cgroup2, "/sys/fs/cgroup/unified");
    assert.equal(info.bpffs, "/sys/fs/bpf maps");
    assert.equal(missingRequirement(info), null);
    assert.deepEqual(trapKernel(info), { pidfdThread: false, kcmp: true, ipLocalPortRange: false });
  });

  test("a kernel without SECCOMP_ADDFD_FLAG_SEND (5.10): one sentence that names it", () => {
    const info = probeKernel(
      fakeAddon({ addfd: true, send: false, pidfdThread: false, range: false, diag: true }),
      new Set(),
      "",
    );
    assert.equal(
      missingRequirement({ ...info, release: "5.10.0-28-amd64" }),
      "this kernel (Linux 5.10.0-28-amd64) lacks SECCOMP_ADDFD_FLAG_SEND (Linux 5.14), which sockswitch needs; run the daemon on Linux 5.14 or later",
    );
    assert.equal(info.cgroup2, null);
  });

  test("info shows the cgroup2 and bpffs the daemon set up after the probe; what the probe found stays", () => {
    const addon = fakeAddon({ addfd: true, send: true, pidfdThread: true, range: true, diag: true });
    const none = withMounts(probeKernel(addon, new Set(), ""), {
      cgroup2: "/sys/fs/cgroup",
      bpffs: "/proc/12/root/sys/fs/bpf",
    });
    assert.equal(none.cgroup2, "/sys/fs/cgroup");
    assert.equal(none.bpffs, "/proc/12/root/sys/fs/bpf");
    assert.equal(feature(none, "cgroup2").available, true);
    assert.equal(feature(none, "bpffs").reason, "set up by the daemon: /proc/12/root/sys/fs/bpf");
    const found = probeKernel(addon, new Set(), MOUNTINFO);
    const kept = withMounts(found, { cgroup2: "/elsewhere", bpffs: null });
    assert.equal(kept.cgroup2, "/sys/fs/cgroup/unified");
    assert.deepEqual(kept.features, found.features);
    const still = withMounts(probeKernel(addon, new Set(), ""), { cgroup2: null, bpffs: null });
    assert.equal(feature(still, "bpffs").available, false);
  });

  test("hidden features are reported absent with the reason; unknown names are refused", () => {
    const info = probeKernel(
      fakeAddon({ addfd: true, send: true, pidfdThread: true, range: true, diag: true }),
      parseHidden("PIDFD_THREAD, IP_LOCAL_PORT_RANGE"),
      MOUNTINFO,
    );
    assert.equal(feature(info, "PIDFD_THREAD").available, false);
    assert.equal(feature(info, "PIDFD_THREAD").reason, "hidden by SOCKSWITCH_TEST_HIDE_FEATURES");
    assert.deepEqual(trapKernel(info), { pidfdThread: false, kcmp: true, ipLocalPortRange: false });
    assert.deepEqual([...parseHidden(undefined)], []);
    assert.deepEqual(
      [...parseHidden("BPF_CGROUP_INET{4,6}_CONNECT,PIDFD_THREAD,BPF_CGROUP_UDP{4,6}_SENDMSG")],
      ["BPF_CGROUP_INET{4,6}_CONNECT", "PIDFD_THREAD", "BPF_CGROUP_UDP{4,6}_SENDMSG"],
    );
    assert.throws(() => parseHidden("PIDFD_THREAD,nope"), /SOCKSWITCH_TEST_HIDE_FEATURES names "nope"/);
  });

  test("several missing requirements are named in one sentence; unknown ones do not count", () => {
    const base = probeKernel(
      fakeAddon({ addfd: true, send: true, pidfdThread: true, range: true, diag: true }),
      new Set(),
      "",
    );
    const set = (names: Record<string, boolean | null>): KernelInfo => ({
      ...base,
      release: "5.4.0",
      features: base.features.map((f) => (f.name in names ? { ...f, available: names[f.name] ?? null } : f)),
    });
    assert.equal(
      missingRequirement(
        set({ SECCOMP_IOCTL_NOTIF_ADDFD: false, SECCOMP_ADDFD_FLAG_SEND: false, pidfd_getfd: false }),
      ),
      "this kernel (Linux 5.4.0) lacks SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9), SECCOMP_ADDFD_FLAG_SEND (Linux 5.14) and pidfd_getfd (Linux 5.6), which sockswitch needs; run the daemon on Linux 5.14 or later",
    );
    assert.equal(missingRequirement(set({ SECCOMP_ADDFD_FLAG_SEND: null })), null);
    assert.equal(missingRequirement(set({ PIDFD_THREAD: false, IP_LOCAL_PORT_RANGE: false })), null);
  });

  test("mountinfo: every mount point by type, octal escapes decoded", () => {
    const m = mountsByType(MOUNTINFO);
    assert.deepEqual(m.get("cgroup2"), ["/sys/fs/cgroup/unified"]);
    assert.deepEqual(m.get("cgroup"), ["/sys/fs/cgroup/cpu"]);
    assert.deepEqual(m.get("bpf"), ["/sys/fs/bpf maps"]);
    assert.equal(m.get("nfs"), undefined);
  });

  test("releases are ordered by number", () => {
    assert.ok(compareReleases("5.9", "5.14") < 0);
    assert.ok(compareReleases("6.9", "6.10") < 0);
    assert.equal(compareReleases("3.5 (CONFIG_KCMP)", "3.5"), 0);
  });

  test("the info table: node line, a row per feature, and what happens without each missing one", () => {
    const kernel = probeKernel(
      fakeAddon({ addfd: true, send: true, pidfdThread: false, range: true, diag: true }),
      new Set(),
      MOUNTINFO,
    );
    const text = formatInfo({
      version: "0.1.0",
      node: "a",
      kernel: { ...kernel, release: "6.1.0-47-amd64" },
      datapath: {
        name: "seccomp",
        selected: "--datapath seccomp",
        continueGuard: { available: false, reason: "no cgroup v2 hierarchy is mounted" },
      },
    });
    assert.match(
      text,
      /^NODE\s+VERSION\s+KERNEL\s+MACHINE\s+CGROUP2\s+BPFFS\na\s+0\.1\.0\s+6\.1\.0-47-amd64\s+\S+\s+\/sys\/fs\/cgroup\/unified\s+\/sys\/fs\/bpf maps$/m,
    );
    assert.match(
      text,
      /^DATAPATH\s+SELECTED\s+CONTINUE GUARD\s+NOTE\nseccomp\s+--datapath seccomp\s+off\s+no cgroup v2 hierarchy is mounted$/m,
    );
    assert.match(text, /^PIDFD_THREAD\s+6\.9\s+optional\s+no\s+EINVAL$/m);
    assert.match(text, /^IP_LOCAL_PORT_RANGE\s+6\.3\s+optional\s+yes$/m);
    assert.match(text, /^- without PIDFD_THREAD: calls from a thread/m);
    assert.doesNotMatch(text, /without IP_LOCAL_PORT_RANGE/);
  });
});
