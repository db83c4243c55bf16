#!/usr/bin/env bash
# Whole-process time of `cadvisor-setup render --distro microk8s` against `kubectl kustomize` of an
# equivalent overlay, in the same run. The overlay is built from our own rendering: a base rendered
# for kubeadm plus a strategic-merge patch that turns it into the MicroK8s variant (socket
# directory and flags); the script checks that it builds exactly the objects `render` prints.
#
#   scripts/bench/render.sh            # hyperfine if installed, else a timed loop
#   RUNS=50 scripts/bench/render.sh
#
# Uses $CADVISOR_SETUP_BIN, else target/release/cadvisor-setup when it exists, else builds and uses
# the debug binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs="${RUNS:-30}"
goal=10

# scripts/bench.sh builds the release binary once and passes it in CADVISOR_SETUP_BIN.
bin="${CADVISOR_SETUP_BIN:-target/release/cadvisor-setup}"
if [ ! -x "$bin" ]; then
  echo "note: no release build, timing the debug binary (build one with cargo build --release)" >&2
  cargo build --quiet --locked
  bin=target/debug/cadvisor-setup
fi
if ! command -v jq >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
for tool in kubectl jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- the equivalent overlay ---------------------------------------------------------------------
"$bin" render --distro kubeadm --out-dir "$work/base" 2>/dev/null
"$bin" -o json render --distro microk8s >"$work/microk8s.json"
mkdir "$work/overlay"
# containers merge by name and volumes by name (strategic merge); args is replaced as a whole.
jq '.manifests[] | select(.kind == "DaemonSet") | {
      apiVersion, kind,
      metadata: {name: .metadata.name, namespace: .metadata.namespace, annotations: .metadata.annotations},
      spec: {template: {spec: {
        containers: [.spec.template.spec.containers[0] | {name, args}],
        volumes: [.spec.template.spec.volumes[] | select(.name == "runtime")]
      }}}
    }' "$work/microk8s.json" >"$work/overlay/microk8s-patch.yaml"
cat >"$work/overlay/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
patches:
  - path: microk8s-patch.yaml
EOF

kubectl kustomize "$work/overlay" >"$work/kustomized.yaml"
if python3 -c 'import yaml' 2>/dev/null; then
  python3 - "$work/microk8s.json" "$work/kustomized.yaml" <<'EOF'
import json, sys, yaml
key = lambda o: (o["kind"], o["metadata"]["name"])
def norm(o):
    # A strategic-merge patch moves the patched volume to the front; order is not meaning.
    spec = o.get("spec", {}).get("template", {}).get("spec", {})
    if "volumes" in spec:
        spec["volumes"].sort(key=lambda v: v["name"])
    return o
ours = sorted(map(norm, json.load(open(sys.argv[1]))["manifests"]), key=key)
theirs = sorted((norm(d) for d in yaml.safe_load_all(open(sys.argv[2])) if d), key=key)
if ours != theirs:
    sys.exit("error: the overlay does not build the same objects as `render --distro microk8s`")
EOF
  echo "overlay check: kubectl kustomize builds the same objects as render --distro microk8s" >&2
else
  echo "note: python3 with PyYAML missing, overlay equivalence not checked" >&2
fi

# --- timing -------------------------------------------------------------------------------------
render_cmd=("$bin" render --distro microk8s)
kustomize_cmd=(kubectl kustomize "$work/overlay")

if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/times.json" \
    "${render_cmd[*]}" "${kustomize_cmd[*]}" >&2
  render_ms="$(jq '.results[0].mean * 1000' "$work/times.json")"
  kustomize_ms="$(jq '.results[1].mean * 1000' "$work/times.json")"
else
  mean_ms() {
    local start end
    start="$(date +%s%N)"
    for _ in $(seq "$runs"); do "$@" >/dev/null; done
    end="$(date +%s%N)"
    echo "scale=3; ($end - $start) / 1000000 / $runs" | bc
  }
  "${render_cmd[@]}" >/dev/null
  "${kustomize_cmd[@]}" >/dev/null
  render_ms="$(mean_ms "${render_cmd[@]}")"
  kustomize_ms="$(mean_ms "${kustomize_cmd[@]}")"
fi

awk -v r="$render_ms" -v k="$kustomize_ms" -v g="$goal" 'BEGIN {
  ratio = k / r
  printf "render: %.1f ms vs kubectl kustomize %.1f ms: %.1f x faster (goal >= %dx)\n", r, k, ratio, g
  exit (ratio >= g ? 0 : 1)
}'
