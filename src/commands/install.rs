//! `install` (being written).

use super::Context;
use crate::cli::InstallArgs;
use crate::error::{ExitCode, Failure};

pub async fn run(_ctx: &Context, _args: InstallArgs) -> anyhow::Result<ExitCode> {
    Err(Failure::new(
        ExitCode::Unexpected,
        "`install` is not available in this build yet",
    )
    .into())
}
