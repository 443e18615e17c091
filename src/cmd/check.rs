//! Validate everything a send depends on (`fortnight check`).

use anyhow::Result;

use super::Exit;
use crate::cli::CheckArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &CheckArgs) -> Result<Exit> {
    crate::digest::cmd_check(config, args)
}
