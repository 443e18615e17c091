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
    let clean = cell
        .split(';')
        .all(|t| !t.is_empty() && matches!(normalize_tag(t), Cow::Borrowed(_)));
    if clean || cell.is_empty() {
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

/// Remembers addresses seen while reading, to report duplicates with both lines.
struct SeenKeys {
    state: RandomState,
    arena: String,
    table: HashTable<(u32, u32, u64)>,
}

impl SeenKeys {
    fn new() -> SeenKeys {
        SeenKeys {
            state: RandomState::new(),
            arena: String::new(),
            table: HashTable::new(),
        }
    }
    /// Records `email` first seen at `line`; returns the earlier line if it was seen before.
    fn insert(&mut self, email: &str, line: u64) -> Option<u64> {
        let hash = key_hash(&self.state, email);
        let arena = &self.arena;
        if let Some(&(_, _, first)) = self.table.find(hash, |&(off, len, _)| {
            arena[off as usize..(off + len) as usize].eq_ignore_ascii_case(email)
        }) {
            return Some(first);
        }
        let off = self.arena.len() as u32;
        self.arena.push_str(email);
        let (arena, state) = (&self.arena, &self.state);
        self.table
            .insert_unique(hash, (off, email.len() as u32, line), |&(o, l, _)| {
                key_hash(state, &arena[o as usize..(o + l) as usize])
            });
        None
    }
}

/// Reads the list at `file` whose bytes are `buf`, calling `f` for every valid row in file
/// order. Malformed rows and (when `check_duplicates`) duplicates are collected and returned as one error listing
/// their lines; `f` is not called for them. Returns the header.
pub(crate) fn read_list(
    buf: &[u8],
    file: &Path,
    check_duplicates: bool,
    mut f: impl FnMut(&Header, &RowView<'_>) -> Result<()>,
) -> Result<Header> {
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(buf);
    let mut rec = csv::ByteRecord::new();
    let mut header: Option<Header> = None;
    let mut errors: Vec<String> = Vec::new();
    let mut error_count = 0usize;
    let mut seen = SeenKeys::new();
    let mut spare: Vec<&'static str> = Vec::new();
    let mut problem = |errors: &mut Vec<String>, msg: String| {
        error_count += 1;
        if errors.len() < MAX_LISTED_ERRORS {
            errors.push(msg);
        }
    };
    loop {
        let more = rdr
            .read_byte_record(&mut rec)
            .with_context(|| format!("failed to read `{}`", file.display()))?;
        if !more {
            break;
        }
        let line = rec.position().map(|p| record_line(buf, p)).unwrap_or(0);
        let mut bad_utf8 = false;
        // Reuse one allocation for the cells of every record (they borrow `rec` only until
        // the next read, so the vector is emptied and re-typed each time).
        let mut local: Vec<&str> = reuse(std::mem::take(&mut spare));
        for field in rec.iter() {
            match std::str::from_utf8(field) {
                Ok(s) => local.push(s),
                Err(_) => {
                    bad_utf8 = true;
                    local.push("");
                }
            }
        }
        if bad_utf8 {
            problem(
                &mut errors,
                format!("line {line}: the row is not valid UTF-8 (save the list as UTF-8)"),
            );
            continue;
        }
        if local.iter().all(|c| trim_cell(c).is_empty()) {
            continue;
        }
        let Some(h) = header.as_ref() else {
            header = Some(Header::parse(&local, file)?);
            continue;
        };
        if local.len() != h.width()
            && !(local.len() > h.width() && local[h.width()..].iter().all(|c| c.is_empty()))
        {
            problem(
                &mut errors,
                format!(
                    "line {line}: the row has {} fields but the header has {}",
                    local.len(),
                    h.width()
                ),
            );
            continue;
        }
        let email_cell = trim_cell(local[h.std_pos[0].expect("email column checked")]);
        let email = match normalize_address(email_cell) {
            Ok(e) => e,
            Err(e) => {
                problem(
                    &mut errors,
                    format!("line {line}: `{}`: {e}", email_cell.escape_debug()),
                );
                continue;
            }
        };
        let status_cell = local[h.std_pos[2].expect("status column checked")];
        let Some(status) = Status::parse(status_cell) else {
            problem(
                &mut errors,
                format!(
                    "line {line}: status `{}` is not one of subscribed, unsubscribed, bounced, \
                     complained",
                    trim_cell(status_cell).escape_debug()
                ),
            );
            continue;
        };
        if let Some(first) = check_duplicates
            .then(|| seen.insert(&email, line))
            .flatten()
        {
            problem(
                &mut errors,
                format!(
                    "line {line}: `{email}` is already in the list on line {first} (addresses \
                     are compared ignoring case)"
                ),
            );
            continue;
        }
        let view = RowView {
            cells: &local,
            header: h,
            email,
            status,
        };
        f(h, &view)?;
        drop(view);
        spare = reuse(local);
    }
    if error_count > 0 {
        let mut msg = format!(
            "{} has {error_count} malformed row{}; fix {} and run again:",
            file.display(),
            if error_count == 1 { "" } else { "s" },
            if error_count == 1 { "it" } else { "them" }
        );
        for e in &errors {
            msg.push_str("\n  ");
            msg.push_str(e);
        }
        if error_count > errors.len() {
            msg.push_str(&format!("\n  … and {} more", error_count - errors.len()));
        }
        bail!(msg);
    }
    Ok(header.unwrap_or_else(Header::standard))
}

/// Empties `v` and hands back its allocation for a vector of other borrows.
pub(crate) fn reuse<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// Reads the whole list file; `None` when it does not exist.
pub(crate) fn read_list_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e)
            .with_context(|| format!("failed to read the subscriber list `{}`", path.display())),
    }
}

impl SubscriberList {
    /// Parses list bytes (as read from `file`).
    pub(crate) fn from_bytes(buf: &[u8], file: &Path) -> Result<SubscriberList> {
        let mut subscribers = Vec::new();
        let header = read_list(buf, file, true, |_, row| {
            subscribers.push(row.to_subscriber());
            Ok(())
        })?;
        Ok(SubscriberList {
            subscribers,
            extra_columns: header.extra,
        })
    }

    /// The extra columns to write: the declared ones, then attributes no column declares.
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

    /// Writes the list as CSV (header, then rows in order), normalising every cell.
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
    index: HashTable<u32>,
    state: RandomState,
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

    /// Loads the list at `path`; a missing file is an empty table.
    pub fn load(path: &Path) -> Result<Table> {
        match read_list_bytes(path)? {
            Some(buf) => Table::load_bytes(&buf, path),
            None => Ok(Table::new()),
        }
    }

    /// Parses list bytes read from `path`.
    pub fn load_bytes(buf: &[u8], path: &Path) -> Result<Table> {
        let mut t = Table::new();
        t.arena.reserve(buf.len());
        let header = read_list(buf, path, true, |h, row| {
            t.push_cells(
                row.email(),
                &row.name(),
                row.status,
                &row.since(),
                &row.source(),
                &row.tags(),
                (0..h.extra.len()).map(|j| row.extra(j)),
            )?;
            Ok(())
        })?;
        t.extra = header.extra;
        t.arena.shrink_to_fit();
        Ok(t)
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

    #[allow(clippy::too_many_arguments)]
    fn push_cells<S: AsRef<str>>(
        &mut self,
        email: &str,
        name: &str,
        status: Status,
        since: &str,
        source: &str,
        tags: &str,
        extras: impl Iterator<Item = S>,
    ) -> Result<usize> {
        let (start, len) =
            Self::append_cells(&mut self.arena, email, name, since, source, tags, extras)?;
        let idx = self.rows.len();
        self.rows.push(TRow { start, len, status });
        let hash = key_hash(&self.state, email);
        let (arena, rows, state) = (&self.arena, &self.rows, &self.state);
        self.index.insert_unique(hash, idx as u32, |&i| {
            key_hash(state, row_email(arena, &rows[i as usize]))
        });
        Ok(idx)
    }

    /// The row holding `email` (compared ignoring case).
    pub fn find(&self, email: &str) -> Option<usize> {
        let hash = key_hash(&self.state, email);
        self.index
            .find(hash, |&i| {
                row_email(&self.arena, &self.rows[i as usize]).eq_ignore_ascii_case(email)
            })
            .map(|&i| i as usize)
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
    pub fn push(&mut self, row: &NewRow<'_>) -> Result<usize> {
        debug_assert!(self.find(&row.email).is_none());
        let n = self.extra.len();
        self.push_cells(
            &row.email,
            &row.name,
            row.status.unwrap_or(Status::Subscribed),
            &row.since,
            &row.source,
            &row.tags,
            (0..n).map(|j| row.extras.get(j).map(|c| c.as_ref()).unwrap_or("")),
        )
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

    /// The table as a `SubscriberList` (tests and small lists).
    #[allow(dead_code)]
    pub fn to_list(&self) -> SubscriberList {
        let subscribers = (0..self.len())
            .map(|i| {
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
            })
            .collect();
        SubscriberList {
            subscribers,
            extra_columns: self.extra.clone(),
        }
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
