//! Render the digest of one issue to files (`fortnight preview`).

use anyhow::Result;

use super::Exit;
use crate::cli::PreviewArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &PreviewArgs) -> Result<Exit> {
    crate::digest::cmd_preview(config, args)
}
