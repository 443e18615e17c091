//! Ownership of an issue's sending, held in the database itself: one row per issue in
//! `runs` (owner id, host, process id, lease expiry), taken in an immediate transaction and
//! renewed inside every transaction of the journal writer (and at least every
//! [`RENEW_EVERY`] while the run waits), so no file beside the journal (the run lock can be
//! deleted or recreated) decides who may send. A transaction whose renewal finds another
//! owner fails and rolls back: a sender that lost its lease cannot write a single mark.
//!
//! A lease is taken over when it expired, or at once when its holder ran on this host and
//! that process is gone (a crash or a kill: a rerun need not wait). docs/guarantees.md
//! "Ownership".

use std::time::Duration;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::sql::{issue_text, parse_timestamp, timestamp};
use crate::base::IssueDate;

/// How long a lease lasts without renewal.
pub(crate) const LEASE_FOR: Duration = Duration::from_secs(30);
/// The writer renews at least this often, also while the run waits.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(5);

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    issue       TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
"#;

/// This run's ownership of one issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub issue: IssueDate,
    /// Random, unique to this run.
    pub owner: String,
}

/// This machine's name, as far as it can be known (only compared, never trusted for more).
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Whether process `pid` of this host is certainly gone (`false` when it cannot be told).
fn process_is_gone(pid: i64) -> bool {
    let proc = std::path::Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

fn expiry(now: DateTime<Utc>) -> String {
    timestamp(now + chrono::Duration::from_std(LEASE_FOR).unwrap_or_default())
}

/// Takes the lease of `issue`, or fails naming the run that holds it.
pub(super) fn acquire(
    conn: &mut Connection,
    issue: IssueDate,
    now: DateTime<Utc>,
) -> Result<Lease> {
    let host = host_name();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let holder: Option<(String, String, i64, String, String)> = tx
        .query_row(
            "SELECT owner, host, pid, started_at, expires_at FROM runs WHERE issue = ?1",
            params![issue_text(issue)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    if let Some((_, their_host, pid, started, expires)) = holder {
        let live = parse_timestamp(&expires).is_some_and(|t| t > now);
        let gone = their_host == host && process_is_gone(pid);
        if live && !gone {
            bail!(
                "another `fortnight send` owns the issue of {issue} in this journal (process \
                 {pid} on {their_host}, since {started}; its lease runs until {expires}, renewed \
                 while it sends): refusing to send, so nothing goes out twice. If that run is \
                 really gone, run the same command again after {expires}"
            );
        }
    }
    let owner = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    tx.execute(
        "INSERT INTO runs (issue, owner, host, pid, started_at, renewed_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT (issue) DO UPDATE SET owner = ?2, \
         host = ?3, pid = ?4, started_at = ?5, renewed_at = ?5, expires_at = ?6",
        params![
            issue_text(issue),
            owner,
            host,
            i64::from(std::process::id()),
            timestamp(now),
            expiry(now)
        ],
    )?;
    tx.commit()?;
    Ok(Lease { issue, owner })
}

/// Renews the lease inside the caller's transaction; fails when another run owns the issue
/// now (the caller rolls back).
pub(super) fn renew(conn: &Connection, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE runs SET renewed_at = ?3, expires_at = ?4 WHERE issue = ?1 AND owner = ?2",
        )?
        .execute(params![
            issue_text(lease.issue),
            lease.owner,
            timestamp(now),
            expiry(now)
        ])?;
    if n != 1 {
        bail!(
            "this run no longer owns the issue of {} (another `fortnight send` took it over \
             after this run's lease expired): stopping without writing anything more",
            lease.issue
        );
    }
    Ok(())
}

/// Gives the lease up (a later run can start at once).
pub(super) fn release(conn: &Connection, lease: &Lease) -> Result<()> {
    conn.execute(
        "DELETE FROM runs WHERE issue = ?1 AND owner = ?2",
        params![issue_text(lease.issue), lease.owner],
    )?;
    Ok(())
}
