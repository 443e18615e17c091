//! Unsubscribe addresses or a token (`fortnight unsubscribe`).

use anyhow::Result;

use super::Exit;
use crate::cli::UnsubscribeArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &UnsubscribeArgs) -> Result<Exit> {
    crate::subscribers::cmd_unsubscribe(config, args)
}
