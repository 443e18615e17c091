//! Journal: the SQLite record of every delivery attempt, which makes a rerun safe.
//!
//! One row per (issue, subscriber) in `deliveries` with its state, attempts, last reply,
//! Message-ID and timestamps, plus an append-only `attempts` log (one row per SMTP
//! transaction, test copies included) that the daily cap is counted from. The database runs
//! in WAL mode. A row is durably `in_flight` before its SMTP transaction starts; rows found
//! `in_flight` when a run starts (a crash) become `ambiguous`.
//!
//! During a run one task owns the connection ([`JournalWriter`]) and commits in groups:
//! everything that arrived while the previous commit ran goes into the next one. Outcomes are
//! only buffered (they wake nobody); they are committed with the next `in_flight` mark (of any
//! worker) or flush. A worker buffers the outcome of its previous message and then waits for
//! the commit of its next `in_flight` mark, so a committed journal never holds more than one
//! `in_flight` row per worker: after a crash at most `concurrency` rows are ambiguous. One
//! commit per message, each a few WAL pages (the tables carry only the indexes queries use).
//!
//! Durability: with `[journal] synchronous = "normal"` (the default) a commit is in the WAL
//! file before the transaction starts, which survives the process being killed at any point;
//! the WAL is also checkpointed (fsynced) every second, so an operating-system crash or power
//! loss can only forget the last second of sends. `"full"` fsyncs every commit (power-loss
//! safe to the message, at about 0.7 ms per commit on this kind of disk, shared by all the
//! workers whose marks are in the same commit).
//!
//! This module never talks SMTP and never reads the subscriber list.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::base::IssueDate;
use crate::config::{Config, JournalSync};

/// The schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS deliveries (
    issue            TEXT NOT NULL,
    subscriber       TEXT NOT NULL,
    address          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN
                        ('pending','in_flight','sent','deferred','failed','ambiguous','suppressed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_reply       TEXT,
    message_id       TEXT,
    first_attempt_at TEXT,
    last_attempt_at  TEXT,
    next_attempt_at  TEXT,
    sent_at          TEXT,
    list_update      TEXT,
    PRIMARY KEY (issue, subscriber)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_list_update ON deliveries (list_update)
    WHERE list_update IS NOT NULL;
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('delivery','test')),
    issue       TEXT NOT NULL,
    subscriber  TEXT NOT NULL,
    address     TEXT NOT NULL,
    message_id  TEXT,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    outcome     TEXT NOT NULL,
    reply       TEXT
);
"#;

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
    pub const ALL: [State; 7] = [
        State::Pending,
        State::InFlight,
        State::Sent,
        State::Deferred,
        State::Failed,
        State::Ambiguous,
        State::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
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

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an attempt delivered the issue to the list or a `send --to` test copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    Delivery,
    Test,
}

impl AttemptKind {
    fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Delivery => "delivery",
            AttemptKind::Test => "test",
        }
    }
}

/// A timestamp as stored: RFC 3339 UTC with milliseconds, so text order is time order.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What the journal knows about one subscriber of one issue (used for planning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSummary {
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
    fn add(&mut self, state: State, n: u64) {
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

/// One full row of `deliveries` (for tests, audits and `status`).
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub issue: String,
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
    pub outcome: String,
    pub reply: Option<String>,
    pub started_at: String,
}

/// A status the list must get (e.g. `bounced`), recorded with the delivery that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUpdate {
    pub issue: String,
    pub key: String,
    pub address: String,
    pub status: String,
}

/// A subscriber as the journal identifies it: the case-insensitive key and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalKey {
    pub key: String,
    pub address: String,
}

/// Holds the run lock: at most one `fortnight send` per journal at a time.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock next to the journal (`<journal>.lock`), or fails naming the file.
    pub fn acquire(journal_path: &Path) -> Result<RunLock> {
        let path = lock_path(journal_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the folder `{}`", parent.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock file `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another `fortnight send` is running with this journal (it holds `{}`); \
                 wait for it to finish",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_path(journal_path: &Path) -> PathBuf {
    let mut name = journal_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "journal".into());
    name.push(".lock");
    journal_path.with_file_name(name)
}

/// The journal database.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    sync: JournalSync,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (creating if needed, with its folder) the journal for writing.
    pub fn open(path: &Path, sync: JournalSync) -> Result<Journal> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the journal folder `{}`", parent.display())
                })?;
            }
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the journal `{}`", path.display()))?;
        let j = Journal {
            conn,
            path: path.to_path_buf(),
            sync,
        };
        j.setup(sync)
            .with_context(|| format!("cannot set up the journal `{}`", path.display()))?;
        Ok(j)
    }

    /// Opens an existing journal read-only; `None` when there is none yet.
    pub fn open_existing(path: &Path) -> Result<Option<Journal>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open the journal `{}`", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            bail!(
                "the journal `{}` was written by a newer fortnight (schema {version}); upgrade fortnight",
                path.display()
            );
        }
        if version == 0 {
            // An empty file (or a foreign database): nothing journaled yet.
            return Ok(None);
        }
        Ok(Some(Journal {
            conn,
            path: path.to_path_buf(),
            sync: JournalSync::Normal,
        }))
    }

    fn setup(&self, sync: JournalSync) -> Result<()> {
        let c = &self.conn;
        c.busy_timeout(Duration::from_secs(5))?;
        let mode: String = c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "SQLite refused WAL mode (got `{mode}`); is the journal on a network filesystem?"
            );
        }
        c.pragma_update(
            None,
            "synchronous",
            match sync {
                JournalSync::Normal => "NORMAL",
                JournalSync::Full => "FULL",
            },
        )?;
        // Measured per commit (an in_flight mark plus the previous outcome): 145 µs with the
        // defaults, about 70 µs with a larger page cache, a checkpoint every 10,000 pages
        // instead of 1,000 (the writer also checkpoints every second) and no index on the
        // attempt log (see `accepted_since`).
        c.pragma_update(None, "cache_size", -8000)?;
        c.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            bail!("the journal was written by a newer fortnight (schema {version}); upgrade fortnight");
        }
        c.execute_batch(SCHEMA)?;
        c.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns every `in_flight` row (left by a crash) into `ambiguous`; returns how many.
    pub fn recover_in_flight(&mut self, now: DateTime<Utc>) -> Result<u64> {
        let tx = self.conn.transaction()?;
        // The attempt log gets its row at the end of a transaction: write the missing ones.
        tx.execute(
            "INSERT INTO attempts (kind, issue, subscriber, address, message_id, started_at, ended_at, \
             outcome, reply) SELECT 'delivery', issue, subscriber, address, message_id, \
             COALESCE(last_attempt_at, ?1), ?1, 'ambiguous', \
             'interrupted: the run ended during this transaction' \
             FROM deliveries WHERE state = 'in_flight'",
            params![timestamp(now)],
        )?;
        let n = tx.execute(
            "UPDATE deliveries SET state = 'ambiguous', \
             last_reply = COALESCE(last_reply || ' / ', '') || 'interrupted: the run ended during this transaction' \
             WHERE state = 'in_flight'",
            [],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Every row of one issue, keyed by subscriber key.
    pub fn rows_for_issue(&self, issue: IssueDate) -> Result<HashMap<String, RowSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT subscriber, state, attempts, next_attempt_at FROM deliveries WHERE issue = ?1",
        )?;
        let rows = stmt.query_map(params![issue.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (key, state, attempts, next) = row?;
            let state = State::parse(&state)
                .with_context(|| format!("the journal holds an unknown state `{state}`"))?;
            out.insert(
                key,
                RowSummary {
                    state,
                    attempts,
                    next_attempt_at: next.as_deref().and_then(parse_timestamp),
                },
            );
        }
        Ok(out)
    }

    /// Records the subscribers a run plans as `pending` (rows that exist are left alone,
    /// except `suppressed` ones, which become `pending` again: the address is back).
    pub fn ensure_pending<'a>(
        &mut self,
        issue: IssueDate,
        subscribers: impl IntoIterator<Item = &'a JournalKey>,
    ) -> Result<()> {
        let issue = issue.to_string();
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO deliveries (issue, subscriber, address, state) VALUES (?1, ?2, ?3, 'pending') \
                 ON CONFLICT (issue, subscriber) DO UPDATE SET state = 'pending' \
                 WHERE deliveries.state = 'suppressed'",
            )?;
            for s in subscribers {
                insert.execute(params![issue, s.key, s.address])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Messages accepted or possibly accepted (sent, ambiguous) by the relay since `since`,
    /// over all issues and test copies: what the daily cap counts (call it after
    /// [`Journal::recover_in_flight`], which logs the transactions a crash interrupted).
    pub fn accepted_since(&self, since: DateTime<Utc>) -> Result<u64> {
        Ok(self.accepted_window(since)?.0)
    }

    /// The start of the oldest counted attempt since `since` (when the cap frees a slot).
    pub fn oldest_accepted_since(&self, since: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.accepted_window(since)?.1)
    }

    /// Walks the attempt log from the newest row back. Rows are logged when a transaction
    /// ends (or when a later run recovers it), so their start times are in order up to the
    /// length of a transaction: the walk stops at rows that started well before `since`
    /// (six hours, far beyond any timeout). No index needed, so logging stays cheap.
    fn accepted_window(&self, since: DateTime<Utc>) -> Result<(u64, Option<DateTime<Utc>>)> {
        let since_s = timestamp(since);
        let stop = timestamp(since - chrono::Duration::hours(6));
        let mut stmt = self
            .conn
            .prepare("SELECT started_at, outcome FROM attempts ORDER BY id DESC")?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        let mut oldest: Option<String> = None;
        while let Some(r) = rows.next()? {
            let started: String = r.get(0)?;
            if started < stop {
                break;
            }
            let outcome: String = r.get(1)?;
            if started >= since_s && (outcome == "sent" || outcome == "ambiguous") {
                count += 1;
                if oldest.as_ref().is_none_or(|o| started < *o) {
                    oldest = Some(started);
                }
            }
        }
        Ok((count, oldest.as_deref().and_then(parse_timestamp)))
    }

    /// Counts by state for one issue.
    pub fn counts(&self, issue: &str) -> Result<Counts> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM deliveries WHERE issue = ?1 GROUP BY state")?;
        let mut counts = Counts::default();
        let rows = stmt.query_map(params![issue], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
            if let Some(state) = State::parse(&state) {
                counts.add(state, n as u64);
            }
        }
        Ok(counts)
    }

    /// Failed, deferred and ambiguous rows of one issue, in address order.
    pub fn problems(&self, issue: &str) -> Result<Vec<ProblemRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, state, attempts, last_reply, message_id, last_attempt_at, next_attempt_at \
             FROM deliveries WHERE issue = ?1 AND state IN ('failed','deferred','ambiguous','in_flight') \
             ORDER BY state, subscriber",
        )?;
        let rows = stmt.query_map(params![issue], |r| {
            Ok(ProblemRow {
                address: r.get(0)?,
                state: State::parse(&r.get::<_, String>(1)?).unwrap_or(State::Failed),
                attempts: r.get(2)?,
                last_reply: r.get(3)?,
                message_id: r.get(4)?,
                last_attempt_at: r.get(5)?,
                next_attempt_at: r.get(6)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// Every row of one issue, in subscriber order.
    pub fn rows(&self, issue: &str) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT issue, subscriber, address, state, attempts, last_reply, message_id, \
             first_attempt_at, last_attempt_at, next_attempt_at, sent_at \
             FROM deliveries WHERE issue = ?1 ORDER BY subscriber",
        )?;
        let rows = stmt.query_map(params![issue], |r| {
            Ok(DeliveryRow {
                issue: r.get(0)?,
                subscriber: r.get(1)?,
                address: r.get(2)?,
                state: State::parse(&r.get::<_, String>(3)?).unwrap_or(State::Failed),
                attempts: r.get(4)?,
                last_reply: r.get(5)?,
                message_id: r.get(6)?,
                first_attempt_at: r.get(7)?,
                last_attempt_at: r.get(8)?,
                next_attempt_at: r.get(9)?,
                sent_at: r.get(10)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// The issues the journal knows, newest first.
    pub fn issues(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT issue FROM deliveries ORDER BY issue DESC")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// Test copies sent for one issue, oldest first.
    pub fn test_copies(&self, issue: &str) -> Result<Vec<TestCopy>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, outcome, reply, started_at FROM attempts \
             WHERE kind = 'test' AND issue = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![issue], |r| {
            Ok(TestCopy {
                address: r.get(0)?,
                outcome: r.get(1)?,
                reply: r.get(2)?,
                started_at: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// List updates (e.g. `bounced` after a 5.1.x reply) not yet written to the list.
    pub fn pending_list_updates(&self) -> Result<Vec<ListUpdate>> {
        let mut stmt = self.conn.prepare(
            "SELECT issue, subscriber, address, list_update FROM deliveries \
             WHERE list_update IS NOT NULL ORDER BY issue, subscriber",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ListUpdate {
                issue: r.get(0)?,
                key: r.get(1)?,
                address: r.get(2)?,
                status: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// Forgets list updates once the list holds them.
    pub fn clear_list_updates(&mut self, done: &[(String, String)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "UPDATE deliveries SET list_update = NULL WHERE issue = ?1 AND subscriber = ?2",
            )?;
            for (issue, key) in done {
                stmt.execute(params![issue, key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Hands the connection to a group-commit task on the current tokio runtime for the
    /// duration of a run (call it inside the runtime).
    pub fn into_writer(self) -> (JournalHandle, JournalWriter) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Cmd>();
        let buffered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn(writer_task(self, rx, buffered.clone()));
        (JournalHandle { tx, buffered }, JournalWriter { task })
    }

    fn apply(&mut self, cmds: &[Cmd]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for cmd in cmds {
            match cmd {
                Cmd::Begin(b, _) => {
                    if b.kind == AttemptKind::Delivery {
                        tx.prepare_cached(
                            "INSERT INTO deliveries (issue, subscriber, address, state, attempts, message_id, \
                             first_attempt_at, last_attempt_at) VALUES (?1, ?2, ?3, 'in_flight', 1, ?4, ?5, ?5) \
                             ON CONFLICT (issue, subscriber) DO UPDATE SET state = 'in_flight', \
                             attempts = attempts + 1, message_id = ?4, last_attempt_at = ?5, \
                             first_attempt_at = COALESCE(first_attempt_at, ?5), next_attempt_at = NULL",
                        )?
                        .execute(params![b.issue, b.who.key, b.who.address, b.message_id, timestamp(b.at)])?;
                    }
                }
                Cmd::End(e) => {
                    let at = timestamp(e.at);
                    if e.kind == AttemptKind::Delivery {
                        tx.prepare_cached(
                            "UPDATE deliveries SET state = ?3, last_reply = ?4, next_attempt_at = ?5, \
                             sent_at = CASE WHEN ?3 = 'sent' THEN ?6 ELSE sent_at END, \
                             list_update = COALESCE(?7, list_update) \
                             WHERE issue = ?1 AND subscriber = ?2",
                        )?
                        .execute(params![
                            e.issue,
                            e.who.key,
                            e.state.as_str(),
                            e.reply,
                            e.next_attempt_at.map(timestamp),
                            at,
                            e.list_update
                        ])?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO attempts (kind, issue, subscriber, address, message_id, started_at, \
                         ended_at, outcome, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        e.kind.as_str(),
                        e.issue,
                        e.who.key,
                        e.who.address,
                        e.ticket.message_id,
                        timestamp(e.ticket.started_at),
                        at,
                        e.state.as_str(),
                        e.reply
                    ])?;
                }
                Cmd::Suppress { issue, key } => {
                    tx.prepare_cached(
                        "UPDATE deliveries SET state = 'suppressed' WHERE issue = ?1 AND subscriber = ?2 \
                         AND state IN ('pending','deferred')",
                    )?
                    .execute(params![issue, key])?;
                }
                Cmd::Flush(_) => {}
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The start of an SMTP transaction (the row becomes `in_flight`).
#[derive(Debug, Clone)]
pub struct Begin {
    pub kind: AttemptKind,
    pub issue: String,
    pub who: JournalKey,
    pub message_id: String,
    pub at: DateTime<Utc>,
}

/// Proof that a [`Begin`] was committed; its [`End`] logs the attempt with it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub started_at: DateTime<Utc>,
    pub message_id: String,
}

/// The end of an SMTP transaction.
#[derive(Debug, Clone)]
pub struct End {
    pub kind: AttemptKind,
    /// From the committed [`Begin`].
    pub ticket: Ticket,
    pub issue: String,
    pub who: JournalKey,
    /// Sent, Deferred, Failed or Ambiguous.
    pub state: State,
    /// The first line of the server's reply, or what went wrong.
    pub reply: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// A status to write into the list (`bounced`).
    pub list_update: Option<String>,
    pub at: DateTime<Utc>,
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

enum Cmd {
    Begin(Begin, Ack),
    End(End),
    Suppress { issue: String, key: String },
    Flush(Ack),
}

/// A cheap, cloneable way to talk to the journal writer.
#[derive(Clone)]
pub struct JournalHandle {
    tx: tokio::sync::mpsc::UnboundedSender<Cmd>,
    /// Outcomes waiting for the next commit (they do not wake the thread).
    buffered: std::sync::Arc<std::sync::Mutex<Vec<Cmd>>>,
}

/// The journal writer task; [`JournalWriter::finish`] gives the journal back.
pub struct JournalWriter {
    task: tokio::task::JoinHandle<Result<Journal>>,
}

impl JournalWriter {
    /// Waits for the writer (all handles must be dropped) and returns the journal, or the
    /// first write error.
    pub async fn finish(self) -> Result<Journal> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => bail!("the journal writer stopped: {e}"),
        }
    }
}

impl JournalHandle {
    /// Marks the row `in_flight` and waits until that is committed.
    pub async fn begin(&self, begin: Begin) -> Result<Ticket> {
        let ticket = Ticket {
            started_at: begin.at,
            message_id: begin.message_id.clone(),
        };
        let (ack, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send(Cmd::Begin(begin, ack))
            .map_err(|_| anyhow::anyhow!("the journal writer stopped"))?;
        match wait.await {
            Ok(Ok(())) => Ok(ticket),
            Ok(Err(e)) => bail!("cannot write the journal: {e}"),
            Err(_) => bail!("the journal writer stopped"),
        }
    }

    /// Buffers the outcome of a transaction; it is committed with the next `begin` (of any
    /// worker) or `flush`.
    pub fn end(&self, end: End) -> Result<()> {
        self.buffer(Cmd::End(end))
    }

    /// Buffers: this planned row was not sent because the address left the list.
    pub fn suppress(&self, issue: &str, key: &str) -> Result<()> {
        self.buffer(Cmd::Suppress {
            issue: issue.to_string(),
            key: key.to_string(),
        })
    }

    fn buffer(&self, cmd: Cmd) -> Result<()> {
        self.buffered
            .lock()
            .map_err(|_| anyhow::anyhow!("the journal buffer is poisoned"))?
            .push(cmd);
        Ok(())
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<()> {
        let (ack, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send(Cmd::Flush(ack))
            .map_err(|_| anyhow::anyhow!("the journal writer stopped"))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => bail!("cannot write the journal: {e}"),
            Err(_) => bail!("the journal writer stopped"),
        }
    }
}

/// Group commit: take everything queued, apply it in one transaction, acknowledge.
///
/// The writer is a task on the send runtime, so an `in_flight` mark costs no thread hand-off:
/// with `synchronous = "normal"` a commit (about 70 µs, no fsync) runs inline; with `"full"`
/// it runs on a blocking thread so the event loop never waits for an fsync. Marks queued
/// while a commit runs all go into the next one.
async fn writer_task(
    mut journal: Journal,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
    buffered: std::sync::Arc<std::sync::Mutex<Vec<Cmd>>>,
) -> Result<Journal> {
    let mut last_checkpoint = std::time::Instant::now();
    let mut failure: Option<String> = None;
    let take_buffered = || match buffered.lock() {
        Ok(mut b) => std::mem::take(&mut *b),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    loop {
        let Some(first) = rx.recv().await else {
            // Every handle is gone: commit what they buffered last.
            let rest = take_buffered();
            if !rest.is_empty() && failure.is_none() {
                if let Err(e) = journal.apply(&rest) {
                    failure = Some(e.to_string());
                }
            }
            break;
        };
        // Buffered outcomes happened before the commands that woke us: apply them first.
        let mut batch = take_buffered();
        batch.push(first);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let result = match (&failure, journal.sync) {
            (Some(e), _) => Err(e.clone()),
            (None, JournalSync::Normal) => journal.apply(&batch).map_err(|e| e.to_string()),
            (None, JournalSync::Full) => {
                let (j, b, r) = tokio::task::spawn_blocking(move || {
                    let r = journal.apply(&batch).map_err(|e| e.to_string());
                    (journal, batch, r)
                })
                .await
                .map_err(|e| anyhow::anyhow!("the journal writer stopped: {e}"))?;
                journal = j;
                batch = b;
                r
            }
        };
        if let Err(e) = &result {
            failure.get_or_insert_with(|| e.clone());
        }
        for cmd in batch {
            if let Cmd::Begin(_, ack) | Cmd::Flush(ack) = cmd {
                let _ = ack.send(result.clone());
            }
        }
        if failure.is_none() && last_checkpoint.elapsed() >= Duration::from_secs(1) {
            // Bounds what an OS crash can forget in synchronous=NORMAL mode.
            let _ = journal
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            last_checkpoint = std::time::Instant::now();
        }
    }
    if let Some(e) = failure {
        bail!("cannot write the journal `{}`: {e}", journal.path.display());
    }
    let _ = journal
        .conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    Ok(journal)
}

/// `fortnight status`.
pub fn cmd_status(config: &Config, args: &crate::cli::StatusArgs) -> Result<crate::Exit> {
    let path = config.journal_path();
    let issue = args.issue.map(|d| d.to_string());
    let journal = Journal::open_existing(&path)?;
    let report = match &journal {
        None => StatusReport {
            journal: path.display().to_string(),
            issue,
            counts: Counts::default(),
            problems: Vec::new(),
            test_copies: 0,
            issues: Vec::new(),
        },
        Some(j) => {
            let issues = j.issues()?;
            let issue = issue.or_else(|| issues.first().cloned());
            let (counts, problems, test_copies) = match &issue {
                Some(i) => (j.counts(i)?, j.problems(i)?, j.test_copies(i)?.len()),
                None => (Counts::default(), Vec::new(), 0),
            };
            StatusReport {
                journal: path.display().to_string(),
                issue,
                counts,
                problems,
                test_copies,
                issues,
            }
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        use std::io::Write;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
    }
    Ok(crate::Exit::Success)
}

/// What `fortnight status` prints.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub journal: String,
    pub issue: Option<String>,
    pub counts: Counts,
    pub problems: Vec<ProblemRow>,
    pub test_copies: usize,
    /// Every issue in the journal, newest first.
    pub issues: Vec<String>,
}

impl StatusReport {
    fn print(&self, out: &mut impl std::io::Write) -> Result<()> {
        let Some(issue) = &self.issue else {
            writeln!(
                out,
                "Nothing has been sent yet (no deliveries in the journal `{}`).",
                self.journal
            )?;
            return Ok(());
        };
        let c = &self.counts;
        writeln!(out, "Issue {issue} (journal `{}`)", self.journal)?;
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
        if self.test_copies > 0 {
            writeln!(out, "  ({} test copies sent with --to)", self.test_copies)?;
        }
        if c.in_flight > 0 {
            writeln!(
                out,
                "\n{} row(s) are in flight: a send is running, or one was killed (the next run \
                 marks them ambiguous).",
                c.in_flight
            )?;
        }
        if !self.problems.is_empty() {
            writeln!(out, "\nNeeds attention:")?;
            for p in &self.problems {
                let mut line = format!(
                    "  {:<9} {}  ({} attempt{})",
                    p.state.as_str(),
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
                writeln!(out, "{line}")?;
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
}

/// Reads the single `state` of one row (tests and audits).
pub fn row_state(journal: &Journal, issue: &str, key: &str) -> Result<Option<State>> {
    let s: Option<String> = journal
        .conn
        .query_row(
            "SELECT state FROM deliveries WHERE issue = ?1 AND subscriber = ?2",
            params![issue, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(s.as_deref().and_then(State::parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str) -> JournalKey {
        JournalKey {
            key: a.to_string(),
            address: a.to_string(),
        }
    }

    fn end(kind: AttemptKind, who: &str, state: State, started: DateTime<Utc>) -> End {
        End {
            kind,
            ticket: Ticket {
                started_at: started,
                message_id: format!("<{who}>"),
            },
            issue: "2002-02-27".into(),
            who: key(who),
            state,
            reply: Some("250 ok".into()),
            next_attempt_at: None,
            list_update: None,
            at: started,
        }
    }

    #[tokio::test]
    async fn the_daily_cap_counts_accepted_and_ambiguous_messages_of_the_last_24_hours() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite"), JournalSync::Normal).unwrap();
        let (h, w) = j.into_writer();
        let now = Utc::now();
        let ago = |hours: i64| now - chrono::Duration::hours(hours);
        // Logged out of order, as transactions end (and recovery logs old ones late).
        h.end(end(AttemptKind::Delivery, "a@x.org", State::Sent, ago(30)))
            .unwrap();
        h.end(end(AttemptKind::Delivery, "b@x.org", State::Sent, ago(23)))
            .unwrap();
        h.end(end(
            AttemptKind::Delivery,
            "c@x.org",
            State::Ambiguous,
            ago(1),
        ))
        .unwrap();
        h.end(end(
            AttemptKind::Delivery,
            "d@x.org",
            State::Deferred,
            ago(1),
        ))
        .unwrap();
        h.end(end(AttemptKind::Delivery, "e@x.org", State::Failed, ago(1)))
            .unwrap();
        h.end(end(AttemptKind::Test, "f@x.org", State::Sent, ago(0)))
            .unwrap();
        h.end(end(AttemptKind::Delivery, "g@x.org", State::Sent, ago(25)))
            .unwrap();
        h.flush().await.unwrap();
        drop(h);
        let j = w.finish().await.unwrap();
        let since = ago(24);
        assert_eq!(j.accepted_since(since).unwrap(), 3);
        let oldest = j.oldest_accepted_since(since).unwrap().unwrap();
        assert!((oldest - ago(23)).num_seconds().abs() < 1);
    }

    #[tokio::test]
    async fn a_row_is_committed_in_flight_before_begin_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let j = Journal::open(&path, JournalSync::Normal).unwrap();
        let (h, w) = j.into_writer();
        h.begin(Begin {
            kind: AttemptKind::Delivery,
            issue: "2002-02-27".into(),
            who: key("a@x.org"),
            message_id: "<m@x.org>".into(),
            at: Utc::now(),
        })
        .await
        .unwrap();
        // Another connection (another process, after a crash) sees it already.
        let other = Journal::open_existing(&path).unwrap().unwrap();
        assert_eq!(
            row_state(&other, "2002-02-27", "a@x.org").unwrap(),
            Some(State::InFlight)
        );
        // An outcome is only buffered: it is committed with the next mark or flush.
        h.end(end(
            AttemptKind::Delivery,
            "a@x.org",
            State::Sent,
            Utc::now(),
        ))
        .unwrap();
        assert_eq!(
            row_state(&other, "2002-02-27", "a@x.org").unwrap(),
            Some(State::InFlight)
        );
        h.flush().await.unwrap();
        assert_eq!(
            row_state(&other, "2002-02-27", "a@x.org").unwrap(),
            Some(State::Sent)
        );
        drop(h);
        w.finish().await.unwrap();
    }

    #[test]
    fn only_one_send_at_a_time_holds_the_run_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".fortnight/journal.sqlite");
        let first = RunLock::acquire(&path).unwrap();
        let err = RunLock::acquire(&path).unwrap_err();
        assert!(
            err.to_string().contains("another `fortnight send`"),
            "{err}"
        );
        drop(first);
        assert!(RunLock::acquire(&path).is_ok());
    }
}
