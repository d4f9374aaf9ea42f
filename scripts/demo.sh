#!/usr/bin/env bash
# sockswitch in one command: builds the project if needed, then, inside a network namespace
# of its own (so nothing on this host changes), starts the daemon on its embedded store, a
# web server with a virtual IP and a name, and a client that fetches a page from that
# virtual IP, each in its own empty network namespace. Prints the service table and
# removes everything on the way out. Needs root (or CAP_SYS_ADMIN) for the namespaces.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: run me as root (sudo $0): sockswitch makes network namespaces" >&2
  exit 1
fi
if [[ ! -e node_modules || ! -x build/sockswitch-launch || ! -e build/Release/sockswitch.node || ! -e dist/index.js ]]; then
  echo "demo: building (npm ci)…"
  # The build's output (node-gyp's progress lines among it) only when it fails.
  log=$(mktemp /tmp/ssw-demo-build.XXXXXX)
  npm ci --no-audit --no-fund >"$log" 2>&1 ||
    { cat "$log" >&2; rm -f "$log"; echo "demo: the build failed (its output above)" >&2; exit 1; }
  rm -f "$log"
fi

NS="ssw-demo-$$"
WORK=$(mktemp -d /tmp/ssw-demo.XXXXXX)
SOCK="$WORK/sockswitch.sock"
SSW=("$ROOT/bin/sockswitch" --socket "$SOCK")
cleanup() {
  set +e
  # The apps first: their launchers (`sockswitch run`) live in their app's network namespace,
  # not in $NS, pass SIGTERM on to the app, and would otherwise wait for a daemon that is gone.
  local launchers="sockswitch-launch --socket $SOCK"
  pkill -TERM -f "$launchers" 2>/dev/null
  for _ in $(seq 20); do pgrep -f "$launchers" >/dev/null || break; sleep 0.1; done
  pkill -KILL -f "$launchers" 2>/dev/null
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null; done
  sleep 0.3
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  # The daemon's BPF programs stay attached after it stops (for the next daemon: docs/cli.md);
  # this one is gone for good, so are they: its pin directory (named by its state dir) goes.
  local owner
  owner="owner=$(node -e 'console.log(encodeURIComponent(process.argv[1]).replaceAll(".", "%2E"))' "$WORK/state")"
  for dir in /sys/fs/bpf/sockswitch/*/; do
    [ -e "$dir$owner" ] && rm -rf "$dir"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
ip -n "$NS" link set lo up

echo "== sockswitch daemon (embedded store, state in $WORK/state)"
in_ns "${SSW[@]}" daemon --state-dir "$WORK/state" >"$WORK/daemon.log" 2>&1 &
for _ in $(seq 100); do grep -q "daemon ready" "$WORK/daemon.log" && break; sleep 0.1; done
grep -q "daemon ready" "$WORK/daemon.log" || { cat "$WORK/daemon.log"; exit 1; }
# Which datapath --datapath auto picked, and why (sockswitch info).
in_ns "${SSW[@]}" info -o json | python3 -c 'import json,sys; print("   datapath:", json.load(sys.stdin)["datapath"]["selected"])'

echo "== sockswitch run --ip 10.77.0.10 --name web -- python3 -m http.server 8080"
mkdir -p "$WORK/www" && echo "hello from a socket-switched web server" >"$WORK/www/index.html"
in_ns "${SSW[@]}" run --ip 10.77.0.10 --name web -- python3 -m http.server 8080 --directory "$WORK/www" \
  >"$WORK/web.log" 2>&1 &
for _ in $(seq 100); do in_ns "${SSW[@]}" get services -o json | grep -q '10.77.0.10:8080' && break; sleep 0.1; done

if command -v curl >/dev/null; then
  echo "== sockswitch run -- curl -s http://10.77.0.10:8080/"
  in_ns "${SSW[@]}" run -- curl -sS http://10.77.0.10:8080/
else
  echo "== curl is not installed; the client is python3 urllib instead"
  in_ns "${SSW[@]}" run -- python3 -c \
    'import urllib.request; print(urllib.request.urlopen("http://10.77.0.10:8080/").read().decode(), end="")'
fi

echo "== the server's access log: the client appears with its own virtual IP"
sleep 0.2; grep GET "$WORK/web.log" || true
echo "== sockswitch get apps"
in_ns "${SSW[@]}" get apps
echo "== sockswitch get services"
in_ns "${SSW[@]}" get services
echo "== the client's network namespace has no interface but lo:"
in_ns "${SSW[@]}" run -- ip -brief link
