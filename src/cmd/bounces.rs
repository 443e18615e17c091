//! Apply bounces and complaints from a mailbox (`fortnight bounces`).

use anyhow::Result;

use super::Exit;
use crate::cli::BouncesArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &BouncesArgs) -> Result<Exit> {
    crate::bounces::cmd_bounces(config, args)
}
