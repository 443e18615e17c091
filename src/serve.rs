//! Serve: the HTTP endpoint behind every message's unsubscribe URL (RFC 8058 one-click).
//!
//! GET shows a confirmation page and never changes anything (link scanners fetch URLs);
//! POST with a valid token marks the subscriber unsubscribed. Meant to run behind an HTTPS
//! reverse proxy.

use anyhow::Result;

use crate::config::Config;

/// `fortnight serve`.
pub fn cmd_serve(config: &Config, args: &crate::cli::ServeArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight serve` is not implemented yet")
}
