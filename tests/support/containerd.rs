//! Real containerd harness (being written).
