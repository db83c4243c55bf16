#!/usr/bin/env bash
# Median whole-process time of `cadvisor-setup detect --no-cluster` on a MicroK8s host root with
# a real containerd (Debian's) listening at MicroK8s' socket and one labelled "pod" container.
# Goal: under 50 ms. Prints one line: `detect: median X ms (goal < 50 ms)`.
#
#   scripts/bench/detect.sh [path/to/cadvisor-setup]
#   (default: $CADVISOR_SETUP_BIN from scripts/bench.sh, else target/release, built if missing)
#
# Needs root, containerd, ctr, runc, busybox-static and python3 (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${1:-${CADVISOR_SETUP_BIN:-target/release/cadvisor-setup}}
if [ ! -x "$BIN" ]; then
  cargo build --release --locked --quiet
fi
BIN=$(realpath "$BIN")

# What a fresh machine may lack: install it when root, else say what to install.
missing=()
for tool in containerd ctr runc python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sed 's/^ctr$/containerd/' | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    echo "error: detect.sh needs root and: apt-get install $pkgs" >&2
    exit 1
  fi
fi

BASE=$(mktemp -d /tmp/csbench.XXXXXX)            # short: containerd's socket path limit
ROOT=$BASE/h
SOCK=$ROOT/var/snap/microk8s/common/run/containerd.sock
CTD_PID=
C="ctr --timeout 20s -a $SOCK -n k8s.io"
ID=bench-web-$$

cleanup() {
  if [ -n "$CTD_PID" ]; then
    # Tasks first: shims outlive containerd (observed: each container's containerd-shim-runc-v2
    # keeps it running after containerd exits).
    $C tasks kill -s SIGKILL "$ID" >/dev/null 2>&1 || true
    for _ in $(seq 100); do $C tasks ls 2>/dev/null | grep -q "^$ID .*RUNNING" || break; sleep 0.02; done
    $C tasks rm -f "$ID" >/dev/null 2>&1 || true
    $C containers rm "$ID" >/dev/null 2>&1 || true
    kill -TERM "$CTD_PID" 2>/dev/null || true
    # Bounded: SIGKILL after 10 s.
    for _ in $(seq 500); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.02; done
    kill -KILL "$CTD_PID" 2>/dev/null || true
    wait "$CTD_PID" 2>/dev/null || true
  fi
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "${h}csbench-$$" ] && find "${h}csbench-$$" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$BASE"
}
trap cleanup EXIT

# A MicroK8s host root: snap.yaml, `current` symlinks, the default args files.
mkdir -p "$ROOT/snap/microk8s/8148/meta" "$ROOT/var/snap/microk8s/8148/args" "$ROOT/var/snap/microk8s/common/run"
ln -s 8148 "$ROOT/snap/microk8s/current"
ln -s 8148 "$ROOT/var/snap/microk8s/current"
printf 'name: microk8s\nversion: v1.35.2\nconfinement: classic\n' >"$ROOT/snap/microk8s/8148/meta/snap.yaml"
printf -- '--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock\n--root-dir=${SNAP_COMMON}/var/lib/kubelet\n' \
  >"$ROOT/var/snap/microk8s/current/args/kubelet"
printf -- '--config ${SNAP_DATA}/args/containerd.toml\n--address ${SNAP_COMMON}/run/containerd.sock\n' \
  >"$ROOT/var/snap/microk8s/current/args/containerd"

mkdir -p "$BASE/root" "$BASE/state" "$BASE/opt"
cat >"$BASE/config.toml" <<TOML
version = 2
root = "$BASE/root"
state = "$BASE/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$BASE/opt"
TOML
containerd --config "$BASE/config.toml" >"$BASE/containerd.log" 2>&1 &
CTD_PID=$!
for _ in $(seq 250); do ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.02; done
ctr -a "$SOCK" version >/dev/null

python3 tests/support/mkimage.py "$BASE/busybox.tar" docker.io/library/busybox:bench >/dev/null
$C images import "$BASE/busybox.tar" >/dev/null
$C run -d --label io.kubernetes.pod.name=web-0 --label io.kubernetes.pod.namespace=default \
  --label io.kubernetes.container.name=web --cgroup "/csbench-$$/$ID" \
  docker.io/library/busybox:bench "$ID" /bin/sleep 600 >/dev/null

# Sanity: the run being timed succeeds.
"$BIN" detect --no-cluster --host-root "$ROOT" -o json >/dev/null

export HOME=$BASE KUBECONFIG=
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 3 --runs 30 -N --export-json "$BASE/h.json" \
    "$BIN detect --no-cluster --host-root $ROOT -o json" >/dev/null 2>&1
  median=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$BASE/h.json")
else
  times=()
  for _ in $(seq 30); do
    t0=$(date +%s%N)
    "$BIN" detect --no-cluster --host-root "$ROOT" -o json >/dev/null
    times+=($(( ($(date +%s%N) - t0) / 1000 )))
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}')
fi
echo "detect: median ${median} ms (goal < 50 ms)"
