//! Send: deliver one issue to the list over SMTP (or to files in a dry-run).
//!
//! [`run`] is the use case: it takes plain [`SendOptions`], tells the caller's
//! [`SendEvents`] what happens while it runs (warnings, the confirmation question, the live
//! counters, Ctrl-C) and returns a typed [`SendReport`]; it prints nothing and decides no
//! exit code (the command layer, `cmd::send`, does both).
//!
//! Plans the recipients from the list and the journal ([`plan`]), checks a real send before
//! it starts (`preflight`), throttles globally right before each transaction
//! ([`throttle`]), keeps `concurrency` SMTP connections, one per worker ([`smtp`],
//! [`deliver`]), follows the list for unsubscribes during the run (`watch`), classifies
//! replies (sent / deferred / failed / ambiguous / stop the run) and journals every state
//! change before moving on, so that a rerun after a crash resumes without resending
//! (`live`). A dry-run builds the same messages in the same order ([`compose`]) and writes
//! them to files (`dryrun`, `outbox`); it opens no socket.

pub mod compose;
mod content;
pub mod deliver;
mod dryrun;
mod live;
mod options;
mod outbox;
pub mod plan;
mod preflight;
mod report;
pub mod smtp;
pub mod throttle;
mod watch;

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;

use crate::articles::Catalog;
use crate::config::Config;
use crate::digest::Digest;

pub use options::{SendEvents, SendOptions};
pub use outbox::Outbox;
pub use report::{DailyCap, ListSummary, Mode, Note, SendReport, SendWarning, Unsettled};

/// Sends an issue (the newest by default) to the list, as test copies (`to`) or to files
/// (`dry_run`). An `Err` means nothing was sent (or the run could not start); a run that
/// stopped on a fatal error is reported with `run.stopped`.
pub fn run(config: &Config, opts: &SendOptions, events: &mut dyn SendEvents) -> Result<SendReport> {
    let catalog = Catalog::load(config)?;
    for w in &catalog.warnings {
        events.warning(SendWarning::Articles(w.clone()));
    }
    let today = opts
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let issue = catalog.select(opts.issue, today)?;
    // Before anything is written (outbox, journal): a missing list is an error, not empty.
    crate::subscribers::require_list(&config.subscribers_file())?;
    let upcoming: Vec<_> = match opts.issue {
        None => catalog.upcoming(today).iter().map(|i| i.date).collect(),
        Some(_) => Vec::new(),
    };
    let mut report = deliver_issue(config, opts, events, issue)?;
    if let Some(list) = report.list.as_ref().filter(|l| l.subscribed() == 0) {
        let note = Note::NoSubscribers {
            file: config.subscribers_file(),
            rows: list.rows,
        };
        report.notes.push(note);
    }
    if !upcoming.is_empty() {
        report.notes.push(Note::Upcoming(upcoming));
    }
    Ok(report)
}

/// Renders `issue` and sends it (or writes it to files) as `opts` say.
fn deliver_issue(
    config: &Config,
    opts: &SendOptions,
    events: &mut dyn SendEvents,
    issue: &crate::articles::Issue,
) -> Result<SendReport> {
    let now = Utc::now();
    let digest = Arc::new(
        Digest::prepare(config, issue, now)
            .with_context(|| format!("cannot render the issue of {}", issue.date))?,
    );
    if opts.dry_run {
        return dryrun::run(config, opts, events, issue, digest, now);
    }
    let mode = if opts.to.is_empty() {
        Mode::Send
    } else {
        Mode::Test
    };
    let ready = preflight::check(config, &digest, mode, events)?;
    // Test copies are exempt from the content lock.
    let fingerprint = match mode {
        Mode::Send => Some(content::Fingerprint::of(config, issue)?),
        _ => None,
    };
    let send = live::LiveSend {
        config,
        opts,
        issue: issue.date,
        digest,
        ready,
        now,
        fingerprint,
    };
    match mode {
        Mode::Test => send.send_test_copies(events),
        _ => send.send_to_list(events),
    }
}
