//! Importing other tools' exports into the list, safely and with a full account.
//!
//! An import reads every file (decoding, delimiter sniffing and format detection per file),
//! maps each row to an address, a name and a status, and merges it into the list in memory.
//! Nothing is written until every file has been read: a file that cannot be read or decoded
//! aborts the import with the list untouched. Rows that cannot be used (a bad address, a
//! ragged row, an unknown status) are reported with file, line and reason and skipped; the
//! rest are imported and the command exits 1 so the person running it notices.
//!
//! Merge rules: a new address is added (as a suppression when the export says it left); an
//! existing address keeps its status unless the export suppresses it; `unsubscribed`,
//! `bounced` and `complained` never become `subscribed` again without `--resubscribe`; the
//! first spelling of an address wins; an empty name, `since`, attribute is filled in; tags
//! are merged. This module never sends anything and never writes the list itself.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::decode::{decode, Decoded};
use super::email::{damaged_text, normalize_address, normalize_name, normalize_text, trim_cell};
use super::list::{
    join_tags, normalize_tag, record_line, reuse, split_tags, NewRow, Table, MAX_ATTR_CHARS,
    MAX_META_CHARS, STANDARD_COLUMNS,
};
use super::Status;
use crate::cli::{ImportEncoding, ImportFormat};

/// How to read the files.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: ImportFormat,
    pub encoding: ImportEncoding,
    /// Field delimiter; sniffed among `,` `;` TAB when `None`.
    pub delimiter: Option<u8>,
    /// Allow turning suppressed addresses back into subscribed ones.
    pub resubscribe: bool,
    /// The `since` of rows whose export has no date (YYYY-MM-DD).
    pub today: String,
}

/// Which tool an export came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Mailchimp audience export; the status is that of the whole file (subscribed,
    /// unsubscribed or cleaned).
    Mailchimp(Status),
    Substack,
    Buttondown,
    Listmonk,
    Plain,
}

impl SourceFormat {
    fn label(self) -> &'static str {
        match self {
            SourceFormat::Mailchimp(Status::Subscribed) => "Mailchimp (subscribed)",
            SourceFormat::Mailchimp(Status::Unsubscribed) => "Mailchimp (unsubscribed)",
            SourceFormat::Mailchimp(_) => "Mailchimp (cleaned)",
            SourceFormat::Substack => "Substack",
            SourceFormat::Buttondown => "Buttondown",
            SourceFormat::Listmonk => "listmonk",
            SourceFormat::Plain => "plain CSV",
        }
    }
    fn source_cell(self) -> &'static str {
        match self {
            SourceFormat::Mailchimp(_) => "import:mailchimp",
            SourceFormat::Substack => "import:substack",
            SourceFormat::Buttondown => "import:buttondown",
            SourceFormat::Listmonk => "import:listmonk",
            SourceFormat::Plain => "import:plain",
        }
    }
}

/// One row mentioned in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowNote {
    pub file: String,
    pub line: u64,
    pub text: String,
}

/// What was read from one file.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub file: String,
    pub format: SourceFormat,
    pub encoding: &'static str,
    pub encoding_guessed: bool,
    pub delimiter: u8,
    pub rows: usize,
    pub headerless: bool,
}

/// The account of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub files: Vec<FileSummary>,
    /// New addresses added as subscribed.
    pub added: usize,
    /// Existing rows changed (name, since, tags or attributes filled in; resubscribed).
    pub updated: usize,
    /// Existing rows the import did not change.
    pub unchanged: usize,
    /// Rows naming an address already in the list under another spelling, or already seen
    /// earlier in this import; the first spelling is kept.
    pub duplicates: Vec<RowNote>,
    /// Rows recorded as suppressions: new addresses that left, or subscribed ones the
    /// export says are unsubscribed/bounced.
    pub suppressed: usize,
    /// Rows that could not be used, with the reason.
    pub invalid: Vec<RowNote>,
    /// Rows deliberately not imported (e.g. never-confirmed addresses).
    pub skipped: Vec<RowNote>,
    /// Rows saying "subscribed" for an address the list has as a suppression, left alone.
    pub kept_suppressed: Vec<RowNote>,
    /// Suppressed addresses turned back into subscribed (only with `--resubscribe`).
    pub resubscribed: usize,
}

impl ImportReport {
    /// The report as printed by `fortnight subscribers import`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let delim = match f.delimiter {
                b'\t' => "TAB".to_string(),
                d => format!("`{}`", d as char),
            };
            let _ = writeln!(
                out,
                "{}: {}, {}{}, delimiter {delim}, {} row{}{}",
                f.file,
                f.format.label(),
                f.encoding,
                if f.encoding_guessed {
                    " (detected)"
                } else {
                    ""
                },
                f.rows,
                if f.rows == 1 { "" } else { "s" },
                if f.headerless {
                    " (no header: email, name)"
                } else {
                    ""
                },
            );
        }
        let _ = writeln!(out, "added:       {}", self.added);
        let _ = writeln!(out, "updated:     {}", self.updated);
        let _ = writeln!(out, "unchanged:   {}", self.unchanged);
        let _ = writeln!(out, "duplicates:  {}", self.duplicates.len());
        let _ = writeln!(out, "suppressed:  {}", self.suppressed);
        let _ = writeln!(out, "invalid:     {}", self.invalid.len());
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "skipped:     {}", self.skipped.len());
        }
        if self.resubscribed > 0 {
            let _ = writeln!(out, "resubscribed: {}", self.resubscribed);
        }
        let sections: [(&str, &[RowNote]); 4] = [
            ("invalid rows (not imported):", &self.invalid),
            ("duplicates (first spelling kept):", &self.duplicates),
            ("skipped:", &self.skipped),
            (
                "not resubscribed (they left or bounced; use --resubscribe if they asked to come back):",
                &self.kept_suppressed,
            ),
        ];
        for (title, notes) in sections {
            if notes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}");
            for n in notes {
                let _ = writeln!(out, "  {}:{}: {}", n.file, n.line, n.text);
            }
        }
        out
    }
}

/// Normalises a header cell for matching: lowercase, without spaces, `_`, `-`, `.`, BOM.
fn hnorm(h: &str) -> String {
    trim_cell(h)
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\u{FEFF}') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// An attribute name usable in templates (`subscriber.attrs.NAME`): lowercase letters,
/// digits and `_`; `None` when nothing usable is left.
pub fn attr_key(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in trim_cell(raw).chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        return None;
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || STANDARD_COLUMNS.contains(&out.as_str()) {
        out.insert_str(0, "attr_");
    }
    Some(out)
}

const EMAIL_ALIASES: &[&str] = &[
    "email",
    "emailaddress",
    "mail",
    "mailaddress",
    "emailadresse",
    "emailadres",
    "courriel",
    "correo",
    "correoelectronico",
];
const NAME_ALIASES: &[&str] = &["name", "fullname", "displayname"];
const FIRST_ALIASES: &[&str] = &["firstname", "givenname", "fname", "vorname", "prenom"];
const LAST_ALIASES: &[&str] = &[
    "lastname",
    "surname",
    "familyname",
    "lname",
    "nachname",
    "nom",
];
const SINCE_ALIASES: &[&str] = &[
    "since",
    "createdat",
    "created",
    "subscribedat",
    "signupdate",
    "creationdate",
    "dateadded",
    "optintime",
];
const TAG_ALIASES: &[&str] = &["tags", "tag", "labels"];
/// Columns of a plain file that are not attributes.
const PLAIN_IGNORED: &[&str] = &["source", "id"];
/// Mailchimp's own columns (everything else is a merge field, kept as an attribute).
const MAILCHIMP_SYSTEM: &[&str] = &[
    "emailaddress",
    "firstname",
    "lastname",
    "memberrating",
    "optintime",
    "optinip",
    "confirmtime",
    "confirmip",
    "latitude",
    "longitude",
    "gmtoff",
    "dstoff",
    "timezone",
    "cc",
    "region",
    "lastchanged",
    "leid",
    "euid",
    "notes",
    "tags",
    "emailtype",
];

/// How a file's rows get their status.
#[derive(Debug, Clone)]
enum StatusRule {
    Fixed(Status),
    Substack {
        disabled: Option<usize>,
    },
    Buttondown {
        kind: Option<usize>,
        unsubscribed_at: Option<usize>,
    },
    Listmonk {
        status: Option<usize>,
        subscription: Option<usize>,
    },
    Column(Option<usize>),
}

/// Where a file keeps what the list needs.
#[derive(Debug, Clone)]
struct Layout {
    format: SourceFormat,
    width: usize,
    headerless: bool,
    email: usize,
    name: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
    status: StatusRule,
    since: Vec<usize>,
    tags: Option<usize>,
    /// (file column, table extra column)
    attrs: Vec<(usize, usize)>,
    attrs_json: Option<usize>,
}

/// What a row's status columns say.
enum RowStatus {
    Is(Status),
    /// Not imported at all, with the reason.
    Skip(String),
}

fn find(cols: &[String], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| cols.iter().position(|c| c == n))
}

fn detect(cols: &[String]) -> Option<SourceFormat> {
    let has = |n: &str| cols.iter().any(|c| c == n);
    let mailchimp_marks = [
        "firstname",
        "lastname",
        "memberrating",
        "optintime",
        "leid",
        "euid",
        "unsubtime",
        "cleantime",
    ];
    if has("emailaddress") && mailchimp_marks.iter().any(|m| has(m)) {
        return Some(SourceFormat::Mailchimp(Status::Subscribed));
    }
    if has("email") && (has("emaildisabled") || has("activesubscription")) {
        return Some(SourceFormat::Substack);
    }
    if has("email") && (has("subscribertype") || has("unsubscriptiondate") || has("referrerurl")) {
        return Some(SourceFormat::Buttondown);
    }
    if has("email") && has("attributes") {
        return Some(SourceFormat::Listmonk);
    }
    if find(cols, EMAIL_ALIASES).is_some() {
        return Some(SourceFormat::Plain);
    }
    None
}

fn build_layout(
    header: &[&str],
    forced: ImportFormat,
    table: &mut Table,
    file: &Path,
) -> Result<Layout> {
    let cols: Vec<String> = header.iter().map(|h| hnorm(h)).collect();
    let shown = file.display();
    let format = match forced {
        ImportFormat::Auto => detect(&cols),
        ImportFormat::Mailchimp => Some(SourceFormat::Mailchimp(Status::Subscribed)),
        ImportFormat::Substack => Some(SourceFormat::Substack),
        ImportFormat::Buttondown => Some(SourceFormat::Buttondown),
        ImportFormat::Listmonk => Some(SourceFormat::Listmonk),
        ImportFormat::Plain => Some(SourceFormat::Plain),
    };
    let email = find(&cols, EMAIL_ALIASES);
    let (Some(mut format), Some(email)) = (format, email) else {
        bail!(
            "{shown}: line 1: no email column in the header ({}); name the column `email`, \
             or choose the export's format with --format",
            header
                .iter()
                .map(|h| format!("`{}`", trim_cell(h).escape_debug()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let col = |n: &str| cols.iter().position(|c| c == n);
    let mut layout = Layout {
        format,
        width: header.len(),
        headerless: false,
        email,
        name: find(&cols, NAME_ALIASES),
        first: find(&cols, FIRST_ALIASES),
        last: find(&cols, LAST_ALIASES),
        status: StatusRule::Fixed(Status::Subscribed),
        since: Vec::new(),
        tags: find(&cols, TAG_ALIASES),
        attrs: Vec::new(),
        attrs_json: None,
    };
    let mut attr_cols: Vec<usize> = Vec::new();
    match format {
        SourceFormat::Mailchimp(_) => {
            let kind = if cols.iter().any(|c| c == "unsubtime") {
                Status::Unsubscribed
            } else if cols.iter().any(|c| c == "cleantime") {
                Status::Bounced
            } else {
                Status::Subscribed
            };
            format = SourceFormat::Mailchimp(kind);
            layout.format = format;
            layout.status = StatusRule::Fixed(kind);
            layout.since = ["confirmtime", "optintime"]
                .iter()
                .filter_map(|n| col(n))
                .collect();
            attr_cols = (0..cols.len())
                .filter(|&i| {
                    let c = cols[i].as_str();
                    i != email
                        && Some(i) != layout.name
                        && !MAILCHIMP_SYSTEM.contains(&c)
                        && !EMAIL_ALIASES.contains(&c)
                        && !c.starts_with("unsub")
                        && !c.starts_with("clean")
                        && !c.is_empty()
                })
                .collect();
        }
        SourceFormat::Substack => {
            layout.status = StatusRule::Substack {
                disabled: col("emaildisabled"),
            };
            layout.since = col("createdat").into_iter().collect();
        }
        SourceFormat::Buttondown => {
            layout.status = StatusRule::Buttondown {
                kind: col("subscribertype"),
                unsubscribed_at: col("unsubscriptiondate"),
            };
            layout.since = ["creationdate", "createdat", "date"]
                .iter()
                .filter_map(|n| col(n))
                .collect();
            layout.attrs_json = col("metadata");
        }
        SourceFormat::Listmonk => {
            layout.status = StatusRule::Listmonk {
                status: col("status"),
                subscription: col("subscriptionstatus"),
            };
            layout.since = col("createdat").into_iter().collect();
            layout.attrs_json = col("attributes");
        }
        SourceFormat::Plain => {
            layout.status = StatusRule::Column(col("status"));
            layout.since = SINCE_ALIASES.iter().filter_map(|n| col(n)).collect();
            let used: Vec<Option<usize>> = vec![
                Some(email),
                layout.name,
                layout.first,
                layout.last,
                col("status"),
                layout.tags,
            ];
            attr_cols = (0..cols.len())
                .filter(|&i| {
                    !used.contains(&Some(i))
                        && !layout.since.contains(&i)
                        && !PLAIN_IGNORED.contains(&cols[i].as_str())
                })
                .collect();
        }
    }
    for i in attr_cols {
        if let Some(key) = attr_key(header[i]) {
            let j = extra_column_for(table, &key);
            if !layout.attrs.iter().any(|&(_, k)| k == j) {
                layout.attrs.push((i, j));
            }
        }
    }
    Ok(layout)
}

/// The list's extra column for attribute `key`, matching existing columns by their key.
fn extra_column_for(table: &mut Table, key: &str) -> usize {
    if let Some(j) = table
        .extra
        .iter()
        .position(|c| attr_key(c).as_deref() == Some(key))
    {
        return j;
    }
    table.extra_column(key)
}

fn headerless_layout(width: usize) -> Layout {
    Layout {
        format: SourceFormat::Plain,
        width,
        headerless: true,
        email: 0,
        name: (width > 1).then_some(1),
        first: None,
        last: None,
        status: StatusRule::Fixed(Status::Subscribed),
        since: Vec::new(),
        tags: None,
        attrs: Vec::new(),
        attrs_json: None,
    }
}

fn truthy(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Some(true),
        "false" | "0" | "no" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

fn row_status<'c>(
    rule: &StatusRule,
    cell: &dyn Fn(Option<usize>) -> &'c str,
) -> Result<RowStatus, String> {
    use RowStatus::*;
    match rule {
        StatusRule::Fixed(s) => Ok(Is(*s)),
        StatusRule::Substack { disabled } => match truthy(cell(*disabled)) {
            Some(true) => Ok(Is(Status::Unsubscribed)),
            Some(false) => Ok(Is(Status::Subscribed)),
            None => Err(format!(
                "email_disabled is `{}`; expected true or false",
                cell(*disabled).escape_debug()
            )),
        },
        StatusRule::Buttondown {
            kind,
            unsubscribed_at,
        } => {
            let k = cell(*kind).to_ascii_lowercase().replace(['-', ' '], "_");
            let status = match k.as_str() {
                "" | "regular" | "premium" | "trialed" | "gifted" | "churning" | "past_due"
                | "unpaid" | "paused" => Status::Subscribed,
                "unsubscribed" | "removed" | "blocked" => Status::Unsubscribed,
                "bounced" | "undeliverable" => Status::Bounced,
                "complained" => Status::Complained,
                "unactivated" => {
                    return Ok(Skip(
                        "never confirmed the subscription (Buttondown `unactivated`)".into(),
                    ))
                }
                "spammy" => return Ok(Skip("flagged as spam by Buttondown (`spammy`)".into())),
                other => {
                    return Err(format!(
                        "subscriber_type `{}` is not one Buttondown uses",
                        other.escape_debug()
                    ))
                }
            };
            if !cell(*unsubscribed_at).is_empty() && status == Status::Subscribed {
                return Ok(Is(Status::Unsubscribed));
            }
            Ok(Is(status))
        }
        StatusRule::Listmonk {
            status,
            subscription,
        } => {
            let s = cell(*status).to_ascii_lowercase();
            let sub = cell(*subscription).to_ascii_lowercase();
            let base = match s.as_str() {
                "" | "enabled" => Status::Subscribed,
                "blocklisted" | "blacklisted" | "disabled" => Status::Unsubscribed,
                other => {
                    return Err(format!(
                        "status `{}` is not one listmonk uses (enabled, disabled, blocklisted)",
                        other.escape_debug()
                    ))
                }
            };
            if sub == "unsubscribed" {
                return Ok(Is(Status::Unsubscribed));
            }
            Ok(Is(base))
        }
        StatusRule::Column(c) => {
            let v = cell(*c);
            let s = match v.to_ascii_lowercase().as_str() {
                "" | "active" | "confirmed" => Status::Subscribed,
                "cleaned" => Status::Bounced,
                "blocklisted" => Status::Unsubscribed,
                other => Status::parse(other).ok_or_else(|| {
                    format!(
                        "status `{}` is not one of subscribed, unsubscribed, bounced, complained",
                        v.escape_debug()
                    )
                })?,
            };
            Ok(Is(s))
        }
    }
}

/// Tags from a cell: a JSON array, Mailchimp's `"A","B"`, or `;`/`,`-separated text.
pub fn parse_tags(cell: &str) -> Vec<String> {
    let cell = trim_cell(cell);
    if cell.is_empty() {
        return Vec::new();
    }
    let raw: Vec<String> = if cell.starts_with('[') {
        match serde_json::from_str::<Vec<serde_json::Value>>(cell) {
            Ok(values) => values
                .into_iter()
                .filter_map(|v| match v {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
            Err(_) => cell.split([';', ',']).map(str::to_string).collect(),
        }
    } else if cell.contains('"') {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(cell.as_bytes());
        let mut rec = csv::StringRecord::new();
        match rdr.read_record(&mut rec) {
            Ok(true) => rec.iter().map(str::to_string).collect(),
            _ => vec![cell.replace('"', "")],
        }
    } else if cell.contains(';') {
        cell.split(';').map(str::to_string).collect()
    } else {
        cell.split(',').map(str::to_string).collect()
    };
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        let t = normalize_tag(trim_cell(&t)).into_owned();
        if !t.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&t)) {
            out.push(t);
        }
    }
    out
}

/// Scalar values of a JSON object, nested keys joined with `_`.
fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>, depth: u8) {
    use serde_json::Value;
    match v {
        Value::Null => {}
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::Array(items) => {
            let scalars: Vec<String> = items
                .iter()
                .filter_map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Bool(_) | Value::Number(_) => Some(i.to_string()),
                    _ => None,
                })
                .collect();
            if !scalars.is_empty() {
                out.push((prefix.to_string(), scalars.join(";")));
            }
        }
        Value::Object(map) if depth < 4 => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                flatten_json(&key, v, out, depth + 1);
            }
        }
        Value::Object(_) => {}
    }
}

/// Picks the delimiter among `,` `;` TAB by counting them (outside quotes) in the header.
pub fn sniff_delimiter(text: &str) -> u8 {
    let header = text
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in header.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// Parses `--delimiter`: one ASCII character, or `tab`, `\t`, `comma`, `semicolon`.
pub fn parse_delimiter(arg: &str) -> Result<u8> {
    match arg {
        "\\t" | "tab" | "TAB" | "\t" => Ok(b'\t'),
        "comma" => Ok(b','),
        "semicolon" => Ok(b';'),
        s if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" && s != "\r" => {
            Ok(s.as_bytes()[0])
        }
        other => bail!(
            "--delimiter `{}` is not a single ASCII character; use `,`, `;`, `tab` or another \
             single character",
            other.escape_debug()
        ),
    }
}

/// Reads exports into a table, keeping the account.
pub(crate) struct Importer<'t> {
    table: &'t mut Table,
    opts: ImportOptions,
    /// Per table row: where this import first saw the address (`(file+1) << 40 | line`), or 0.
    first_seen: Vec<u64>,
    files: Vec<String>,
    pub report: ImportReport,
    /// Whether the table differs from the list on disk.
    pub changed: bool,
}

const LINE_BITS: u32 = 40;

impl<'t> Importer<'t> {
    pub fn new(table: &'t mut Table, opts: ImportOptions) -> Importer<'t> {
        let n = table.len();
        Importer {
            table,
            opts,
            first_seen: vec![0; n],
            files: Vec::new(),
            report: ImportReport::default(),
            changed: false,
        }
    }

    /// Reads, decodes and merges one file. An error means the file could not be used at
    /// all (unreadable, undecodable, no email column); rows with problems are reported.
    pub fn import_file(&mut self, path: &Path) -> Result<()> {
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let decoded = decode(bytes, self.opts.encoding, path)?;
        self.import_text(path, decoded)
    }

    fn import_text(&mut self, path: &Path, decoded: Decoded) -> Result<()> {
        let shown = path.display().to_string();
        let file_idx = self.files.len();
        self.files.push(shown.clone());
        let text = decoded.text;
        let delimiter = match self.opts.delimiter {
            Some(d) => d,
            None => sniff_delimiter(&text),
        };
        let buf = text.as_bytes();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(1 << 16)
            .from_reader(buf);
        let mut rec = csv::StringRecord::new();
        let mut layout: Option<Layout> = None;
        let mut rows = 0usize;
        let mut spare: Vec<&'static str> = Vec::new();
        loop {
            let more = rdr
                .read_record(&mut rec)
                .with_context(|| format!("{shown}: failed to read the CSV (is the file text?)"))?;
            if !more {
                break;
            }
            let line = rec.position().map(|p| record_line(buf, p)).unwrap_or(0);
            // One allocation for the cells of every record; they borrow `rec` until the
            // next read, so the vector is emptied and handed back at the end of the turn.
            let mut cells: Vec<&str> = reuse(std::mem::take(&mut spare));
            cells.extend(rec.iter());
            if cells.iter().all(|c| trim_cell(c).is_empty()) {
                continue;
            }
            let lay = match layout.as_ref() {
                Some(l) => l,
                None => {
                    let headerless =
                        matches!(self.opts.format, ImportFormat::Auto | ImportFormat::Plain)
                            && normalize_address(trim_cell(cells[0])).is_ok();
                    if headerless {
                        layout = Some(headerless_layout(cells.len()));
                        // This first line is data: fall through with the new layout.
                    } else {
                        layout = Some(build_layout(&cells, self.opts.format, self.table, path)?);
                        continue;
                    }
                    layout.as_ref().expect("just set")
                }
            };
            rows += 1;
            self.import_row(lay, &cells, file_idx, line);
            spare = reuse(cells);
        }
        let (format, headerless) = layout
            .as_ref()
            .map(|l| (l.format, l.headerless))
            .unwrap_or((SourceFormat::Plain, false));
        if layout.is_none() {
            bail!("{shown} is empty: no header and no rows");
        }
        self.report.files.push(FileSummary {
            file: shown,
            format,
            encoding: decoded.encoding,
            encoding_guessed: decoded.guessed,
            delimiter,
            rows,
            headerless,
        });
        Ok(())
    }

    fn note(&self, file_idx: usize, line: u64, text: String) -> RowNote {
        RowNote {
            file: self.files[file_idx].clone(),
            line,
            text,
        }
    }

    fn invalid(&mut self, file_idx: usize, line: u64, text: String) {
        let n = self.note(file_idx, line, text);
        self.report.invalid.push(n);
    }

    fn import_row(&mut self, lay: &Layout, cells: &[&str], file_idx: usize, line: u64) {
        let width_ok = cells.len() == lay.width
            || (cells.len() > lay.width && cells[lay.width..].iter().all(|c| c.trim().is_empty()));
        if !width_ok {
            let msg = format!(
                "the row has {} fields but the header has {}; skipped rather than guess which \
                 field is missing or extra",
                cells.len(),
                lay.width
            );
            return self.invalid(file_idx, line, msg);
        }
        let cell = |i: Option<usize>| {
            i.and_then(|i| cells.get(i))
                .map(|c| trim_cell(c))
                .unwrap_or("")
        };
        let raw_email = cell(Some(lay.email));
        if raw_email.is_empty() {
            return self.invalid(file_idx, line, "the address is empty".to_string());
        }
        let email = match normalize_address(raw_email) {
            Ok(e) => e,
            Err(e) => {
                let msg = format!("`{}`: {e}", raw_email.escape_debug());
                return self.invalid(file_idx, line, msg);
            }
        };
        let status = match row_status(&lay.status, &cell) {
            Ok(RowStatus::Is(s)) => s,
            Ok(RowStatus::Skip(why)) => {
                let n = self.note(file_idx, line, format!("`{email}`: {why}"));
                self.report.skipped.push(n);
                return;
            }
            Err(why) => return self.invalid(file_idx, line, format!("`{email}`: {why}")),
        };
        let raw_name: Cow<'_, str> = match (lay.name.map(|i| cell(Some(i))), lay.first, lay.last) {
            (Some(n), _, _) if !n.is_empty() => Cow::Borrowed(n),
            (_, f, l) if f.is_some() || l.is_some() => {
                let (f, l) = (cell(f), cell(l));
                match (f.is_empty(), l.is_empty()) {
                    (false, false) => Cow::Owned(format!("{f} {l}")),
                    (false, true) => Cow::Borrowed(f),
                    (true, false) => Cow::Borrowed(l),
                    (true, true) => Cow::Borrowed(""),
                }
            }
            _ => Cow::Borrowed(""),
        };
        if let Some(why) = damaged_text(&raw_name) {
            let msg = format!(
                "`{email}`: the name `{}` {why}; fix it in the source or re-export it as UTF-8",
                raw_name.escape_debug()
            );
            return self.invalid(file_idx, line, msg);
        }
        let name = normalize_name(&raw_name).into_owned();
        let since = lay
            .since
            .iter()
            .map(|&i| cell(Some(i)))
            .find(|s| !s.is_empty())
            .map(|s| normalize_text(s, MAX_META_CHARS).into_owned())
            .unwrap_or_default();
        let tags = lay
            .tags
            .map(|i| parse_tags(cell(Some(i))))
            .unwrap_or_default();
        let mut attrs: Vec<(usize, String)> = Vec::new();
        for &(i, j) in &lay.attrs {
            let v = normalize_text(cell(Some(i)), MAX_ATTR_CHARS);
            if !v.is_empty() {
                attrs.push((j, v.into_owned()));
            }
        }
        if let Some(i) = lay.attrs_json {
            let raw = cell(Some(i));
            if !raw.is_empty() && raw != "{}" {
                let value: serde_json::Value = match serde_json::from_str(raw) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    Ok(_) => {
                        let msg = format!("`{email}`: the attributes are not a JSON object");
                        return self.invalid(file_idx, line, msg);
                    }
                    Err(e) => {
                        let msg = format!("`{email}`: the attributes are not valid JSON ({e})");
                        return self.invalid(file_idx, line, msg);
                    }
                };
                let mut flat = Vec::new();
                flatten_json("", &value, &mut flat, 0);
                for (k, v) in flat {
                    let Some(key) = attr_key(&k) else { continue };
                    let v = normalize_text(&v, MAX_ATTR_CHARS);
                    if v.is_empty() {
                        continue;
                    }
                    let j = extra_column_for(self.table, &key);
                    if !attrs.iter().any(|&(jj, _)| jj == j) {
                        attrs.push((j, v.into_owned()));
                    }
                }
            }
        }
        let incoming = Incoming {
            email,
            name,
            status,
            since,
            tags,
            attrs,
            source: lay.format.source_cell(),
        };
        if let Err(e) = self.merge(incoming, file_idx, line) {
            // Only an arena overflow can fail here; report it against the row.
            let msg = format!("{e:#}");
            self.invalid(file_idx, line, msg);
        }
    }

    fn merge(&mut self, row: Incoming<'_>, file_idx: usize, line: u64) -> Result<()> {
        let mark = ((file_idx as u64 + 1) << LINE_BITS) | (line & ((1 << LINE_BITS) - 1));
        let Some(i) = self.table.find(&row.email) else {
            let n = self.table.extra.len();
            let mut extras: Vec<Cow<'_, str>> = vec![Cow::Borrowed(""); n];
            for (j, v) in &row.attrs {
                extras[*j] = Cow::Borrowed(v.as_str());
            }
            let since = if row.since.is_empty() {
                self.opts.today.as_str()
            } else {
                row.since.as_str()
            };
            let new = NewRow {
                email: Cow::Borrowed(&row.email),
                name: Cow::Borrowed(&row.name),
                status: Some(row.status),
                since: Cow::Borrowed(since),
                source: Cow::Borrowed(row.source),
                tags: Cow::Owned(join_tags(&row.tags)),
                extras,
            };
            let i = self.table.push(&new)?;
            self.first_seen.resize(self.table.len(), 0);
            self.first_seen[i] = mark;
            self.changed = true;
            if row.status.is_suppression() {
                self.report.suppressed += 1;
            } else {
                self.report.added += 1;
            }
            return Ok(());
        };
        let seen = self.first_seen[i];
        let existing = self.table.row(i);
        let existing_status = existing.status;
        let stored_email = existing.email.to_string();

        let mut new_status = existing_status;
        let mut resubscribed = false;
        let mut kept = false;
        if row.status.is_suppression() {
            if existing_status == Status::Subscribed {
                new_status = row.status;
            }
        } else if existing_status.is_suppression() {
            if self.opts.resubscribe && seen == 0 {
                new_status = Status::Subscribed;
                resubscribed = true;
            } else {
                kept = true;
            }
        }

        let fill_name = existing.name.is_empty() && !row.name.is_empty();
        let fill_since = existing.since.is_empty() && !row.since.is_empty();
        let mut tags = split_tags(existing.tags);
        let mut tags_changed = false;
        for t in &row.tags {
            if !tags.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                tags.push(t.clone());
                tags_changed = true;
            }
        }
        let n = self.table.extra.len();
        let mut extras: Vec<String> = (0..n).map(|j| existing.extra(j).to_string()).collect();
        let mut attrs_changed = false;
        for (j, v) in &row.attrs {
            if extras[*j].is_empty() {
                extras[*j] = v.clone();
                attrs_changed = true;
            }
        }
        let fields_changed = fill_name || fill_since || tags_changed || attrs_changed;
        if fields_changed {
            let new = NewRow {
                email: Cow::Owned(stored_email.clone()),
                name: Cow::Owned(if fill_name {
                    row.name.clone()
                } else {
                    existing.name.to_string()
                }),
                status: None,
                since: Cow::Owned(if fill_since {
                    row.since.clone()
                } else {
                    existing.since.to_string()
                }),
                source: Cow::Owned(existing.source.to_string()),
                tags: Cow::Owned(join_tags(&tags)),
                extras: extras.into_iter().map(Cow::Owned).collect(),
            };
            self.table.update(i, &new)?;
            self.changed = true;
        }
        if new_status != existing_status {
            self.table.set_status(i, new_status);
            self.changed = true;
        }
        if seen == 0 {
            self.first_seen[i] = mark;
        }

        if kept {
            let n = self.note(
                file_idx,
                line,
                format!("`{}` is {} in the list", row.email, existing_status),
            );
            self.report.kept_suppressed.push(n);
        }
        if new_status != existing_status && new_status.is_suppression() {
            self.report.suppressed += 1;
        } else if resubscribed {
            self.report.resubscribed += 1;
            self.report.updated += 1;
        } else if fields_changed {
            self.report.updated += 1;
        } else if seen != 0 {
            let first_file = ((seen >> LINE_BITS) - 1) as usize;
            let first_line = seen & ((1 << LINE_BITS) - 1);
            let text = format!(
                "`{}` duplicates {}:{} (kept as `{stored_email}`)",
                row.email, self.files[first_file], first_line
            );
            let n = self.note(file_idx, line, text);
            self.report.duplicates.push(n);
        } else if *row.email != stored_email {
            let text = format!("`{}` is already in the list as `{stored_email}`", row.email);
            let n = self.note(file_idx, line, text);
            self.report.duplicates.push(n);
        } else {
            self.report.unchanged += 1;
        }
        Ok(())
    }
}

/// One usable row of an export, normalised.
struct Incoming<'a> {
    email: Cow<'a, str>,
    name: String,
    status: Status,
    since: String,
    tags: Vec<String>,
    /// (table extra column, value)
    attrs: Vec<(usize, String)>,
    source: &'static str,
}

/// Imports `files` into the list at `list` (already loaded as `table`).
pub(crate) fn import_files(
    table: &mut Table,
    files: &[PathBuf],
    opts: ImportOptions,
) -> Result<(ImportReport, bool)> {
    let mut importer = Importer::new(table, opts);
    for f in files {
        importer.import_file(f)?;
    }
    Ok((importer.report, importer.changed))
}
