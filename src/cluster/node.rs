//! This node seen through the API server: node info, configz, the kubelet's /metrics/cadvisor (being written).
