//! Send an issue, a test copy or a dry-run (`fortnight send`): the arguments become
//! [`SendOptions`], a terminal implements the send's events (warnings, the confirmation
//! question, the progress display, Ctrl-C), and the [`SendReport`] is printed as text or as
//! the `--json` summary, with the exit code decided from it.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::output;
use super::progress::{self, human_duration, Progress};
use super::Exit;
use crate::base::IssueDate;
use crate::cli::SendArgs;
use crate::config::Config;
use crate::message::Severity;
use crate::send::deliver::{RunReport, Stats, StopReason};
use crate::send::{
    DailyCap, ListSummary, Mode, Note, Outbox, SendEvents, SendOptions, SendReport, SendWarning,
    Unsettled,
};

pub fn run(config: &Config, args: &SendArgs) -> Result<Exit> {
    let options = SendOptions {
        issue: args.issue,
        today: Some(super::today()?),
        dry_run: args.dry_run,
        out: args.out.clone(),
        limit: args.limit,
        to: args.to.clone(),
        yes: args.yes,
        resend_ambiguous: args.resend_ambiguous,
        allow_changed: args.allow_changed,
    };
    let mut terminal = Terminal { progress: None };
    let report = crate::send::run(config, &options, &mut terminal)?;
    let ending = Ending::of(&report);
    let notes: Vec<String> = report.notes.iter().map(note_text).collect();
    if report.mode != Mode::DryRun && report.run.is_none() {
        // Test copies the daily cap left no room for: only the cap note (also with --json).
        print_lines(&notes)?;
    } else if args.json {
        print_json(&Summary::of(&report, notes, ending.code()))?;
    } else {
        print_text(&report, &args.to, &notes)?;
    }
    match ending {
        Ending::Exit(exit) => Ok(exit),
        Ending::Fatal(msg) => Err(anyhow!(
            "{msg}\n(the journal records what was sent; fix the cause and run the same command \
             again to resume)"
        )),
    }
}

/// How a send that returned a report ends.
enum Ending {
    Exit(Exit),
    /// The run stopped on a fatal error (exit 2).
    Fatal(String),
}

impl Ending {
    fn of(report: &SendReport) -> Ending {
        if report
            .notes
            .iter()
            .any(|n| matches!(n, Note::NoSubscribers { .. }))
        {
            return Ending::Exit(Exit::Failures);
        }
        let Some(run) = &report.run else {
            return Ending::Exit(Exit::Success);
        };
        match &run.stopped {
            Some(StopReason::Fatal(m)) => Ending::Fatal(m.clone()),
            Some(StopReason::Interrupted) => Ending::Exit(Exit::Interrupted),
            _ if run.failed + run.ambiguous + run.deferred > 0 => Ending::Exit(Exit::Failures),
            // Ambiguous or deferred rows from earlier runs: not settled, also when this run
            // had nothing to send (cron must see it).
            _ if report.notes.iter().any(|n| matches!(n, Note::Unsettled(_))) => {
                Ending::Exit(Exit::Failures)
            }
            _ => Ending::Exit(Exit::Success),
        }
    }

    fn code(&self) -> u8 {
        match self {
            Ending::Exit(e) => e.code(),
            Ending::Fatal(_) => super::EXIT_FATAL,
        }
    }
}

/// The summary `--json` prints.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    issue: IssueDate,
    /// `send`, `test` (`--to`) or `dry-run`.
    mode: Mode,
    server: Option<&'a str>,
    list: Option<&'a ListSummary>,
    run: Option<&'a RunReport>,
    outbox: Option<&'a Outbox>,
    /// Rows left `in_flight` by an earlier run, now `ambiguous`.
    recovered_in_flight: u64,
    /// Addresses this run marked `bounced` in the list.
    marked_bounced: usize,
    notes: Vec<String>,
    exit_code: u8,
}

impl<'a> Summary<'a> {
    fn of(report: &'a SendReport, notes: Vec<String>, exit_code: u8) -> Summary<'a> {
        Summary {
            issue: report.issue,
            mode: report.mode,
            server: report.server.as_deref(),
            list: report.list.as_ref(),
            run: report.run.as_ref(),
            outbox: report.outbox.as_ref(),
            recovered_in_flight: report.recovered_in_flight,
            marked_bounced: report.marked_bounced,
            notes,
            exit_code,
        }
    }
}

fn print_json(summary: &Summary<'_>) -> Result<()> {
    output::json(summary)
}

fn print_lines(lines: &[String]) -> Result<()> {
    let mut out = output::report();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The human-readable report; `to` are the `--to` addresses as given.
fn print_text(report: &SendReport, to: &[String], notes: &[String]) -> Result<()> {
    let mut out = output::report();
    if let Some(outbox) = &report.outbox {
        writeln!(
            out,
            "Dry run of the issue of {}: {} message(s), {:.1} MB, written to {} in {} ({:.0} messages/s).",
            report.issue,
            outbox.messages,
            outbox.bytes as f64 / 1e6,
            outbox.dir.display(),
            human_duration(Duration::from_secs_f64(outbox.elapsed_secs)),
            outbox.messages as f64 / outbox.elapsed_secs.max(1e-9),
        )?;
        if !to.is_empty() {
            writeln!(out, "Test copies to: {}", to.join(", "))?;
        }
    }
    if let Some(list) = &report.list {
        for line in list_lines(list) {
            writeln!(out, "{line}")?;
        }
    }
    match &report.run {
        Some(run) if run.planned > 0 || run.stopped.is_some() => {
            let title = format!(
                "{} of the issue of {} via {}:",
                if report.mode == Mode::Test {
                    "Test copies"
                } else {
                    "Send"
                },
                report.issue,
                report.server.as_deref().unwrap_or_default()
            );
            progress::print_summary(&mut out, &title, run, notes)?;
        }
        _ => {
            for n in notes {
                writeln!(out, "{n}")?;
            }
        }
    }
    Ok(())
}

/// What the plan made of the list: the `List: …` line, what was skipped and why, retries.
fn list_lines(list: &ListSummary) -> Vec<String> {
    let mut lines = Vec::new();
    let suppressed: u64 = list.suppressed.values().sum();
    let mut line = format!(
        "List: {} rows, {} recipient(s) planned",
        list.rows, list.planned
    );
    if suppressed > 0 {
        let parts: Vec<String> = list
            .suppressed
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        line.push_str(&format!("; not subscribed: {}", parts.join(", ")));
    }
    lines.push(line);
    let s = &list.skipped;
    let mut skipped = Vec::new();
    for (n, what) in [
        (s.already_sent, "already sent"),
        (s.failed, "failed earlier (see `fortnight status`)"),
        (
            s.ambiguous,
            "ambiguous (may have been delivered; --resend-ambiguous resends them)",
        ),
        (s.deferred_not_due, "deferred, retry not yet due"),
        (s.beyond_limit, "left for a later run by --limit"),
    ] {
        if n > 0 {
            skipped.push(format!("{n} {what}"));
        }
    }
    if !skipped.is_empty() {
        lines.push(format!("Skipped: {}", skipped.join("; ")));
    }
    if let Some(t) = s.next_retry_at {
        lines.push(format!(
            "The next deferred retry is due at {} (run again after that).",
            t.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if list.retrying_deferred > 0 {
        lines.push(format!(
            "Retrying {} deferred recipient(s).",
            list.retrying_deferred
        ));
    }
    if list.resending_ambiguous > 0 {
        lines.push(format!(
            "Resending {} ambiguous message(s) with their original Message-ID.",
            list.resending_ambiguous
        ));
    }
    lines
}

/// A note as the person running the send reads it (text and `--json`).
fn note_text(note: &Note) -> String {
    match note {
        Note::Upcoming(dates) => {
            let dates: Vec<String> = dates.iter().map(ToString::to_string).collect();
            format!(
                "Upcoming (dated after today, not sent): {}; send one with `--issue DATE`.",
                dates.join(", ")
            )
        }
        Note::ThrowawayKey => format!(
            "{} is not set: the unsubscribe links in these files use a throwaway key (a real send \
             refuses to start without it).",
            crate::config::ENV_UNSUBSCRIBE_KEY
        ),
        Note::JournalHasSent(n) => format!(
            "The journal records {n} message(s) of this issue as sent: a real send would skip them \
             (the dry-run plans as if nothing had been sent)."
        ),
        Note::Estimate { messages, takes } => {
            let how_long = if *takes < Duration::from_millis(500) {
                "less than a second".to_string()
            } else {
                format!("about {}", human_duration(*takes))
            };
            format!("At the configured rate a real send of {messages} message(s) takes {how_long}.")
        }
        Note::Unthrottled { concurrency } => format!(
            "No rate limit is configured: a real send goes as fast as the server and {concurrency} connection(s) allow."
        ),
        Note::SpansDays { per_day, days } => format!(
            "[throttle] per_day = {per_day}: that is {days} days of sending (each run stops at the cap; \
             the next run continues)."
        ),
        Note::ServerNotContacted { host, port, tls } => format!(
            "Server: {host}:{port} (tls = {tls}); nothing was sent and no connection was opened."
        ),
        Note::RecoveredInFlight(n) => format!(
            "{n} message(s) were in flight when an earlier run ended: they are now \
             ambiguous (see `fortnight status`)."
        ),
        Note::NothingToSend(issue) => format!("Nothing to send for the issue of {issue}."),
        Note::NoSubscribers { file, rows } => format!(
            "The subscriber list `{}` has no subscribed address ({}): nothing was sent. Check \
             `[subscribers] file`, or import the list with `fortnight subscribers import`.",
            file.display(),
            crate::base::plural(*rows, "row")
        ),
        Note::DailyCap(cap) => cap_text(cap),
        Note::ListNotUpdated(e) => format!("warning: {e}"),
        Note::Unsettled(u) => unsettled_text(u),
        Note::ContentChanged(what) => format!(
            "The issue changed since its first copies went out, and --allow-changed sends the \
             changed issue to the rest (the journal notes it): {}.",
            what.join("; ")
        ),
        Note::MarkedBounced(n) => {
            format!("{n} address(es) were marked bounced in the list (5.1.x replies).")
        }
    }
}

/// Why the send exits 1 while the issue is not settled, and the commands that settle it.
fn unsettled_text(u: &Unsettled) -> String {
    let mut s = format!("The issue of {} is not settled:", u.issue);
    if u.ambiguous > 0 {
        s.push_str(&format!(
            " {} message(s) are ambiguous (the connection was lost after the final dot, or the \
             run died during the transaction): they may have been delivered. A plain rerun never \
             resends them; `fortnight send --issue {} --resend-ambiguous` does, with the same \
             Message-ID.",
            u.ambiguous, u.issue
        ));
    }
    if u.deferred > 0 {
        s.push_str(&format!(
            " {} message(s) are deferred: run `fortnight send --issue {}` again",
            u.deferred, u.issue
        ));
        match u.next_retry_at {
            Some(t) => s.push_str(&format!(" after {}", t.format("%Y-%m-%d %H:%M:%S UTC"))),
            None => s.push_str(" later"),
        }
        s.push_str(" to retry them.");
    }
    s.push_str(" `fortnight status` lists them; this command exits 1 until they are settled.");
    s
}

fn cap_text(cap: &DailyCap) -> String {
    let mut s = format!(
        "Daily cap reached: {} message(s) in the last 24 hours ([throttle] per_day = {}).",
        cap.used, cap.per_day
    );
    if cap.left_for_later > 0 {
        s.push_str(&format!(
            " {} recipient(s) are left for the next run",
            cap.left_for_later
        ));
        if let Some(t) = cap.next_slot {
            s.push_str(&format!(
                ", which can start sending after {}",
                t.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        s.push('.');
    }
    s
}

fn warning_text(warning: SendWarning) -> String {
    match warning {
        SendWarning::Articles(w)
        | SendWarning::ListNotUpdated(w)
        | SendWarning::NoInterrupts(w) => w,
        SendWarning::Deliverability {
            mode,
            severity,
            message,
        } => {
            let label = match (mode, severity) {
                (Mode::DryRun, Severity::Error) => {
                    "deliverability error (a real send refuses to start)"
                }
                (_, Severity::Error) => {
                    "deliverability error (a send to the list would be refused)"
                }
                (Mode::DryRun, _) => "deliverability warning",
                (_, _) => "deliverability",
            };
            format!("{label}: {message}")
        }
    }
}

/// The person at the terminal (or the script) running the send.
struct Terminal {
    progress: Option<Progress>,
}

impl SendEvents for Terminal {
    fn warning(&mut self, warning: SendWarning) {
        output::warn(warning_text(warning));
    }

    /// Asks on the terminal; without one (and without `--yes`) the send is refused.
    fn confirm(&mut self, question: &str) -> Result<bool> {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to send without confirmation: standard input is not a terminal \
                 (pass --yes to send from a script)"
            );
        }
        let mut err = output::messages();
        write!(err, "{question} [y/N] ")?;
        err.flush()?;
        drop(err);
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    fn delivery_started(&mut self, stats: Arc<Stats>, total: u64) {
        let tty = output::messages_to_terminal();
        self.progress = Some(Progress::start(stats, total, tty));
    }

    fn interrupted(&mut self, grace: Duration) {
        let _ = writeln!(
            output::messages(),
            "\nInterrupted: no new message starts; waiting up to {} for the transactions in \
             flight (Ctrl-C again to stop waiting).",
            human_duration(grace)
        );
    }

    fn delivery_finished(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
}
