#!/usr/bin/env bash
# Benchmark of `cadvisor-setup verify --metrics-file` (issues 4 and 12): in the same run,
# against `grep -c container_label_io_kubernetes_pod_name` on the same file, for three files of
# SIZE_MB each:
#   synthetic  scripts/bench/gen_metrics.py: 125 containers, label sets repeating per family;
#   unique     scripts/bench/gen_shapes.py unique: no label set ever repeats;
#   real       scripts/bench/gen_shapes.py real: a real cAdvisor scrape scaled to 10,000 pods.
# Reports wall time and CPU time (user + system, from wait4) of both, and verify's peak RSS.
# Goals: CPU time per byte at or below grep's on every file; peak resident memory under 32 MB.
#
#   scripts/bench/verify.sh [SIZE_MB]        # default 200 MB; builds the release binary once
#   BIN=path/to/cadvisor-setup scripts/bench/verify.sh 50   # (or CADVISOR_SETUP_BIN, as scripts/bench.sh sets)
#   scripts/bench/verify.sh --check          # exit 1 when a goal is missed
#
# Both commands read the file from the page cache (it is read once first); each is run RUNS
# times (default 5), alternating, and the medians are compared (the machine may be shared: the
# minimum is printed too).
set -euo pipefail
cd "$(dirname "$0")/../.."

check=0
size=200
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    *) size="$arg" ;;
  esac
done
runs="${RUNS:-5}"

# scripts/bench.sh builds the release binary once and passes it as CADVISOR_SETUP_BIN.
BIN="${BIN:-${CADVISOR_SETUP_BIN:-}}"
if [ -z "$BIN" ]; then
  cargo build --release --locked
  BIN=target/release/cadvisor-setup
fi

work=$(mktemp -d /tmp/cs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 scripts/bench/gen_metrics.py "$size" >"$work/synthetic.txt"
python3 scripts/bench/gen_shapes.py unique "$size" >"$work/unique.txt"
python3 scripts/bench/gen_shapes.py real "$size" >"$work/real.txt"

python3 - "$BIN" "$work" "$runs" "$check" <<'PY'
import os, statistics, subprocess, sys, time

bin_, work, runs, check = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
out_path = os.path.join(work, "out")

def timed(cmd):
    """(wall s, cpu s, max rss kB) of one run. stdout to a file, not /dev/null: GNU grep stops
    at the first match when its output is /dev/null, which would time nothing."""
    with open(out_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss

ok = True
for shape in ["synthetic", "unique", "real"]:
    path = os.path.join(work, f"{shape}.txt")
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    ours = [bin_, "verify", "--metrics-file", path]
    grep = ["grep", "-c", "container_label_io_kubernetes_pod_name", path]
    runs_of = {"ours": [], "grep": []}
    for _ in range(runs):
        runs_of["ours"].append(timed(ours))
        runs_of["grep"].append(timed(grep))
    size_mb = os.path.getsize(path) / 1e6
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in runs_of.items()}
    low = {k: (min(r[0] for r in v), min(r[1] for r in v)) for k, v in runs_of.items()}
    rss_mb = max(r[2] for r in runs_of["ours"]) / 1024
    print(f"{shape}: {size_mb:.0f} MB, {runs} runs each, median (min)")
    for k, name in [("ours", "cadvisor-setup verify --metrics-file"), ("grep", "grep -c")]:
        print(f"  {name:38} wall {med[k][0]*1000:7.1f} ms ({low[k][0]*1000:6.1f})  cpu {med[k][1]*1000:7.1f} ms ({low[k][1]*1000:6.1f})  {size_mb/med[k][0]:6.0f} MB/s")
    wall_ratio, cpu_ratio = med["ours"][0] / med["grep"][0], med["ours"][1] / med["grep"][1]
    print(f"  ratio ours/grep                        wall {wall_ratio:7.2f}            cpu {cpu_ratio:7.2f}")
    print(f"  peak RSS of verify                     {rss_mb:7.1f} MB")
    cpu_ok, rss_ok = cpu_ratio <= 1.0, rss_mb < 32
    print(f"  goal: CPU per byte <= grep's ... {'met' if cpu_ok else 'MISSED'}")
    print(f"  goal: peak RSS < 32 MB ......... {'met' if rss_ok else 'MISSED'}")
    ok = ok and cpu_ok and rss_ok
if check and not ok:
    sys.exit(1)
PY
