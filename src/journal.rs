//! Journal: the SQLite record of every delivery attempt, which makes a rerun safe.
//!
//! One row per (issue, subscriber) with its state, attempts, last reply, Message-ID and
//! timestamps, in WAL mode. A row is durably `in_flight` before its SMTP transaction starts;
//! rows found `in_flight` at startup become `ambiguous`.

use anyhow::Result;

use crate::config::Config;

/// `fortnight status`.
pub fn cmd_status(config: &Config, args: &crate::cli::StatusArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight status` is not implemented yet")
}
