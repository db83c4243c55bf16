#!/usr/bin/env bash
# Verification at scale (issue 12): on the simulated cluster (tests/support/fake_api), N simulated
# nodes sharing one real containerd host root, every pod and node proxy request delayed by 20 ms
# (an API server's hop to a kubelet across a network). For each N: `install` (from the last pod
# Ready to the process exiting), then `verify` alone: wall time and peak RSS (/usr/bin/time -v).
# Goal: 500 nodes verified in under 5 s, peak RSS under 64 MB. Reported, not asserted.
#
#   scripts/bench/scale.sh                                 # 200 and 500 nodes
#   CADVISOR_SETUP_BENCH_NODES=50,200 CADVISOR_SETUP_BENCH_LATENCY_MS=0 scripts/bench/scale.sh
#
# The product is the release binary (CADVISOR_SETUP_BIN, as scripts/bench.sh sets; built when
# unset). The fake API server lives in the test binary, built here with opt-level 2 in a target
# directory of its own (target/fake-opt): unoptimised, its JSON store and controllers take minutes
# to roll out hundreds of pods, which would measure the fake rather than the product.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    echo "error: /usr/bin/time is missing (apt-get install time)" >&2
    exit 1
  fi
fi
BIN="${BIN:-${CADVISOR_SETUP_BIN:-}}"
if [ -z "$BIN" ]; then
  cargo build --release --locked
  BIN=target/release/cadvisor-setup
fi
export CADVISOR_SETUP_BIN="$(realpath "$BIN")"
# Bounded: a hung run fails after 30 minutes (the first run builds the optimised test binary).
out=$(CARGO_TARGET_DIR=target/fake-opt CARGO_PROFILE_TEST_OPT_LEVEL=2 CARGO_PROFILE_DEV_OPT_LEVEL=2 \
  timeout 1800 cargo test --locked --quiet --test cluster bench::verify_at_scale -- --ignored --nocapture --exact 2>&1) || {
  printf '%s\n' "$out" >&2
  echo "bench: the test run failed" >&2
  exit 1
}
printf '%s\n' "$out" | grep -E '^(bench:|!!! SKIPPED)' || { printf '%s\n' "$out"; echo "bench: no measurement printed" >&2; exit 1; }
