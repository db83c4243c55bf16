//! `render`: host facts (or a `--distro` preset) → plan → manifests, printed as multi-document
//! YAML, written to `--out-dir`, or printed as one JSON document with `-o json`.

use anyhow::Context as _;

use super::Context;
use crate::cli::{DistroPreset, RenderArgs};
use crate::error::{ExitCode, Failure};
use crate::host::{DistroKind, HostFacts};
use crate::{options, plan, render};

pub async fn run(ctx: &Context, args: RenderArgs) -> anyhow::Result<ExitCode> {
    let mut facts = facts_for_render(ctx, &args)?;
    if let Some(socket) = &args.socket.containerd_socket {
        // `--containerd-socket` is the first authority (design §2), also over a preset.
        facts.runtime.socket = Some(socket.clone());
    }
    let opts = options::plan_options(&args.plan);
    let plan = plan::make(&facts, &opts)?;
    let manifests = render::manifests(&plan, args.templates.as_deref())?;
    for warning in facts.warnings.iter().chain(&plan.warnings) {
        ctx.ui
            .note(format!("{} {warning}", ctx.ui.warn("warning:")));
    }

    let written = match &args.out_dir {
        Some(dir) => Some(
            render::write_out_dir(&manifests, dir, args.templates.as_deref())
                .with_context(|| format!("writing the manifests to {}", dir.display()))?,
        ),
        None => None,
    };

    if ctx.ui.json() {
        let mut doc = serde_json::json!({
            "ok": true,
            "changed": written.is_some(),
            "distribution": facts.distribution.kind,
            "runtime_socket": plan.runtime.host_socket,
            "manifests": manifests.objects(),
            "warnings": facts.warnings.iter().chain(&plan.warnings).collect::<Vec<_>>(),
        });
        if let (Some(files), Some(dir)) = (&written, &args.out_dir) {
            doc["out_dir"] = serde_json::json!(dir);
            doc["files"] = serde_json::json!(files);
        }
        ctx.ui.emit_json(&doc);
    } else if let (Some(files), Some(dir)) = (&written, &args.out_dir) {
        ctx.ui.note(format!(
            "wrote {} files to {} (build them with `kubectl kustomize {}`)",
            files.len(),
            dir.display(),
            dir.display()
        ));
    } else {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(manifests.to_yaml().as_bytes())
            .and_then(|()| out.flush())
            .context("writing the manifests to stdout")?;
    }
    Ok(ExitCode::Success)
}

/// The facts the plan is made from: a distribution preset (`--distro`, nothing read from this
/// host), or this host's detected facts.
pub fn facts_for_render(ctx: &Context, args: &RenderArgs) -> anyhow::Result<HostFacts> {
    if let Some(distro) = args.distro {
        return Ok(plan::preset(distro_kind(distro)));
    }
    detect_host(ctx, args)
}

/// Host detection for `render` without `--distro`.
///
/// `crate::host::detect` is not in this build yet, so this is a clear usage error instead of a
/// guess (rendering some preset for an undetected host would be wrong on exactly the hosts this
/// tool exists for).
fn detect_host(_ctx: &Context, args: &RenderArgs) -> anyhow::Result<HostFacts> {
    let hint = if args.socket.containerd_socket.is_some() {
        " (--containerd-socket alone does not say the cgroup driver; add --distro)"
    } else {
        ""
    };
    Err(Failure::new(
        ExitCode::Usage,
        format!(
            "render without --distro needs host detection, which this build does not have yet{hint}; render for a distribution's defaults with --distro microk8s|k3s|rke2|k0s|k8s-snap|kubeadm"
        ),
    )
    .into())
}

pub fn distro_kind(preset: DistroPreset) -> DistroKind {
    match preset {
        DistroPreset::Microk8s => DistroKind::Microk8s,
        DistroPreset::K3s => DistroKind::K3s,
        DistroPreset::Rke2 => DistroKind::Rke2,
        DistroPreset::K0s => DistroKind::K0s,
        DistroPreset::K8sSnap => DistroKind::K8sSnap,
        DistroPreset::Kubeadm => DistroKind::Kubeadm,
    }
}
