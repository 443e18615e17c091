//! Journal: the SQLite record of every delivery attempt, which makes a rerun safe.
//!
//! One row per (issue, subscriber) in `deliveries` with its state, attempts, last reply,
//! Message-ID and timestamps, plus an append-only `attempts` log (one row per SMTP
//! transaction, test copies included) that the daily cap is counted from, the owner of each
//! issue's sending (`runs`, see `lease.rs`) and each issue's content fingerprint
//! (`contents`, `content_changes`). The database runs
//! in WAL mode. A row is durably `in_flight` before its SMTP transaction starts; rows found
//! `in_flight` when a run starts (a crash) become `ambiguous`.
//!
//! During a run one task owns the connection ([`JournalWriter`]) and commits in groups:
//! everything that arrived while the previous commit ran goes into the next one. A worker
//! waits for the commit of its `in_flight` mark before the transaction starts and for the
//! commit of its outcome right after it ends, before it waits for anything (throttle,
//! backoff, the next message); so a committed journal holds an `in_flight` row only while its
//! transaction is open, at most one per worker, and no verdict the relay gave is ever lost.
//! Two commits per message at concurrency 1, fewer per message with more workers (their
//! marks and outcomes share commits), each a few WAL pages.
//!
//! Durability: with `[journal] synchronous = "normal"` (the default) a commit is in the WAL
//! file before the transaction starts, which survives the process being killed at any point;
//! the WAL is also checkpointed (fsynced) every second, so an operating-system crash or power
//! loss can only forget the last second of sends. `"full"` fsyncs every commit (power-loss
//! safe to the message, at about 0.7 ms per commit on this kind of disk, shared by all the
//! workers whose marks are in the same commit).
//!
//! The API is typed: issues are [`IssueDate`](crate::base::IssueDate)s, row states
//! [`State`]s, attempt kinds [`AttemptKind`]s and list statuses
//! [`Status`](crate::subscribers::Status)es; how they are spelled in SQL stays inside this
//! module. [`status`] is the report `fortnight status` prints. This module never talks SMTP
//! and never reads the subscriber list.

mod db;
mod lease;
mod lock;
mod rows;
mod sql;
mod status;
mod writer;

pub use db::Journal;
pub(crate) use lock::RunLock;
pub(crate) use rows::RowSummary;
pub use rows::{
    AttemptKind, Counts, DeliveryRow, JournalKey, ListUpdate, ProblemRow, State, TestCopy,
};
pub use status::{status, StatusReport};
pub use writer::{Begin, End, JournalHandle, JournalWriter, Ticket};
