//! The journal database: opening it (WAL, schema), recovering rows a crash left
//! `in_flight`, and the queries a send plans from and `status` reports.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags};

use super::lease::{self, Lease};
use super::rows::{
    Counts, DeliveryRow, JournalKey, ListUpdate, ProblemRow, RowSummary, State, TestCopy,
};
use super::sql::{issue_at, issue_text, parse_timestamp, status_at, timestamp};
use crate::base::IssueDate;
use crate::config::JournalSync;

/// The schema version written to `PRAGMA user_version` (2: the `runs` ownership table, so a
/// fortnight that does not honour it refuses the journal).
const SCHEMA_VERSION: i64 = 2;

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
CREATE TABLE IF NOT EXISTS contents (
    issue        TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    content      TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS content_changes (
    id               INTEGER PRIMARY KEY,
    issue            TEXT NOT NULL,
    at               TEXT NOT NULL,
    old_fingerprint  TEXT,
    new_fingerprint  TEXT NOT NULL,
    what             TEXT NOT NULL
);
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

/// The journal database.
pub struct Journal {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) sync: JournalSync,
    /// This run's ownership of the issue it sends (see `lease.rs`); every writer
    /// transaction renews it.
    pub(super) lease: Option<Lease>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (creating if needed, with its folder) the journal for writing.
    pub fn open(path: &Path, sync: JournalSync) -> Result<Journal> {
        // Every address and SMTP reply is in it: owner-only folder and file (docs/standards.md
        // "Files that hold addresses or tokens are private").
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                crate::base::files::data_folder(parent).with_context(|| {
                    format!("cannot prepare the journal folder `{}`", parent.display())
                })?;
            }
        }
        crate::base::files::ensure_private_file(path)
            .with_context(|| format!("cannot create the journal `{}`", path.display()))?;
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the journal `{}`", path.display()))?;
        let j = Journal {
            conn,
            path: path.to_path_buf(),
            sync,
            lease: None,
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
            lease: None,
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
        c.execute_batch(lease::SCHEMA)?;
        c.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    }

    /// Takes ownership of sending `issue` (docs/guarantees.md "Ownership"), or fails naming
    /// the run that owns it. Call it before [`Journal::recover_in_flight`]: only the owner
    /// may decide that a row in flight was interrupted.
    pub(crate) fn take_ownership(&mut self, issue: IssueDate, now: DateTime<Utc>) -> Result<()> {
        let l = lease::acquire(&mut self.conn, issue, now)
            .with_context(|| format!("cannot start sending with `{}`", self.path.display()))?;
        self.lease = Some(l);
        Ok(())
    }

    /// Renews this run's ownership (after a pause such as the confirmation question); fails
    /// when another run took the issue over.
    pub(crate) fn renew_ownership(&self, now: DateTime<Utc>) -> Result<()> {
        match &self.lease {
            Some(l) => lease::renew(&self.conn, l, now),
            None => Ok(()),
        }
    }

    /// Gives this run's ownership up.
    pub(crate) fn release_ownership(&mut self) -> Result<()> {
        match self.lease.take() {
            Some(l) => lease::release(&self.conn, &l),
            None => Ok(()),
        }
    }

    /// The content fingerprint recorded for `issue`: (id, content as stored).
    pub(crate) fn content_of(&self, issue: IssueDate) -> Result<Option<(String, String)>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT fingerprint, content FROM contents WHERE issue = ?1",
                params![issue_text(issue)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records the content fingerprint of `issue`; with `what`, also notes in
    /// `content_changes` that a run went on with changed content (`send --allow-changed`).
    pub(crate) fn record_content(
        &mut self,
        issue: IssueDate,
        id: &str,
        content: &str,
        what: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        if let Some(l) = &self.lease {
            lease::renew(&tx, l, now)?;
        }
        let issue = issue_text(issue);
        if let Some(what) = what {
            tx.execute(
                "INSERT INTO content_changes (issue, at, old_fingerprint, new_fingerprint, what) \
                 VALUES (?1, ?2, (SELECT fingerprint FROM contents WHERE issue = ?1), ?3, ?4)",
                params![issue, timestamp(now), id, what],
            )?;
        }
        tx.execute(
            "INSERT INTO contents (issue, fingerprint, content, recorded_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (issue) DO UPDATE SET fingerprint = ?2, content = ?3, recorded_at = ?4",
            params![issue, id, content, timestamp(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether any copy of `issue` was attempted (a row past `pending`/`suppressed`).
    pub(crate) fn issue_started(&self, issue: IssueDate) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM deliveries WHERE issue = ?1 AND attempts > 0",
            params![issue_text(issue)],
            |r| r.get(0),
        )?;
        Ok(n > 0)
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
    pub(crate) fn rows_for_issue(&self, issue: IssueDate) -> Result<HashMap<String, RowSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT subscriber, state, attempts, next_attempt_at FROM deliveries WHERE issue = ?1",
        )?;
        let rows = stmt.query_map(params![issue_text(issue)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, State>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (key, state, attempts, next) = row?;
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
        let issue = issue_text(issue);
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
    pub(crate) fn oldest_accepted_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
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
            let outcome: State = r.get(1)?;
            if started >= since_s && matches!(outcome, State::Sent | State::Ambiguous) {
                count += 1;
                if oldest.as_ref().is_none_or(|o| started < *o) {
                    oldest = Some(started);
                }
            }
        }
        Ok((count, oldest.as_deref().and_then(parse_timestamp)))
    }

    /// Counts by state for one issue.
    pub(crate) fn counts(&self, issue: IssueDate) -> Result<Counts> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM deliveries WHERE issue = ?1 GROUP BY state")?;
        let mut counts = Counts::default();
        let rows = stmt.query_map(params![issue_text(issue)], |r| {
            Ok((r.get::<_, State>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
            counts.add(state, n as u64);
        }
        Ok(counts)
    }

    /// The earliest retry time of the issue's deferred rows.
    pub(crate) fn next_retry_at(&self, issue: IssueDate) -> Result<Option<DateTime<Utc>>> {
        let t: Option<String> = self.conn.query_row(
            "SELECT min(next_attempt_at) FROM deliveries WHERE issue = ?1 AND state = 'deferred'",
            params![issue_text(issue)],
            |r| r.get(0),
        )?;
        Ok(t.as_deref().and_then(parse_timestamp))
    }

    /// The Message-IDs recorded for the rows of one issue (subscriber key → ID).
    pub(crate) fn message_ids(&self, issue: IssueDate) -> Result<HashMap<String, String>> {
        let mut stmt = self.conn.prepare(
            "SELECT subscriber, message_id FROM deliveries WHERE issue = ?1 \
             AND message_id IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![issue_text(issue)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<HashMap<_, _>>>()
            .map_err(Into::into)
    }

    /// Failed, deferred and ambiguous rows of one issue, in address order.
    pub(crate) fn problems(&self, issue: IssueDate) -> Result<Vec<ProblemRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, state, attempts, last_reply, message_id, last_attempt_at, next_attempt_at \
             FROM deliveries WHERE issue = ?1 AND state IN ('failed','deferred','ambiguous','in_flight') \
             ORDER BY state, subscriber",
        )?;
        let rows = stmt.query_map(params![issue_text(issue)], |r| {
            Ok(ProblemRow {
                address: r.get(0)?,
                state: r.get(1)?,
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
    pub fn rows(&self, issue: IssueDate) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT issue, subscriber, address, state, attempts, last_reply, message_id, \
             first_attempt_at, last_attempt_at, next_attempt_at, sent_at \
             FROM deliveries WHERE issue = ?1 ORDER BY subscriber",
        )?;
        let rows = stmt.query_map(params![issue_text(issue)], |r| {
            Ok(DeliveryRow {
                issue: issue_at(r, 0)?,
                subscriber: r.get(1)?,
                address: r.get(2)?,
                state: r.get(3)?,
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
    pub(crate) fn issues(&self) -> Result<Vec<IssueDate>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT issue FROM deliveries ORDER BY issue DESC")?;
        let rows = stmt.query_map([], |r| issue_at(r, 0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// Test copies sent for one issue, oldest first.
    pub fn test_copies(&self, issue: IssueDate) -> Result<Vec<TestCopy>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, outcome, reply, started_at FROM attempts \
             WHERE kind = 'test' AND issue = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![issue_text(issue)], |r| {
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
                issue: issue_at(r, 0)?,
                key: r.get(1)?,
                address: r.get(2)?,
                status: status_at(r, 3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Into::into)
    }

    /// Forgets list updates once the list holds them.
    pub(crate) fn clear_list_updates(&mut self, done: &[ListUpdate]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "UPDATE deliveries SET list_update = NULL WHERE issue = ?1 AND subscriber = ?2",
            )?;
            for u in done {
                stmt.execute(params![issue_text(u.issue), u.key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
