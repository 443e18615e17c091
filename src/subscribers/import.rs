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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::decode::{decode, Decoded};
use super::email::{damaged_text, normalize_address, normalize_name, normalize_text, trim_cell};
use super::list::{
    count_lines, join_tags, normalize_tag, record_line, reuse, split_tags, NewRow, Table,
    MAX_ATTR_CHARS, MAX_META_CHARS, STANDARD_COLUMNS,
};
use super::Status;

pub use super::decode::Encoding;

/// The export format of the files to import; `Auto` detects it from each file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    Mailchimp,
    Substack,
    Buttondown,
    Listmonk,
    Plain,
}

/// How to read the files.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    pub encoding: Encoding,
    /// Field delimiter; sniffed among `,` `;` TAB when `None`.
    pub delimiter: Option<u8>,
    /// Allow turning suppressed addresses back into subscribed ones.
    pub resubscribe: bool,
    /// The `since` of rows whose export has no date (RFC 3339, like every imported `since`).
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
    /// The name of the format as the import report shows it.
    pub fn label(self) -> &'static str {
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
    pub file: Arc<str>,
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
    /// Existing addresses changed (status, or name, since, tags or attributes filled in),
    /// each counted once; `changed` names them.
    pub updated: usize,
    /// Every existing address whose status or fields changed, once, saying what changed.
    pub changed: Vec<RowNote>,
    /// Rows imported without an optional cell that could not be read (naming the column).
    pub cells_skipped: Vec<RowNote>,
    /// Existing rows the import did not change.
    pub unchanged: usize,
    /// Rows naming an address already in the list under another spelling, or already seen
    /// earlier in this import; the first spelling is kept.
    pub duplicates: Vec<RowNote>,
    /// New addresses recorded as suppressions (they left or bounced before the import);
    /// existing addresses the export says left are in `updated`.
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

/// An export's date or time as RFC 3339 in UTC (`2021-03-02T10:11:12Z`), so that `since`
/// has one format whatever the tool: RFC 3339 with any offset or fraction, `YYYY-MM-DD
/// HH:MM[:SS]` (Mailchimp, taken as UTC), `YYYY-MM-DD` (midnight UTC) and the US
/// `M/D/YYYY[ H:MM]`. `None` for anything else (kept as written).
pub fn since_rfc3339(raw: &str) -> Option<String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
    let s = raw.trim();
    let utc = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.with_timezone(&Utc)
    } else {
        let naive = [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%m/%d/%Y"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
        naive.and_utc()
    };
    Some(utc.to_rfc3339_opts(SecondsFormat::Secs, true))
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
    /// The header's cells as written (for messages naming a column).
    columns: Vec<String>,
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

fn build_layout(header: &[&str], forced: Format, table: &mut Table, file: &Path) -> Result<Layout> {
    let cols: Vec<String> = header.iter().map(|h| hnorm(h)).collect();
    let shown = file.display();
    let format = match forced {
        Format::Auto => detect(&cols),
        Format::Mailchimp => Some(SourceFormat::Mailchimp(Status::Subscribed)),
        Format::Substack => Some(SourceFormat::Substack),
        Format::Buttondown => Some(SourceFormat::Buttondown),
        Format::Listmonk => Some(SourceFormat::Listmonk),
        Format::Plain => Some(SourceFormat::Plain),
    };
    let email = find(&cols, EMAIL_ALIASES);
    let (Some(format), Some(email)) = (format, email) else {
        bail!(
            "{shown}: line 1: no email column in the header ({}); name the column `email`, \
             or choose the export's format with --format",
            header
                .iter()
                .map(|h| format!("`{}`", crate::base::shown(trim_cell(h))))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
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
        columns: header.iter().map(|h| trim_cell(h).to_string()).collect(),
    };
    for i in format_columns(&mut layout, &cols) {
        if let Some(key) = attr_key(header[i]) {
            let j = extra_column_for(table, &key);
            if !layout.attrs.iter().any(|&(_, k)| k == j) {
                layout.attrs.push((i, j));
            }
        }
    }
    Ok(layout)
}

/// Sets what `layout`'s format reads from its own columns (status rule, `since`, JSON
/// attributes); returns the file columns that become attributes.
fn format_columns(layout: &mut Layout, cols: &[String]) -> Vec<usize> {
    let col = |n: &str| cols.iter().position(|c| c == n);
    match layout.format {
        SourceFormat::Mailchimp(_) => mailchimp_columns(layout, cols),
        SourceFormat::Substack => {
            layout.status = StatusRule::Substack {
                disabled: col("emaildisabled"),
            };
            layout.since = col("createdat").into_iter().collect();
            Vec::new()
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
            Vec::new()
        }
        SourceFormat::Listmonk => {
            layout.status = StatusRule::Listmonk {
                status: col("status"),
                subscription: col("subscriptionstatus"),
            };
            layout.since = col("createdat").into_iter().collect();
            layout.attrs_json = col("attributes");
            Vec::new()
        }
        SourceFormat::Plain => plain_columns(layout, cols),
    }
}

/// A Mailchimp export: the whole file has one status (subscribed, unsubscribed or
/// cleaned, told by its columns); merge fields become attributes.
fn mailchimp_columns(layout: &mut Layout, cols: &[String]) -> Vec<usize> {
    let col = |n: &str| cols.iter().position(|c| c == n);
    let kind = if cols.iter().any(|c| c == "unsubtime") {
        Status::Unsubscribed
    } else if cols.iter().any(|c| c == "cleantime") {
        Status::Bounced
    } else {
        Status::Subscribed
    };
    layout.format = SourceFormat::Mailchimp(kind);
    layout.status = StatusRule::Fixed(kind);
    layout.since = ["confirmtime", "optintime"]
        .iter()
        .filter_map(|n| col(n))
        .collect();
    (0..cols.len())
        .filter(|&i| {
            let c = cols[i].as_str();
            i != layout.email
                && Some(i) != layout.name
                && !MAILCHIMP_SYSTEM.contains(&c)
                && !EMAIL_ALIASES.contains(&c)
                && !c.starts_with("unsub")
                && !c.starts_with("clean")
                && !c.is_empty()
        })
        .collect()
}

/// A plain CSV: an optional status column; every column not otherwise used becomes an
/// attribute.
fn plain_columns(layout: &mut Layout, cols: &[String]) -> Vec<usize> {
    let col = |n: &str| cols.iter().position(|c| c == n);
    layout.status = StatusRule::Column(col("status"));
    layout.since = SINCE_ALIASES.iter().filter_map(|n| col(n)).collect();
    let used: Vec<Option<usize>> = vec![
        Some(layout.email),
        layout.name,
        layout.first,
        layout.last,
        col("status"),
        layout.tags,
    ];
    (0..cols.len())
        .filter(|&i| {
            !used.contains(&Some(i))
                && !layout.since.contains(&i)
                && !PLAIN_IGNORED.contains(&cols[i].as_str())
        })
        .collect()
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
        columns: Vec::new(),
    }
}

fn truthy(v: &str) -> Option<bool> {
    if v.is_empty() {
        return Some(false);
    }
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Some(true),
        "false" | "0" | "no" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

/// A row's name: its name column, else its first and last names joined.
fn row_name<'c>(lay: &Layout, cell: &dyn Fn(Option<usize>) -> &'c str) -> Cow<'c, str> {
    match (lay.name.map(|i| cell(Some(i))), lay.first, lay.last) {
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
                crate::base::shown(cell(*disabled))
            )),
        },
        StatusRule::Buttondown {
            kind,
            unsubscribed_at,
        } => buttondown_status(cell(*kind), cell(*unsubscribed_at)),
        StatusRule::Listmonk {
            status,
            subscription,
        } => listmonk_status(cell(*status), cell(*subscription)),
        StatusRule::Column(c) => {
            let v = cell(*c);
            if v.is_empty() {
                return Ok(Is(Status::Subscribed));
            }
            let s = match v.to_ascii_lowercase().as_str() {
                "" | "active" | "confirmed" => Status::Subscribed,
                "cleaned" => Status::Bounced,
                "blocklisted" => Status::Unsubscribed,
                other => Status::parse(other).ok_or_else(|| {
                    format!(
                        "status `{}` is not one of subscribed, unsubscribed, bounced, complained",
                        crate::base::shown(v)
                    )
                })?,
            };
            Ok(Is(s))
        }
    }
}

/// Buttondown's `subscriber_type` (and `unsubscription_date`, which wins over a
/// subscribed type).
fn buttondown_status(kind: &str, unsubscribed_at: &str) -> Result<RowStatus, String> {
    use RowStatus::*;
    let k = kind.to_ascii_lowercase().replace(['-', ' '], "_");
    let status = match k.as_str() {
        "" | "regular" | "premium" | "trialed" | "gifted" | "churning" | "past_due" | "unpaid"
        | "paused" => Status::Subscribed,
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
                crate::base::shown(other)
            ))
        }
    };
    if !unsubscribed_at.is_empty() && status == Status::Subscribed {
        return Ok(Is(Status::Unsubscribed));
    }
    Ok(Is(status))
}

/// listmonk's subscriber `status` and list `subscription_status` (an unsubscribed list
/// subscription wins).
fn listmonk_status(status: &str, subscription: &str) -> Result<RowStatus, String> {
    let base = match status.to_ascii_lowercase().as_str() {
        "" | "enabled" => Status::Subscribed,
        "blocklisted" | "blacklisted" | "disabled" => Status::Unsubscribed,
        other => {
            return Err(format!(
                "status `{}` is not one listmonk uses (enabled, disabled, blocklisted)",
                crate::base::shown(other)
            ))
        }
    };
    if subscription.eq_ignore_ascii_case("unsubscribed") {
        return Ok(RowStatus::Is(Status::Unsubscribed));
    }
    Ok(RowStatus::Is(base))
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
            crate::base::shown(other)
        ),
    }
}

/// Reads exports into a table, keeping the account.
pub(crate) struct Importer<'t> {
    table: &'t mut Table,
    opts: ImportOptions,
    /// Per table row: where this import first saw the address (`(file+1) << 40 | line`), or 0.
    first_seen: Vec<u64>,
    files: Vec<Arc<str>>,
    pub report: ImportReport,
    /// Whether the table differs from the list on disk.
    pub changed: bool,
    /// Table row → its note in `report.changed` (each changed address is named once).
    changed_note: std::collections::HashMap<usize, usize>,
    /// Table rows already named in `report.kept_suppressed`.
    kept_noted: std::collections::HashSet<usize>,
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
            changed_note: std::collections::HashMap::new(),
            kept_noted: std::collections::HashSet::new(),
        }
    }

    /// Reads, decodes and merges one file. An error means the file could not be used at
    /// all (unreadable, undecodable, no email column); rows with problems are reported.
    pub fn import_file(&mut self, path: &Path) -> Result<()> {
        let bytes = crate::base::files::read_regular(path, u64::MAX)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let decoded = decode(bytes, self.opts.encoding, path)?;
        self.import_text(path, decoded)
    }

    fn import_text(&mut self, path: &Path, decoded: Decoded) -> Result<()> {
        let shown = path.display().to_string();
        let file_idx = self.files.len();
        self.files.push(Arc::from(shown.as_str()));
        let text = decoded.text;
        // Every line may add a row: size the table once instead of growing it.
        self.table.reserve(count_lines(text.as_bytes()));
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
                    let headerless = matches!(self.opts.format, Format::Auto | Format::Plain)
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
                let msg = format!("`{}`: {e}", crate::base::shown(raw_email));
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
        let raw_name = row_name(lay, &cell);
        if let Some(why) = damaged_text(&raw_name) {
            let msg = format!(
                "`{email}`: the name `{}` {why}; fix it in the source or re-export it as UTF-8",
                crate::base::shown(&raw_name)
            );
            return self.invalid(file_idx, line, msg);
        }
        let name: Cow<'_, str> = match raw_name {
            Cow::Borrowed(n) => normalize_name(n),
            Cow::Owned(n) => Cow::Owned(normalize_name(&n).into_owned()),
        };
        let since = lay
            .since
            .iter()
            .map(|&i| cell(Some(i)))
            .find(|s| !s.is_empty())
            .map(|s| match since_rfc3339(s) {
                Some(t) => Cow::Owned(t),
                None => normalize_text(s, MAX_META_CHARS),
            })
            .unwrap_or_default();
        let tags = lay
            .tags
            .map(|i| parse_tags(cell(Some(i))))
            .unwrap_or_default();
        // An unusable optional cell never costs the address: the row is imported without it.
        let (attrs, unusable) = self.row_attributes(lay, &cell);
        if let Some(why) = unusable {
            let n = self.note(
                file_idx,
                line,
                format!("`{email}`: {why}; imported without it"),
            );
            self.report.cells_skipped.push(n);
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

    /// The attributes of a row, as (table extra column, value): its attribute columns, then
    /// the fields of its JSON attributes (flattened); and why the JSON cell was left out,
    /// when it is unusable (naming its column).
    fn row_attributes<'c>(
        &mut self,
        lay: &Layout,
        cell: &dyn Fn(Option<usize>) -> &'c str,
    ) -> (Vec<(usize, String)>, Option<String>) {
        let mut attrs: Vec<(usize, String)> = Vec::new();
        for &(i, j) in &lay.attrs {
            let v = normalize_text(cell(Some(i)), MAX_ATTR_CHARS);
            if !v.is_empty() {
                attrs.push((j, v.into_owned()));
            }
        }
        let Some((column, raw)) = lay.attrs_json.map(|i| (i, cell(Some(i)))) else {
            return (attrs, None);
        };
        if raw.is_empty() || raw == "{}" {
            return (attrs, None);
        }
        let column = &lay.columns[column];
        let value: serde_json::Value = match serde_json::from_str(raw) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => {
                let why = format!("the `{column}` cell is not a JSON object");
                return (attrs, Some(why));
            }
            Err(e) => {
                let why = format!("the `{column}` cell is not valid JSON ({e})");
                return (attrs, Some(why));
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
        (attrs, None)
    }

    fn merge(&mut self, row: Incoming<'_>, file_idx: usize, line: u64) -> Result<()> {
        let mark = ((file_idx as u64 + 1) << LINE_BITS) | (line & ((1 << LINE_BITS) - 1));
        let (found, hash) = self.table.find_hashed(&row.email);
        let Some(i) = found else {
            return self.add(&row, hash, mark);
        };
        let seen = self.first_seen[i];
        let existing = self.table.row(i);
        let existing_status = existing.status;
        let spelled_differently = *existing.email != *row.email;
        let (new_status, resubscribed, kept) =
            self.merged_status(existing_status, row.status, seen);
        let mut what = self.fill_in(i, &row)?;
        if new_status != existing_status {
            self.table.set_status(i, new_status);
            self.changed = true;
            what.insert(0, format!("{existing_status} → {new_status}"));
        }
        if seen == 0 {
            self.first_seen[i] = mark;
        }
        if resubscribed {
            self.report.resubscribed += 1;
        }

        // Each row is named in one place at most: a kept suppression, else a change, else a
        // duplicate (a row that repeats an address changes nothing by itself).
        if kept && self.kept_noted.insert(i) {
            let n = self.note(
                file_idx,
                line,
                format!("`{}` is {} in the list", row.email, existing_status),
            );
            self.report.kept_suppressed.push(n);
        }
        if !what.is_empty() {
            self.note_change(i, file_idx, line, &what);
        } else if kept {
            // Already named as not resubscribed.
        } else if seen != 0 {
            let first_file = ((seen >> LINE_BITS) - 1) as usize;
            let first_line = seen & ((1 << LINE_BITS) - 1);
            let text = format!(
                "`{}` duplicates {}:{} (kept as `{}`)",
                row.email,
                self.files[first_file],
                first_line,
                self.table.row(i).email
            );
            let n = self.note(file_idx, line, text);
            self.report.duplicates.push(n);
        } else if spelled_differently {
            let text = format!(
                "`{}` is already in the list as `{}`",
                row.email,
                self.table.row(i).email
            );
            let n = self.note(file_idx, line, text);
            self.report.duplicates.push(n);
        } else {
            self.report.unchanged += 1;
        }
        Ok(())
    }

    /// Names the change of table row `i` in the report: a new note (and one more updated
    /// address) the first time, else added to the address's note.
    fn note_change(&mut self, i: usize, file_idx: usize, line: u64, what: &[String]) {
        match self.changed_note.get(&i) {
            Some(&k) => {
                let n = &mut self.report.changed[k];
                n.text.push_str("; ");
                n.text.push_str(&what.join(", "));
            }
            None => {
                let text = format!("`{}`: {}", self.table.row(i).email, what.join(", "));
                let n = self.note(file_idx, line, text);
                self.changed_note.insert(i, self.report.changed.len());
                self.report.changed.push(n);
                self.report.updated += 1;
            }
        }
    }

    /// Adds an address the list does not have (first seen at `mark`).
    fn add(&mut self, row: &Incoming<'_>, hash: u32, mark: u64) -> Result<()> {
        let n = self.table.extra.len();
        let mut extras: Vec<Cow<'_, str>> = vec![Cow::Borrowed(""); n];
        for (j, v) in &row.attrs {
            extras[*j] = Cow::Borrowed(v.as_str());
        }
        let since: &str = if row.since.is_empty() {
            &self.opts.today
        } else {
            &row.since
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
        let i = self.table.push_hashed(&new, hash)?;
        self.first_seen.resize(self.table.len(), 0);
        self.first_seen[i] = mark;
        self.changed = true;
        if row.status.is_suppression() {
            self.report.suppressed += 1;
        } else {
            self.report.added += 1;
        }
        Ok(())
    }

    /// The status an existing row gets from an incoming one, whether that resubscribes it,
    /// and whether a suppression was kept against the incoming row. A suppression wins
    /// over `subscribed`; it is undone only with `--resubscribe`, and only by the first row
    /// of this import naming the address (`seen == 0`).
    fn merged_status(&self, existing: Status, incoming: Status, seen: u64) -> (Status, bool, bool) {
        if incoming.is_suppression() {
            let status = if existing == Status::Subscribed {
                incoming
            } else {
                existing
            };
            (status, false, false)
        } else if existing.is_suppression() {
            if self.opts.resubscribe && seen == 0 {
                (Status::Subscribed, true, false)
            } else {
                (existing, false, true)
            }
        } else {
            (existing, false, false)
        }
    }

    /// Fills in what row `i` lacks from `row` (an empty name, `since` or attribute; tags it
    /// does not have yet); returns what changed (`name filled in`, `tags added`, …).
    fn fill_in(&mut self, i: usize, row: &Incoming<'_>) -> Result<Vec<String>> {
        // Decide on borrowed data; build new cells only when something changes.
        let existing = self.table.row(i);
        let fill_name = existing.name.is_empty() && !row.name.is_empty();
        let fill_since = existing.since.is_empty() && !row.since.is_empty();
        let has_tag = |t: &str| existing.tags.split(';').any(|o| o.eq_ignore_ascii_case(t));
        let tags_changed = row.tags.iter().any(|t| !has_tag(t));
        let attrs_changed = row.attrs.iter().any(|(j, _)| existing.extra(*j).is_empty());
        if !(fill_name || fill_since || tags_changed || attrs_changed) {
            return Ok(Vec::new());
        }
        let mut what = Vec::new();
        if fill_name {
            what.push("name filled in".to_string());
        }
        if fill_since {
            what.push("since filled in".to_string());
        }
        if tags_changed {
            what.push("tags added".to_string());
        }
        let filled: Vec<&str> = row
            .attrs
            .iter()
            .filter(|(j, _)| existing.extra(*j).is_empty())
            .map(|(j, _)| self.table.extra[*j].as_str())
            .collect();
        if !filled.is_empty() {
            what.push(format!("{} filled in", filled.join(", ")));
        }
        let stored_email = existing.email.to_string();
        let mut tags = split_tags(existing.tags);
        for t in &row.tags {
            if !tags.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                tags.push(t.clone());
            }
        }
        let n = self.table.extra.len();
        let mut extras: Vec<String> = (0..n).map(|j| existing.extra(j).to_string()).collect();
        for (j, v) in &row.attrs {
            if extras[*j].is_empty() {
                extras[*j] = v.clone();
            }
        }
        let new = NewRow {
            email: Cow::Borrowed(&stored_email),
            name: Cow::Owned(if fill_name {
                row.name.to_string()
            } else {
                existing.name.to_string()
            }),
            status: None,
            since: Cow::Owned(if fill_since {
                row.since.to_string()
            } else {
                existing.since.to_string()
            }),
            source: Cow::Owned(existing.source.to_string()),
            tags: Cow::Owned(join_tags(&tags)),
            extras: extras.into_iter().map(Cow::Owned).collect(),
        };
        self.table.update(i, &new)?;
        self.changed = true;
        Ok(what)
    }
}

/// One usable row of an export, normalised.
struct Incoming<'a> {
    email: Cow<'a, str>,
    name: Cow<'a, str>,
    status: Status,
    since: Cow<'a, str>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::{Subscriber, SubscriberList};

    struct Run {
        list: SubscriberList,
        report: ImportReport,
        changed: bool,
    }

    fn opts(resubscribe: bool) -> ImportOptions {
        ImportOptions {
            format: Format::Auto,
            encoding: Encoding::Auto,
            delimiter: None,
            resubscribe,
            today: "2026-01-01".into(),
        }
    }

    fn run_with(list: &str, files: &[(&str, &[u8])], o: ImportOptions) -> Result<Run> {
        let dir = tempfile::tempdir().unwrap();
        let mut table = Table::load_bytes(list.as_bytes(), Path::new("subscribers.csv")).unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, bytes)| {
                let p = dir.path().join(name);
                std::fs::write(&p, bytes).unwrap();
                p
            })
            .collect();
        let mut importer = Importer::new(&mut table, o);
        for p in &paths {
            importer.import_file(p)?;
        }
        let (report, changed) = (importer.report, importer.changed);
        // Notes name files by path; keep only the file name for readable assertions.
        let report = strip_dirs(report, dir.path());
        Ok(Run {
            list: table.to_list(),
            report,
            changed,
        })
    }

    fn strip_dirs(mut r: ImportReport, dir: &Path) -> ImportReport {
        let prefix = format!("{}/", dir.display());
        for n in r
            .invalid
            .iter_mut()
            .chain(r.duplicates.iter_mut())
            .chain(r.skipped.iter_mut())
            .chain(r.kept_suppressed.iter_mut())
        {
            n.file = Arc::from(n.file.trim_start_matches(&prefix));
            n.text = n.text.replace(&prefix, "");
        }
        r
    }

    fn run(list: &str, files: &[(&str, &[u8])]) -> Run {
        run_with(list, files, opts(false)).unwrap()
    }

    fn sub<'a>(r: &'a Run, email: &str) -> &'a Subscriber {
        r.list
            .subscribers
            .iter()
            .find(|s| s.email.as_str().eq_ignore_ascii_case(email))
            .unwrap_or_else(|| panic!("{email} not in {:?}", r.list.subscribers))
    }

    const EMPTY: &str = "";
    const LIST: &str = "email,name,status,since,source,tags\n\
        anna@example.org,Anna,subscribed,2020-01-01,manual,\n\
        left@example.org,,unsubscribed,2020-01-01,manual,\n\
        bounced@example.org,,bounced,2020-01-01,manual,\n\
        noname@example.org,,subscribed,2020-01-01,manual,\n";

    #[test]
    fn since_is_normalised_to_rfc3339_in_utc() {
        for (raw, want) in [
            ("2021-03-02 10:11:12", Some("2021-03-02T10:11:12Z")),
            ("2022-01-10T12:00:00.000Z", Some("2022-01-10T12:00:00Z")),
            ("2022-01-10T14:00:00+02:00", Some("2022-01-10T12:00:00Z")),
            ("2023-01-01", Some("2023-01-01T00:00:00Z")),
            ("3/4/2024", Some("2024-03-04T00:00:00Z")),
            ("2021-03-02 10:11", Some("2021-03-02T10:11:00Z")),
            ("last spring", None),
        ] {
            assert_eq!(since_rfc3339(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn mailchimp_names_tags_and_merge_fields_are_mapped() {
        let r = run(
            EMPTY,
            &[(
                "members.csv",
                b"Email Address,First Name,Last Name,Company,MEMBER_RATING,OPTIN_TIME,LEID,NOTES,TAGS\n\
                  anna@example.org,Anna,Petrova,Institute,4,2021-03-02 10:11:12,1,met in Baku,\"\"\"Editors\"\",\"\"Board\"\"\"\n\
                  solo@example.org,,Lastonly,,2,,2,,\n",
            )],
        );
        let a = sub(&r, "anna@example.org");
        assert_eq!(a.name, "Anna Petrova");
        assert_eq!(a.tags, vec!["Editors", "Board"]);
        assert_eq!(a.since, "2021-03-02T10:11:12Z");
        assert_eq!(a.source, "import:mailchimp");
        assert_eq!(
            a.attrs.get("company").map(String::as_str),
            Some("Institute")
        );
        assert_eq!(
            a.attrs.get("notes").map(String::as_str),
            Some("met in Baku")
        );
        assert!(!a.attrs.contains_key("leid"));
        assert_eq!(sub(&r, "solo@example.org").name, "Lastonly");
        assert_eq!(sub(&r, "solo@example.org").since, "2026-01-01");
        assert_eq!(r.report.added, 2);
        assert_eq!(
            r.report.files[0].format,
            SourceFormat::Mailchimp(Status::Subscribed)
        );
    }

    #[test]
    fn mailchimp_unsubscribed_and_cleaned_exports_are_suppressions() {
        let r = run(
            LIST,
            &[
                (
                    "unsubscribed.csv",
                    b"Email Address,First Name,Last Name,UNSUB_TIME,UNSUB_REASON\nANNA@example.org,Anna,P,2024-01-01,\nnew.gone@example.org,,,2024-01-01,\n",
                ),
                (
                    "cleaned.csv",
                    b"Email Address,First Name,CLEAN_TIME\nnoname@example.org,,2024-01-01\n",
                ),
            ],
        );
        assert_eq!(sub(&r, "anna@example.org").status, Status::Unsubscribed);
        assert_eq!(
            sub(&r, "anna@example.org").email.as_str(),
            "anna@example.org"
        );
        assert_eq!(sub(&r, "new.gone@example.org").status, Status::Unsubscribed);
        assert_eq!(sub(&r, "noname@example.org").status, Status::Bounced);
        // One new suppression; the two existing addresses that changed are named, once.
        assert_eq!(r.report.suppressed, 1);
        assert_eq!(r.report.updated, 2);
        let changed: Vec<&str> = r.report.changed.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            changed,
            [
                "`anna@example.org`: subscribed → unsubscribed",
                "`noname@example.org`: subscribed → bounced"
            ]
        );
        assert_eq!(r.report.added, 0);
        assert_eq!(
            r.report.files[1].format,
            SourceFormat::Mailchimp(Status::Bounced)
        );
    }

    #[test]
    fn substack_disabled_rows_become_unsubscribed() {
        let r = run(
            EMPTY,
            &[(
                "emails.csv",
                b"email,active_subscription,expiry,email_disabled,prefer_digests,created_at\n\
                  a@example.org,false,,false,false,2022-01-10T12:00:00.000Z\n\
                  b@example.org,true,,TRUE,false,2022-01-10T12:00:00.000Z\n\
                  c@example.org,true,,maybe,false,\n",
            )],
        );
        assert_eq!(sub(&r, "a@example.org").status, Status::Subscribed);
        assert_eq!(sub(&r, "a@example.org").since, "2022-01-10T12:00:00Z");
        assert_eq!(sub(&r, "b@example.org").status, Status::Unsubscribed);
        assert_eq!(r.report.invalid.len(), 1);
        assert!(r.report.invalid[0]
            .text
            .contains("email_disabled is `maybe`"));
        assert_eq!(r.report.invalid[0].line, 4);
    }

    #[test]
    fn buttondown_types_and_unsubscription_dates_map_to_statuses() {
        let r = run(
            LIST,
            &[(
                "buttondown.csv",
                b"id,email,notes,metadata,tags,referrer_url,creation_date,subscriber_type,unsubscription_date\n\
                  1,reg@example.org,,\"{\"\"city\"\": \"\"Tbilisi\"\"}\",news;analysis,,2023-01-01,regular,\n\
                  2,unsub@example.org,,{},,,2023-01-01,unsubscribed,2024-02-02\n\
                  3,dated@example.org,,,,,2023-01-01,regular,2024-02-02\n\
                  4,new@example.org,,,,,2023-01-01,unactivated,\n\
                  5,anna@example.org,,,,,2023-01-01,complained,\n\
                  6,odd@example.org,,,,,2023-01-01,weird,\n",
            )],
        );
        let reg = sub(&r, "reg@example.org");
        assert_eq!(reg.status, Status::Subscribed);
        assert_eq!(reg.tags, vec!["news", "analysis"]);
        assert_eq!(reg.attrs.get("city").map(String::as_str), Some("Tbilisi"));
        assert_eq!(reg.since, "2023-01-01T00:00:00Z");
        assert_eq!(sub(&r, "unsub@example.org").status, Status::Unsubscribed);
        assert_eq!(sub(&r, "dated@example.org").status, Status::Unsubscribed);
        assert_eq!(sub(&r, "anna@example.org").status, Status::Complained);
        assert!(r
            .list
            .subscribers
            .iter()
            .all(|s| s.email.as_str() != "new@example.org"));
        assert_eq!(r.report.skipped.len(), 1);
        assert_eq!(r.report.skipped[0].line, 5);
        assert_eq!(r.report.invalid.len(), 1);
        assert!(r.report.invalid[0].text.contains("subscriber_type `weird`"));
    }

    #[test]
    fn listmonk_attributes_are_flattened_into_attributes() {
        let r = run(
            EMPTY,
            &[(
                "listmonk.csv",
                br#"uuid,email,name,attributes,status,created_at,updated_at
u1,a@example.org,Aida Bekova,"{""city"": ""Almaty"", ""plan"": {""tier"": ""pro"", ""seats"": 3}, ""langs"": [""kk"", ""ru""], ""vip"": true, ""none"": null}",enabled,2021-01-01,2021-01-02
u2,b@example.org,Blocked,{},blocklisted,2021-01-01,2021-01-02
u3,c@example.org,Broken,{not json},enabled,2021-01-01,2021-01-02
"#,
            )],
        );
        let a = sub(&r, "a@example.org");
        assert_eq!(a.name, "Aida Bekova");
        assert_eq!(a.attrs["city"], "Almaty");
        assert_eq!(a.attrs["plan_tier"], "pro");
        assert_eq!(a.attrs["plan_seats"], "3");
        assert_eq!(a.attrs["langs"], "kk;ru");
        assert_eq!(a.attrs["vip"], "true");
        assert!(!a.attrs.contains_key("none"));
        assert_eq!(sub(&r, "b@example.org").status, Status::Unsubscribed);
        // An unreadable optional cell never costs the address.
        assert_eq!(sub(&r, "c@example.org").status, Status::Subscribed);
        assert!(r.report.invalid.is_empty());
        assert_eq!(r.report.cells_skipped.len(), 1);
        let skipped = &r.report.cells_skipped[0];
        assert_eq!(skipped.line, 4);
        assert!(
            skipped
                .text
                .contains("`c@example.org`: the `attributes` cell is not valid JSON"),
            "{}",
            skipped.text
        );
    }

    #[test]
    fn header_matching_ignores_case_spaces_underscores_and_bom() {
        let r = run(
            EMPTY,
            &[(
                "odd-header.csv",
                "\u{FEFF} E_Mail , Full Name ,SIGN UP DATE\na@example.org,Anna,2020-02-02\n"
                    .as_bytes(),
            )],
        );
        let a = sub(&r, "a@example.org");
        assert_eq!(a.name, "Anna");
        assert_eq!(a.since, "2020-02-02T00:00:00Z");
        assert_eq!(r.report.files[0].format, SourceFormat::Plain);
    }

    #[test]
    fn semicolon_and_tab_delimiters_are_sniffed() {
        assert_eq!(sniff_delimiter("email;name\n"), b';');
        assert_eq!(sniff_delimiter("\n\nemail\tname\tx\n"), b'\t');
        assert_eq!(sniff_delimiter("\"a,b\";c;d\n"), b';');
        assert_eq!(sniff_delimiter("email\n"), b',');
        let r = run(
            EMPTY,
            &[
                ("semi.csv", b"email;name\nsemi@example.org;Doe, Jane\n"),
                ("tab.txt", b"email\tname\ntab@example.org\tTab Person\n"),
            ],
        );
        assert_eq!(sub(&r, "semi@example.org").name, "Doe, Jane");
        assert_eq!(sub(&r, "tab@example.org").name, "Tab Person");
        assert_eq!(r.report.files[1].delimiter, b'\t');
        assert_eq!(parse_delimiter("tab").unwrap(), b'\t');
        assert_eq!(parse_delimiter("|").unwrap(), b'|');
        assert!(parse_delimiter(";;").is_err());
    }

    #[test]
    fn ragged_rows_are_reported_and_skipped_never_shifted() {
        let r = run(
            EMPTY,
            &[(
                "ragged.csv",
                b"email,name,country\n\
                  a@example.org,Anna,GE\n\
                  b@example.org,GE\n\
                  c@example.org,Carl,DE,extra\n\
                  d@example.org,Dana,AM,,\n",
            )],
        );
        let emails: Vec<&str> = r
            .list
            .subscribers
            .iter()
            .map(|s| s.email.as_str())
            .collect();
        assert_eq!(emails, vec!["a@example.org", "d@example.org"]);
        assert_eq!(sub(&r, "d@example.org").attrs["country"], "AM");
        let lines: Vec<u64> = r.report.invalid.iter().map(|n| n.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert!(r.report.invalid[0]
            .text
            .contains("2 fields but the header has 3"));
    }

    #[test]
    fn blank_lines_crlf_and_quoted_newlines_keep_physical_line_numbers() {
        let r = run(
            EMPTY,
            &[(
                "messy.csv",
                b"\r\nemail,name\r\n\r\nfirst@example.org,\"Two\r\nLines\"\r\n\r\n  \r\nbad-address,X\r\n\"quoted@example.org\",\"Say \"\"hi\"\"\"\r\n",
            )],
        );
        assert_eq!(sub(&r, "first@example.org").name, "Two Lines");
        assert_eq!(sub(&r, "quoted@example.org").name, "Say \"hi\"");
        assert_eq!(r.report.invalid.len(), 1);
        assert_eq!(r.report.invalid[0].line, 8);
        assert_eq!(r.report.files[0].rows, 3);
    }

    #[test]
    fn case_duplicates_keep_the_first_spelling() {
        let r = run(
            LIST,
            &[(
                "dups.csv",
                b"email,name\nNew.Person@Example.org,New\nnew.person@example.org,Other\nANNA@example.org,\n",
            )],
        );
        let n = sub(&r, "new.person@example.org");
        assert_eq!(n.email.as_str(), "New.Person@example.org");
        assert_eq!(n.name, "New");
        assert_eq!(r.report.added, 1);
        assert_eq!(r.report.duplicates.len(), 2);
        assert_eq!(r.report.duplicates[0].line, 3);
        assert!(
            r.report.duplicates[0].text.contains("dups.csv:2"),
            "{:?}",
            r.report.duplicates
        );
        assert!(r.report.duplicates[1]
            .text
            .contains("already in the list as `anna@example.org`"));
        assert_eq!(r.list.subscribers.len(), 5);
    }

    #[test]
    fn unsubscribed_address_is_never_resubscribed_without_resubscribe() {
        let file: &[u8] = b"email,name\nleft@example.org,Left\nbounced@example.org,B\n";
        let r = run(LIST, &[("again.csv", file)]);
        assert_eq!(sub(&r, "left@example.org").status, Status::Unsubscribed);
        assert_eq!(sub(&r, "bounced@example.org").status, Status::Bounced);
        assert_eq!(r.report.kept_suppressed.len(), 2);

        let r = run_with(LIST, &[("again.csv", file)], opts(true)).unwrap();
        assert_eq!(sub(&r, "left@example.org").status, Status::Subscribed);
        assert_eq!(sub(&r, "bounced@example.org").status, Status::Subscribed);
        assert_eq!(r.report.resubscribed, 2);
        assert!(r.report.kept_suppressed.is_empty());
    }

    #[test]
    fn a_suppression_is_not_undone_by_a_later_row_of_the_same_import() {
        let r = run_with(
            EMPTY,
            &[(
                "both.csv",
                b"email,status\nx@example.org,unsubscribed\nX@example.org,subscribed\n",
            )],
            opts(true),
        )
        .unwrap();
        assert_eq!(sub(&r, "x@example.org").status, Status::Unsubscribed);
    }

    #[test]
    fn names_are_filled_in_when_empty_but_never_overwritten() {
        let r = run(
            LIST,
            &[(
                "names.csv",
                b"email,name,tags\nnoname@example.org,Now Named,a;b\nanna@example.org,Someone Else,\n",
            )],
        );
        let n = sub(&r, "noname@example.org");
        assert_eq!(n.name, "Now Named");
        assert_eq!(n.tags, vec!["a", "b"]);
        assert_eq!(n.source, "manual");
        assert_eq!(sub(&r, "anna@example.org").name, "Anna");
        assert_eq!(r.report.updated, 1);
        assert_eq!(r.report.unchanged, 1);
    }

    #[test]
    fn a_name_carrying_a_header_is_stored_as_one_line() {
        let r = run(
            EMPTY,
            &[(
                "evil.csv",
                b"email,name\nevil@example.org,\"Eve\r\nBcc: everyone@example.org\"\n",
            )],
        );
        assert_eq!(
            sub(&r, "evil@example.org").name,
            "Eve Bcc: everyone@example.org"
        );
    }

    #[test]
    fn legacy_windows_1252_names_are_decoded_not_mangled() {
        let r = run(
            EMPTY,
            &[(
                "excel.csv",
                b"E-Mail;Name\r\nlena@example.de;M\xFCller, Lena\r\nca@example.fr;\xC7a Va\r\n",
            )],
        );
        assert_eq!(sub(&r, "lena@example.de").name, "Müller, Lena");
        assert_eq!(sub(&r, "ca@example.fr").name, "Ça Va");
        assert!(r.report.files[0].encoding_guessed);
    }

    #[test]
    fn utf16_exports_in_both_byte_orders_are_read() {
        let text = "Email\tName\r\nlena@example.de\tMüller\r\n";
        for (bom, le) in [([0xFFu8, 0xFE], true), ([0xFE, 0xFF], false)] {
            let mut bytes = bom.to_vec();
            for u in text.encode_utf16() {
                bytes.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            let r = run(EMPTY, &[("unicode.txt", &bytes)]);
            assert_eq!(sub(&r, "lena@example.de").name, "Müller");
            assert_eq!(r.report.files[0].delimiter, b'\t');
        }
    }

    #[test]
    fn names_already_damaged_are_reported_not_stored() {
        let r = run(
            EMPTY,
            &[(
                "damaged.csv",
                "email,name\na@example.org,M\u{FFFD}ller\nb@example.org,MÃ¼ller\n".as_bytes(),
            )],
        );
        assert!(r.list.subscribers.is_empty());
        assert_eq!(r.report.invalid.len(), 2);
        assert!(r.report.invalid[0].text.contains("U+FFFD"));
        assert!(r.report.invalid[1].text.contains("mojibake"));
    }

    #[test]
    fn a_file_without_a_header_is_a_plain_list_of_addresses() {
        let r = run(
            EMPTY,
            &[("plain.txt", b"a@example.org,Anna\nb@example.org,Bob\n")],
        );
        assert_eq!(sub(&r, "a@example.org").name, "Anna");
        assert_eq!(r.report.added, 2);
        assert!(r.report.files[0].headerless);
    }

    #[test]
    fn a_file_without_an_email_column_is_an_error_naming_the_file() {
        let err = run_with(EMPTY, &[("names.csv", b"who,what\nAnna,x\n")], opts(false))
            .err()
            .expect("error");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("names.csv") && msg.contains("no email column"),
            "{msg}"
        );
    }

    #[test]
    fn plain_extra_columns_become_attributes_matching_existing_columns() {
        let list = "email,name,status,since,source,tags,Country\nold@example.org,,subscribed,,,,\n";
        let r = run(
            list,
            &[(
                "sheet.csv",
                b"email,country,Favourite Colour\nold@example.org,GE,\nnew@example.org,AM,blue\n",
            )],
        );
        assert_eq!(r.list.extra_columns, vec!["Country", "favourite_colour"]);
        assert_eq!(sub(&r, "old@example.org").attrs["Country"], "GE");
        assert_eq!(sub(&r, "new@example.org").attrs["favourite_colour"], "blue");
        assert_eq!(r.report.updated, 1);
        assert!(r.changed);
    }

    #[test]
    fn importing_the_same_file_twice_changes_nothing_the_second_time() {
        let file: &[u8] = b"email,name\na@example.org,A\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, file).unwrap();
        let mut table = Table::new();
        import_files(&mut table, std::slice::from_ref(&p), opts(false)).unwrap();
        let (report, changed) = import_files(&mut table, &[p], opts(false)).unwrap();
        assert!(!changed);
        assert_eq!(report.unchanged, 1);
    }

    #[test]
    fn tags_cells_in_several_styles_are_understood() {
        assert_eq!(parse_tags(r#""Editors","Board""#), vec!["Editors", "Board"]);
        assert_eq!(parse_tags(r#"["a", "b", 3]"#), vec!["a", "b", "3"]);
        assert_eq!(parse_tags("x; y ;x"), vec!["x", "y"]);
        assert_eq!(parse_tags("x, y"), vec!["x", "y"]);
        assert!(parse_tags(" ").is_empty());
    }

    #[test]
    fn attribute_names_are_template_friendly() {
        assert_eq!(attr_key("Phone Number").as_deref(), Some("phone_number"));
        assert_eq!(attr_key("2nd line").as_deref(), Some("attr_2nd_line"));
        assert_eq!(attr_key("Name").as_deref(), Some("attr_name"));
        assert_eq!(attr_key(" -- "), None);
    }
}
