//! Apply bounces and complaints from a mailbox (`fortnight bounces`): the warnings, then
//! the report (counts, changes, then every finding by kind).

use std::io::Write;

use anyhow::Result;

use super::{output, Exit};
use crate::bounces::{self, BounceReport, Finding, IssueSource, StatusCode};
use crate::cli::BouncesArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &BouncesArgs) -> Result<Exit> {
    let today = chrono::Utc::now().date_naive();
    let report = bounces::process(
        config,
        &args.sources,
        args.dry_run,
        args.trust_unsigned,
        today,
    )?;
    for w in &report.warnings {
        output::warn(w);
    }
    let mut out = output::report();
    write_report(&report, config.bounces.soft_bounce_limit, &mut out)?;
    Ok(Exit::Success)
}

/// Writes the human-readable report.
fn write_report(report: &BounceReport, limit: u32, out: &mut impl Write) -> std::io::Result<()> {
    write_counts(report, out)?;
    write_changes(report, out)?;
    write_findings(report, limit, out)?;
    write_left_alone(report, out)?;
    if report.dry_run {
        writeln!(out, "\ndry run: nothing was changed")?;
    }
    Ok(())
}

fn code(s: Option<StatusCode>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

/// `read N messages` and one count per kind of report.
fn write_counts(report: &BounceReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "read {} messages", report.messages)?;
    let rows: [(&str, usize, &str); 8] = [
        ("hard bounces", report.hard.len(), ""),
        ("soft bounces", report.soft.len(), ""),
        ("complaints", report.complaints.len(), ""),
        (
            "policy rejections",
            report.policy.len(),
            "  (not held against the address)",
        ),
        ("delays", report.delayed, "  (not bounces yet)"),
        (
            "unrecognised",
            report.unrecognised.len(),
            "  (not a bounce or a complaint: ignored)",
        ),
        ("no recipient found", report.incomplete.len(), ""),
        ("not in the list", report.not_in_list.len(), ""),
    ];
    for (label, n, note) in rows {
        writeln!(out, "  {:<20}{n:>5}{note}", format!("{label}:"))?;
    }
    if !report.untrusted.is_empty() {
        writeln!(
            out,
            "  {:<20}{:>5}  (no valid token: not applied)",
            "untrusted:",
            report.untrusted.len()
        )?;
    }
    if report.other_feedback > 0 {
        writeln!(
            out,
            "  {:<20}{:>5}  (not acted on)",
            "other feedback:", report.other_feedback
        )?;
    }
    Ok(())
}

/// The status changes made (or that a dry run would make).
fn write_changes(report: &BounceReport, out: &mut impl Write) -> std::io::Result<()> {
    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    writeln!(out, "\n{verb}: {}", report.changes.len())?;
    for c in &report.changes {
        writeln!(
            out,
            "  {:<11} {}  ({}, was {})",
            c.to.as_str(),
            c.email,
            c.reason,
            c.from
        )?;
    }
    Ok(())
}

/// Hard bounces, soft bounces, complaints and policy rejections, one line each.
fn write_findings(report: &BounceReport, limit: u32, out: &mut impl Write) -> std::io::Result<()> {
    if !report.hard.is_empty() {
        writeln!(out, "\nhard bounces:")?;
        for f in &report.hard {
            writeln!(
                out,
                "  {}  {}  {}  [{}]",
                f.address,
                code(f.status),
                f.diagnostic,
                f.origin
            )?;
        }
    }
    if !report.soft.is_empty() {
        writeln!(out, "\nsoft bounces:")?;
        for s in &report.soft {
            let how = match s.issue_source {
                IssueSource::MessageId => "",
                IssueSource::ReportDate => " (dated by the report)",
            };
            writeln!(
                out,
                "  {}  {}  issue {}{how}  {} of {} consecutive  {}",
                s.finding.address,
                code(s.finding.status),
                s.issue,
                s.consecutive,
                limit,
                s.finding.diagnostic
            )?;
        }
    }
    if !report.complaints.is_empty() {
        writeln!(out, "\ncomplaints:")?;
        for f in &report.complaints {
            writeln!(out, "  {}  [{}]", f.address, f.origin)?;
        }
    }
    if !report.unsubscribe_requests.is_empty() {
        writeln!(out, "\nunsubscribe requests by mail:")?;
        for f in &report.unsubscribe_requests {
            writeln!(out, "  {}  [{}]", f.address, f.origin)?;
        }
    }
    if !report.rejected_requests.is_empty() {
        writeln!(out, "\nmails to the unsubscribe address not acted on:")?;
        for (origin, why) in &report.rejected_requests {
            writeln!(out, "  [{origin}] {why}")?;
        }
    }
    write_policy(&report.policy, out)
}

fn write_policy(policy: &[Finding], out: &mut impl Write) -> std::io::Result<()> {
    if policy.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\npolicy rejections (check SPF/DKIM/DMARC, blocklists and content; the addresses stay subscribed):"
    )?;
    for f in policy {
        writeln!(out, "  {}  {}  {}", f.address, code(f.status), f.diagnostic)?;
    }
    Ok(())
}

/// What was reported but changed nothing: already suppressed, not in the list, nobody named.
fn write_left_alone(report: &BounceReport, out: &mut impl Write) -> std::io::Result<()> {
    if !report.unchanged.is_empty() {
        writeln!(out, "\nalready suppressed, left as they are:")?;
        for (a, s, why) in &report.unchanged {
            writeln!(out, "  {a}  {s}  ({why})")?;
        }
    }
    if !report.not_in_list.is_empty() {
        writeln!(out, "\nnot in the list (nothing changed):")?;
        for (a, what) in &report.not_in_list {
            writeln!(out, "  {a}  {what}")?;
        }
    }
    if !report.untrusted.is_empty() {
        writeln!(
            out,
            "\nuntrusted, not applied (no valid unsubscribe token; --trust-unsigned applies them):"
        )?;
        for f in &report.untrusted {
            writeln!(out, "  {}  {}  [{}]", f.address, f.diagnostic, f.origin)?;
        }
    }
    if !report.incomplete.is_empty() {
        writeln!(out, "\nbounces naming no recognisable recipient:")?;
        for o in &report.incomplete {
            writeln!(out, "  {o}")?;
        }
    }
    Ok(())
}
