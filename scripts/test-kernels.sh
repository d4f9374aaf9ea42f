#!/usr/bin/env bash
# `npm run test:kernels`: sockswitch on the kernels users run. Each kernel is booted in an
# emulated VM over this machine's files (scripts/kernel-vm.sh: read-only with a writable
# overlay), so the guest runs the dist/ and build/ made here; the Go test program is built
# here too (go build, into a temporary directory), since compiling in the guest is slow.
# Runs as root; prints each kernel's wall time; exits non-zero if any kernel fails.
#
#   sudo scripts/test-kernels.sh [KERNEL...]
#
# KERNEL (default: debian12 debian11):
#   debian12   Debian 12's newest 6.1 (linux-image-6.1.0-N-amd64-unsigned): the focused
#              end-to-end subset below, on both datapaths
#   debian11   Debian 11's newest 5.10, older than sockswitch needs: the daemon must refuse
#              to start, naming SECCOMP_ADDFD_FLAG_SEND (Linux 5.14)
#   debian13   Debian 13's newest 6.12 (an LTS kernel with PIDFD_THREAD): the subset
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The subset: the probe, threads (python threads, a thread-pool server, Go goroutines, a
# thread with its own file table), a daemon restart with threaded apps, two test hosts with
# cross-host client identity over TCP and UDP (both mechanisms).
FILES=(
  test/e2e/kernel-info.test.ts
  test/e2e/threads.test.ts
  test/e2e/restart-threads.test.ts
  test/e2e/cluster-source-block.test.ts
)
# Then on the bpf datapath (SSW_DATAPATH=bpf): its host placement, restarts with the
# programs pinned and failing closed, and the socket responder's threads (6.1 has no
# SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP; about 5 min in the guest).
BPF_FILES=(
  test/e2e/bpf-host.test.ts
  test/e2e/bpf-restart.test.ts
  test/e2e/bpf-responder.test.ts
)

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(debian12 debian11)

[ -f build/Release/sockswitch.node ] && [ -x build/sockswitch-launch ] && [ -d dist ] ||
  { echo "test-kernels: build first (npm ci, or npm run build)" >&2; exit 1; }

work=$(mktemp -d /tmp/ssw-kernels.XXXXXX)
trap 'rm -rf "$work"' EXIT
GOCACHE="$work/gocache" CGO_ENABLED=0 go build -o "$work/goecho" test/fixtures/goecho/main.go
rm -rf "$work/gocache"

cat >"$work/subset.sh" <<EOF
# Runs inside the guest (scripts/kernel-vm.sh): the subset.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export SSW_GOECHO=$work/goecho SOCKSWITCH_TEST_TIME_SCALE=30
cd $ROOT
start=\$(date +%s)
node --import tsx --test --test-concurrency=1 --test-reporter=spec ${FILES[*]}
rc=\$?
SSW_DATAPATH=bpf node --import tsx --test --test-concurrency=1 --test-reporter=spec ${BPF_FILES[*]} || rc=1
echo "kernel-vm: tests took \$((\$(date +%s) - start)) s in the guest"
exit \$rc
EOF

cat >"$work/refuse.sh" <<EOF
# Runs inside the guest: on a kernel older than 5.14 the daemon refuses to start, exit 1,
# with one sentence naming what the kernel lacks.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
cd $ROOT
ip netns add refuse && ip -n refuse link set lo up
d=\$(mktemp -d)
ip netns exec refuse node bin/sockswitch --socket \$d/s.sock daemon --state-dir \$d/state >\$d/out 2>\$d/err
rc=\$?
cat \$d/err
ip netns del refuse
want='^sockswitch: this kernel \\(Linux [^ ]+\\) lacks SECCOMP_ADDFD_FLAG_SEND \\(Linux 5\\.14\\), which sockswitch needs; run the daemon on Linux 5\\.14 or later\$'
if [ "\$rc" = 1 ] && [ "\$(wc -l <\$d/err)" = 1 ] && grep -Eq "\$want" \$d/err; then
  echo "PASS: the daemon refuses this kernel (exit \$rc)"; exit 0
fi
echo "FAIL: exit \$rc"; exit 1
EOF

failed=()
for k in "${kernels[@]}"; do
  case "$k" in
    debian12) args=(--kernel-pkg "linux-image-6.1.0-*-amd64-unsigned") script=subset.sh ;;
    debian11) args=(--kernel-pkg "linux-image-5.10.0-*-amd64-unsigned" --suite bullseye) script=refuse.sh ;;
    debian13) args=(--kernel-pkg "linux-image-6.12.*+deb13-amd64-unsigned" --suite trixie) script=subset.sh ;;
    *) echo "test-kernels: unknown kernel $k (debian12, debian11, debian13)" >&2; exit 2 ;;
  esac
  echo "== $k"
  t0=$(date +%s)
  rc=0
  bash scripts/kernel-vm.sh "${args[@]}" --timeout 2700 "$work/$script" || rc=$?
  echo "== $k: exit $rc, $(($(date +%s) - t0)) s wall time"
  [ "$rc" -eq 0 ] || failed+=("$k")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-kernels: failed on ${failed[*]}" >&2
  exit 1
fi
