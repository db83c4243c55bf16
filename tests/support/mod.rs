//! Test harnesses shared by the integration tests (one file per tier: host.rs, render.rs,
//! cluster.rs, cli.rs). Each test binary uses only part of this, hence the allow.
#![allow(dead_code, unused_imports)]

pub mod containerd;
pub mod fake_api;
pub mod fuse;
pub mod host_root;
pub mod managed_fields;
pub mod prometheus;
pub mod real;
pub mod snapshot;
