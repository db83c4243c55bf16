//! Raw flags (`cli`) → validated options with the source of each value
//! (flag > env > `--config` file > detected default).

use crate::cli::PlanArgs;
use crate::plan::PlanOptions;

/// Applies the built-in defaults to what the user gave.
pub fn plan_options(args: &PlanArgs) -> PlanOptions {
    let defaults = PlanOptions::default();
    PlanOptions {
        namespace: args.namespace.clone().unwrap_or(defaults.namespace),
        image: args.image.clone().unwrap_or(defaults.image),
        metrics: args.metrics.as_ref().map(|m| {
            m.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        extra_labels: args.extra_labels.clone(),
        containerd_namespace: args.containerd_namespace.clone(),
        cpu_request: args.cpu_request.clone(),
        cpu_limit: args.cpu_limit.clone(),
        memory_request: args.memory_request.clone(),
        memory_limit: args.memory_limit.clone(),
        privileged: args.privileged.unwrap_or(false),
        service_monitor: matches!(
            args.service_monitor,
            Some(crate::cli::ServiceMonitorMode::Always)
        ),
    }
}
