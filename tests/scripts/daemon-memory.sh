#!/bin/bash
# Daemon memory with 1,000 and 10,000 live cgroups: the daemon's RSS and the kernel memory
# of its pinned maps (sized by --max-containers, not by use). Each cgroup runs /bin/true
# once, so it holds a slot until it is removed. Runs as root; everything it makes (a bpffs,
# a cgroup subtree, a temporary directory, the daemon) is removed on exit.
#   tests/scripts/daemon-memory.sh [path/to/recorder]
set -euo pipefail
BIN=${1:-target/release/recorder}
PORT=${PORT:-39464}
D=$(mktemp -d /tmp/recorder-daemon-memory.XXXXXX)
V2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
P=$V2/recorder-daemon-memory-$$
DPID=
cleanup() {
  if [ -n "$DPID" ]; then kill -9 "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
  "$BIN" daemon --unpin --pin-dir "$D/bpffs/node" >/dev/null 2>&1 || true
  umount "$D/bpffs" 2>/dev/null || true
  for c in "$P"/*/; do [ -d "$c" ] && rmdir "$c" 2>/dev/null || true; done
  rmdir "$P" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
mkdir -p "$P" "$D/bpffs"
mount -t bpf bpf "$D/bpffs"
"$BIN" daemon --listen "127.0.0.1:$PORT" --state-dir "$D/state" --pin-dir "$D/bpffs/node" \
  --cgroup-parent "$P" --runtime-endpoint "$D/no-cri.sock" --max-containers 11000 2>"$D/daemon.log" &
DPID=$!
for _ in $(seq 300); do curl -sf "localhost:$PORT/readyz" >/dev/null && break; sleep 0.2; done
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$DPID/status"; }
maps() {
  find "$D/bpffs/node" -type f | while read -r f; do bpftool -j map show pinned "$f" 2>/dev/null || true; echo; done |
    python3 -c 'import json, sys
ms = [m for m in (json.loads(l) for l in sys.stdin if l.strip()) if "name" in m]
print(sum(m["bytes_memlock"] for m in ms), "bytes:", ", ".join("%s %d" % (m["name"], m["bytes_memlock"]) for m in ms))'
}
echo "baseline: RSS $(rss) KiB; pinned maps $(maps)"
n=0
for target in 1000 10000; do
  while [ "$n" -lt "$target" ]; do
    mkdir "$P/c$n"
    sh -c "echo \$\$ > $P/c$n/cgroup.procs && exec /bin/true"
    n=$((n + 1))
  done
  used=0
  for _ in $(seq 120); do
    used=$(curl -s "localhost:$PORT/metrics" | awk '$1 == "recorder_slots_used" { print int($2) }')
    [ "${used:-0}" -ge "$target" ] && break
    sleep 1
  done
  echo "$target cgroups: slots used $used; RSS $(rss) KiB"
done
