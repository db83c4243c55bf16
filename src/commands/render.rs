//! `render` (being written).

use super::Context;
use crate::cli::RenderArgs;
use crate::error::{ExitCode, Failure};

pub async fn run(_ctx: &Context, _args: RenderArgs) -> anyhow::Result<ExitCode> {
    Err(Failure::new(
        ExitCode::Unexpected,
        "`render` is not available in this build yet",
    )
    .into())
}
