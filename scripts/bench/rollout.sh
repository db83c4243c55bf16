#!/usr/bin/env bash
# On the simulated cluster (tests/support/fake_api): how long from the watch event that completes
# the DaemonSet rollout to the start of the verification stage. Goal: under 100 ms (the wait
# watches, it does not poll). Reported, not asserted.
#
#   scripts/bench/rollout.sh        # prints "rollout ready → verify start: N ms" per run
set -euo pipefail
cd "$(dirname "$0")/../.."
# Bounded: a hung run fails after 15 minutes (the first run builds the test binary).
out=$(CADVISOR_SETUP_BENCH=1 timeout 900 cargo test --quiet --test cluster bench::ready_to_verify -- --nocapture --exact 2>&1) || {
  printf '%s\n' "$out" >&2
  echo "bench: the test run failed" >&2
  exit 1
}
printf '%s\n' "$out" | grep -E '^(bench:|!!! SKIPPED)' || { printf '%s\n' "$out"; echo "bench: no measurement printed" >&2; exit 1; }
