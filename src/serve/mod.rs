//! Serve: placeholder.
use crate::config::Config;
use anyhow::Result;
pub fn cmd_serve(config: &Config, args: &crate::cli::ServeArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight serve` is not implemented yet")
}
