//! `status` (being written).

use super::Context;
use crate::cli::StatusArgs;
use crate::error::{ExitCode, Failure};

pub async fn run(_ctx: &Context, _args: StatusArgs) -> anyhow::Result<ExitCode> {
    Err(Failure::new(
        ExitCode::Unexpected,
        "`status` is not available in this build yet",
    )
    .into())
}
