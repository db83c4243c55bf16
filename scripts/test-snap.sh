#!/usr/bin/env bash
# Snap packaging test (issue 6), run by scripts/test.sh: build the snap offline, inspect it, and
# run the packed binary from the unpacked tree as snapd would start a classic snap.
#
#   scripts/test-snap.sh                                   # release build + pack + checks
#   BIN=target/debug/cadvisor-setup scripts/test-snap.sh   # pack an existing binary (faster)
#
# snapd itself cannot run here (observed: even `snap install --dangerous` fetches the base snap
# from the store, which is unreachable), so `snap install` is not tried: the checks are on the
# file, its metadata and the binary inside.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '  - %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v unsquashfs >/dev/null || fail "unsquashfs is missing: apt-get install squashfs-tools"

snap=$(scripts/build-snap.sh | tail -n 1)
[ -f "$snap" ] || fail "scripts/build-snap.sh did not produce a snap (got '$snap')"
python=python3
python3 -c 'import yaml, tomllib' 2>/dev/null || python="${CADVISOR_SETUP_VENV:-$HOME/.cache/cadvisor-setup/venv}/bin/python3"
version=$("$python" scripts/snap-meta.py version Cargo.toml)
case "$snap" in
  dist/cadvisor-setup_"$version"_*.snap) step "built $snap" ;;
  *) fail "the snap file name $snap does not carry Cargo.toml's version $version" ;;
esac

step "snapcraft.yaml is valid YAML with the fields snapcraft requires"
"$python" scripts/snap-meta.py check-project snap/snapcraft.yaml Cargo.toml >/dev/null

step "unsquashfs -l lists the binary and meta/snap.yaml"
listing=$(unsquashfs -l "$snap")
for entry in squashfs-root/bin/cadvisor-setup squashfs-root/meta/snap.yaml; do
  grep -qx "$entry" <<<"$listing" || fail "$entry is not in the snap:"$'\n'"$listing"
done
unsquashfs -lls "$snap" | grep -q ' root/root ' || fail "files in the snap are not owned by root"

work=$(mktemp -d /tmp/cs-snap.XXXXXX)
trap 'rm -rf "$work"' EXIT
unsquashfs -q -d "$work/snap" "$snap" >/dev/null

step "meta/snap.yaml parses and agrees with snapcraft.yaml and Cargo.toml"
"$python" scripts/snap-meta.py check-meta "$work/snap/meta/snap.yaml" snap/snapcraft.yaml Cargo.toml >/dev/null
command=$("$python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["apps"]["cadvisor-setup"]["command"])' "$work/snap/meta/snap.yaml")
confinement=$("$python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["confinement"])' "$work/snap/meta/snap.yaml")
[ -x "$work/snap/$command" ] || fail "the app command $command is not an executable in the snap"

# What snapd sets for the app (https://snapcraft.io/docs/environment-variables), plus the
# app's own environment from snap.yaml ($as_confinement pretends another confinement).
run_as_snap() {
  env -u CADVISOR_SETUP_HOST_ROOT -u CADVISOR_SETUP_OUTPUT -u KUBECONFIG \
    SNAP="$work/snap" SNAP_NAME=cadvisor-setup SNAP_INSTANCE_NAME=cadvisor-setup \
    SNAP_REVISION=x1 SNAP_VERSION="$version" SNAP_ARCH=amd64 \
    SNAP_COMMON=/var/snap/cadvisor-setup/common SNAP_DATA=/var/snap/cadvisor-setup/x1 \
    CADVISOR_SETUP_SNAP_CONFINEMENT="${as_confinement:-$confinement}" \
    "$work/snap/$command" "$@"
}

step "the packed binary prints its version"
got=$(run_as_snap --version)
[ "$got" = "cadvisor-setup $version" ] || fail "--version printed '$got', expected 'cadvisor-setup $version'"

step "the packed binary detects MicroK8s on a test host root"
# A MicroK8s host (snapcraft.io/docs/data-locations, canonical/microk8s:
# microk8s-resources/default-args): the snap's meta/snap.yaml behind the `current` symlink and
# its args files. No containerd runs, so detect may exit 3 (no verified socket); the
# distribution must still be named.
root="$work/host"
mkdir -p "$root/snap/microk8s/8147/meta" "$root/var/snap/microk8s/8147/args" \
  "$root/var/snap/microk8s/common/run"
ln -s 8147 "$root/snap/microk8s/current"
ln -s 8147 "$root/var/snap/microk8s/current"
cat >"$root/snap/microk8s/8147/meta/snap.yaml" <<'YAML'
name: microk8s
version: v1.33.5
summary: Kubernetes for workstations and appliances
confinement: classic
YAML
cat >"$root/var/snap/microk8s/8147/args/kubelet" <<'ARGS'
--kubeconfig=${SNAP_DATA}/credentials/kubelet.config
--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock
--containerd=${SNAP_COMMON}/run/containerd.sock
ARGS
cat >"$root/var/snap/microk8s/8147/args/containerd" <<'ARGS'
--config ${SNAP_DATA}/args/containerd.toml
--root ${SNAP_COMMON}/var/lib/containerd
--state ${SNAP_COMMON}/run/containerd
--address ${SNAP_COMMON}/run/containerd.sock
ARGS
set +e
run_as_snap detect --host-root "$root" --no-cluster -o json >"$work/detect.json" 2>"$work/detect.err"
code=$?
set -e
case $code in
  0 | 3) ;;
  *) fail "detect exited $code:"$'\n'"$(cat "$work/detect.err")" ;;
esac
kind=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["distribution"]["kind"])' "$work/detect.json") ||
  fail "detect -o json did not print one JSON document with distribution.kind:"$'\n'"$(cat "$work/detect.json" "$work/detect.err")"
[ "$kind" = microk8s ] || fail "detect named the distribution '$kind', expected microk8s"
step "detect exited $code and named $kind"

step "inside a strict snap the default host root is /var/lib/snapd/hostfs"
set +e
as_confinement=strict run_as_snap detect --no-cluster -o json >/dev/null 2>"$work/strict.err"
set -e
# Outside snapd's mount namespace that directory does not exist (or is empty); either way the
# packed binary must have looked there, not at /.
if [ -d /var/lib/snapd/hostfs ]; then
  step "(skipped: /var/lib/snapd/hostfs exists on this machine)"
else
  grep -q /var/lib/snapd/hostfs "$work/strict.err" ||
    fail "with CADVISOR_SETUP_SNAP_CONFINEMENT=strict the binary did not use /var/lib/snapd/hostfs:"$'\n'"$(cat "$work/strict.err")"
fi

echo "snap OK: $snap ($confinement, version $version)"
