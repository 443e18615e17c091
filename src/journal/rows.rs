//! What the journal records, as typed values: the state of a delivery row, the kind of an
//! attempt, and the rows and counts its queries return. How they are spelled in SQL is
//! left to `journal/sql.rs`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::base::IssueDate;
use crate::subscribers::Status;

/// The state of one (issue, subscriber) row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Planned by a run, not attempted yet.
    Pending,
    /// Its SMTP transaction started and has not ended (or the process died during it).
    InFlight,
    /// The server accepted the message (2xx after the final `.`).
    Sent,
    /// A temporary failure; retried once `next_attempt_at` passed.
    Deferred,
    /// A permanent failure; never retried for this issue.
    Failed,
    /// The connection was lost after the final `.`: it may or may not have been accepted.
    Ambiguous,
    /// The address left the list (unsubscribed, bounced, complained) before it was sent.
    Suppressed,
}

impl State {
    const ALL: [State; 7] = [
        State::Pending,
        State::InFlight,
        State::Sent,
        State::Deferred,
        State::Failed,
        State::Ambiguous,
        State::Suppressed,
    ];

    /// The name people and the database see (`in_flight`, `sent`, …).
    pub(super) fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "in_flight",
            State::Sent => "sent",
            State::Deferred => "deferred",
            State::Failed => "failed",
            State::Ambiguous => "ambiguous",
            State::Suppressed => "suppressed",
        }
    }

    pub(super) fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for State {
    /// The state's name (`in_flight`, `sent`, …), padded as the format asks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Whether an attempt delivered the issue to the list or a `send --to` test copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    Delivery,
    Test,
}

/// What the journal knows about one subscriber of one issue (used for planning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowSummary {
    pub state: State,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Counts by state for one issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: u64,
    pub in_flight: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub ambiguous: u64,
    pub suppressed: u64,
}

impl Counts {
    pub(super) fn add(&mut self, state: State, n: u64) {
        match state {
            State::Pending => self.pending += n,
            State::InFlight => self.in_flight += n,
            State::Sent => self.sent += n,
            State::Deferred => self.deferred += n,
            State::Failed => self.failed += n,
            State::Ambiguous => self.ambiguous += n,
            State::Suppressed => self.suppressed += n,
        }
    }
    pub fn total(&self) -> u64 {
        self.pending
            + self.in_flight
            + self.sent
            + self.deferred
            + self.failed
            + self.ambiguous
            + self.suppressed
    }
}

/// A row that needs a human's attention: failed, deferred or ambiguous, with its reply.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemRow {
    pub address: String,
    pub state: State,
    pub attempts: u32,
    pub last_reply: Option<String>,
    pub message_id: Option<String>,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
}

/// One full row of `deliveries` (for tests and audits).
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub issue: IssueDate,
    pub subscriber: String,
    pub address: String,
    pub state: State,
    pub attempts: u32,
    pub last_reply: Option<String>,
    pub message_id: Option<String>,
    pub first_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
}

/// One `send --to` test copy.
#[derive(Debug, Clone, Serialize)]
pub struct TestCopy {
    pub address: String,
    pub outcome: State,
    pub reply: Option<String>,
    pub started_at: String,
}

/// A status the list must get (e.g. `bounced`), recorded with the delivery that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUpdate {
    pub issue: IssueDate,
    pub key: String,
    pub address: String,
    pub status: Status,
}

/// A subscriber as the journal identifies it: the case-insensitive key and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalKey {
    pub key: String,
    pub address: String,
}
