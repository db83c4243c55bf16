#!/usr/bin/env bash
# Fuzz smoke: builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time, starting
# from the committed seeds (fuzz/seeds/<target>/) and the corpus of earlier runs
# (fuzz/corpus/<target>/, not committed).
#
#   scripts/fuzz.sh                        # every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh metrics_scan args_file # some targets
#   FUZZ_SECONDS=20 scripts/fuzz.sh
#
# Needs a nightly toolchain (cargo-fuzz builds with -Z flags) and cargo-fuzz (installed here when
# missing). Without nightly it says loudly that the fuzz smoke was skipped and exits 0, unless
# CADVISOR_SETUP_REQUIRE_FUZZ=1 (then 1). Exits 1 when a target finds a crash, a timeout or an
# out-of-memory input, printing the artifact's path and how to reproduce it.
#
# Built with `--sanitizer none`: the code under test is safe Rust (bar the SSE2 compares of
# src/metrics/line.rs, which take values, never pointers), where AddressSanitizer finds
# nothing the bounds checks don't, while it slows every execution about 2x and rebuilds every
# dependency (kube, tokio, ...) with its instrumentation. `--debug-assertions` turns integer
# overflow into a crash. The build is cargo-fuzz's default release (-O) build.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
all_targets=(args_file host_resolve label_selector metrics_scan validators)
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=("${all_targets[@]}")
fi
flags=(--sanitizer none --debug-assertions)

log() { printf '\n==> [fuzz %4ds] %s\n' "$SECONDS" "$*"; }

skip() {
  {
    echo
    echo "################################################################################"
    echo "#  FUZZ SMOKE SKIPPED: $*"
    echo "################################################################################"
    echo
  } >&2
  if [ "${CADVISOR_SETUP_REQUIRE_FUZZ:-}" = 1 ]; then
    echo "error: CADVISOR_SETUP_REQUIRE_FUZZ=1, so a skipped fuzz smoke is a failure" >&2
    exit 1
  fi
  exit 0
}

command -v rustup >/dev/null || skip "rustup is not installed, so no nightly toolchain can be selected"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  skip "no nightly Rust toolchain (cargo-fuzz needs one; \`rustup toolchain list\` shows none)"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

log "cargo +nightly fuzz build ${flags[*]} ($(rustup run nightly rustc --version))"
build_start=$SECONDS
cargo +nightly fuzz build "${flags[@]}"
log "fuzz build took $((SECONDS - build_start)) s"

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
# host_resolve builds its trees under TMPDIR; a crash leaves its tree behind, so keep them here.
export TMPDIR="$PWD/fuzz/target/fuzz-tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  seeds="fuzz/seeds/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$seeds" "$artifacts"
  marker="$logs/$target.start"
  touch "$marker"
  log "fuzzing $target for ${seconds} s"
  start=$SECONDS
  status=0
  # -max_total_time bounds the fuzzing; the hard timeout bounds everything else (cargo's
  # up-to-date check, loading the corpus, a hang that -timeout would not catch).
  timeout --kill-after=15 $((seconds + 120)) \
    cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=4096 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$logs/$target.log" 2>&1 || status=$?
  found=$(find "$artifacts" -type f -newer "$marker" 2>/dev/null | head -n 5)
  if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    # The assertion that failed, and the input as the target sees it (its Debug form).
    grep -m 1 -A 3 'panicked at' "$logs/$target.log" >&2 || tail -n 20 "$logs/$target.log" >&2 || true
    sed -n '/^Output of `std::fmt::Debug`:/,/^Reproduce with:/p' "$logs/$target.log" | sed '$d' | head -n 60 >&2 || true
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      echo "error: $target did not stop within $((seconds + 120)) s (killed by timeout)" >&2
    fi
    for artifact in $found; do
      echo "error: $target found a failing input: $artifact" >&2
      echo "       reproduce: cargo +nightly fuzz run ${flags[*]} $target $artifact" >&2
    done
    echo "error: $target failed (exit $status) after $((SECONDS - start)) s; full log: $logs/$target.log" >&2
    failed+=("$target")
  else
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$logs/$target.log" | tail -n 1 || true)
    echo "$target: ok, $runs runs in $((SECONDS - start)) s, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) inputs"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  log "fuzzing found failures in: ${failed[*]}"
  exit 1
fi
log "fuzz smoke passed (${#targets[@]} targets, ${seconds} s each)"
