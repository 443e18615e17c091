//! The one-click unsubscribe endpoint (`fortnight serve`).

use anyhow::Result;

use super::Exit;
use crate::cli::ServeArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &ServeArgs) -> Result<Exit> {
    crate::serve::cmd_serve(config, args)
}
