//! Send an issue, a test copy or a dry-run (`fortnight send`).

use anyhow::Result;

use super::Exit;
use crate::cli::SendArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &SendArgs) -> Result<Exit> {
    crate::send::cmd_send(config, args)
}
