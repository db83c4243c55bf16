//! cadvisor-setup: make cAdvisor work on MicroK8s and every node that hides containerd's socket.
//!
//! The pipeline (see README "How it works"):
//! `host::detect` → `plan::make` → `render::manifests` → `cluster::apply` → `cluster::rollout`
//! → `verify` (`cluster::proxy` + `metrics::scan`) → `ui::report`. Only `commands` knows the order.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod deadline;
pub mod error;
pub mod host;
pub mod input;
pub mod metrics;
pub mod options;
pub mod plan;
pub mod render;
pub mod selector;
pub mod settings;
pub mod ui;
pub mod validate;
pub mod values;
pub mod verify;
