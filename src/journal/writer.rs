//! The journal writer: during a run one task owns the connection and commits in groups.
//!
//! Workers send [`Begin`] (mark the row `in_flight` and wait for the commit) and buffer
//! [`End`] (the outcome) through a cloneable [`JournalHandle`], then wait for its commit with
//! [`JournalHandle::flush`] before they wait for anything else (docs/guarantees.md "Before a
//! transaction starts"); outcomes and marks of several workers share a commit.
//! [`JournalWriter::finish`] gives the journal back at the end.

use std::time::Duration;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use super::db::Journal;
use super::lease;
use super::rows::{AttemptKind, JournalKey, State};
use super::sql::{issue_text, status_text, timestamp};
use crate::base::IssueDate;
use crate::config::JournalSync;
use crate::subscribers::Status;

impl Journal {
    /// Hands the connection to a group-commit task on the current tokio runtime for the
    /// duration of a run (call it inside the runtime).
    pub fn into_writer(self) -> (JournalHandle, JournalWriter) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Cmd>();
        let buffered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn(writer_task(self, rx, buffered.clone()));
        (JournalHandle { tx, buffered }, JournalWriter { task })
    }
}

/// The start of an SMTP transaction (the row becomes `in_flight`).
#[derive(Debug, Clone)]
pub struct Begin {
    pub kind: AttemptKind,
    pub issue: IssueDate,
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
    pub issue: IssueDate,
    pub who: JournalKey,
    /// Sent, Deferred, Failed or Ambiguous.
    pub state: State,
    /// The first line of the server's reply, or what went wrong.
    pub reply: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// A status to write into the list (`bounced`).
    pub list_update: Option<Status>,
    pub at: DateTime<Utc>,
}

/// The answer to a command that waits: `Ok(true)` done; for a [`Begin`], `Ok(false)` means
/// the row is already decided (`sent`, `failed`) or in flight, and must not be sent.
type Ack = tokio::sync::oneshot::Sender<Result<bool, String>>;

enum Cmd {
    Begin(Begin, Ack),
    End(End),
    Suppress { issue: IssueDate, key: String },
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
    /// Marks the row `in_flight` and waits until that is committed. `None`: the row is
    /// already `sent`, `failed` or `in_flight` (a mark never overwrites those), so the
    /// message must not go out.
    pub async fn begin(&self, begin: Begin) -> Result<Option<Ticket>> {
        let ticket = Ticket {
            started_at: begin.at,
            message_id: begin.message_id.clone(),
        };
        let (ack, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send(Cmd::Begin(begin, ack))
            .map_err(|_| anyhow::anyhow!("the journal writer stopped"))?;
        match wait.await {
            Ok(Ok(true)) => Ok(Some(ticket)),
            Ok(Ok(false)) => Ok(None),
            Ok(Err(e)) => bail!("cannot write the journal: {e}"),
            Err(_) => bail!("the journal writer stopped"),
        }
    }

    /// Buffers the outcome of a transaction; it is committed with the next `begin` (of any
    /// worker) or `flush`. The engine flushes right after it: a verdict is never left
    /// buffered while its worker waits.
    pub fn end(&self, end: End) -> Result<()> {
        self.buffer(Cmd::End(end))
    }

    /// Buffers: this planned row was not sent because the address left the list.
    pub fn suppress(&self, issue: IssueDate, key: &str) -> Result<()> {
        self.buffer(Cmd::Suppress {
            issue,
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
            Ok(Ok(_)) => Ok(()),
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
        let next = match journal.lease.is_some() {
            // An owner renews its lease while the run waits, too.
            true => tokio::select! {
                c = rx.recv() => Some(c),
                _ = tokio::time::sleep(lease::RENEW_EVERY) => None,
            },
            false => Some(rx.recv().await),
        };
        let Some(next) = next else {
            if failure.is_none() {
                if let Err(e) = apply(&mut journal, &take_buffered()) {
                    failure = Some(format!("{e:#}"));
                }
            }
            continue;
        };
        let Some(first) = next else {
            // Every handle is gone: commit what they buffered last.
            let rest = take_buffered();
            if !rest.is_empty() && failure.is_none() {
                if let Err(e) = apply(&mut journal, &rest) {
                    failure = Some(format!("{e:#}"));
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
            (None, JournalSync::Normal) => {
                apply(&mut journal, &batch).map_err(|e| format!("{e:#}"))
            }
            (None, JournalSync::Full) => {
                let (j, b, r) = tokio::task::spawn_blocking(move || {
                    let r = apply(&mut journal, &batch).map_err(|e| format!("{e:#}"));
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
        let mut begun = result.as_ref().ok().map(|v| v.iter());
        for cmd in batch {
            match cmd {
                Cmd::Begin(_, ack) => {
                    let r = match (&result, begun.as_mut()) {
                        (Err(e), _) => Err(e.clone()),
                        (Ok(_), Some(it)) => Ok(it.next().copied().unwrap_or(false)),
                        (Ok(_), None) => Ok(false),
                    };
                    let _ = ack.send(r);
                }
                Cmd::Flush(ack) => {
                    let _ = ack.send(result.as_ref().map(|_| true).map_err(|e| e.clone()));
                }
                _ => {}
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

/// Applies one group of commands in one transaction, renewing the run's ownership in it
/// (a run that lost it writes nothing). Returns, for each [`Begin`] in order, whether its
/// row became `in_flight`.
fn apply(journal: &mut Journal, cmds: &[Cmd]) -> Result<Vec<bool>> {
    let tx = journal.conn.transaction()?;
    if let Some(l) = &journal.lease {
        lease::renew(&tx, l, Utc::now())?;
    }
    let mut begun = Vec::new();
    for cmd in cmds {
        match cmd {
            Cmd::Begin(b, _) => begun.push(apply_begin(&tx, b)?),
            Cmd::End(e) => apply_end(&tx, e)?,
            Cmd::Suppress { issue, key } => {
                tx.prepare_cached(
                    "UPDATE deliveries SET state = 'suppressed' WHERE issue = ?1 AND subscriber = ?2 \
                     AND state IN ('pending','deferred')",
                )?
                .execute(params![issue_text(*issue), key])?;
            }
            Cmd::Flush(_) => {}
        }
    }
    tx.commit()?;
    Ok(begun)
}

/// A delivery row becomes `in_flight` (test copies have no row); `false` when the row is
/// already `sent`, `failed` or `in_flight`, which a mark never overwrites.
fn apply_begin(tx: &Transaction<'_>, b: &Begin) -> rusqlite::Result<bool> {
    if b.kind != AttemptKind::Delivery {
        return Ok(true);
    }
    let n = tx
        .prepare_cached(
            "INSERT INTO deliveries (issue, subscriber, address, state, attempts, message_id, \
             first_attempt_at, last_attempt_at) VALUES (?1, ?2, ?3, 'in_flight', 1, ?4, ?5, ?5) \
             ON CONFLICT (issue, subscriber) DO UPDATE SET state = 'in_flight', \
             attempts = attempts + 1, message_id = ?4, last_attempt_at = ?5, \
             first_attempt_at = COALESCE(first_attempt_at, ?5), next_attempt_at = NULL \
             WHERE deliveries.state NOT IN ('sent', 'failed', 'in_flight')",
        )?
        .execute(params![
            issue_text(b.issue),
            b.who.key,
            b.who.address,
            b.message_id,
            timestamp(b.at)
        ])?;
    Ok(n == 1)
}

/// A delivery row gets its outcome; every attempt (test copies too) goes into the log.
fn apply_end(tx: &Transaction<'_>, e: &End) -> rusqlite::Result<()> {
    let at = timestamp(e.at);
    let issue = issue_text(e.issue);
    if e.kind == AttemptKind::Delivery {
        tx.prepare_cached(
            "UPDATE deliveries SET state = ?3, last_reply = ?4, next_attempt_at = ?5, \
             sent_at = CASE WHEN ?3 = 'sent' THEN ?6 ELSE sent_at END, \
             list_update = COALESCE(?7, list_update) \
             WHERE issue = ?1 AND subscriber = ?2",
        )?
        .execute(params![
            issue,
            e.who.key,
            e.state,
            e.reply,
            e.next_attempt_at.map(timestamp),
            at,
            e.list_update.map(status_text)
        ])?;
    }
    tx.prepare_cached(
        "INSERT INTO attempts (kind, issue, subscriber, address, message_id, started_at, \
         ended_at, outcome, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.kind,
        issue,
        e.who.key,
        e.who.address,
        e.ticket.message_id,
        timestamp(e.ticket.started_at),
        at,
        e.state,
        e.reply
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OptionalExtension;

    fn issue() -> IssueDate {
        IssueDate::parse("2002-02-27").unwrap()
    }

    /// The `state` of one row, read straight from the database.
    fn row_state(journal: &Journal, key: &str) -> Option<State> {
        journal
            .conn
            .query_row(
                "SELECT state FROM deliveries WHERE issue = ?1 AND subscriber = ?2",
                params![issue_text(issue()), key],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }

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
            issue: issue(),
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
            issue: issue(),
            who: key("a@x.org"),
            message_id: "<m@x.org>".into(),
            at: Utc::now(),
        })
        .await
        .unwrap();
        // Another connection (another process, after a crash) sees it already.
        let other = Journal::open_existing(&path).unwrap().unwrap();
        assert_eq!(row_state(&other, "a@x.org"), Some(State::InFlight));
        // An outcome is only buffered: it is committed with the next mark or flush.
        h.end(end(
            AttemptKind::Delivery,
            "a@x.org",
            State::Sent,
            Utc::now(),
        ))
        .unwrap();
        assert_eq!(row_state(&other, "a@x.org"), Some(State::InFlight));
        h.flush().await.unwrap();
        assert_eq!(row_state(&other, "a@x.org"), Some(State::Sent));
        drop(h);
        w.finish().await.unwrap();
    }

    fn begin_of(who: &str) -> Begin {
        Begin {
            kind: AttemptKind::Delivery,
            issue: issue(),
            who: key(who),
            message_id: format!("<{who}>"),
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn an_in_flight_mark_never_overwrites_a_sent_failed_or_in_flight_row() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite"), JournalSync::Normal).unwrap();
        let (h, w) = j.into_writer();
        for (who, state) in [("s@x.org", State::Sent), ("f@x.org", State::Failed)] {
            let t = h.begin(begin_of(who)).await.unwrap().unwrap();
            h.end(End {
                state,
                ..end(AttemptKind::Delivery, who, state, t.started_at)
            })
            .unwrap();
        }
        assert!(h.begin(begin_of("i@x.org")).await.unwrap().is_some());
        h.flush().await.unwrap();
        for who in ["s@x.org", "f@x.org", "i@x.org"] {
            assert!(h.begin(begin_of(who)).await.unwrap().is_none(), "{who}");
        }
        drop(h);
        let j = w.finish().await.unwrap();
        assert_eq!(row_state(&j, "s@x.org"), Some(State::Sent));
        assert_eq!(row_state(&j, "f@x.org"), Some(State::Failed));
    }

    #[tokio::test]
    async fn a_run_whose_lease_was_taken_over_cannot_write_a_single_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut first = Journal::open(&path, JournalSync::Normal).unwrap();
        first.take_ownership(issue(), Utc::now()).unwrap();
        // A second run of this process (alive) is refused while the lease runs.
        let mut second = Journal::open(&path, JournalSync::Normal).unwrap();
        let err = second.take_ownership(issue(), Utc::now()).unwrap_err();
        assert!(format!("{err:#}").contains("owns the issue"), "{err:#}");
        // Once it expired, the second run takes over; the first can no longer commit.
        let later = Utc::now() + chrono::Duration::from_std(lease::LEASE_FOR).unwrap();
        second
            .take_ownership(issue(), later + chrono::Duration::seconds(1))
            .unwrap();
        let (h, w) = first.into_writer();
        let err = h.begin(begin_of("a@x.org")).await.unwrap_err();
        assert!(format!("{err:#}").contains("no longer owns"), "{err:#}");
        drop(h);
        assert!(w.finish().await.is_err());
        assert_eq!(row_state(&second, "a@x.org"), None);
    }
}
