//! `fortnight check`: validate everything a send depends on, print one line per finding.
//!
//! Any error-level line makes the command fail (exit 2) with a summary; otherwise it ends
//! with the number of warnings. `--dns-records` prints the TXT records to publish instead.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;

use super::{output, Exit};
use crate::cli::CheckArgs;
use crate::config::Config;
use crate::ops::check;

pub fn run(config: &Config, args: &CheckArgs) -> Result<Exit> {
    let mut stdout = output::report();
    if args.dns_records {
        for record in crate::message::dns_records(config)? {
            writeln!(stdout, "; {}\n{}\n", record.note, record.zone_line())?;
        }
        return Ok(Exit::Success);
    }
    let report = check::check(config, Utc::now(), super::today()?);
    for (severity, msg) in &report.lines {
        writeln!(stdout, "{severity}: {}", crate::base::escape_terminal(msg))?;
    }
    let errors = report.errors();
    if errors > 0 {
        anyhow::bail!(
            "`fortnight check` found {errors} error(s) and {} warning(s); a send would be refused or go out broken",
            report.warnings()
        );
    }
    writeln!(stdout, "check passed with {} warning(s)", report.warnings())?;
    Ok(Exit::Success)
}
