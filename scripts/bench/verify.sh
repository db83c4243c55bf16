#!/usr/bin/env bash
# Benchmark of `cadvisor-setup verify --metrics-file` (issue 4, "Done when"): in the same run,
# against `grep -c container_label_io_kubernetes_pod_name` on the same cAdvisor-like file.
# Goals: no slower than grep; peak resident memory under 32 MB.
#
#   scripts/bench/verify.sh [SIZE_MB]        # default 200 MB; builds the release binary once
#   BIN=path/to/cadvisor-setup scripts/bench/verify.sh 50   # (or CADVISOR_SETUP_BIN, as scripts/bench.sh sets)
#   scripts/bench/verify.sh --check          # exit 1 when a goal is missed
#
# Both commands read the file from the page cache (it is read once first); each is run RUNS
# times (default 5), alternating, and the median wall time is compared.
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
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    echo "error: /usr/bin/time is missing (apt-get install time)" >&2
    exit 1
  fi
fi

work=$(mktemp -d /tmp/cs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
file="$work/metrics.txt"
python3 scripts/bench/gen_metrics.py "$size" >"$file"
cat "$file" >/dev/null

python3 - "$BIN" "$file" "$runs" "$check" <<'PY'
import re, statistics, subprocess, sys, time

bin_, path, runs, check = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
ours = [bin_, "verify", "--metrics-file", path]
grep = ["grep", "-c", "container_label_io_kubernetes_pod_name", path]

def timed(cmd):
    start = time.perf_counter()
    # stdout to a pipe, not /dev/null: GNU grep stops at the first match when its output is
    # /dev/null, which would time nothing.
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}")
    return elapsed

times = {"ours": [], "grep": []}
for _ in range(runs):
    times["ours"].append(timed(ours))
    times["grep"].append(timed(grep))

verbose = subprocess.run(["/usr/bin/time", "-v"] + ours, capture_output=True, text=True)
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", verbose.stderr).group(1))
size_mb = __import__("os").path.getsize(path) / 1e6

ours_s, grep_s = statistics.median(times["ours"]), statistics.median(times["grep"])
print(f"file: {size_mb:.0f} MB of cAdvisor-like metrics, {runs} runs each (median)")
print(f"  cadvisor-setup verify --metrics-file  {ours_s*1000:8.1f} ms  {size_mb/ours_s:7.0f} MB/s")
print(f"  grep -c                               {grep_s*1000:8.1f} ms  {size_mb/grep_s:7.0f} MB/s")
print(f"  ratio ours/grep                       {ours_s/grep_s:8.2f}")
print(f"  peak RSS of verify                    {rss_kb/1024:8.1f} MB")
speed_ok = ours_s <= grep_s
rss_ok = rss_kb < 32 * 1024
print(f"goal: no slower than grep ... {'met' if speed_ok else 'MISSED'}")
print(f"goal: peak RSS < 32 MB ....... {'met' if rss_ok else 'MISSED'}")
if check and not (speed_ok and rss_ok):
    sys.exit(1)
PY
