#!/usr/bin/env bash
# `npm run test:kernels`: the focused end-to-end subset on the kernels users run. Each kernel
# is booted in an emulated VM over this machine's files (scripts/kernel-vm.sh: read-only with
# a writable overlay), so the tests run the dist/ and build/ made here; the Go test program
# is built here too (go build, into a temporary directory), since compiling in the guest is
# slow. Runs as root; prints each kernel's wall time; exits non-zero if any kernel fails.
#
#   sudo scripts/test-kernels.sh [PACKAGE...]
#
# PACKAGE: a Debian kernel image package (linux-image-…-unsigned). Default: Debian 12's
# newest 6.1 (linux-image-6.1.0-N-amd64-unsigned, found with apt-cache).
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

debian12_kernel() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' | awk '{print $1}' | sort -V | tail -n 1
}

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  pkg=$(debian12_kernel)
  if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(debian12_kernel)
  fi
  [ -n "$pkg" ] || { echo "test-kernels: no linux-image-6.1.0-*-amd64-unsigned package in the apt sources" >&2; exit 1; }
  pkgs=("$pkg")
fi

[ -f build/Release/sockswitch.node ] && [ -x build/sockswitch-launch ] && [ -d dist ] ||
  { echo "test-kernels: build first (npm ci, or npm run build)" >&2; exit 1; }

work=$(mktemp -d /tmp/ssw-kernels.XXXXXX)
trap 'rm -rf "$work"' EXIT
GOCACHE="$work/gocache" CGO_ENABLED=0 go build -o "$work/goecho" test/fixtures/goecho/main.go
rm -rf "$work/gocache"

cat >"$work/guest.sh" <<EOF
# Runs inside the guest (scripts/kernel-vm.sh): the subset, with what a Debian host would have.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export SSW_GOECHO=$work/goecho SSW_TEST_TIME_SCALE=10
cd $ROOT
start=\$(date +%s)
node --import tsx --test --test-concurrency=1 --test-reporter=spec ${FILES[*]}
rc=\$?
echo "kernel-vm: tests took \$((\$(date +%s) - start)) s in the guest"
exit \$rc
EOF

failed=()
for pkg in "${pkgs[@]}"; do
  echo "== $pkg"
  t0=$(date +%s)
  rc=0
  bash scripts/kernel-vm.sh --kernel-pkg "$pkg" --timeout 1500 "$work/guest.sh" || rc=$?
  echo "== $pkg: exit $rc, $(($(date +%s) - t0)) s wall time"
  [ "$rc" -eq 0 ] || failed+=("$pkg")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-kernels: failed on ${failed[*]}" >&2
  exit 1
fi
