//! Subscribers: the list file, strict addresses, and imports from other tools.
//!
//! The list (`subscribers.csv`) is the only place subscription state lives. Every address
//! crosses the boundary as a [`SubscriberEmail`] (parse, don't validate); every rewrite of
//! the list is atomic (temp file in the same folder, fsync, rename) and serialised by a lock
//! so that concurrent writers (the unsubscribe endpoint, bounce processing, a send marking
//! bounces) never lose each other's updates. It never sends anything.
//!
//! `email` holds the address policy and name normalisation, `list` the strict reader and
//! the compact in-memory table, `store` the lock, the atomic rewrite and status updates,
//! `decode` the detection of encodings, `import` the export formats and the merge rules;
//! this file has the public types and the use cases over the list file (import, stats,
//! export, unsubscribe), which return what they did and print nothing. Subscribers depends
//! on no other module of fortnight.

mod email;
pub(crate) mod import;

mod decode;
mod list;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use email::{normalize_name, AddressError, SubscriberEmail};
pub use list::{require_list, CompactList};
pub(crate) use store::StatusOutcome;

use list::{read_list, read_list_bytes, read_list_checked, Table, STANDARD_COLUMNS};
use store::update_statuses;

/// A subscriber's state. Only `Subscribed` rows get mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Subscribed,
    Unsubscribed,
    Bounced,
    Complained,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
            Status::Complained => "complained",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        let s = s.trim();
        [
            Status::Subscribed,
            Status::Unsubscribed,
            Status::Bounced,
            Status::Complained,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
    /// A suppression is never turned back into `Subscribed` without explicit consent.
    pub fn is_suppression(self) -> bool {
        self != Status::Subscribed
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the list.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    pub email: SubscriberEmail,
    /// Display name, control characters already normalised away; may be empty.
    pub name: String,
    pub status: Status,
    /// When the row was created (free text, usually RFC 3339 or YYYY-MM-DD).
    pub since: String,
    /// Where the row came from (`import:mailchimp`, `manual`, ...).
    pub source: String,
    pub tags: Vec<String>,
    /// Extra columns, seen by templates as `subscriber.attrs.NAME`.
    pub attrs: BTreeMap<String, String>,
}

/// The list file in memory, in file order.
#[derive(Debug, Clone, Default)]
pub struct SubscriberList {
    pub subscribers: Vec<Subscriber>,
    /// Names of the extra columns, in file order.
    pub extra_columns: Vec<String>,
}

impl SubscriberList {
    /// Loads the list; malformed rows and duplicate addresses are errors naming the lines.
    /// A missing file is an error (never an empty list).
    pub fn load(path: &Path) -> Result<SubscriberList> {
        SubscriberList::from_bytes(&read_list_bytes(path)?, path)
    }

    /// Calls `f` with every subscriber in file order without holding the list in memory
    /// (for a send over a large list). The whole file is checked first, so `f` only runs
    /// when the list is valid; the file is read once, so a concurrent rewrite is not seen
    /// half-way. Returns the extra column names. A missing file is an error.
    pub fn for_each(
        path: &Path,
        mut f: impl FnMut(Subscriber) -> Result<()>,
    ) -> Result<Vec<String>> {
        let buf = read_list_bytes(path)?;
        read_list_checked(&buf, path, || (), |_, _| {})?;
        let header = read_list(&buf, path, |_, row| f(row.to_subscriber()).map(|()| None))?;
        Ok(header.extra)
    }

    /// The first subscribed row of the list (reading no further than that row) and the
    /// extra column names; `None` when the list has no subscribed row. A missing file is an
    /// error. For previews: the file is not checked past the row found.
    pub(crate) fn first_subscribed(path: &Path) -> Result<(Option<Subscriber>, Vec<String>)> {
        struct Found;
        impl fmt::Display for Found {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("found")
            }
        }
        impl fmt::Debug for Found {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Found")
            }
        }
        impl std::error::Error for Found {}

        let buf = read_list_bytes(path)?;
        let mut found = None;
        let scanned = read_list(&buf, path, |header, row| {
            if row.status != Status::Subscribed {
                return Ok(None);
            }
            found = Some((row.to_subscriber(), header.extra.clone()));
            Err(Found.into())
        });
        match (scanned, found) {
            (_, Some((s, extra))) => Ok((Some(s), extra)),
            (Ok(header), None) => Ok((None, header.extra)),
            (Err(e), None) => Err(e),
        }
    }

    /// The subscribers that get mail.
    pub fn subscribed(&self) -> impl Iterator<Item = &Subscriber> {
        self.subscribers
            .iter()
            .filter(|s| s.status == Status::Subscribed)
    }
}

/// Sets the status of the given addresses under the list lock: reload, apply, atomic write.
/// Addresses not in the list are ignored. Returns the addresses whose status changed.
/// Safe against concurrent callers in this and other processes.
pub(crate) fn set_statuses(
    path: &Path,
    changes: &[(SubscriberEmail, Status)],
) -> Result<Vec<SubscriberEmail>> {
    let outcomes = update_statuses(path, changes)?;
    Ok(changes
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| matches!(o, StatusOutcome::Changed(_)))
        .map(|((e, _), _)| e.clone())
        .collect())
}

/// Prefixes a cell that a spreadsheet would run as a formula (`= + - @`, TAB, CR, NUL) with
/// `'` (OWASP "CSV injection").
fn guard_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\0']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// What an import did to the list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListWrite {
    /// `dry_run`: nothing was written.
    DryRun,
    /// The list was rewritten.
    Written,
    /// The import changed nothing, so the list was not rewritten.
    Unchanged,
}

/// The outcome of [`import`]: the account of the rows and the list as it stands after.
#[derive(Debug, Clone)]
pub(crate) struct ImportOutcome {
    pub report: import::ImportReport,
    pub write: ListWrite,
    /// How many addresses the list holds after the import (or would, after a dry run).
    pub total: usize,
    /// Of those, how many have each status.
    pub by_status: BTreeMap<Status, usize>,
}

impl ImportOutcome {
    /// How many addresses of the list have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// Merges `files` into the list at `list_path` and (unless `dry_run`, or nothing changed)
/// rewrites it atomically. The list lock is held from reading the list to writing it, so
/// that an unsubscribe arriving meanwhile is neither lost nor overwritten; a dry run only
/// reads.
pub(crate) fn import(
    list_path: &Path,
    files: &[std::path::PathBuf],
    opts: import::ImportOptions,
    dry_run: bool,
) -> Result<ImportOutcome> {
    let _lock = if dry_run {
        None
    } else {
        Some(store::lock_list(list_path)?)
    };
    let mut table = Table::load_or_new(list_path)?;
    let (report, changed) = import::import_files(&mut table, files, opts)?;
    let write = if dry_run {
        ListWrite::DryRun
    } else if changed {
        store::write_atomically(list_path, |out| table.write_csv(out))?;
        ListWrite::Written
    } else {
        ListWrite::Unchanged
    };
    let by_status = [
        Status::Subscribed,
        Status::Unsubscribed,
        Status::Bounced,
        Status::Complained,
    ]
    .into_iter()
    .map(|s| (s, table.count(s)))
    .collect();
    Ok(ImportOutcome {
        report,
        write,
        total: table.len(),
        by_status,
    })
}

/// Counts by status and by domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListStats {
    pub total: usize,
    pub by_status: BTreeMap<Status, usize>,
    /// The ten most common domains, most common first (ties alphabetically).
    pub top_domains: Vec<(String, usize)>,
    /// How many distinct domains there are.
    pub domains: usize,
}

/// Reads the list at `path` and counts it (a missing list is an error).
pub(crate) fn stats(path: &Path) -> Result<ListStats> {
    #[derive(Default)]
    struct Counts {
        total: usize,
        by_status: BTreeMap<Status, usize>,
        domains: HashMap<String, usize>,
    }
    let mut st = ListStats::default();
    let mut domains: HashMap<String, usize> = HashMap::new();
    {
        let buf = read_list_bytes(path)?;
        let (_, parts) = read_list_checked(&buf, path, Counts::default, |c: &mut Counts, row| {
            c.total += 1;
            *c.by_status.entry(row.status).or_default() += 1;
            let domain = row.email().rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            match c.domains.get_mut(domain) {
                Some(n) => *n += 1,
                None => {
                    c.domains.insert(domain.to_string(), 1);
                }
            }
        })?;
        for c in parts {
            st.total += c.total;
            for (s, n) in c.by_status {
                *st.by_status.entry(s).or_default() += n;
            }
            for (d, n) in c.domains {
                *domains.entry(d).or_default() += n;
            }
        }
    }
    st.domains = domains.len();
    let mut top: Vec<(String, usize)> = domains.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(10);
    st.top_domains = top;
    Ok(st)
}

/// Writes the list (optionally only rows with `status`) as CSV to `out`, every cell passed
/// through [`guard_cell`].
pub(crate) fn export(path: &Path, status: Option<Status>, out: &mut dyn Write) -> Result<()> {
    let buf = read_list_bytes(path)?;
    // Check the whole list first, so that a malformed list exports nothing at all.
    read_list_checked(&buf, path, || (), |_, _| {})?;
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let mut header_written = false;
    let header = read_list(&buf, path, |h, row| {
        if !header_written {
            w.write_record(
                STANDARD_COLUMNS
                    .iter()
                    .copied()
                    .chain(h.extra.iter().map(String::as_str))
                    .map(guard_cell)
                    .map(|c| c.into_owned()),
            )?;
            header_written = true;
        }
        if status.is_some_and(|s| s != row.status) {
            return Ok(None);
        }
        w.write_field(guard_cell(row.email()).as_bytes())?;
        w.write_field(guard_cell(&row.name()).as_bytes())?;
        w.write_field(row.status.as_str())?;
        w.write_field(guard_cell(&row.since()).as_bytes())?;
        w.write_field(guard_cell(&row.source()).as_bytes())?;
        w.write_field(guard_cell(&row.tags()).as_bytes())?;
        for j in 0..h.extra.len() {
            w.write_field(guard_cell(&row.extra(j)).as_bytes())?;
        }
        w.write_record(None::<&[u8]>)?;
        Ok(None)
    })?;
    if !header_written {
        w.write_record(
            STANDARD_COLUMNS
                .iter()
                .copied()
                .chain(header.extra.iter().map(String::as_str))
                .map(guard_cell)
                .map(|c| c.into_owned()),
        )?;
    }
    w.flush().context("failed to write the export")?;
    Ok(())
}

/// Parses the addresses given to `fortnight unsubscribe`; one bad address is an error
/// naming every bad one (so that nothing is changed).
pub(crate) fn parse_addresses(raw: &[String]) -> Result<Vec<SubscriberEmail>> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for a in raw {
        match SubscriberEmail::parse(email::trim_cell(a)) {
            Ok(e) => ok.push(e),
            Err(e) => bad.push(format!("`{}`: {e}", crate::base::shown(a))),
        }
    }
    if !bad.is_empty() {
        bail!(
            "not a valid address, nothing was changed:\n  {}",
            bad.join("\n  ")
        );
    }
    Ok(ok)
}

/// Marks `addresses` unsubscribed in the list at `path` (one locked rewrite); one outcome
/// per address, in order.
pub(crate) fn unsubscribe(
    path: &Path,
    addresses: &[SubscriberEmail],
) -> Result<Vec<StatusOutcome>> {
    let changes: Vec<(SubscriberEmail, Status)> = addresses
        .iter()
        .map(|a| (a.clone(), Status::Unsubscribed))
        .collect();
    update_statuses(path, &changes)
}
