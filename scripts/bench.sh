#!/usr/bin/env bash
# Benchmarks: whole-process measurements of the claims the README makes, each in one run next to
# its baseline. Runs every scripts/bench/*.sh (or the ones named: scripts/bench.sh detect render).
#
#   scripts/bench.sh               # all
#   scripts/bench.sh verify        # only scripts/bench/verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CADVISOR_SETUP_VENV:-$HOME/.cache/cadvisor-setup/venv}/bin:$PATH"

echo "==> cargo build --release --locked"
cargo build --release --locked --quiet
export CADVISOR_SETUP_BIN="$PWD/target/release/cadvisor-setup"

if [ $# -gt 0 ]; then
  benches=()
  for name in "$@"; do benches+=("scripts/bench/$name.sh"); done
else
  benches=(scripts/bench/*.sh)
fi
for bench in "${benches[@]}"; do
  echo "==> $bench"
  bash "$bench"
done
