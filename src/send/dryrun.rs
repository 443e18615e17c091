//! Dry-run: the same plan and the same messages as a real send, written to files instead
//! ([`super::outbox`]), with notes on what a real send would do (what the journal would
//! skip, how long the configured rate takes, the server). It opens no socket.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::articles::Issue;
use crate::base::IssueDate;
use crate::config::Config;
use crate::digest::{Digest, Rendered};
use crate::journal::Journal;
use crate::message::deliverability_findings;
use crate::token::KeySource;

use super::compose::{render_sample, Composers};
use super::options::{SendEvents, SendOptions};
use super::outbox::{self, Outbox};
use super::plan::{self, PlanOptions};
use super::report::{ListSummary, Mode, Note, SendReport, SendWarning};
use super::throttle;

/// Writes the issue's messages for the list (or the `--to` addresses) into the outbox.
pub(crate) fn run(
    config: &Config,
    opts: &SendOptions,
    events: &mut dyn SendEvents,
    issue: &Issue,
    digest: Arc<Digest>,
    now: DateTime<Utc>,
) -> Result<SendReport> {
    let (keyring, source) = crate::token::keyring_from_env(config.unsubscribe.as_ref(), true)?;
    let mut notes = Vec::new();
    if source == KeySource::Throwaway {
        notes.push(Note::ThrowawayKey);
    }
    let rendered = render_sample(config, &keyring, &digest)?;
    for f in deliverability_findings(config, &rendered) {
        events.warning(SendWarning::Deliverability {
            mode: Mode::DryRun,
            severity: f.severity,
            message: f.message,
        });
    }

    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => default_outbox(config, issue.date),
    };
    let composers = Composers {
        config: config.clone(),
        issue: issue.date,
        digest,
        keyring,
        now,
        test_copies: !opts.to.is_empty(),
        recorded_ids: None,
    };
    let (outbox, list) = write_files(config, opts, &dir, &rendered, composers)?;

    if opts.to.is_empty() {
        notes.extend(journal_note(config, issue.date)?);
    }
    notes.extend(real_send_notes(config, outbox.messages as u64));
    Ok(SendReport {
        issue: issue.date,
        mode: Mode::DryRun,
        server: config
            .smtp
            .as_ref()
            .map(|s| format!("{}:{}", s.host, s.port())),
        list,
        run: None,
        outbox: Some(outbox),
        recovered_in_flight: 0,
        marked_bounced: 0,
        notes,
    })
}

/// The default dry-run folder for an issue (`outbox/ISSUE/` next to the config file).
fn default_outbox(config: &Config, issue: IssueDate) -> PathBuf {
    config.resolve(Path::new("outbox")).join(issue.to_string())
}

/// Writes `digest.html`, `digest.txt` and every message into `dir`, planning the list while
/// the messages are written (see [`outbox::write_outbox`]); old message files the new run
/// did not rewrite are removed.
fn write_files(
    config: &Config,
    opts: &SendOptions,
    dir: &Path,
    rendered: &Rendered,
    composers: Composers,
) -> Result<(Outbox, Option<ListSummary>)> {
    let stale = outbox::prepare_dir(dir)?;
    for (name, text) in [
        ("digest.html", &rendered.html),
        ("digest.txt", &rendered.text),
    ] {
        let path = dir.join(name);
        crate::base::files::create_private(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4);
    let now = composers.now;
    let mut list: Option<ListSummary> = None;
    let list_path = config.subscribers_file();
    let (outbox, names) = outbox::write_outbox(dir, composers.shared(), threads, |push| {
        if !opts.to.is_empty() {
            for p in plan::test_recipients(&list_path, &opts.to)? {
                push(p.subscriber)?;
            }
            return Ok(());
        }
        let plan_opts = PlanOptions {
            limit: opts.limit,
            resend_ambiguous: false,
            now,
        };
        let p = plan::plan_file_into(&list_path, None, &plan_opts, |r| push(r.subscriber))
            .with_context(|| {
                format!("cannot read the subscriber list `{}`", list_path.display())
            })?;
        list = Some(ListSummary::of(&p));
        Ok(())
    })?;
    stale.remove_unwritten(dir, &names)?;
    Ok((outbox, list))
}

/// What a real send would skip, when a journal exists (the files hold everyone).
fn journal_note(config: &Config, issue: IssueDate) -> Result<Option<Note>> {
    let Ok(Some(j)) = Journal::open_existing(&config.journal_path()) else {
        return Ok(None);
    };
    let sent = j.counts(issue)?.sent;
    Ok((sent > 0).then_some(Note::JournalHasSent(sent)))
}

/// How a real send of `n` messages would go: its duration at the configured rate, the days
/// the daily cap spreads it over, the server.
fn real_send_notes(config: &Config, n: u64) -> Vec<Note> {
    let mut notes = Vec::new();
    notes.push(match throttle::estimate(n, &config.throttle) {
        Some(takes) => Note::Estimate { messages: n, takes },
        None => Note::Unthrottled {
            concurrency: config.throttle.concurrency,
        },
    });
    if let Some(cap) = config.throttle.per_day {
        if n > u64::from(cap) {
            notes.push(Note::SpansDays {
                per_day: cap,
                days: n.div_ceil(u64::from(cap)),
            });
        }
    }
    if let Some(smtp) = &config.smtp {
        notes.push(Note::ServerNotContacted {
            host: smtp.host.clone(),
            port: smtp.port(),
            tls: smtp.tls,
        });
    }
    notes
}
