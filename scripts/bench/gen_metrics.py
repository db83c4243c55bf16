#!/usr/bin/env python3
"""Writes a cAdvisor-like /metrics payload of about SIZE_MB megabytes to stdout.

Shape from google/cadvisor lib/metrics/prometheus.go (see ../shared reference notes): every
container series carries the union of label names (the "union effect"), so system cgroups get
`container_label_*=""`; container series carry an explicit millisecond timestamp; pod containers
and their sandboxes are labelled, system slices and the root cgroup are `id`-only.

    python3 scripts/bench/gen_metrics.py 200 > /tmp/metrics.txt
"""
import hashlib
import sys

FAMILIES = [
    ("container_cpu_usage_seconds_total", "counter", 'cpu="total",'),
    ("container_cpu_user_seconds_total", "counter", ""),
    ("container_cpu_system_seconds_total", "counter", ""),
    ("container_cpu_cfs_periods_total", "counter", ""),
    ("container_cpu_cfs_throttled_periods_total", "counter", ""),
    ("container_memory_usage_bytes", "gauge", ""),
    ("container_memory_working_set_bytes", "gauge", ""),
    ("container_memory_rss", "gauge", ""),
    ("container_memory_cache", "gauge", ""),
    ("container_memory_failures_total", "counter", 'failure_type="pgfault",scope="container",'),
    ("container_network_receive_bytes_total", "counter", 'interface="eth0",'),
    ("container_network_transmit_bytes_total", "counter", 'interface="eth0",'),
    ("container_fs_reads_bytes_total", "counter", 'device="/dev/sda",'),
    ("container_fs_writes_bytes_total", "counter", 'device="/dev/sda",'),
    ("container_oom_events_total", "counter", ""),
    ("container_last_seen", "gauge", ""),
    ("container_start_time_seconds", "gauge", ""),
    ("container_spec_memory_limit_bytes", "gauge", ""),
    ("container_tasks_state", "gauge", 'state="sleeping",'),
    ("container_processes", "gauge", ""),
]


def hexid(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


def containers():
    """(label text without the metric name) for ~120 pod containers, sandboxes and system cgroups."""
    out = []
    for p in range(40):
        ns = ["default", "kube-system", "loki", "monitoring"][p % 4]
        pod = f"app-{p:03d}-66c8f46897-{hexid(str(p))[:5]}"
        uid = hexid("uid" + str(p))[:32]
        cg = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice"
        for c, kind in [("", "sandbox"), ("nginx", "container"), ("sidecar", "container")]:
            cid = hexid(pod + c)
            image = "registry.k8s.io/pause:3.10" if kind == "sandbox" else f"docker.io/library/{c or 'x'}:1.27"
            out.append(
                f'container_label_io_cri_containerd_kind="{kind}",'
                f'container_label_io_kubernetes_container_name="{c}",'
                f'container_label_io_kubernetes_pod_name="{pod}",'
                f'container_label_io_kubernetes_pod_namespace="{ns}",'
                f'container_label_io_kubernetes_pod_uid="{uid}",'
                f'{{extra}}id="{cg}/cri-containerd-{cid}.scope",image="{image}",name="{cid}"'
            )
    for s in ["/", "/system.slice", "/system.slice/containerd.service", "/system.slice/snap.microk8s.daemon-kubelite.service", "/user.slice"]:
        out.append(
            'container_label_io_cri_containerd_kind="",container_label_io_kubernetes_container_name="",'
            'container_label_io_kubernetes_pod_name="",container_label_io_kubernetes_pod_namespace="",'
            f'container_label_io_kubernetes_pod_uid="",{{extra}}id="{s}",image="",name=""'
        )
    return out


def main():
    size = int(float(sys.argv[1] if len(sys.argv) > 1 else "200") * 1_000_000)
    out = sys.stdout
    labels = containers()
    written = 0
    round_ = 0
    while written < size:
        for name, kind, extra in FAMILIES:
            family = f"{name}_{round_}" if round_ else name
            block = [f"# HELP {family} Synthetic {kind} for the verify benchmark.\n# TYPE {family} {kind}\n"]
            for i, lbl in enumerate(labels):
                value = (i * 7919 + round_ * 104729) % 1_000_003 / 7.0
                block.append(f"{family}{{{lbl.replace('{extra}', extra)}}} {value:.6g} 1784000000000\n")
            text = "".join(block)
            out.write(text)
            written += len(text)
            if written >= size:
                break
        round_ += 1


if __name__ == "__main__":
    main()
