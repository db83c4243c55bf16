#!/usr/bin/env bash
# Builds the release binary and packs dist/cadvisor-setup_<version>_<arch>.snap offline: no
# store, no build VM, no snapcraft. meta/snap.yaml is generated from snap/snapcraft.yaml
# (scripts/snap-meta.py) with the version from Cargo.toml, so the two never disagree.
#
#   scripts/build-snap.sh                      # cargo build --release --locked, then pack
#   BIN=target/debug/cadvisor-setup scripts/build-snap.sh   # pack an existing binary instead
#
# Packs with `snap pack` when the snap client is installed (it validates snap.yaml; it needs
# no snapd), else with mksquashfs (squashfs-tools) and the options snapd itself uses.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 1; }

# PyYAML: system python3, else the venv scripts/test.sh creates, else python3-yaml from apt.
python=""
venv="${CADVISOR_SETUP_VENV:-$HOME/.cache/cadvisor-setup/venv}"
for candidate in python3 "$venv/bin/python3"; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import yaml, tomllib' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null
  python3 -c 'import yaml, tomllib' 2>/dev/null && python=python3
fi
[ -n "$python" ] || die "python3 (>= 3.11) with PyYAML is needed: apt-get install python3-yaml"

version=$("$python" scripts/snap-meta.py version Cargo.toml)
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked
  BIN=target/release/cadvisor-setup
fi
[ -x "$BIN" ] || die "$BIN is not an executable binary"

prime=target/snap/prime
rm -rf "$prime"
mkdir -p "$prime/bin" "$prime/meta" dist
install -m 0755 "$BIN" "$prime/bin/cadvisor-setup"
"$python" scripts/snap-meta.py generate snap/snapcraft.yaml Cargo.toml "$arch" >"$prime/meta/snap.yaml"
chmod 0644 "$prime/meta/snap.yaml"

out="dist/cadvisor-setup_${version}_${arch}.snap"
rm -f "$out"
if command -v snap >/dev/null && snap pack --help >/dev/null 2>&1; then
  # The snap client wants absolute paths.
  snap pack --filename="$(pwd)/$out" "$(pwd)/$prime" "$(pwd)/dist" >/dev/null
else
  command -v mksquashfs >/dev/null || die "mksquashfs is missing: apt-get install squashfs-tools"
  # snapd's own options (snapcore/snapd: snap/squashfs/squashfs.go Build; -all-root and
  # -no-xattrs are what it adds when not packing as root).
  mksquashfs "$prime" "$out" -noappend -comp xz -no-fragments -no-progress -all-root -no-xattrs >/dev/null
fi
echo "$out"
