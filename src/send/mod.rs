//! Send: deliver one issue to the list over SMTP (or to files in a dry-run).
//!
//! Plans the recipients from the list and the journal, throttles globally right before each
//! transaction, keeps `concurrency` SMTP connections (one per worker), classifies replies
//! (sent / deferred / failed / ambiguous / stop the run) and journals every state change
//! before moving on, so that a rerun after a crash resumes without resending.

use anyhow::Result;

use crate::config::Config;

/// `fortnight send`.
pub fn cmd_send(config: &Config, args: &crate::cli::SendArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight send` is not implemented yet")
}

pub mod deliver;
pub mod plan;
pub mod smtp;
pub mod throttle;
