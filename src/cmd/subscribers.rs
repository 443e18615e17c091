//! Import, count and export the list (`fortnight subscribers`).

use anyhow::Result;

use super::Exit;
use crate::cli::SubscribersCommand;
use crate::config::Config;

pub fn run(config: &Config, args: &SubscribersCommand) -> Result<Exit> {
    crate::subscribers::cmd_subscribers(config, args)
}
