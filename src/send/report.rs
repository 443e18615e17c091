//! What a send reports: the [`SendReport`] a run returns (what the plan made of the list,
//! what the run or the dry-run did, typed [`Note`]s for the person running it) and the
//! [`SendWarning`]s it raises while it runs. The command layer words and prints them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::base::IssueDate;
use crate::config::TlsMode;
use crate::message::Severity;

use super::deliver::RunReport;
use super::outbox::Outbox;
use super::plan::{Plan, Skipped};

/// What kind of run a send was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The issue to the list.
    Send,
    /// Test copies (`--to`).
    Test,
    /// Messages written to files (`--dry-run`).
    DryRun,
}

/// The outcome of `send::run`. A run that stopped on a fatal error (authentication, policy,
/// the journal) is reported too: `run.stopped` says so.
#[derive(Debug)]
pub struct SendReport {
    pub issue: IssueDate,
    pub mode: Mode,
    /// The SMTP server: `host:port` in a dry-run, with TLS and user for a real send.
    pub server: Option<String>,
    /// What the plan made of the list (not for test copies).
    pub list: Option<ListSummary>,
    /// What the delivery run did; `None` for a dry-run, and for test copies when the daily
    /// cap left no room to start.
    pub run: Option<RunReport>,
    /// What a dry-run wrote.
    pub outbox: Option<Outbox>,
    /// Rows left `in_flight` by an earlier run, now `ambiguous`.
    pub recovered_in_flight: u64,
    /// Addresses this run marked `bounced` in the list.
    pub marked_bounced: usize,
    pub notes: Vec<Note>,
}

/// What the plan made of the list.
#[derive(Debug, Clone, Serialize)]
pub struct ListSummary {
    pub rows: u64,
    pub planned: u64,
    /// Rows that are not subscribed, by status (`unsubscribed`, `bounced`, …).
    pub suppressed: BTreeMap<String, u64>,
    pub skipped: Skipped,
    pub retrying_deferred: u64,
    pub resending_ambiguous: u64,
}

impl ListSummary {
    /// How many rows are subscribed (the rows not suppressed by their status).
    pub fn subscribed(&self) -> u64 {
        self.rows - self.suppressed.values().sum::<u64>()
    }

    pub(crate) fn of(p: &Plan) -> ListSummary {
        ListSummary {
            rows: p.list_rows,
            planned: p.planned,
            suppressed: p
                .suppressed
                .iter()
                .map(|(s, n)| (s.as_str().to_string(), *n))
                .collect(),
            skipped: p.skipped.clone(),
            retrying_deferred: p.retrying_deferred,
            resending_ambiguous: p.resending_ambiguous,
        }
    }
}

/// Something the person running the send should know, in the order it came up.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// Dry-run: the unsubscribe key is not set, the links use a throwaway key.
    ThrowawayKey,
    /// Dry-run: the journal records this many messages of the issue as sent.
    JournalHasSent(u64),
    /// Dry-run: how long a real send of `messages` takes at the configured rate.
    Estimate { messages: u64, takes: Duration },
    /// Dry-run: no rate limit is configured.
    Unthrottled { concurrency: u32 },
    /// Dry-run: the daily cap spreads a send of this size over `days` days.
    SpansDays { per_day: u32, days: u64 },
    /// Dry-run: the configured server, which was not contacted.
    ServerNotContacted {
        host: String,
        port: u16,
        tls: TlsMode,
    },
    /// Rows an earlier run left in flight, now ambiguous.
    RecoveredInFlight(u64),
    /// Issues dated after today (soonest first), not sent by this run.
    Upcoming(Vec<IssueDate>),
    /// The list has no subscribed address (`rows` rows in all): the run has failed, not
    /// succeeded with nothing to do.
    NoSubscribers { file: std::path::PathBuf, rows: u64 },
    /// Nobody is planned for the issue.
    NothingToSend(IssueDate),
    /// The daily cap (`[throttle] per_day`) stopped or prevented the run.
    DailyCap(DailyCap),
    /// After the run the list could not be updated (the journal keeps the updates).
    ListNotUpdated(String),
    /// The issue is not settled: the journal holds rows whose fate is unknown (`ambiguous`)
    /// or not decided yet (`deferred`), from this run or earlier ones. A send ends with
    /// exit 1 while this is so, also when it had nothing to send.
    Unsettled(Unsettled),
    /// `--allow-changed`: the issue changed since its first copies went out (what changed);
    /// the run went on and the journal notes it.
    ContentChanged(Vec<String>),
    /// Addresses marked bounced in the list.
    MarkedBounced(usize),
}

/// The rows of an issue that a person (or a later run) still has to settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    pub issue: IssueDate,
    /// May have been delivered; only `send --resend-ambiguous` resends them.
    pub ambiguous: u64,
    /// Retried by a later plain `send` once their retry time has passed.
    pub deferred: u64,
    /// The earliest retry time of the deferred rows.
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// Where the daily cap stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCap {
    /// Messages (possibly) accepted in the last 24 hours.
    pub used: u64,
    pub per_day: u32,
    /// Recipients left for the next run.
    pub left_for_later: u64,
    /// When the oldest counted message leaves the window.
    pub next_slot: Option<DateTime<Utc>>,
}

/// A problem that does not stop the send, raised as it is found.
#[derive(Debug, Clone, PartialEq)]
pub enum SendWarning {
    /// The articles folder has a problem (the issue is sent anyway).
    Articles(String),
    /// A deliverability finding about the sample message; in a `mode` where it does not
    /// stop the run (a dry-run, or test copies for an error).
    Deliverability {
        mode: Mode,
        severity: Severity,
        message: String,
    },
    /// The bounces the journal holds could not be written into the list before the run.
    ListNotUpdated(String),
    /// Ctrl-C cannot be listened for, so the run does not start.
    NoInterrupts(String),
}
