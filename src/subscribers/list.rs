//! The list file: reading it strictly, and a compact in-memory table for rewriting it.
//!
//! `subscribers.csv` has the header `email,name,status,since,source,tags` followed by any
//! extra columns (attributes). Reading reports every malformed row with its physical line
//! number (the first line of a record that spans lines) and refuses a list holding the same
//! address twice, naming both lines. Every cell is normalised on the way in (no control,
//! bidi or zero-width characters; names capped), so the list is always one line per row.
//!
//! Two in-memory shapes exist: [`SubscriberList`] (a `Vec<Subscriber>`, the public API) and
//! [`Table`] (all cells of all rows in one string arena plus an index by address), which the
//! import and status updates use so that a million-row list costs about a hundred bytes a
//! row rather than several hundred. Neither writes the file: see `store.rs`.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use super::email::{normalize_address, normalize_name, normalize_text, trim_cell};
use super::{Status, Subscriber, SubscriberEmail, SubscriberList};

/// The standard columns, in the order they are written.
pub const STANDARD_COLUMNS: [&str; 6] = ["email", "name", "status", "since", "source", "tags"];
/// Longest `since` / `source` cell kept, in characters.
pub(crate) const MAX_META_CHARS: usize = 200;
/// Longest attribute cell kept, in characters.
pub(crate) const MAX_ATTR_CHARS: usize = 1000;
/// How many malformed rows an error lists before summarising the rest.
const MAX_LISTED_ERRORS: usize = 20;
/// Separates the cells of one row inside the [`Table`] arena; a control character, so it
/// cannot occur in a normalised cell.
const SEP: char = '\u{1F}';

/// What one column of the list file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Std(usize),
    Extra(usize),
}

/// The list's header: where each standard column is and which extra columns exist.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    roles: Vec<Role>,
    std_pos: [Option<usize>; 6],
    /// Extra column names in file order.
    pub extra: Vec<String>,
    extra_pos: Vec<usize>,
}

impl Header {
    fn standard() -> Header {
        Header {
            roles: (0..6).map(Role::Std).collect(),
            std_pos: [Some(0), Some(1), Some(2), Some(3), Some(4), Some(5)],
            extra: Vec::new(),
            extra_pos: Vec::new(),
        }
    }

    fn parse(cells: &[&str], file: &Path) -> Result<Header> {
        let mut h = Header {
            roles: Vec::with_capacity(cells.len()),
            std_pos: [None; 6],
            extra: Vec::new(),
            extra_pos: Vec::new(),
        };
        for (i, raw) in cells.iter().enumerate() {
            let name = trim_cell(raw);
            let lower = name.to_ascii_lowercase();
            if let Some(s) = STANDARD_COLUMNS.iter().position(|c| *c == lower) {
                if h.std_pos[s].is_some() {
                    bail!(
                        "{}: line 1: the column `{}` appears twice in the header",
                        file.display(),
                        STANDARD_COLUMNS[s]
                    );
                }
                h.std_pos[s] = Some(i);
                h.roles.push(Role::Std(s));
            } else {
                if name.is_empty() {
                    bail!(
                        "{}: line 1: column {} of the header has no name",
                        file.display(),
                        i + 1
                    );
                }
                if h.extra.iter().any(|e| e.eq_ignore_ascii_case(name)) {
                    bail!(
                        "{}: line 1: the column `{name}` appears twice in the header",
                        file.display()
                    );
                }
                h.roles.push(Role::Extra(h.extra.len()));
                h.extra
                    .push(normalize_text(name, MAX_META_CHARS).into_owned());
                h.extra_pos.push(i);
            }
        }
        for (s, required) in [(0, "email"), (2, "status")] {
            if h.std_pos[s].is_none() {
                bail!(
                    "{}: line 1: the header has no `{required}` column; the list's header is \
                     `email,name,status,since,source,tags` plus any extra columns",
                    file.display()
                );
            }
        }
        Ok(h)
    }

    fn width(&self) -> usize {
        self.roles.len()
    }
}

/// One valid row of the list, borrowed from the reader's record.
pub(crate) struct RowView<'r> {
    cells: &'r [&'r str],
    header: &'r Header,
    pub line: u64,
    email: Cow<'r, str>,
    pub status: Status,
}

impl<'r> RowView<'r> {
    fn std_cell(&self, s: usize) -> &'r str {
        self.header.std_pos[s]
            .and_then(|i| self.cells.get(i))
            .map(|c| trim_cell(c))
            .unwrap_or("")
    }
    pub fn email(&self) -> &str {
        &self.email
    }
    pub fn name(&self) -> Cow<'r, str> {
        normalize_name(self.std_cell(1))
    }
    pub fn since(&self) -> Cow<'r, str> {
        normalize_text(self.std_cell(3), MAX_META_CHARS)
    }
    pub fn source(&self) -> Cow<'r, str> {
        normalize_text(self.std_cell(4), MAX_META_CHARS)
    }
    pub fn tags(&self) -> Cow<'r, str> {
        normalize_tags_cell(self.std_cell(5))
    }
    pub fn extra(&self, j: usize) -> Cow<'r, str> {
        let cell = self
            .cells
            .get(self.header.extra_pos[j])
            .map(|c| trim_cell(c))
            .unwrap_or("");
        normalize_text(cell, MAX_ATTR_CHARS)
    }
    pub fn to_subscriber(&self) -> Subscriber {
        let attrs = self
            .header
            .extra
            .iter()
            .enumerate()
            .map(|(j, name)| (name.clone(), self.extra(j).into_owned()))
            .collect();
        Subscriber {
            email: SubscriberEmail::from_normalized(self.email.clone().into_owned()),
            name: self.name().into_owned(),
            status: self.status,
            since: self.since().into_owned(),
            source: self.source().into_owned(),
            tags: split_tags(&self.tags()),
            attrs,
        }
    }
}

/// Normalises one tag: no separators, no controls, trimmed.
pub(crate) fn normalize_tag(raw: &str) -> Cow<'_, str> {
    let t = normalize_text(raw, MAX_META_CHARS);
    if t.contains(';') {
        Cow::Owned(normalize_text(&t.replace(';', " "), MAX_META_CHARS).into_owned())
    } else {
        t
    }
}

/// A `;`-separated tags cell with each tag normalised, empty tags dropped.
fn normalize_tags_cell(cell: &str) -> Cow<'_, str> {
    if cell.is_empty()
        || cell
            .split(';')
            .all(|t| !t.is_empty() && matches!(normalize_tag(t), Cow::Borrowed(_)))
    {
        return Cow::Borrowed(cell);
    }
    Cow::Owned(join_tags(cell.split(';').map(normalize_tag)))
}

pub(crate) fn join_tags<S: AsRef<str>>(tags: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for t in tags {
        let t = t.as_ref();
        if t.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(t);
    }
    out
}

pub(crate) fn split_tags(cell: &str) -> Vec<String> {
    cell.split(';')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The first physical line of the record whose reader position is `pos`: the reader puts a
/// record's position before the blank lines it skips, so step over them.
pub(crate) fn record_line(buf: &[u8], pos: &csv::Position) -> u64 {
    let mut line = pos.line();
    for &b in buf.get(pos.byte() as usize..).unwrap_or(&[]) {
        match b {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    line
}

/// Case-insensitive hash of an address (ASCII lowercase; addresses are ASCII).
pub(crate) fn key_hash(state: &RandomState, email: &str) -> u64 {
    let mut h = state.build_hasher();
    let mut buf = [0u8; 64];
    for chunk in email.as_bytes().chunks(buf.len()) {
        let part = &mut buf[..chunk.len()];
        part.copy_from_slice(chunk);
        part.make_ascii_lowercase();
        h.write(part);
    }
    h.write_u8(0xff);
    h.finish()
}

/// Finds repeated addresses after a pass: every address is appended to an arena with its
/// case-insensitive hash, then the hashes are sorted and equal neighbours compared. Sorting
/// is sequential work; a hash table would cost a cache miss per row at a million rows.
#[derive(Default)]
struct DupFinder {
    arena: String,
    /// (hash, offset, length, line)
    entries: Vec<(u64, u32, u32, u64)>,
}

impl DupFinder {
    fn add(&mut self, state: &RandomState, email: &str, line: u64) {
        let off = self.arena.len() as u32;
        self.arena.push_str(email);
        self.entries
            .push((key_hash(state, email), off, email.len() as u32, line));
    }

    /// Takes over the entries of a later chunk (hashed with the same state).
    fn append(&mut self, other: DupFinder) {
        let shift = self.arena.len() as u32;
        self.arena.push_str(&other.arena);
        self.entries.extend(
            other
                .entries
                .into_iter()
                .map(|(h, off, len, line)| (h, off + shift, len, line)),
        );
    }

    /// Reports every row whose address appeared on an earlier line.
    fn report(mut self, problems: &mut Problems) {
        self.entries.sort_unstable_by_key(|e| (e.0, e.3));
        let text = |e: &(u64, u32, u32, u64)| &self.arena[e.1 as usize..(e.1 + e.2) as usize];
        for group in self.entries.chunk_by(|a, b| a.0 == b.0) {
            for (k, later) in group.iter().enumerate().skip(1) {
                if let Some(first) = group[..k]
                    .iter()
                    .find(|e| text(e).eq_ignore_ascii_case(text(later)))
                {
                    problems.add(later.3, duplicate_message(text(later), first.3));
                }
            }
        }
    }
}

fn duplicate_message(email: &str, first_line: u64) -> String {
    format!(
        "`{email}` is already in the list on line {first_line} (addresses are compared \
         ignoring case)"
    )
}

/// Malformed rows found while reading, reported together in line order.
#[derive(Default)]
pub(crate) struct Problems {
    listed: Vec<(u64, String)>,
    count: usize,
}

impl Problems {
    /// Keeps at most this many messages (the error lists the first ones by line).
    const KEEP: usize = 1000;

    fn add(&mut self, line: u64, msg: String) {
        self.count += 1;
        if self.listed.len() < Self::KEEP {
            self.listed.push((line, msg));
        }
    }

    fn append(&mut self, other: Problems) {
        self.count += other.count;
        self.listed.extend(other.listed);
    }

    fn into_result(mut self, file: &Path) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.listed.sort_by_key(|(line, _)| *line);
        let n = self.count;
        let mut msg = format!(
            "{} has {n} malformed row{}; fix {} and run again:",
            file.display(),
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        );
        for (line, e) in self.listed.iter().take(MAX_LISTED_ERRORS) {
            msg.push_str(&format!("\n  line {line}: {e}"));
        }
        if n > MAX_LISTED_ERRORS {
            msg.push_str(&format!("\n  … and {} more", n - MAX_LISTED_ERRORS));
        }
        bail!(msg)
    }
}

/// A list file's header and where its rows start.
struct Body<'b> {
    header: Header,
    /// The bytes after the header.
    rows: &'b [u8],
    /// The physical line `rows` starts on.
    first_line: u64,
}

/// Finds and parses the header (the first non-blank record); a file without one is an empty
/// list with the standard header.
fn split_header<'b>(buf: &'b [u8], file: &Path) -> Result<Body<'b>> {
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(buf);
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Body {
                    header: Header::standard(),
                    rows: &[],
                    first_line: 1,
                })
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{}: the header is not valid UTF-8 (save the list as UTF-8)",
                        file.display()
                    )
                })
            }
        }
        let cells: Vec<&str> = rec.iter().collect();
        if cells.iter().all(|c| trim_cell(c).is_empty()) {
            continue;
        }
        let header = Header::parse(&cells, file)?;
        let end = (rdr.position().byte() as usize).min(buf.len());
        return Ok(Body {
            header,
            rows: &buf[end..],
            first_line: 1 + count_newlines(&buf[..end]) as u64,
        });
    }
}

fn count_newlines(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count()
}

/// An upper bound on the number of records in `buf` (its line count), to size tables once.
pub(crate) fn count_lines(buf: &[u8]) -> usize {
    count_newlines(buf) + 1
}

/// The address and status of a record, or `None` (with the problem noted) when it has the
/// wrong number of fields, an unusable address or an unknown status.
fn check_row<'r>(
    local: &[&'r str],
    h: &Header,
    line: u64,
    problems: &mut Problems,
) -> Option<(Cow<'r, str>, Status)> {
    if local.len() != h.width()
        && !(local.len() > h.width() && local[h.width()..].iter().all(|c| c.is_empty()))
    {
        problems.add(
            line,
            format!(
                "the row has {} fields but the header has {}",
                local.len(),
                h.width()
            ),
        );
        return None;
    }
    let email_cell = trim_cell(local[h.std_pos[0].expect("email column checked")]);
    let email = match normalize_address(email_cell) {
        Ok(e) => e,
        Err(e) => {
            problems.add(line, format!("`{}`: {e}", crate::base::shown(email_cell)));
            return None;
        }
    };
    let status_cell = local[h.std_pos[2].expect("status column checked")];
    let Some(status) = Status::parse(status_cell) else {
        problems.add(
            line,
            format!(
                "status `{}` is not one of subscribed, unsubscribed, bounced, complained",
                crate::base::shown(trim_cell(status_cell))
            ),
        );
        return None;
    };
    Some((email, status))
}

/// Reads the rows in `rows` (starting on physical line `first_line`), calling `f` for every
/// valid one; `f` returns the line of an earlier row with the same address, if it knows one.
/// Returns where the last record started (to check a parallel split).
fn scan_rows(
    rows: &[u8],
    first_line: u64,
    header: &Header,
    mut f: impl FnMut(&RowView<'_>) -> Result<Option<u64>>,
    problems: &mut Problems,
) -> Result<Option<usize>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(rows);
    let mut rec = csv::StringRecord::new();
    let mut spare: Vec<&'static str> = Vec::new();
    let mut last_start = None;
    let h = header;
    let line_of = |p: &csv::Position| first_line + record_line(rows, p) - 1;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let line = e.position().map(line_of).unwrap_or(0);
                last_start = e.position().map(|p| p.byte() as usize);
                problems.add(
                    line,
                    "the row is not valid UTF-8 (save the list as UTF-8)".to_string(),
                );
                continue;
            }
            Err(e) => return Err(e).context("failed to read the list"),
        }
        let line = rec.position().map(line_of).unwrap_or(0);
        last_start = rec.position().map(|p| p.byte() as usize);
        // Reuse one allocation for the cells of every record (they borrow `rec` only until
        // the next read, so the vector is emptied and re-typed each time).
        let mut local: Vec<&str> = reuse(std::mem::take(&mut spare));
        local.extend(rec.iter());
        if local.iter().all(|c| trim_cell(c).is_empty()) {
            continue;
        }
        let Some((email, status)) = check_row(&local, h, line, problems) else {
            continue;
        };
        let view = RowView {
            cells: &local,
            header: h,
            line,
            email,
            status,
        };
        if let Some(first) = f(&view)? {
            problems.add(line, duplicate_message(&view.email, first));
        }
        drop(view);
        spare = reuse(local);
    }
    Ok(last_start)
}

/// Reads the list at `file` whose bytes are `buf`, calling `f` for every valid row in file
/// order; `f` returns the line of an earlier row with the same address, if it knows one (the
/// row is then a duplicate). Malformed rows and duplicates are collected and returned as one
/// error listing their lines. Returns the header.
pub(crate) fn read_list(
    buf: &[u8],
    file: &Path,
    mut f: impl FnMut(&Header, &RowView<'_>) -> Result<Option<u64>>,
) -> Result<Header> {
    let body = split_header(buf, file)?;
    let mut problems = Problems::default();
    scan_rows(
        body.rows,
        body.first_line,
        &body.header,
        |row| f(&body.header, row),
        &mut problems,
    )?;
    problems.into_result(file)?;
    Ok(body.header)
}

/// Lists smaller than this are read on one thread (tests split tiny lists to exercise the
/// two-thread path).
const PARALLEL_MIN_BYTES: usize = if cfg!(test) { 64 } else { 4 << 20 };

/// Where to cut `rows` in two at a record boundary near the middle: the first newline after
/// the middle that is outside quotes (an even number of `"` before it). `None` for small
/// input or when no such place exists.
fn split_point(rows: &[u8]) -> Option<usize> {
    if rows.len() < PARALLEL_MIN_BYTES {
        return None;
    }
    let mid = rows.len() / 2;
    let mut quotes = rows[..mid].iter().filter(|&&b| b == b'"').count();
    for (i, &b) in rows[mid..].iter().enumerate() {
        match b {
            b'"' => quotes += 1,
            b'\n' if quotes % 2 == 0 => return Some(mid + i + 1),
            _ => {}
        }
    }
    None
}

/// Reads the list on two threads when it is large: the rows are cut in two at a record
/// boundary, each half fills its own `R` (made by `init` from the part's number, 0 or 1, and
/// filled by `f`), and the results
/// come back in file order with the problems of both halves. Falls back to one thread when
/// the cut turns out to be inside a quoted field.
pub(crate) fn read_list_parallel<R: Send>(
    buf: &[u8],
    file: &Path,
    init: impl Fn(usize) -> R + Sync,
    f: impl Fn(&mut R, &RowView<'_>) + Sync,
) -> Result<(Header, Vec<R>, Problems)> {
    let body = split_header(buf, file)?;
    let header = &body.header;
    let run = |part: usize, rows: &[u8], first_line: u64| -> Result<(R, Problems, Option<usize>)> {
        let mut r = init(part);
        let mut problems = Problems::default();
        let last = scan_rows(
            rows,
            first_line,
            header,
            |row| {
                f(&mut r, row);
                Ok(None)
            },
            &mut problems,
        )?;
        Ok((r, problems, last))
    };
    if let Some(cut) = split_point(body.rows) {
        let (head, tail) = body.rows.split_at(cut);
        let tail_line = body.first_line + count_newlines(head) as u64;
        let (first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| run(1, tail, tail_line));
            let first = run(0, head, body.first_line);
            (first, second.join())
        });
        let (r1, mut p1, last) = first?;
        let (r2, p2, _) =
            second.unwrap_or_else(|_| Err(anyhow::anyhow!("a reader thread panicked")))?;
        // The cut is sound when the first half's last record holds balanced quotes.
        let clean =
            last.is_none_or(|start| head[start..].iter().filter(|&&b| b == b'"').count() % 2 == 0);
        if clean {
            p1.append(p2);
            return Ok((body.header.clone(), vec![r1, r2], p1));
        }
    }
    let (r, p, _) = run(0, body.rows, body.first_line)?;
    Ok((body.header.clone(), vec![r], p))
}

/// [`read_list`] with duplicate detection of its own, on two threads for large lists. `f`
/// builds a result per half (see [`read_list_parallel`]); duplicates are found at the end,
/// and then the whole read is an error.
pub(crate) fn read_list_checked<R: Send>(
    buf: &[u8],
    file: &Path,
    init: impl Fn() -> R + Sync,
    f: impl Fn(&mut R, &RowView<'_>) + Sync,
) -> Result<(Header, Vec<R>)> {
    let state = RandomState::new();
    let (header, parts, mut problems) = read_list_parallel(
        buf,
        file,
        |_| (init(), DupFinder::default()),
        |(r, dups), row| {
            dups.add(&state, row.email(), row.line);
            f(r, row);
        },
    )?;
    let mut dups = DupFinder::default();
    let mut results = Vec::with_capacity(parts.len());
    for (r, d) in parts {
        dups.append(d);
        results.push(r);
    }
    dups.report(&mut problems);
    problems.into_result(file)?;
    Ok((header, results))
}

/// Empties `v` and hands back its allocation for a vector of other borrows.
pub(crate) fn reuse<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// Reads the whole list file; `None` when it does not exist (only an import may start a
/// list; everything else calls [`read_list_bytes`]).
pub(crate) fn read_list_bytes_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    use crate::base::files::{read_regular, ReadError};
    match read_regular(path, u64::MAX) {
        Ok(b) => Ok(Some(b)),
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e)
            .with_context(|| format!("failed to read the subscriber list `{}`", path.display())),
    }
}

/// Reads the whole list file. A missing file is an error, never an empty list: a mistyped
/// `[subscribers] file` must not look like a list nobody is on (docs/guarantees.md).
pub(crate) fn read_list_bytes(path: &Path) -> Result<Vec<u8>> {
    read_list_bytes_if_exists(path)?.ok_or_else(|| missing_list(path))
}

/// The error for a list file that does not exist.
fn missing_list(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "the subscriber list `{}` does not exist: check `[subscribers] file` in the config, \
         or create the list (`fortnight subscribers import FILE` starts one)",
        path.display()
    )
}

/// An error when the list file does not exist (checked before a run writes anything).
pub fn require_list(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing_list(path)),
        _ => Ok(()),
    }
}

impl SubscriberList {
    /// Parses list bytes (as read from `file`).
    pub(crate) fn from_bytes(buf: &[u8], file: &Path) -> Result<SubscriberList> {
        let (header, parts) = read_list_checked(buf, file, Vec::new, |v, row| {
            v.push(row.to_subscriber());
        })?;
        let mut parts = parts.into_iter();
        let mut subscribers: Vec<Subscriber> = parts.next().unwrap_or_default();
        for more in parts {
            subscribers.extend(more);
        }
        Ok(SubscriberList {
            subscribers,
            extra_columns: header.extra,
        })
    }

    /// The extra columns to write: the declared ones, then attributes no column declares.
    #[cfg(test)]
    fn columns_to_write(&self) -> Vec<String> {
        let mut cols = self.extra_columns.clone();
        let mut more: std::collections::BTreeSet<&str> = Default::default();
        for s in &self.subscribers {
            for k in s.attrs.keys() {
                if !cols.iter().any(|c| c == k) && !STANDARD_COLUMNS.contains(&k.as_str()) {
                    more.insert(k);
                }
            }
        }
        cols.extend(more.into_iter().map(str::to_string));
        cols
    }

    /// Writes the list as CSV (header, then rows in order), normalising every cell: what
    /// the list's writers ([`Table::write_csv`]) must agree with, for the tests.
    #[cfg(test)]
    pub(crate) fn write_csv(&self, out: &mut dyn Write) -> Result<()> {
        let cols = self.columns_to_write();
        let mut w = csv_writer(out);
        write_header(&mut w, &cols)?;
        for s in &self.subscribers {
            w.write_field(s.email.as_str())?;
            w.write_field(normalize_name(&s.name).as_bytes())?;
            w.write_field(s.status.as_str())?;
            w.write_field(normalize_text(&s.since, MAX_META_CHARS).as_bytes())?;
            w.write_field(normalize_text(&s.source, MAX_META_CHARS).as_bytes())?;
            w.write_field(join_tags(s.tags.iter().map(|t| normalize_tag(t))))?;
            for c in &cols {
                let v = s.attrs.get(c).map(String::as_str).unwrap_or("");
                w.write_field(normalize_text(v, MAX_ATTR_CHARS).as_bytes())?;
            }
            w.write_record(None::<&[u8]>)?;
        }
        w.flush()?;
        Ok(())
    }
}

pub(crate) fn csv_writer(out: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::WriterBuilder::new()
        .buffer_capacity(1 << 16)
        .flexible(true)
        .from_writer(out)
}

fn write_header(w: &mut csv::Writer<&mut dyn Write>, extra: &[String]) -> Result<()> {
    for c in STANDARD_COLUMNS {
        w.write_field(c)?;
    }
    for c in extra {
        w.write_field(c)?;
    }
    w.write_record(None::<&[u8]>)?;
    Ok(())
}

/// One row of a [`Table`]: where its cells are in the arena, and its status.
#[derive(Debug, Clone, Copy)]
struct TRow {
    start: u32,
    len: u32,
    status: Status,
}

/// The list as a compact table: every row's cells (email, name, since, source, tags,
/// extras…) joined by a separator in one arena, an index by address, statuses apart.
pub(crate) struct Table {
    /// Extra column names, in order.
    pub extra: Vec<String>,
    arena: String,
    rows: Vec<TRow>,
    /// (row, 32 bits of the address's hash): the stored hash makes growing the table and
    /// most comparisons free of a trip to the arena.
    index: HashTable<(u32, u32)>,
    state: RandomState,
}

/// The 32 bits of an address hash kept in the [`Table`] index.
fn short_hash(h: u64) -> u32 {
    (h >> 32) as u32
}

/// The table hash rebuilt from [`short_hash`]: a multiplication spreads it over the 64 bits
/// hashbrown uses (bucket from the low bits, tag from the high ones).
fn spread(h: u32) -> u64 {
    (h as u64 | ((h as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The rows one reader thread parsed, before they join the [`Table`].
#[derive(Default)]
struct TablePart {
    arena: String,
    rows: Vec<TRow>,
    /// Short hash of each row's address.
    hashes: Vec<u32>,
    /// Physical line of each row.
    lines: Vec<u64>,
}

impl TablePart {
    fn push(&mut self, state: &RandomState, row: &RowView<'_>) {
        let start = self.arena.len();
        let email = row.email();
        self.arena.push_str(email);
        for c in [row.name(), row.since(), row.source(), row.tags()] {
            self.arena.push(SEP);
            self.arena.push_str(&c);
        }
        for j in 0..row.header.extra.len() {
            self.arena.push(SEP);
            self.arena.push_str(&row.extra(j));
        }
        // Offsets beyond 4 GiB are caught when the parts are joined.
        self.rows.push(TRow {
            start: start as u32,
            len: (self.arena.len() - start) as u32,
            status: row.status,
        });
        self.hashes.push(short_hash(key_hash(state, email)));
        self.lines.push(row.line);
    }
}

/// The cells of one [`Table`] row, borrowed.
#[derive(Debug, Clone)]
pub(crate) struct RowRef<'t> {
    pub email: &'t str,
    pub name: &'t str,
    pub status: Status,
    pub since: &'t str,
    pub source: &'t str,
    pub tags: &'t str,
    extras: &'t str,
}

impl<'t> RowRef<'t> {
    pub fn extra(&self, j: usize) -> &'t str {
        self.extras.split(SEP).nth(j).unwrap_or("")
    }
}

/// The cells of a row to store in a [`Table`]; every cell already normalised.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewRow<'a> {
    pub email: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub status: Option<Status>,
    pub since: Cow<'a, str>,
    pub source: Cow<'a, str>,
    pub tags: Cow<'a, str>,
    pub extras: Vec<Cow<'a, str>>,
}

impl Table {
    pub fn new() -> Table {
        Table {
            extra: Vec::new(),
            arena: String::new(),
            rows: Vec::new(),
            index: HashTable::new(),
            state: RandomState::new(),
        }
    }

    /// Loads the list at `path`; a missing file is an error.
    pub fn load(path: &Path) -> Result<Table> {
        Table::load_bytes(&read_list_bytes(path)?, path)
    }

    /// Loads the list at `path`; a missing file is an empty table (an import starts one).
    pub fn load_or_new(path: &Path) -> Result<Table> {
        match read_list_bytes_if_exists(path)? {
            Some(buf) => Table::load_bytes(&buf, path),
            None => Ok(Table::new()),
        }
    }

    /// Parses list bytes read from `path` (on two threads when the list is large).
    pub fn load_bytes(buf: &[u8], path: &Path) -> Result<Table> {
        Table::parse(buf, path, true)
    }

    /// Parses list bytes; with `indexed`, builds the index by address (needed to find and
    /// add rows), otherwise only checks for repeated addresses (cheaper: a sort instead of
    /// a hash table insert per row), leaving the index empty.
    fn parse(buf: &[u8], path: &Path, indexed: bool) -> Result<Table> {
        let state = RandomState::new();
        let (header, parts, mut problems) = read_list_parallel(
            buf,
            path,
            // The first part's arena becomes the table's: give it room for the whole
            // list so that the second part is appended without moving the first.
            |part| TablePart {
                arena: String::with_capacity(if part == 0 {
                    buf.len() + 64
                } else {
                    buf.len() / 2 + 64
                }),
                ..TablePart::default()
            },
            |part, row| part.push(&state, row),
        )?;
        let mut t = Table::new();
        t.state = state;
        let total_rows: usize = parts.iter().map(|p| p.rows.len()).sum();
        let total_text: usize = parts.iter().map(|p| p.arena.len()).sum();
        u32::try_from(total_text)
            .ok()
            .context("the subscriber list is too large to hold in memory (over 4 GiB of text)")?;
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap_or_default();
        t.arena = first.arena;
        t.rows = first.rows;
        let mut hashes = first.hashes;
        let mut lines = first.lines;
        t.rows.reserve(total_rows - t.rows.len());
        for part in parts {
            let shift = t.arena.len() as u32;
            t.arena.push_str(&part.arena);
            t.rows.extend(part.rows.into_iter().map(|r| TRow {
                start: r.start + shift,
                ..r
            }));
            hashes.extend(part.hashes);
            lines.extend(part.lines);
        }
        if indexed {
            t.index_rows(&hashes, &lines, &mut problems);
        } else {
            t.check_repeats(&hashes, &lines, &mut problems);
        }
        problems.into_result(path)?;
        t.extra = header.extra;
        Ok(t)
    }

    /// Builds the index by address (in file order, so that a repeated address names its
    /// first line); `hashes` and `lines` are per row.
    fn index_rows(&mut self, hashes: &[u32], lines: &[u64], problems: &mut Problems) {
        let total_rows = self.rows.len();
        self.index.reserve(total_rows, |&(_, hi)| spread(hi));
        for (i, &h) in hashes.iter().enumerate() {
            let (arena, rows) = (&self.arena, &self.rows);
            let email = row_email(arena, &rows[i]);
            match self.index.entry(
                spread(h),
                |&(j, hj)| {
                    hj == h && row_email(arena, &rows[j as usize]).eq_ignore_ascii_case(email)
                },
                |&(_, hj)| spread(hj),
            ) {
                Entry::Occupied(e) => {
                    let first = lines[e.get().0 as usize];
                    problems.add(lines[i], duplicate_message(email, first));
                }
                Entry::Vacant(v) => {
                    v.insert((i as u32, h));
                }
            }
        }
    }

    /// Notes repeated addresses without building an index (a sort of the hashes).
    fn check_repeats(&self, hashes: &[u32], lines: &[u64], problems: &mut Problems) {
        let mut order: Vec<(u32, u32)> = hashes
            .iter()
            .enumerate()
            .map(|(i, &h)| (h, i as u32))
            .collect();
        order.sort_unstable();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            for (k, &(_, later)) in group.iter().enumerate().skip(1) {
                let email = self.row(later as usize).email;
                if let Some(&(_, first)) = group[..k]
                    .iter()
                    .find(|&&(_, j)| self.row(j as usize).email.eq_ignore_ascii_case(email))
                {
                    problems.add(
                        lines[later as usize],
                        duplicate_message(email, lines[first as usize]),
                    );
                }
            }
        }
    }

    /// An index by address over all rows (for a table parsed without one).
    fn build_index(&self) -> HashTable<(u32, u32)> {
        let mut index = HashTable::with_capacity(self.rows.len());
        for (i, r) in self.rows.iter().enumerate() {
            let h = short_hash(key_hash(&self.state, row_email(&self.arena, r)));
            index.insert_unique(spread(h), (i as u32, h), |&(_, hi)| spread(hi));
        }
        index
    }

    /// The row holding `email` in `index` (one made by [`Table::build_index`]).
    fn find_in(&self, index: &HashTable<(u32, u32)>, email: &str) -> Option<usize> {
        let h = short_hash(key_hash(&self.state, email));
        index
            .find(spread(h), |&(i, hi)| {
                hi == h
                    && row_email(&self.arena, &self.rows[i as usize]).eq_ignore_ascii_case(email)
            })
            .map(|&(i, _)| i as usize)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    fn append_cells<S: AsRef<str>>(
        arena: &mut String,
        email: &str,
        name: &str,
        since: &str,
        source: &str,
        tags: &str,
        extras: impl Iterator<Item = S>,
    ) -> Result<(u32, u32)> {
        let start = arena.len();
        arena.push_str(email);
        for c in [name, since, source, tags] {
            arena.push(SEP);
            arena.push_str(c);
        }
        for c in extras {
            arena.push(SEP);
            arena.push_str(c.as_ref());
        }
        let len = arena.len() - start;
        let start = u32::try_from(start)
            .ok()
            .filter(|s| s.checked_add(len as u32).is_some())
            .context("the subscriber list is too large to hold in memory (over 4 GiB of text)")?;
        Ok((start, len as u32))
    }

    /// Makes room for `rows` more rows without growing the index again.
    pub fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
        self.index.reserve(rows, |&(_, hi)| spread(hi));
    }

    /// The row holding `email` (compared ignoring case).
    pub fn find(&self, email: &str) -> Option<usize> {
        self.find_hashed(email).0
    }

    /// [`Table::find`], also returning the address's short hash for [`Table::push_hashed`].
    pub fn find_hashed(&self, email: &str) -> (Option<usize>, u32) {
        let h = short_hash(key_hash(&self.state, email));
        let found = self
            .index
            .find(spread(h), |&(i, hi)| {
                hi == h
                    && row_email(&self.arena, &self.rows[i as usize]).eq_ignore_ascii_case(email)
            })
            .map(|&(i, _)| i as usize);
        (found, h)
    }

    pub fn row(&self, i: usize) -> RowRef<'_> {
        let r = self.rows[i];
        let text = &self.arena[r.start as usize..(r.start + r.len) as usize];
        let mut it = text.splitn(6, SEP);
        let mut next = || it.next().unwrap_or("");
        RowRef {
            email: next(),
            name: next(),
            status: r.status,
            since: next(),
            source: next(),
            tags: next(),
            extras: next(),
        }
    }

    pub fn status(&self, i: usize) -> Status {
        self.rows[i].status
    }

    pub fn set_status(&mut self, i: usize, status: Status) {
        self.rows[i].status = status;
    }

    /// Adds a row (the address must not be in the table yet).
    #[cfg(test)]
    pub fn push(&mut self, row: &NewRow<'_>) -> Result<usize> {
        let h = short_hash(key_hash(&self.state, &row.email));
        self.push_hashed(row, h)
    }

    /// Adds a row (the address must not be in the table yet); `h` is the short hash
    /// [`Table::find_hashed`] returned for its address.
    pub fn push_hashed(&mut self, row: &NewRow<'_>, h: u32) -> Result<usize> {
        debug_assert!(self.find(&row.email).is_none());
        let n = self.extra.len();
        let (start, len) = Self::append_cells(
            &mut self.arena,
            &row.email,
            &row.name,
            &row.since,
            &row.source,
            &row.tags,
            (0..n).map(|j| row.extras.get(j).map(|c| c.as_ref()).unwrap_or("")),
        )?;
        let idx = self.rows.len();
        self.rows.push(TRow {
            start,
            len,
            status: row.status.unwrap_or(Status::Subscribed),
        });
        self.index
            .insert_unique(spread(h), (idx as u32, h), |&(_, hi)| spread(hi));
        Ok(idx)
    }

    /// Replaces the cells of row `i` (the address is kept).
    pub fn update(&mut self, i: usize, row: &NewRow<'_>) -> Result<()> {
        let n = self.extra.len();
        let r = self.rows[i];
        // Build from a snapshot of the address; the arena may move while appending.
        let email = self.row(i).email.to_string();
        let (start, len) = Self::append_cells(
            &mut self.arena,
            &email,
            &row.name,
            &row.since,
            &row.source,
            &row.tags,
            (0..n).map(|j| row.extras.get(j).map(|c| c.as_ref()).unwrap_or("")),
        )?;
        self.rows[i] = TRow {
            start,
            len,
            status: row.status.unwrap_or(r.status),
        };
        Ok(())
    }

    /// The index of extra column `name`, adding it when missing.
    pub fn extra_column(&mut self, name: &str) -> usize {
        if let Some(j) = self.extra.iter().position(|c| c == name) {
            return j;
        }
        self.extra.push(name.to_string());
        self.extra.len() - 1
    }

    /// Counts of rows by status.
    pub fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }

    /// Writes the table as the list's CSV.
    pub fn write_csv(&self, out: &mut dyn Write) -> Result<()> {
        let mut w = csv_writer(out);
        write_header(&mut w, &self.extra)?;
        let n = self.extra.len();
        for r in &self.rows {
            let text = &self.arena[r.start as usize..(r.start + r.len) as usize];
            let mut cells = text.split(SEP);
            let email = cells.next().unwrap_or("");
            let name = cells.next().unwrap_or("");
            w.write_field(email)?;
            w.write_field(name)?;
            w.write_field(r.status.as_str())?;
            for _ in 0..3 {
                w.write_field(cells.next().unwrap_or(""))?;
            }
            for _ in 0..n {
                w.write_field(cells.next().unwrap_or(""))?;
            }
            w.write_record(None::<&[u8]>)?;
        }
        w.flush()?;
        Ok(())
    }

    /// Row `i` as a [`Subscriber`] (allocates its strings).
    pub fn subscriber(&self, i: usize) -> Subscriber {
        let r = self.row(i);
        let attrs: std::collections::BTreeMap<String, String> = self
            .extra
            .iter()
            .enumerate()
            .map(|(j, c)| (c.clone(), r.extra(j).to_string()))
            .collect();
        Subscriber {
            email: SubscriberEmail::from_normalized(r.email.to_string()),
            name: r.name.to_string(),
            status: r.status,
            since: r.since.to_string(),
            source: r.source.to_string(),
            tags: split_tags(r.tags),
            attrs,
        }
    }

    /// The table as a `SubscriberList`.
    #[cfg(test)]
    pub fn to_list(&self) -> SubscriberList {
        SubscriberList {
            subscribers: (0..self.len()).map(|i| self.subscriber(i)).collect(),
            extra_columns: self.extra.clone(),
        }
    }
}

/// The list held compactly, for a send over a large list: about a hundred bytes a row
/// instead of the several hundred of a `Vec<Subscriber>` (each of which owns its strings
/// and an attribute map), and loaded in one parse on two threads. Rows become
/// [`Subscriber`]s one at a time, when asked for.
pub struct CompactList {
    table: Table,
    /// Built on the first [`CompactList::position`]: a send never needs it.
    index: std::sync::OnceLock<HashTable<(u32, u32)>>,
}

impl CompactList {
    /// Loads and checks the list like [`SubscriberList::load`] (malformed rows and duplicate
    /// addresses are errors naming the lines; so is a missing file).
    pub fn load(path: &Path) -> Result<CompactList> {
        let table = Table::parse(&read_list_bytes(path)?, path, false)?;
        Ok(CompactList {
            table,
            index: std::sync::OnceLock::new(),
        })
    }

    /// How many rows the list has (all statuses).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// The extra column names, in file order.
    pub fn extra_columns(&self) -> &[String] {
        &self.table.extra
    }

    /// The status of row `i`.
    pub fn status(&self, i: usize) -> Status {
        self.table.status(i)
    }

    /// The address of row `i`, as stored.
    pub fn email(&self, i: usize) -> &str {
        self.table.row(i).email
    }

    /// Row `i` as a [`Subscriber`].
    pub fn subscriber(&self, i: usize) -> Subscriber {
        self.table.subscriber(i)
    }

    /// The row of `email` (compared ignoring case).
    pub fn position(&self, email: &SubscriberEmail) -> Option<usize> {
        let index = self.index.get_or_init(|| self.table.build_index());
        self.table.find_in(index, email.as_str())
    }

    /// Counts rows with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.table.count(status)
    }

    /// The subscribed rows as [`Subscriber`]s, in file order, built one at a time.
    pub fn subscribed(&self) -> impl Iterator<Item = Subscriber> + '_ {
        (0..self.len())
            .filter(|&i| self.status(i) == Status::Subscribed)
            .map(|i| self.subscriber(i))
    }
}

fn row_email<'a>(arena: &'a str, r: &TRow) -> &'a str {
    let text = &arena[r.start as usize..(r.start + r.len) as usize];
    text.split(SEP).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<SubscriberList> {
        SubscriberList::from_bytes(text.as_bytes(), Path::new("subscribers.csv"))
    }
    fn csv_of(list: &SubscriberList) -> String {
        let mut out = Vec::new();
        list.write_csv(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const LIST: &str = "email,name,status,since,source,tags,country\n\
        anna@example.org,Anna,subscribed,2024-01-01,manual,Editors;Board,GE\n\
        b@example.org,\"Doe, John\",unsubscribed,,import:plain,,\n";

    #[test]
    fn list_round_trips_with_extra_columns_and_tags() {
        let list = load(LIST).unwrap();
        assert_eq!(list.extra_columns, vec!["country"]);
        let a = &list.subscribers[0];
        assert_eq!(a.tags, vec!["Editors", "Board"]);
        assert_eq!(a.attrs.get("country").map(String::as_str), Some("GE"));
        assert_eq!(list.subscribers[1].name, "Doe, John");
        assert_eq!(
            list.subscribers[1].attrs.get("country").map(String::as_str),
            Some("")
        );
        assert_eq!(csv_of(&list), LIST);
    }

    #[test]
    fn table_writes_the_same_bytes_as_the_list() {
        let t = Table::load_bytes(LIST.as_bytes(), Path::new("s.csv")).unwrap();
        let mut out = Vec::new();
        t.write_csv(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), LIST);
        assert_eq!(t.find("ANNA@EXAMPLE.ORG"), Some(0));
        assert_eq!(t.find("nobody@example.org"), None);
        assert_eq!(t.row(0).extra(0), "GE");
        assert_eq!(t.to_list().subscribers.len(), 2);
    }

    #[test]
    fn the_compact_list_gives_the_same_subscribers_as_the_full_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        std::fs::write(&path, LIST).unwrap();
        let full = SubscriberList::load(&path).unwrap();
        let compact = CompactList::load(&path).unwrap();
        assert_eq!(compact.len(), 2);
        assert_eq!(compact.extra_columns(), &["country".to_string()]);
        for (i, s) in full.subscribers.iter().enumerate() {
            let c = compact.subscriber(i);
            assert_eq!(
                (&c.email, &c.name, c.status, &c.since, &c.source, &c.tags, &c.attrs),
                (&s.email, &s.name, s.status, &s.since, &s.source, &s.tags, &s.attrs)
            );
        }
        let subscribed: Vec<String> = compact.subscribed().map(|s| s.email.to_string()).collect();
        assert_eq!(subscribed, vec!["anna@example.org"]);
        let b = SubscriberEmail::parse("B@example.org").unwrap();
        assert_eq!(compact.position(&b), Some(1));
        assert_eq!(compact.status(1), Status::Unsubscribed);
        assert_eq!(compact.count(Status::Unsubscribed), 1);
        let Err(missing) = CompactList::load(&dir.path().join("missing.csv")) else {
            panic!("a missing list loaded");
        };
        assert!(format!("{missing:#}").contains("missing.csv` does not exist"));
    }

    #[test]
    fn a_growing_table_finds_every_address_ignoring_case() {
        let mut t = Table::new();
        for i in 0..5000 {
            let email = format!("Person{i}@example.org");
            let row = NewRow {
                email: Cow::Borrowed(&email),
                name: Cow::Borrowed("N"),
                ..NewRow::default()
            };
            assert_eq!(t.push(&row).unwrap(), i);
        }
        for i in 0..5000 {
            assert_eq!(t.find(&format!("person{i}@EXAMPLE.ORG")), Some(i));
        }
        assert_eq!(t.find("person5000@example.org"), None);
        assert_eq!(t.count(Status::Subscribed), 5000);
    }

    #[test]
    fn malformed_rows_are_reported_with_their_lines() {
        let text = "email,name,status\n\
            ok@example.org,A,subscribed\n\
            not-an-address,B,subscribed\n\
            c@example.org,C,subscrbed\n\
            d@example.org,D\n";
        let err = load(text).unwrap_err().to_string();
        assert!(err.contains("3 malformed rows"), "{err}");
        assert!(
            err.contains("line 3: `not-an-address`: the address has no `@`"),
            "{err}"
        );
        assert!(err.contains("line 4: status `subscrbed`"), "{err}");
        assert!(
            err.contains("line 5: the row has 2 fields but the header has 3"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_addresses_name_both_lines() {
        let text = "email,status\n\nanna@example.org,subscribed\nb@example.org,subscribed\nANNA@Example.org,bounced\n";
        let err = load(text).unwrap_err().to_string();
        assert!(
            err.contains("line 5: `ANNA@example.org` is already in the list on line 3"),
            "{err}"
        );
    }

    #[test]
    fn line_numbers_count_quoted_newlines_and_blank_lines() {
        let text = "email,name,status\r\n\r\na@example.org,\"two\r\nlines\",subscribed\r\n\r\n\r\nbad,x,subscribed\r\n";
        let err = load(text).unwrap_err().to_string();
        assert!(err.contains("line 7: `bad`"), "{err}");
        // and the name with a line break is stored on one line
        let ok = load("email,name,status\na@example.org,\"two\r\nlines\",subscribed\n").unwrap();
        assert_eq!(ok.subscribers[0].name, "two lines");
    }

    #[test]
    fn a_row_that_is_not_utf8_is_reported_with_its_line() {
        let text =
            b"email,name,status\na@example.org,M\xFCller,subscribed\nb@example.org,B,subscribed\n";
        let err = SubscriberList::from_bytes(text, Path::new("s.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: the row is not valid UTF-8"), "{err}");
        assert!(err.contains("1 malformed row;"), "{err}");
    }

    /// A list long enough to be read in two halves, with `extra` lines appended.
    fn long_list(n: usize, extra: &str) -> String {
        let mut t = String::from("email,name,status,since,source,tags\n");
        for i in 0..n {
            t.push_str(&format!("r{i}@example.org,R {i},subscribed,,,\n"));
        }
        t.push_str(extra);
        t
    }

    #[test]
    fn a_list_read_in_two_halves_keeps_order_and_line_numbers() {
        let text = long_list(50, "");
        assert!(split_point(text.as_bytes()).is_some());
        let list = load(&text).unwrap();
        let emails: Vec<String> = list
            .subscribers
            .iter()
            .map(|s| s.email.to_string())
            .collect();
        let want: Vec<String> = (0..50).map(|i| format!("r{i}@example.org")).collect();
        assert_eq!(emails, want);
        let t = Table::load_bytes(text.as_bytes(), Path::new("s.csv")).unwrap();
        assert_eq!(t.len(), 50);
        for i in 0..50 {
            assert_eq!(t.find(&format!("R{i}@EXAMPLE.org")), Some(i));
        }
        // errors in both halves, and a duplicate across them, name the right lines
        let text = long_list(
            50,
            "R3@example.org,dup,subscribed,,,\nbad,x,subscribed,,,\n",
        )
        .replacen(
            "r1@example.org,R 1,subscribed",
            "r1@example.org,R 1,nope",
            1,
        );
        for err in [
            load(&text).unwrap_err().to_string(),
            Table::load_bytes(text.as_bytes(), Path::new("subscribers.csv"))
                .err()
                .unwrap()
                .to_string(),
        ] {
            assert!(err.contains("3 malformed rows"), "{err}");
            assert!(err.contains("line 3: status `nope`"), "{err}");
            assert!(
                err.contains("line 52: `R3@example.org` is already in the list on line 5"),
                "{err}"
            );
            assert!(err.contains("line 53: `bad`"), "{err}");
        }
    }

    #[test]
    fn a_cut_inside_a_quoted_field_falls_back_to_one_reader() {
        // A stray quote in an unquoted field (which CSV readers take literally) upsets the
        // quote count, so the cut lands inside a quoted two-line name: the result must still
        // be what one reader sees.
        let mut text = String::from("email,name,status\nstray@example.org,ab\"c,subscribed\n");
        for i in 0..40 {
            text.push_str(&format!("q{i}@example.org,\"m\nn\",subscribed\n"));
        }
        let body = split_header(text.as_bytes(), Path::new("s.csv")).unwrap();
        let cut = split_point(body.rows).expect("a cut");
        let before = &body.rows[..cut];
        let last_row = before[..before.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(before, |i| &before[i + 1..]);
        assert!(
            last_row.ends_with(b"\"m\n"),
            "the cut is inside a quoted field"
        );
        let list = load(&text).unwrap();
        assert_eq!(list.subscribers.len(), 41);
        assert_eq!(list.subscribers[0].name, "ab\"c");
        assert!(list.subscribers[1..].iter().all(|s| s.name == "m n"));
        let err = load(&format!("{text}bad,x,subscribed\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 83: `bad`"), "{err}");
    }

    #[test]
    fn header_without_status_is_refused() {
        let err = load("email,name\na@example.org,A\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `status` column"), "{err}");
    }

    #[test]
    fn bom_and_header_case_are_accepted() {
        let list = load("\u{FEFF}Email,Status,Name\na@example.org,Subscribed,A\n").unwrap();
        assert_eq!(list.subscribers[0].status, Status::Subscribed);
        assert_eq!(list.subscribers[0].name, "A");
        assert!(list.extra_columns.is_empty());
    }

    #[test]
    fn names_with_header_injection_are_stored_on_one_line() {
        let mut list = load("email,status\n").unwrap();
        list.subscribers.push(Subscriber {
            email: SubscriberEmail::parse("a@example.org").unwrap(),
            name: "Eve\r\nBcc: all@example.org".into(),
            status: Status::Subscribed,
            since: String::new(),
            source: String::new(),
            tags: vec!["x;y".into(), "".into()],
            attrs: Default::default(),
        });
        let text = csv_of(&list);
        assert_eq!(
            text,
            "email,name,status,since,source,tags\na@example.org,Eve Bcc: all@example.org,subscribed,,,x y\n"
        );
    }

    #[test]
    fn an_empty_file_is_an_empty_list() {
        assert!(load("").unwrap().subscribers.is_empty());
    }
}
