//! Soft-bounce memory: which issues each address bounced softly in, kept in the journal
//! database (table `soft_bounces`) so that "3 consecutive issues" can span runs.
//!
//! A row is keyed by (bounce message id, address), so reading the same mailbox twice
//! records nothing new. The journal module owns the other tables of the same SQLite file;
//! this one is created here with `CREATE TABLE IF NOT EXISTS`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use rusqlite::{params, Connection, OpenFlags};

use crate::base::IssueDate;

/// How the issue of a soft bounce was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueSource {
    /// From the date in our original Message-ID: exact.
    MessageId,
    /// From the report's date: the issue is the one sent shortly before.
    ReportDate,
}

impl IssueSource {
    fn as_str(self) -> &'static str {
        match self {
            IssueSource::MessageId => "message-id",
            IssueSource::ReportDate => "report-date",
        }
    }
}

/// One soft bounce of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftBounce {
    /// The address's case-insensitive key.
    pub address: String,
    pub issue: IssueDate,
    pub issue_source: IssueSource,
    /// The bounce message's id (its Message-ID or a hash of its bytes).
    pub bounce_id: String,
    /// The status code, if the report gave one.
    pub status: Option<String>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS soft_bounces (
    address TEXT NOT NULL,
    issue TEXT NOT NULL,
    issue_source TEXT NOT NULL,
    bounce_id TEXT NOT NULL,
    status TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (bounce_id, address)
);
CREATE INDEX IF NOT EXISTS soft_bounces_by_address ON soft_bounces (address, issue);";

/// The soft-bounce table of the journal database.
pub struct SoftBounceStore {
    conn: Connection,
}

impl SoftBounceStore {
    /// Opens (creating the file and table if needed) the journal database at `path`.
    pub fn open(path: &Path) -> Result<SoftBounceStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::base::files::data_folder(dir).with_context(|| {
                format!("cannot prepare the journal folder `{}`", dir.display())
            })?;
        }
        crate::base::files::ensure_private_file(path)
            .with_context(|| format!("cannot create the journal `{}`", path.display()))?;
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the journal database `{}`", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA).with_context(|| {
            format!(
                "cannot create the soft_bounces table in `{}`",
                path.display()
            )
        })?;
        Ok(SoftBounceStore { conn })
    }

    /// Opens an existing database read-only (for `--dry-run`); `None` if there is none.
    pub fn open_read_only(path: &Path) -> Result<Option<SoftBounceStore>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open the journal database `{}`", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let exists: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'soft_bounces'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .with_context(|| format!("cannot read the journal database `{}`", path.display()))?
            > 0;
        Ok(exists.then_some(SoftBounceStore { conn }))
    }

    /// Records soft bounces; rows already known (same bounce, same address) are skipped.
    /// Returns how many were new.
    pub fn record(&mut self, bounces: &[SoftBounce], now: &str) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut added = 0;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO soft_bounces
                 (address, issue, issue_source, bounce_id, status, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for b in bounces {
                added += stmt.execute(params![
                    b.address,
                    b.issue.to_string(),
                    b.issue_source.as_str(),
                    b.bounce_id,
                    b.status,
                    now
                ])?;
            }
        }
        tx.commit()
            .context("cannot record soft bounces in the journal")?;
        Ok(added)
    }

    /// The issues each of `addresses` bounced softly in, with the bounce ids known.
    pub fn history(
        &self,
        addresses: &[String],
    ) -> Result<HashMap<String, Vec<(IssueDate, String)>>> {
        let mut out: HashMap<String, Vec<(IssueDate, String)>> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT issue, bounce_id FROM soft_bounces WHERE address = ?1")?;
        for a in addresses {
            let rows = stmt.query_map([a], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (issue, id) = row?;
                if let Ok(d) = IssueDate::parse(&issue) {
                    out.entry(a.clone()).or_default().push((d, id));
                }
            }
        }
        Ok(out)
    }
}

/// How many consecutive issues, ending with the most recent one, these soft-bounce dates
/// cover. Dates closer than half the cadence are one issue (a bounce dated by its report
/// arrives days after the issue); issues further apart than one and a half cadences have
/// a missed issue between them, which broke the run (that issue was delivered).
pub fn consecutive_issues(dates: &BTreeSet<NaiveDate>, cadence_days: u32) -> u32 {
    let cadence = i64::from(cadence_days.max(1));
    let mut slots: Vec<NaiveDate> = Vec::new();
    for &d in dates {
        match slots.last() {
            Some(&last) if (d - last).num_days() * 2 < cadence => {}
            _ => slots.push(d),
        }
    }
    let mut run = 0;
    let mut next: Option<NaiveDate> = None;
    for &d in slots.iter().rev() {
        match next {
            Some(n) if (n - d).num_days() * 2 > cadence * 3 => break,
            _ => {}
        }
        run += 1;
        next = Some(d);
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn set(v: &[&str]) -> BTreeSet<NaiveDate> {
        v.iter().map(|s| d(s)).collect()
    }

    #[test]
    fn consecutive_issues_count_back_from_the_latest_and_stop_at_a_gap() {
        assert_eq!(consecutive_issues(&set(&[]), 14), 0);
        assert_eq!(consecutive_issues(&set(&["2002-01-30"]), 14), 1);
        assert_eq!(
            consecutive_issues(&set(&["2002-01-30", "2002-02-13", "2002-02-27"]), 14),
            3
        );
        // a delivered issue (2002-02-13) in between breaks the run
        assert_eq!(
            consecutive_issues(&set(&["2002-01-16", "2002-01-30", "2002-02-27"]), 14),
            1
        );
        // a report dated days after its issue is the same issue
        assert_eq!(
            consecutive_issues(&set(&["2002-01-30", "2002-02-03", "2002-02-13"]), 14),
            2
        );
    }

    #[test]
    fn recording_the_same_bounce_twice_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".fortnight/journal.sqlite");
        let mut store = SoftBounceStore::open(&path).unwrap();
        let b = SoftBounce {
            address: "a@example.org".into(),
            issue: IssueDate::parse("2002-02-27").unwrap(),
            issue_source: IssueSource::MessageId,
            bounce_id: "<x@mx>".into(),
            status: Some("4.2.2".into()),
        };
        assert_eq!(store.record(std::slice::from_ref(&b), "now").unwrap(), 1);
        assert_eq!(store.record(std::slice::from_ref(&b), "now").unwrap(), 0);
        let h = store.history(&["a@example.org".into()]).unwrap();
        assert_eq!(h["a@example.org"].len(), 1);
        drop(store);
        assert!(SoftBounceStore::open_read_only(&path).unwrap().is_some());
        assert!(
            SoftBounceStore::open_read_only(&dir.path().join("none.sqlite"))
                .unwrap()
                .is_none()
        );
    }
}
