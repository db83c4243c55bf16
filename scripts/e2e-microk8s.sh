#!/usr/bin/env bash
# End-to-end check on a real MicroK8s machine, for maintainers (not run in CI):
# install → rerun (idempotent) → verify → status → uninstall → uninstall again (nothing to do).
#
#   sudo scripts/e2e-microk8s.sh                 # uses target/release/cadvisor-setup, else PATH
#   CADVISOR_SETUP_BIN=/path/to/cadvisor-setup sudo -E scripts/e2e-microk8s.sh
#   CADVISOR_SETUP_IMAGE=registry.local/cadvisor:0.60.5 sudo -E scripts/e2e-microk8s.sh
#
# Leaves the cluster as it found it unless a step fails (then cAdvisor stays for inspection:
# `cadvisor-setup status`, `microk8s kubectl -n cadvisor describe ds cadvisor`).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'e2e: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }

# --- prerequisites -------------------------------------------------------------------------------
command -v microk8s >/dev/null || fail "microk8s is not installed (sudo snap install microk8s --classic)"
command -v jq >/dev/null || fail "jq is needed to read the JSON reports (sudo apt-get install jq)"
if [ "$(id -u)" != 0 ] && ! id -nG | grep -qw microk8s; then
  fail "run as root or as a member of the microk8s group (sudo usermod -a -G microk8s \$USER)"
fi
microk8s status --wait-ready --timeout 120 >/dev/null || fail "MicroK8s is not ready (microk8s status)"
bin="${CADVISOR_SETUP_BIN:-}"
if [ -z "$bin" ]; then
  if [ -x target/release/cadvisor-setup ]; then bin=target/release/cadvisor-setup
  elif command -v cadvisor-setup >/dev/null; then bin=$(command -v cadvisor-setup)
  else fail "no cadvisor-setup binary: cargo build --release, or set CADVISOR_SETUP_BIN"; fi
fi
kubeconfig=/var/snap/microk8s/current/credentials/client.config
[ -r "$kubeconfig" ] || fail "cannot read $kubeconfig (run with sudo)"
ns="${CADVISOR_SETUP_NAMESPACE:-cadvisor}"
export CADVISOR_SETUP_NAMESPACE="$ns"
echo "binary: $bin ($("$bin" --version)); namespace: $ns; kubeconfig: $kubeconfig"
if microk8s kubectl get namespace "$ns" >/dev/null 2>&1; then
  echo "note: namespace $ns already exists; install will leave it without our label and uninstall will keep it"
fi

run() { "$bin" --kubeconfig "$kubeconfig" "$@"; }

# --- the flow ------------------------------------------------------------------------------------
step "detect"
run detect || fail "detect did not find a verified containerd socket"

step "install --yes (apply, wait, verify)"
out=$(run install --yes -o json --timeout "${CADVISOR_SETUP_TIMEOUT:-5m}") || { echo "$out"; fail "install failed (exit $?)"; }
echo "$out" | jq '{ok, changed, exit_code, rollout, nodes: [.verification.nodes[] | {node, passed, labelled: (.labelled_pods | length)}]}'
[ "$(echo "$out" | jq -r .ok)" = true ] || fail "install reported ok=false"

step "install again: nothing may change"
out=$(run install --yes -o json) || { echo "$out"; fail "second install failed"; }
[ "$(echo "$out" | jq -r .changed)" = false ] || fail "second install reported changed=true"

step "verify"
run verify || fail "verify failed"

step "live metrics carry pod labels (through the API server's pod proxy)"
pod=$(microk8s kubectl -n "$ns" get pods -o name | sed -n 's|^pod/\(cadvisor-.*\)|\1|p' | head -n1)
[ -n "$pod" ] || fail "no cadvisor pod in namespace $ns"
microk8s kubectl get --raw "/api/v1/namespaces/$ns/pods/$pod:8080/proxy/metrics" \
  | grep -m1 'container_label_io_kubernetes_pod_name="' || fail "no labelled series in $pod's /metrics"

step "status"
run status

step "uninstall --yes"
run uninstall --yes || fail "uninstall failed"
microk8s kubectl -n "$ns" get daemonset cadvisor >/dev/null 2>&1 && fail "the DaemonSet is still there"

step "uninstall again: nothing to delete"
run uninstall --yes | grep -q "nothing to delete" || fail "second uninstall was not a no-op"

printf '\ne2e: PASS\n'
