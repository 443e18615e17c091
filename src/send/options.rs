//! What a caller gives a send: the plain [`SendOptions`] and the [`SendEvents`] it is told
//! about while the send runs (warnings, the confirmation question, the live counters of a
//! delivery run, Ctrl-C). The command layer implements the events for a terminal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::NaiveDate;

use crate::base::IssueDate;

use super::deliver::Stats;
use super::report::SendWarning;

/// How to send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The issue; default: the newest one dated on or before `today`.
    pub issue: Option<IssueDate>,
    /// The date taken as today; `None`: the local date of the system clock.
    pub today: Option<NaiveDate>,
    /// Write the messages to files instead of sending.
    pub dry_run: bool,
    /// The dry-run's folder (default `outbox/ISSUE/` next to the config file).
    pub out: Option<PathBuf>,
    /// Handle at most this many recipients.
    pub limit: Option<u64>,
    /// Send test copies to these addresses only.
    pub to: Vec<String>,
    /// Do not ask for confirmation.
    pub yes: bool,
    /// Also resend messages whose delivery is ambiguous.
    pub resend_ambiguous: bool,
    /// Go on although the issue's content changed since its first copies went out.
    pub allow_changed: bool,
}

/// What a running send tells its caller, in the order it happens.
pub trait SendEvents {
    /// A problem that does not stop the send.
    fn warning(&mut self, warning: SendWarning);
    /// Asks `question` before anything is sent (never with `yes`); `false` cancels the send.
    /// An error (nobody there to ask) refuses it.
    fn confirm(&mut self, question: &str) -> Result<bool>;
    /// A delivery run of `total` recipients starts; `stats` are its live counters.
    fn delivery_started(&mut self, stats: Arc<Stats>, total: u64);
    /// The first Ctrl-C (or SIGTERM): no new message starts, the transactions in flight get
    /// `grace` to finish (a second one stops waiting).
    fn interrupted(&mut self, grace: Duration);
    /// The delivery run is over (the summary follows in the report).
    fn delivery_finished(&mut self);
}
