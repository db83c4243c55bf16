//! `uninstall` (being written).

use super::Context;
use crate::cli::UninstallArgs;
use crate::error::{ExitCode, Failure};

pub async fn run(_ctx: &Context, _args: UninstallArgs) -> anyhow::Result<ExitCode> {
    Err(Failure::new(
        ExitCode::Unexpected,
        "`uninstall` is not available in this build yet",
    )
    .into())
}
