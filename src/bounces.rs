//! Bounces: delivery status notifications and complaint reports in, list suppressions out.
//!
//! Reads an mbox file or a Maildir, recognises RFC 3464 DSNs (and common non-standard
//! bounces) and RFC 5965 ARF complaints, and marks addresses `bounced` or `complained`.

use anyhow::Result;

use crate::config::Config;

/// `fortnight bounces`.
pub fn cmd_bounces(config: &Config, args: &crate::cli::BouncesArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight bounces` is not implemented yet")
}
