#!/usr/bin/env bash
# Runs a script inside a small VM that boots another Linux kernel (by default Debian 12's
# stock 6.1 kernel) with this machine's root filesystem shared read-only under a tmpfs
# overlay. Use it to test sockswitch on the kernels users run (no PIDFD_THREAD before 6.9,
# no IP_LOCAL_PORT_RANGE before 6.3, ...).
#
#   sudo scripts/kernel-vm.sh [--kernel-pkg NAME] [--suite SUITE] [--timeout S] SCRIPT
#
# NAME is a Debian kernel image package, or a pattern with * for the ABI number
# (linux-image-6.1.0-*-amd64-unsigned: the newest one there is); --suite takes it from that Debian release
# (bullseye, trixie, …: deb.debian.org and its security archive, through apt lists kept
# apart from the system's) instead of the system's apt sources.
#
# SCRIPT is a path on this machine; it runs as root inside the guest with /work, /usr, ...
# visible as on the host (read-only below, writable overlay on top, changes are discarded),
# /run an empty tmpfs, lo up, cgroup2 at /sys/fs/cgroup, the guest kernel's modules
# at /lib/modules. Its output is printed; the exit status of SCRIPT is the exit status here.
#
# The guest is emulated (qemu TCG: nested KVM does not boot on these VMs), so it is about
# 5-10x slower than the host: a Node process takes ~10 s to start. Keep guest scripts short
# and wait on log lines, not on fixed sleeps.
# Needs Debian packages: qemu-system-x86 busybox-static cpio kmod (installed on first use).
# Kernel and initramfs are kept in /var/cache/sockswitch-kernel-vm/PACKAGE (KERNEL_VM_CACHE).
# (The project's copy of ../shared/tools/kernel-vm/run-in-kernel.sh, written for it; loads
# the initramfs modules in dependency order, which later 6.1 packages need.)
set -euo pipefail
PKG="linux-image-6.1.0-*-amd64-unsigned"
TIMEOUT=600
SUITE=
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel-pkg) PKG=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --suite) SUITE=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--kernel-pkg NAME] [--suite SUITE] [--timeout S] SCRIPT" >&2; exit 2; }
SCRIPT=$(readlink -f "$1"); [ -f "$SCRIPT" ] || { echo "no such script: $1" >&2; exit 2; }

need=()
for p in qemu-system-x86 busybox-static cpio kmod; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# FORMAT changes when the initramfs below does: a cache made by an older script is rebuilt.
FORMAT=3
apt=(apt-get)
acache=(apt-cache)
if [ -n "$SUITE" ]; then
  # Another Debian release's packages: apt with a sources list and lists of its own.
  A=${KERNEL_VM_CACHE:-/var/cache/sockswitch-kernel-vm}/apt-$SUITE
  mkdir -p "$A/lists/partial"
  key=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] http://deb.debian.org/debian %s main\ndeb [signed-by=%s] http://deb.debian.org/debian-security %s-security main\n' \
    "$key" "$SUITE" "$key" "$SUITE" >"$A/sources.list"
  o=(-o "Dir::Etc::SourceList=$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$A/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  apt=(apt-get "${o[@]}")
  acache=(apt-cache "${o[@]}")
  [ -n "$(ls "$A/lists" | grep -v partial)" ] || "${apt[@]}" update -qq
fi
if [[ "$PKG" == *"*"* ]]; then
  re="^$(printf '%s' "$PKG" | sed 's/[.+]/\\&/g; s/\*/[0-9]+/g')\$"
  newest() { "${acache[@]}" search --names-only "$re" | awk '{print $1}' | sort -V | tail -n 1; }
  name=$(newest)
  [ -n "$name" ] || { "${apt[@]}" update -qq; name=$(newest); }
  [ -n "$name" ] || { echo "kernel-vm: no package matches $PKG" >&2; exit 2; }
  PKG=$name
fi
echo "kernel-vm: package $PKG${SUITE:+ from $SUITE}"
CACHE=${KERNEL_VM_CACHE:-/var/cache/sockswitch-kernel-vm}/$PKG
if [ "$(cat "$CACHE/ready" 2>/dev/null)" != "$FORMAT" ]; then
  mkdir -p "$CACHE" && rm -rf "$CACHE"/*
  (cd "$CACHE" && "${apt[@]}" download "$PKG" >/dev/null 2>&1) ||
    { "${apt[@]}" update -qq; (cd "$CACHE" && "${apt[@]}" download "$PKG" >/dev/null); }
  dpkg-deb -x "$CACHE"/*.deb "$CACHE/x"
  KVER=$(ls "$CACHE/x/lib/modules")
  /sbin/depmod -b "$CACHE/x" "$KVER"
  # initramfs: busybox, the modules for 9p and overlay, and an init that mounts the host root.
  IR=$CACHE/ir; mkdir -p "$IR"/{bin,mods,proc,sys,dev,lower,upper,newroot}
  cp /bin/busybox "$IR/bin/"
  for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay; do
    f=$(find "$CACHE/x/lib/modules" -name "$m.ko" | head -n 1); [ -n "$f" ] && cp "$f" "$IR/mods/"
  done
  cat >"$IR/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
# In dependency order, whatever it is in this kernel (virtio needs virtio_ring in later 6.1
# releases): insert what can be inserted, and go round again while anything is left.
mods="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"
for pass in 1 2 3 4; do
  left=""
  for m in $mods; do
    [ -f /mods/$m.ko ] && [ ! -d /sys/module/$m ] || continue
    insmod /mods/$m.ko 2>/dev/null || left="$left $m"
  done
  mods=$left
  [ -n "$mods" ] || break
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /lower || { echo "kernel-vm: 9p mount failed"; poweroff -f; }
mount -t tmpfs tmp /upper; mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot
mkdir -p /newroot/lib/modules   # absent on a host without modules of its own
mount -t 9p -o trans=virtio,version=9p2000.L,ro modules /newroot/lib/modules || echo "kernel-vm: no /lib/modules"
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh -c '
  mount -t proc proc /proc; mount -t sysfs sys /sys; mount --make-rshared /
  mount -t tmpfs run /run; mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
  hostname kernel-vm; ip link set lo up
  script=$(sed -n "s/.*kernel_vm_script=\([^ ]*\).*/\1/p" /proc/cmdline)
  echo "kernel-vm: $(uname -r) running $script"
  sh "$script"; echo "kernel-vm: exit $?"
  /bin/busybox poweroff -f'
INIT
  chmod +x "$IR/init"
  (cd "$IR" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$CACHE/initrd.gz")
  echo "$FORMAT" >"$CACHE/ready"
fi
KVER=$(ls "$CACHE/x/lib/modules")
out=$(mktemp)
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 4096 -smp 2 -nographic -no-reboot \
  -kernel "$CACHE/x/boot/vmlinuz-$KVER" -initrd "$CACHE/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 kernel_vm_script=$SCRIPT" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
  -virtfs "local,path=$CACHE/x/lib/modules,mount_tag=modules,security_model=passthrough,readonly=on,multidevs=remap" \
  2>&1 | awk '
    # The console from the script'"'"'s first line on, as it comes: without carriage returns,
    # terminal escapes (the firmware'"'"'s may share that first line) and kernel messages.
    { gsub(/\r/, ""); gsub(/\033(\[[?0-9;]*[a-zA-Z]|c)/, "") }
    started { if ($0 !~ /^\[ *[0-9.]+\]/) { print; fflush() } next }
    /kernel-vm: .* running / { sub(/.*kernel-vm: /, "kernel-vm: "); print; fflush(); started = 1 }
  ' | tee "$out"
rc=$(sed -n 's/^kernel-vm: exit \([0-9]*\)$/\1/p' "$out" | tail -n 1); rm -f "$out"
[ -n "$rc" ] || { echo "kernel-vm: the guest did not finish (timeout ${TIMEOUT}s or crash)" >&2; exit 124; }
exit "$rc"
