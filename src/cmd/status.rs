//! What the journal knows of an issue (`fortnight status`): the journal's
//! [`StatusReport`] as a table or as JSON.

use std::io::Write;

use anyhow::Result;

use super::{output, Exit};
use crate::cli::StatusArgs;
use crate::config::Config;
use crate::journal::{ProblemRow, State, StatusReport};

pub fn run(config: &Config, args: &StatusArgs) -> Result<Exit> {
    let report = crate::journal::status(&config.journal_path(), args.issue)?;
    let mut out = output::report();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print(&mut out, &report)?;
    }
    Ok(Exit::Success)
}

fn print(out: &mut impl Write, report: &StatusReport) -> Result<()> {
    let Some(issue) = &report.issue else {
        writeln!(
            out,
            "Nothing has been sent yet (no deliveries in the journal `{}`).",
            report.journal
        )?;
        return Ok(());
    };
    let c = &report.counts;
    writeln!(out, "Issue {issue} (journal `{}`)", report.journal)?;
    for (name, n) in [
        ("sent", c.sent),
        ("deferred", c.deferred),
        ("failed", c.failed),
        ("ambiguous", c.ambiguous),
        ("in flight", c.in_flight),
        ("pending", c.pending),
        ("suppressed", c.suppressed),
    ] {
        writeln!(out, "  {name:<11} {n:>8}")?;
    }
    writeln!(out, "  {:<11} {:>8}", "total", c.total())?;
    if report.test_copies > 0 {
        writeln!(out, "  ({} test copies sent with --to)", report.test_copies)?;
    }
    if c.in_flight > 0 {
        writeln!(
            out,
            "\n{} row(s) are in flight: a send is running, or one was killed (the next run \
             marks them ambiguous).",
            c.in_flight
        )?;
    }
    if !report.problems.is_empty() {
        writeln!(out, "\nNeeds attention:")?;
        for p in &report.problems {
            writeln!(out, "{}", problem_line(p))?;
        }
        if c.ambiguous > 0 {
            writeln!(
                out,
                "\nAmbiguous messages may have been delivered; `fortnight send --resend-ambiguous` \
                 resends them with the same Message-ID."
            )?;
        }
    }
    Ok(())
}

/// `  failed    a@b.org  (1 attempt): 550 5.1.1 …`, with the retry time of a deferred row.
fn problem_line(p: &ProblemRow) -> String {
    let mut line = format!(
        "  {:<9} {}  ({} attempt{})",
        p.state,
        p.address,
        p.attempts,
        if p.attempts == 1 { "" } else { "s" }
    );
    if let Some(r) = &p.last_reply {
        line.push_str(": ");
        line.push_str(r);
    }
    if p.state == State::Deferred {
        if let Some(n) = &p.next_attempt_at {
            line.push_str(&format!(" [retry after {n}]"));
        }
    }
    line
}
