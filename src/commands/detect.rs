//! `detect` (being written).

use super::Context;
use crate::cli::DetectArgs;
use crate::error::{ExitCode, Failure};

pub async fn run(_ctx: &Context, _args: DetectArgs) -> anyhow::Result<ExitCode> {
    Err(Failure::new(
        ExitCode::Unexpected,
        "`detect` is not available in this build yet",
    )
    .into())
}
