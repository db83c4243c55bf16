//! `verify` (being written).

use super::Context;
use crate::cli::VerifyArgs;
use crate::error::{ExitCode, Failure};

pub async fn run(_ctx: &Context, _args: VerifyArgs) -> anyhow::Result<ExitCode> {
    Err(Failure::new(
        ExitCode::Unexpected,
        "`verify` is not available in this build yet",
    )
    .into())
}
