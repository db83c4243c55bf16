#!/usr/bin/env python3
"""Two more scrapes for the verify benchmark, each about SIZE_MB megabytes on stdout.

    python3 scripts/bench/gen_shapes.py unique 200 > /tmp/unique.txt
    python3 scripts/bench/gen_shapes.py real 200 [PODS] > /tmp/real.txt

unique: no label set ever repeats. Every series names a container of its own (its own `id`,
        `name` and container ID), pods never repeat (three containers each), label names vary
        from container to container (0 to 6 extra `container_label_*` of a pool, the union effect
        with `""`), values vary in length, some values hold escapes (`\\"`, `\\\\`, `\\n`), some
        series have no timestamp, some values are exponents, NaN or +Inf. No cache of label sets
        can help; the pod set overflows its bound.
real:   the families, label names and values of a real cAdvisor scrape
        (shared/fixtures/real-scrapes/cadvisor-microk8s-rendered.prom, MicroK8s 1.36, cAdvisor
        v0.56.2 with the rendered manifest) scaled to PODS pods (default 10,000): each pod copies
        one of the two real pods (its sandbox and containers, every family they appear in) with
        its own name, namespace, pod UID and container IDs; the system cgroups appear once. As in
        cAdvisor, each family lists every container (google/cadvisor lib/metrics/prometheus.go),
        so a container's label set repeats across families. Families are written in the real
        order until SIZE_MB is reached (the family being written is finished).
"""
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.environ.get(
    "REAL_SCRAPE",
    os.path.join(HERE, "../../tests/fixtures/cadvisor-microk8s-rendered.prom"),
)


def unique(size):
    out = sys.stdout
    pool = [f"container_label_{n}" for n in (
        "app", "app_kubernetes_io_name", "app_kubernetes_io_instance", "pod_template_hash",
        "controller_revision_hash", "io_kubernetes_pod_uid", "io_cri_containerd_kind",
        "helm_sh_chart", "tier", "release")]
    families = [
        ("container_cpu_usage_seconds_total", 'cpu="total"'),
        ("container_memory_working_set_bytes", ""),
        ("container_network_receive_bytes_total", 'interface="eth0"'),
        ("container_fs_reads_bytes_total", 'device="/dev/nvme0n1"'),
        ("container_memory_failures_total", 'failure_type="pgfault",scope="hierarchy"'),
        ("container_last_seen", ""),
    ]
    written = 0
    n = 0
    fam = 0
    while written < size:
        name, extra = families[fam % len(families)]
        family = f"{name}_{fam // len(families)}" if fam >= len(families) else name
        block = [f"# HELP {family} Synthetic, no label set repeats.\n# TYPE {family} gauge\n"]
        for _ in range(2000):
            n += 1
            pod_n = n // 3
            ns = f"team-{pod_n % 97:02d}" if n % 11 else "kube-system"
            pod = f"svc-{pod_n:x}-{'abcdef0123'[pod_n % 10] * (1 + pod_n % 7)}-{pod_n * 2654435761 % 99991:05d}"
            container = ["", "app", "istio-proxy"][n % 3]
            cid = f"{n * 0x9E3779B97F4A7C15 % (1 << 64):016x}" * 4
            uid = f"{pod_n * 0x2545F4914F6CDD1D % (1 << 64):016x}{pod_n:016x}"
            labels = []
            k = n % 7
            for j in range(len(pool)):
                if j < k:
                    value = f"v{n % (j + 3)}" if j % 2 else f"{pod[:5 + j]}"
                    if n % 53 == 0 and j == 0:
                        value = 'say \\"hi\\" \\\\ there\\n'
                    labels.append(f'{pool[(j + n) % len(pool)]}="{value}"')
            labels.sort()
            lbl = ",".join(labels)
            sep = "," if lbl else ""
            cg = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{cid}.scope"
            value = ["12.5", "1.2345e+07", "0", "NaN", "+Inf", str(n)][n % 6]
            ts = "" if n % 5 == 0 else f" {1784000000000 + n}"
            line = (
                f"{family}{{{lbl}{sep}container_label_io_kubernetes_container_name=\"{container}\","
                f"container_label_io_kubernetes_pod_name=\"{pod}\","
                f"container_label_io_kubernetes_pod_namespace=\"{ns}\","
                f"{extra}{',' if extra else ''}id=\"{cg}\",image=\"registry.example/img-{n % 13}:{n % 101}\","
                f"name=\"{cid}\"}} {value}{ts}\n"
            )
            block.append(line)
        text = "".join(block)
        out.write(text)
        written += len(text)
        fam += 1


LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}(.*)$")


def real(size, pods):
    out = sys.stdout
    families = []  # (header lines, [sample lines])
    with open(REAL) as f:
        for line in f:
            if line.startswith("# HELP"):
                families.append(([line], []))
            elif line.startswith("#"):
                families[-1][0].append(line)
            elif line.strip():
                families[-1][1].append(line)
    # The two real pods: every string that names them, replaced per copy.
    templates = {}
    for _, samples in families:
        for s in samples:
            m = re.search(r'container_label_io_kubernetes_pod_name="([^"]+)"', s)
            if m:
                templates.setdefault(m.group(1), None)
    real_pods = sorted(templates)
    ids = {}
    for _, samples in families:
        for s in samples:
            m = re.search(r'container_label_io_kubernetes_pod_name="([^"]+)"', s)
            if not m:
                continue
            pod = m.group(1)
            ns = re.search(r'container_label_io_kubernetes_pod_namespace="([^"]*)"', s).group(1)
            uid = re.search(r'/pod([0-9a-f-]{36})', s).group(1)
            ids.setdefault(pod, {"ns": ns, "uid": uid, "cids": set()})
            ids[pod]["cids"].update(re.findall(r"[0-9a-f]{64}", s))

    def copy(i):
        src = real_pods[i % len(real_pods)]
        t = ids[src]
        h = hashlib.sha256(f"pod{i}".encode()).hexdigest()
        subst = {
            src: f"{src.split('-')[0]}-{i:05d}-{h[:5]}",
            f'pod_namespace="{t["ns"]}"': f'pod_namespace="ns-{i % 50:02d}"',
            t["uid"]: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
        }
        for cid in t["cids"]:
            subst[cid] = hashlib.sha256(f"{i}{cid}".encode()).hexdigest()
        return src, subst

    copies = [copy(i) for i in range(pods)]
    written = 0
    for header, samples in families:
        block = list(header)
        by_pod = {}
        for s in samples:
            m = re.search(r'container_label_io_kubernetes_pod_name="([^"]+)"', s)
            if m:
                by_pod.setdefault(m.group(1), []).append(s)
            else:
                block.append(s)
        for src, subst in copies:
            for s in by_pod.get(src, []):
                for a, b in subst.items():
                    s = s.replace(a, b)
                block.append(s)
        text = "".join(block)
        out.write(text)
        written += len(text)
        if written >= size:
            break


def main():
    shape = sys.argv[1]
    size = int(float(sys.argv[2] if len(sys.argv) > 2 else "200") * 1_000_000)
    if shape == "unique":
        unique(size)
    elif shape == "real":
        real(size, int(sys.argv[3]) if len(sys.argv) > 3 else 10_000)
    else:
        sys.exit(f"unknown shape {shape!r}: unique or real")


if __name__ == "__main__":
    main()
