//! What the journal knows of an issue (`fortnight status`).

use anyhow::Result;

use super::Exit;
use crate::cli::StatusArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &StatusArgs) -> Result<Exit> {
    crate::journal::cmd_status(config, args)
}
