//! Markdown articles with YAML (`---`) or TOML (`+++`) front matter.
//!
//! Split, then parse (the zola way): the front matter is cut off the top, read into a
//! key/value map, and each known field is checked on its own so that an error names the
//! field and says how to write it. The body is rendered to HTML with pulldown-cmark, with
//! raw HTML dropped (an article file must not smuggle markup or scripts into a mail) and
//! link targets limited to web and mail URLs, and is also kept as plain-text paragraphs for
//! the text part of the digest. This module does not decide the issue or the URL.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

use super::text::{fold_key, normalise, split_names};
use super::{Draft, Parsed};
use crate::base::edit_distance;
use crate::base::IssueDate;

/// The front matter keys fortnight reads.
const KNOWN_KEYS: [&str; 9] = [
    "title", "author", "authors", "date", "issue", "section", "url", "summary", "draft",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Syntax {
    Yaml,
    Toml,
}

impl Syntax {
    fn fence(self) -> &'static str {
        match self {
            Syntax::Yaml => "---",
            Syntax::Toml => "+++",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Syntax::Yaml => "YAML",
            Syntax::Toml => "TOML",
        }
    }
    /// How to write `key` = `value` in this syntax, for hints.
    fn example(self, key: &str, value: &str) -> String {
        match self {
            Syntax::Yaml => format!("`{key}: {value}`"),
            Syntax::Toml if key == "date" || key == "issue" => format!("`{key} = {value}`"),
            Syntax::Toml => format!("`{key} = \"{value}\"`"),
        }
    }
}

/// A front matter value, whichever syntax it came from.
#[derive(Debug)]
enum Value {
    Text(String),
    List(Vec<Value>),
    Bool(bool),
    Null,
    /// Something else (a table, a number list…), with its kind for the error message.
    Other(&'static str),
}

/// Does this text start with a front matter fence? (Used to read `.txt` files written as
/// Markdown.)
pub(crate) fn has_front_matter(text: &str) -> bool {
    let first = super::text::split_lines(text).next().unwrap_or("");
    matches!(first.trim_end(), "---" | "+++")
}

/// Parses a Markdown article.
pub(crate) fn parse(text: &str) -> Parsed {
    let (syntax, front, body) = match split(text) {
        Split::None => {
            return Parsed::NotArticle(
                "Markdown without front matter (title, date…); did you forget to add `---` at the top and bottom of it?".to_string(),
            )
        }
        Split::Unclosed(syntax) => {
            return Parsed::Invalid(format!(
                "the {} front matter opened with `{}` on line 1 is never closed; did you forget to add the closing `{}`?",
                syntax.name(),
                syntax.fence(),
                syntax.fence()
            ))
        }
        Split::Found {
            syntax,
            front,
            body,
            body_line,
        } => (syntax, front, MarkdownBody { text: body, first_line: body_line }),
    };
    let map = match read_map(syntax, &front) {
        Ok(m) => m,
        Err(e) => return Parsed::Invalid(e),
    };
    match build(syntax, map, body) {
        Ok(parsed) => parsed,
        Err(e) => Parsed::Invalid(e),
    }
}

enum Split {
    None,
    Unclosed(Syntax),
    Found {
        syntax: Syntax,
        front: String,
        body: String,
        /// The line of the file the body starts on (1-based).
        body_line: usize,
    },
}

fn split(text: &str) -> Split {
    let mut lines = super::text::split_lines(text);
    let syntax = match lines.next().map(str::trim_end) {
        Some("---") => Syntax::Yaml,
        Some("+++") => Syntax::Toml,
        _ => return Split::None,
    };
    let mut front = Vec::new();
    for line in lines.by_ref() {
        if line.trim_end() == syntax.fence() {
            let body: Vec<&str> = lines.collect();
            return Split::Found {
                syntax,
                body_line: front.len() + 3,
                front: front.join("\n"),
                body: body.join("\n"),
            };
        }
        front.push(line);
    }
    Split::Unclosed(syntax)
}

/// Front matter larger than this is refused before parsing (real ones are a few hundred
/// bytes).
pub(crate) const MAX_FRONT_MATTER_BYTES: usize = 64 * 1024;
/// Front matter nested deeper than this (`[`, `{`, `- - -`) is refused before parsing: the
/// YAML parser takes quadratic time on deep flow nesting, and no field fortnight reads is
/// more than a list of strings.
pub(crate) const MAX_FRONT_MATTER_DEPTH: usize = 16;

/// Refuses front matter too large or too deeply nested to be worth parsing, in one linear
/// pass (strings and comments skipped).
fn check_bounds(syntax: Syntax, front: &str) -> Result<(), String> {
    if front.len() > MAX_FRONT_MATTER_BYTES {
        return Err(format!(
            "the {} front matter is larger than {} KB; it should hold a few `key: value` lines",
            syntax.name(),
            MAX_FRONT_MATTER_BYTES / 1024
        ));
    }
    let deep = |line: usize| {
        Err(format!(
            "the {} front matter nests more than {MAX_FRONT_MATTER_DEPTH} levels deep on line {} (brackets or list markers); fortnight's fields are text, dates or lists of text",
            syntax.name(),
            line + 1
        ))
    };
    let mut depth = 0usize;
    // Strings are taken to end with their line: a stray quote must not hide the rest of the
    // front matter from the check (at worst a bracket in a multi-line string counts).
    for (n, line) in front.lines().enumerate() {
        let b = line.as_bytes();
        let mut quote: Option<u8> = None;
        if syntax == Syntax::Yaml {
            // Block sequences opened on one line: `- - - x`.
            let markers = line
                .trim_start()
                .split_inclusive(' ')
                .take_while(|w| w.trim_end() == "-" || w.trim_end() == "?")
                .count();
            if markers > MAX_FRONT_MATTER_DEPTH {
                return deep(n);
            }
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) => {
                    if c == b'\\' && q == b'"' {
                        i += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    // A quote opens a string only where a value starts (`it's` is text).
                    b'"' | b'\''
                        if i == 0
                            || matches!(
                                b[i - 1],
                                b' ' | b'\t' | b'[' | b'{' | b',' | b':' | b'='
                            ) =>
                    {
                        quote = Some(c)
                    }
                    b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => break,
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > MAX_FRONT_MATTER_DEPTH {
                            return deep(n);
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            i += 1;
        }
    }
    Ok(())
}

fn read_map(syntax: Syntax, front: &str) -> Result<BTreeMap<String, Value>, String> {
    check_bounds(syntax, front)?;
    let mut map = BTreeMap::new();
    match syntax {
        Syntax::Yaml => {
            let value: serde_norway::Value = serde_norway::from_str(front)
                .map_err(|e| format!("invalid YAML front matter: {e}"))?;
            let mapping = match value {
                serde_norway::Value::Mapping(m) => m,
                serde_norway::Value::Null => serde_norway::Mapping::new(),
                _ => {
                    return Err(
                        "the YAML front matter is not a list of `key: value` lines".to_string()
                    )
                }
            };
            for (k, v) in mapping {
                let key = match k {
                    serde_norway::Value::String(s) => s,
                    other => yaml_scalar(&other).unwrap_or_else(|| "?".to_string()),
                };
                map.insert(key, from_yaml(v));
            }
        }
        Syntax::Toml => {
            let table: toml::Table = front
                .parse()
                .map_err(|e| format!("invalid TOML front matter: {e}"))?;
            for (k, v) in table {
                map.insert(k, from_toml(v));
            }
        }
    }
    Ok(map)
}

fn yaml_scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn from_yaml(v: serde_norway::Value) -> Value {
    match v {
        serde_norway::Value::Null => Value::Null,
        serde_norway::Value::Bool(b) => Value::Bool(b),
        serde_norway::Value::Number(n) => Value::Text(n.to_string()),
        serde_norway::Value::String(s) => Value::Text(s),
        serde_norway::Value::Sequence(items) => {
            Value::List(items.into_iter().map(from_yaml).collect())
        }
        serde_norway::Value::Mapping(_) => Value::Other("a nested table"),
        serde_norway::Value::Tagged(t) => from_yaml(t.value),
    }
}

fn from_toml(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Text(s),
        toml::Value::Integer(i) => Value::Text(i.to_string()),
        toml::Value::Float(f) => Value::Text(f.to_string()),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Text(d.to_string()),
        toml::Value::Array(items) => Value::List(items.into_iter().map(from_toml).collect()),
        toml::Value::Table(_) => Value::Other("a nested table"),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Text(_) => "text",
        Value::List(_) => "a list",
        Value::Bool(_) => "true/false",
        Value::Null => "empty",
        Value::Other(k) => k,
    }
}

/// A text field: `None` when absent or empty.
fn text_field(
    syntax: Syntax,
    map: &BTreeMap<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Text(s)) => {
            let s = normalise(s);
            Ok((!s.is_empty()).then_some(s))
        }
        Some(other) => Err(format!(
            "front matter field `{key}` must be text, not {}; write it like {}",
            kind(other),
            syntax.example(key, "…")
        )),
    }
}

fn date_field(
    syntax: Syntax,
    map: &BTreeMap<String, Value>,
    key: &str,
) -> Result<Option<NaiveDate>, String> {
    let example = syntax.example(key, "2002-02-13");
    match text_field(syntax, map, key) {
        Ok(None) => Ok(None),
        Ok(Some(s)) => parse_front_matter_date(&s).map(Some).ok_or_else(|| {
            format!("front matter field `{key}`: `{s}` is not a date; write it as YYYY-MM-DD, like {example}")
        }),
        Err(_) => Err(format!(
            "front matter field `{key}` must be a date, not {}; write it like {example}",
            map.get(key).map_or("empty", kind)
        )),
    }
}

/// `2002-02-12`, or a date-time (`2002-02-12T09:00:00Z`, `2002-02-12 09:00`) whose day is taken.
fn parse_front_matter_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let day = s.get(..10).unwrap_or(s);
    let rest = s.get(10..).unwrap_or("");
    if !(rest.is_empty() || rest.starts_with(['T', 't', ' '])) {
        return None;
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

fn build(
    syntax: Syntax,
    map: BTreeMap<String, Value>,
    body: MarkdownBody,
) -> Result<Parsed, String> {
    if is_draft(&map)? {
        return Ok(Parsed::NotArticle(
            "a draft (`draft` is true in its front matter)".to_string(),
        ));
    }
    let mut warnings = near_misses(&map);
    let title = text_field(syntax, &map, "title")?;
    let authors = authors(syntax, &map)?;
    let date = date_field(syntax, &map, "date")?.ok_or_else(|| {
        format!(
            "front matter has no `date`; add the article's date, like {}",
            syntax.example("date", "2002-02-12")
        )
    })?;
    let issue = date_field(syntax, &map, "issue")?.map(IssueDate::new);
    let section = text_field(syntax, &map, "section")?;
    let url = url_field(syntax, &map)?;
    let summary = text_field(syntax, &map, "summary")?;

    let rendered = render(&body, None);
    if rendered.dropped_html {
        warnings
            .push("raw HTML in the Markdown body was dropped (write Markdown instead)".to_string());
    }
    if rendered.paragraphs.is_empty() {
        return Ok(Parsed::NotArticle(
            "no body text below the front matter".to_string(),
        ));
    }
    Ok(Parsed::Article(Draft {
        title,
        authors,
        section,
        date,
        issue,
        url,
        summary,
        paragraphs: rendered.paragraphs,
        body_html: rendered.html,
        read_count: None,
        warnings,
        // Relative link targets wait for the article's URL (see `render`).
        markdown: rendered.has_relative.then(|| Box::new(body)),
    }))
}

/// Whether the front matter says `draft: true` (anything but a boolean is an error).
fn is_draft(map: &BTreeMap<String, Value>) -> Result<bool, String> {
    match map.get("draft") {
        Some(Value::Bool(true)) => Ok(true),
        None | Some(Value::Bool(false)) | Some(Value::Null) => Ok(false),
        Some(other) => Err(format!(
            "front matter field `draft` must be true or false, not {}",
            kind(other)
        )),
    }
}

/// Warnings for keys that are a near miss of a known one (a typo); other unknown keys
/// (tags, layout…) are fine.
fn near_misses(map: &BTreeMap<String, Value>) -> Vec<String> {
    let mut warnings = Vec::new();
    for key in map.keys() {
        if KNOWN_KEYS.contains(&key.as_str()) {
            continue;
        }
        if let Some(meant) = KNOWN_KEYS
            .iter()
            .find(|k| edit_distance(k, &key.to_lowercase()) <= 2 && key.len() > 3)
        {
            warnings.push(format!(
                "front matter field `{key}` is not one fortnight reads; did you mean `{meant}`?"
            ));
        }
    }
    warnings
}

/// `author` (a name or a list) or `authors`, never both.
fn authors(syntax: Syntax, map: &BTreeMap<String, Value>) -> Result<Vec<String>, String> {
    match (map.get("author"), map.get("authors")) {
        (Some(_), Some(_)) => Err(
            "front matter has both `author` and `authors`; keep one of them (a name or a list of names)".to_string(),
        ),
        (Some(v), None) => names_of(syntax, "author", v),
        (None, Some(v)) => names_of(syntax, "authors", v),
        (None, None) => Ok(Vec::new()),
    }
}

/// `url`, when given: an absolute web address.
fn url_field(syntax: Syntax, map: &BTreeMap<String, Value>) -> Result<Option<String>, String> {
    let url = text_field(syntax, map, "url")?;
    if let Some(u) = &url {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) || u.contains(' ') {
            return Err(format!(
                "front matter field `url`: `{u}` is not an absolute web address; write it like {}",
                syntax.example("url", "https://analyst.example.org/articles/manas")
            ));
        }
    }
    Ok(url)
}

fn names_of(syntax: Syntax, key: &str, v: &Value) -> Result<Vec<String>, String> {
    let bad = |what: &str| {
        format!(
            "front matter field `{key}` must be a name or a list of names, not {what}; write it like {} or `{key}: [\"Aida Bekova\", \"Timur Rakhimov\"]`",
            syntax.example(key, "Aida Bekova")
        )
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Text(s) => Ok(split_names(s)),
        Value::List(items) => {
            let mut names = Vec::new();
            for item in items {
                match item {
                    Value::Text(s) => {
                        let s = normalise(s);
                        if !s.is_empty() {
                            names.push(s);
                        }
                    }
                    other => return Err(bad(&format!("a list holding {}", kind(other)))),
                }
            }
            Ok(names)
        }
        other => Err(bad(kind(other))),
    }
}

/// A Markdown body and where it starts in its file.
#[derive(Debug, Clone)]
pub(crate) struct MarkdownBody {
    pub text: String,
    /// The file's line the body starts on (1-based), for warnings.
    pub first_line: usize,
}

pub(crate) struct Rendered {
    pub html: String,
    pub paragraphs: Vec<String>,
    pub dropped_html: bool,
    /// Some link or image target is relative (`earlier-piece`, `images/chart.png`).
    pub has_relative: bool,
    /// Relative targets that could not be resolved against the base URL: (line, target).
    pub unresolved: Vec<(usize, String)>,
}

/// Whether a link target has a scheme (`https:`, `mailto:`, `javascript:`); `key` is folded.
fn has_scheme(key: &str) -> bool {
    let scheme_end =
        key.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')));
    scheme_end.is_some_and(|i| i > 0 && key[i..].starts_with(':'))
}

/// Whether a link target is relative (`earlier-piece`, `/2002/x`, `#notes`, `//host/x`).
fn is_relative(url: &str) -> bool {
    !url.trim().is_empty() && !has_scheme(&fold_key(url))
}

/// Renders Markdown to HTML (raw HTML dropped, unsafe link schemes neutralised) and to
/// plain-text paragraphs (one per paragraph, heading, list item, quote or code block).
/// With `base` (the article's URL), relative link and image targets are resolved against
/// it (RFC 3986), as a browser reading the article on the web would; the ones that cannot
/// be are listed in `unresolved` (and left as written, which the digest's final HTML pass
/// removes). Without `base` they are left as written (`has_relative` says there are some).
pub(crate) fn render(body: &MarkdownBody, base: Option<&str>) -> Rendered {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_SMART_PUNCTUATION;
    let text = body.text.as_str();
    let base_url = base.map(url::Url::parse);
    let mut has_relative = false;
    let mut unresolved = Vec::new();
    let mut resolve = |dest: CowStr<'_>, offset: usize| -> String {
        if !is_relative(&dest) {
            return safe_url(dest).to_string();
        }
        has_relative = true;
        match &base_url {
            None => dest.to_string(),
            Some(Ok(b)) if b.join(&dest).is_ok() => {
                b.join(&dest).map(|u| u.to_string()).unwrap_or_default()
            }
            Some(_) => {
                let line = body.first_line + text[..offset].matches('\n').count();
                unresolved.push((line, dest.to_string()));
                dest.to_string()
            }
        }
    };
    let mut dropped_html = false;
    let events: Vec<Event> = Parser::new_ext(text, options)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Html(_) | Event::InlineHtml(_) => {
                dropped_html = true;
                None
            }
            Event::Start(Tag::HtmlBlock) | Event::End(TagEnd::HtmlBlock) => None,
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Some(Event::Start(Tag::Link {
                link_type,
                dest_url: resolve(dest_url, range.start).into(),
                title,
                id,
            })),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Some(Event::Start(Tag::Image {
                link_type,
                dest_url: resolve(dest_url, range.start).into(),
                title,
                id,
            })),
            other => Some(other),
        })
        .collect();

    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for event in &events {
        match event {
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                current.push_str(t)
            }
            Event::SoftBreak | Event::HardBreak => current.push(' '),
            Event::Start(Tag::Item) => {
                flush(&mut current, &mut paragraphs);
                current.push_str("- ");
            }
            Event::Start(Tag::TableCell) if !current.is_empty() => current.push_str(" | "),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::BlockQuote(_)
                | TagEnd::FootnoteDefinition,
            ) => flush(&mut current, &mut paragraphs),
            _ => {}
        }
    }
    flush(&mut current, &mut paragraphs);

    let mut html = String::with_capacity(text.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    Rendered {
        html: html.trim_end().to_string(),
        paragraphs,
        dropped_html,
        has_relative,
        unresolved,
    }
}

fn flush(current: &mut String, paragraphs: &mut Vec<String>) {
    let p = normalise(current);
    current.clear();
    if !p.is_empty() && p != "-" {
        paragraphs.push(p);
    }
}

/// Keeps web, mail and relative link targets; anything else (`javascript:`, `data:`…)
/// becomes `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let key = fold_key(&url);
    if !has_scheme(&key)
        || key.starts_with("https:")
        || key.starts_with("http:")
        || key.starts_with("mailto:")
    {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(text: &str) -> Draft {
        match parse(text) {
            Parsed::Article(d) => d,
            Parsed::NotArticle(r) => panic!("not an article: {r}"),
            Parsed::Invalid(e) => panic!("invalid: {e}"),
        }
    }

    fn invalid(text: &str) -> String {
        match parse(text) {
            Parsed::Invalid(e) => e,
            Parsed::Article(_) => panic!("parsed as an article:\n{text}"),
            Parsed::NotArticle(r) => panic!("skipped ({r}) instead of an error:\n{text}"),
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn front_matter_bombs_are_refused_in_linear_time() {
        let start = std::time::Instant::now();
        for (fence, front) in [
            ("---", format!("title: {}", "[".repeat(60_000))),
            ("---", format!("title: {}", "{a: ".repeat(15_000))),
            (
                "---",
                format!("title: x\nauthors:\n  {}", "- ".repeat(20_000)),
            ),
            ("---", format!("title: [a'{}", "[".repeat(30_000))),
            ("+++", format!("title = {}", "[".repeat(30_000))),
            ("+++", format!("title = {}", "{a = ".repeat(10_000))),
        ] {
            let e = invalid(&format!("{fence}\n{front}\n{fence}\nBody.\n"));
            assert!(e.contains("levels deep on line"), "{e}");
        }
        // The issue's bombs: refused (too large to be front matter) as fast.
        for front in [
            format!("title: {}", "[".repeat(100_000)),
            format!("title: {}", "{a: ".repeat(40_000)),
        ] {
            let e = invalid(&format!("---\n{front}\n---\nBody.\n"));
            assert!(e.contains("larger than 64 KB"), "{e}");
        }
        let big = format!("---\ntitle: a\nnote: {}\n---\nBody.\n", "x".repeat(70_000));
        assert!(invalid(&big).contains("larger than 64 KB"));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        // Ordinary brackets, quotes and apostrophes still parse.
        let a = article(
            "---\ntitle: \"It's [not] {nested}\"\nauthors: ['Ann O''Neil', \"Bo\"]\ndate: 2026-11-02\n---\nBody.\n",
        );
        assert_eq!(a.title.as_deref(), Some("It's [not] {nested}"));
    }

    #[test]
    fn yaml_and_toml_front_matter_give_the_same_article() {
        let yaml = "---\ntitle: \"Manas Air Base\"\nauthor: Aida Bekova\ndate: 2002-02-12\nissue: 2002-02-13\nsection: Analytical Articles\nurl: https://example.org/analyst/manas\nsummary: The base changes the calculus.\n---\n\nThe arrival of **coalition** aircraft.\n\nSecond paragraph.\n";
        let toml = "+++\r\ntitle = \"Manas Air Base\"\r\nauthor = \"Aida Bekova\"\r\ndate = 2002-02-12\r\nissue = \"2002-02-13\"\r\nsection = \"Analytical Articles\"\r\nurl = \"https://example.org/analyst/manas\"\r\nsummary = \"The base changes the calculus.\"\r\n+++\r\n\r\nThe arrival of **coalition** aircraft.\r\n\r\nSecond paragraph.\r\n";
        for text in [yaml, toml] {
            let a = article(text);
            assert_eq!(a.title.as_deref(), Some("Manas Air Base"));
            assert_eq!(a.authors, ["Aida Bekova"]);
            assert_eq!(a.date, d(2002, 2, 12));
            assert_eq!(a.issue.map(|i| i.date()), Some(d(2002, 2, 13)));
            assert_eq!(a.section.as_deref(), Some("Analytical Articles"));
            assert_eq!(a.url.as_deref(), Some("https://example.org/analyst/manas"));
            assert_eq!(a.summary.as_deref(), Some("The base changes the calculus."));
            assert_eq!(
                a.paragraphs,
                ["The arrival of coalition aircraft.", "Second paragraph."]
            );
            assert_eq!(
                a.body_html,
                "<p>The arrival of <strong>coalition</strong> aircraft.</p>\n<p>Second paragraph.</p>"
            );
        }
    }

    #[test]
    fn authors_may_be_a_string_a_list_or_absent() {
        let cases: &[(&str, &[&str])] = &[
            ("author: Aida Bekova", &["Aida Bekova"]),
            (
                "author: Aida Bekova and Timur Rakhimov",
                &["Aida Bekova", "Timur Rakhimov"],
            ),
            (
                "authors: [Aida Bekova, Rəşad Əliyev]",
                &["Aida Bekova", "Rəşad Əliyev"],
            ),
            (
                "authors:\n  - Гульнара Исмаилова\n  - Timur Rakhimov",
                &["Гульнара Исмаилова", "Timur Rakhimov"],
            ),
            ("authors: Aida Bekova", &["Aida Bekova"]),
            ("author:", &[]),
            ("section: News Digest", &[]),
        ];
        for (line, want) in cases {
            let a = article(&format!(
                "---\ntitle: T\ndate: 2002-02-12\n{line}\n---\nBody.\n"
            ));
            assert_eq!(a.authors, *want, "{line}");
        }
    }

    #[test]
    fn dates_accept_date_times_and_toml_dates() {
        let cases = [
            "---\ndate: 2002-02-12T09:30:00Z\n---\nB\n",
            "---\ndate: '2002-02-12 09:30'\n---\nB\n",
            "+++\ndate = 2002-02-12T09:30:00+04:00\n+++\nB\n",
            "+++\ndate = 2002-02-12\n+++\nB\n",
        ];
        for text in cases {
            assert_eq!(article(text).date, d(2002, 2, 12), "{text}");
        }
    }

    /// (front matter, words the error must contain)
    #[test]
    fn invalid_front_matter_errors_name_the_field_and_the_fix() {
        let cases: &[(&str, &[&str])] = &[
            (
                "---\ntitle: T\n---\nBody\n",
                &["no `date`", "date: 2002-02-12"],
            ),
            (
                "+++\ntitle = \"T\"\n+++\nBody\n",
                &["no `date`", "date = 2002-02-12"],
            ),
            (
                "---\ndate: 12/02/2002\n---\nBody\n",
                &["`date`", "12/02/2002", "YYYY-MM-DD"],
            ),
            (
                "---\ndate: 2002-02-30\n---\nBody\n",
                &["`date`", "2002-02-30"],
            ),
            (
                "---\ndate: 2002-02-12\nissue: next week\n---\nBody\n",
                &["`issue`", "next week"],
            ),
            (
                "---\ndate: [2002-02-12]\n---\nBody\n",
                &["`date`", "must be a date"],
            ),
            (
                "---\ndate: 2002-02-12\ntitle: [a, b]\n---\nBody\n",
                &["`title`", "must be text"],
            ),
            (
                "---\ndate: 2002-02-12\nauthor: {name: x}\n---\nBody\n",
                &["`author`", "list of names"],
            ),
            (
                "---\ndate: 2002-02-12\nauthor: A\nauthors: [B]\n---\nBody\n",
                &["both `author` and `authors`"],
            ),
            (
                "---\ndate: 2002-02-12\nurl: /relative/path\n---\nBody\n",
                &["`url`", "https://"],
            ),
            (
                "---\ndate: 2002-02-12\ndraft: maybe\n---\nBody\n",
                &["`draft`"],
            ),
            (
                "---\ndate: 2002-02-12\ntitle: \"unclosed\n---\nBody\n",
                &["invalid YAML"],
            ),
            ("+++\ndate = \n+++\nBody\n", &["invalid TOML"]),
            (
                "---\ndate: 2002-02-12\ntitle: T\n\nBody without a closing fence\n",
                &["never closed", "closing `---`"],
            ),
            (
                "---\n- a list\n- not a map\n---\nBody\n",
                &["not a list of `key: value`"],
            ),
        ];
        for (text, words) in cases {
            let err = invalid(text);
            for w in *words {
                assert!(err.contains(w), "error for {text:?} lacks {w:?}: {err}");
            }
        }
    }

    #[test]
    fn markdown_without_front_matter_is_skipped_with_a_hint() {
        match parse("# Notes\n\nIdeas for the next issue.\n") {
            Parsed::NotArticle(r) => assert!(r.contains("did you forget to add `---`"), "{r}"),
            _ => panic!("expected a skip"),
        }
    }

    #[test]
    fn drafts_and_empty_bodies_are_skipped() {
        assert!(
            matches!(parse("---\ndate: 2002-02-12\ndraft: true\n---\nBody\n"), Parsed::NotArticle(r) if r.contains("draft"))
        );
        assert!(
            matches!(parse("---\ndate: 2002-02-12\n---\n\n<!-- nothing -->\n"), Parsed::NotArticle(r) if r.contains("no body"))
        );
        assert!(matches!(
            parse("---\ndate: 2002-02-12\ndraft: false\n---\nBody\n"),
            Parsed::Article(_)
        ));
    }

    #[test]
    fn raw_html_never_reaches_the_output() {
        let a = article("---\ndate: 2002-02-12\n---\n<script>alert('x')</script>\n\nText with <b>bold</b> and <img src=x onerror=alert(1)>.\n\n<div onclick=\"evil()\">\nblock\n</div>\n");
        for bad in ["<script", "<b>", "<img", "onerror", "<div", "onclick"] {
            assert!(!a.body_html.contains(bad), "{bad} in {}", a.body_html);
        }
        assert_eq!(a.paragraphs, ["Text with bold and ."]);
        assert!(a.warnings.iter().any(|w| w.contains("raw HTML")));
    }

    #[test]
    fn unsafe_link_schemes_are_neutralised() {
        let a = article("---\ndate: 2002-02-12\n---\n[ok](https://a.example/x) [mail](mailto:e@a.example) [rel](/x) [bad](javascript:alert(1)) [bad2](JaVaScRiPt:x) ![img](data:image/png;base64,AAA)\n");
        assert!(a.body_html.contains("href=\"https://a.example/x\""));
        assert!(a.body_html.contains("href=\"mailto:e@a.example\""));
        assert!(a.body_html.contains("href=\"/x\""));
        assert!(
            !a.body_html.to_lowercase().contains("javascript"),
            "{}",
            a.body_html
        );
        assert!(!a.body_html.contains("data:"), "{}", a.body_html);
    }

    #[test]
    fn plain_text_keeps_headings_lists_and_quotes_as_paragraphs() {
        let a = article("---\ndate: 2002-02-12\n---\n## Background\n\nFirst *para*\nwrapped.\n\n- one\n- two `code`\n\n> quoted \"text\"\n");
        assert_eq!(
            a.paragraphs,
            [
                "Background",
                "First para wrapped.",
                "- one",
                "- two code",
                "quoted \u{201C}text\u{201D}"
            ]
        );
    }

    #[test]
    fn near_miss_keys_are_warned_about_and_other_keys_ignored() {
        let a = article(
            "---\ndate: 2002-02-12\nautor: Aida Bekova\ntags: [x]\nlayout: post\n---\nBody\n",
        );
        assert!(a.authors.is_empty());
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(a.warnings[0].contains("`autor`") && a.warnings[0].contains("`author`"));
    }

    #[test]
    fn empty_title_means_no_title() {
        let a = article("---\ndate: 2002-02-12\ntitle: \"  \"\n---\nBody\n");
        assert_eq!(a.title, None);
    }

    #[test]
    fn front_matter_detection() {
        assert!(has_front_matter("---\r\ntitle: x\r\n---\r\n"));
        assert!(has_front_matter("+++\n"));
        assert!(!has_front_matter("Wednesday, 27 February 2002\n---\n"));
    }

    // YAML front matter on tricky input, pinned as the YAML crate reads it (YAML 1.2 core
    // schema for booleans and nulls, no merge keys, duplicate keys refused). A change of YAML
    // crate must leave every one of these as it is: they are what an editor sees.

    /// What the reader sees for one front matter: `get` of the article, or the skip reason
    /// or error.
    fn seen(front: &str, get: fn(&Draft) -> String) -> String {
        match parse(&format!("---\n{front}\n---\nBody.\n")) {
            Parsed::Article(d) => get(&d),
            Parsed::NotArticle(r) => format!("skipped: {r}"),
            Parsed::Invalid(e) => format!("invalid: {e}"),
        }
    }

    fn title(d: &Draft) -> String {
        d.title.clone().unwrap_or_else(|| "<no title>".to_string())
    }

    fn summary(d: &Draft) -> String {
        d.summary
            .clone()
            .unwrap_or_else(|| "<no summary>".to_string())
    }

    fn authors(d: &Draft) -> String {
        d.authors.join(" | ")
    }

    fn dates(d: &Draft) -> String {
        match d.issue {
            Some(i) => format!("{} issue {}", d.date, i.date()),
            None => d.date.to_string(),
        }
    }

    fn check(cases: &[(&str, &str)], get: fn(&Draft) -> String) {
        for (front, want) in cases {
            assert_eq!(seen(front, get), *want, "front matter:\n{front}");
        }
    }

    /// The YAML value of `key`, before any field is checked or normalised.
    fn raw(front: &str, key: &str) -> String {
        let map = read_map(Syntax::Yaml, front).expect("valid YAML");
        match map.get(key) {
            Some(Value::Text(s)) => s.clone(),
            other => panic!("{key} is not text: {other:?}"),
        }
    }

    #[test]
    fn yaml_dates_quoted_or_not_are_the_same_day() {
        check(
            &[
                ("date: 2002-02-12", "2002-02-12"),
                ("date: \"2002-02-12\"", "2002-02-12"),
                ("date: '2002-02-12'", "2002-02-12"),
                ("date: 2002-02-12 09:30:00", "2002-02-12"),
                ("date: 2002-02-12t09:30:00z", "2002-02-12"),
                ("date: !!timestamp 2002-02-12", "2002-02-12"),
                ("date: 2002-2-3", "2002-02-03"),
                ("date: 2002-02-12\nissue: 2002-02-13", "2002-02-12 issue 2002-02-13"),
                ("date: 2002-02-12\nissue: \"2002-02-13\"", "2002-02-12 issue 2002-02-13"),
                (
                    "date: 20020212",
                    "invalid: front matter field `date`: `20020212` is not a date; write it as YYYY-MM-DD, like `date: 2002-02-13`",
                ),
                (
                    "date: ~",
                    "invalid: front matter has no `date`; add the article's date, like `date: 2002-02-12`",
                ),
            ],
            dates,
        );
    }

    #[test]
    fn yaml_numbers_as_titles_read_as_the_number_yaml_sees() {
        check(
            &[
                ("date: 2002-02-12\ntitle: 2024", "2024"),
                ("date: 2002-02-12\ntitle: \"2024\"", "2024"),
                ("date: 2002-02-12\ntitle: !!str 2024", "2024"),
                // Numbers are read as numbers, then written back: the source spelling is lost.
                ("date: 2002-02-12\ntitle: 3.50", "3.5"),
                ("date: 2002-02-12\ntitle: 1.0", "1.0"),
                ("date: 2002-02-12\ntitle: 1e3", "1000.0"),
                ("date: 2002-02-12\ntitle: 1.5e-7", "1.5e-7"),
                ("date: 2002-02-12\ntitle: .5", "0.5"),
                ("date: 2002-02-12\ntitle: +1", "1"),
                ("date: 2002-02-12\ntitle: -0", "0"),
                ("date: 2002-02-12\ntitle: 0x1F", "31"),
                ("date: 2002-02-12\ntitle: 0o17", "15"),
                ("date: 2002-02-12\ntitle: 0b101", "5"),
                ("date: 2002-02-12\ntitle: .inf", ".inf"),
                ("date: 2002-02-12\ntitle: -.Inf", "-.inf"),
                ("date: 2002-02-12\ntitle: .nan", ".nan"),
                ("date: 2002-02-12\ntitle: 12345678901234567890", "12345678901234567890"),
                // YAML 1.1 spellings that YAML 1.2 reads as text.
                ("date: 2002-02-12\ntitle: 017", "017"),
                ("date: 2002-02-12\ntitle: 1_000", "1_000"),
                ("date: 2002-02-12\ntitle: 12:30", "12:30"),
                (
                    "date: 2002-02-12\ntitle: 123456789012345678901234",
                    "invalid: invalid YAML front matter: title: invalid type: integer `123456789012345678901234` as u128, expected any YAML value at line 2 column 8",
                ),
                (
                    "date: 2002-02-12\ntitle: -9223372036854775809",
                    "invalid: invalid YAML front matter: title: invalid type: integer `-9223372036854775809` as i128, expected any YAML value at line 2 column 8",
                ),
            ],
            title,
        );
        check(
            &[("date: 2002-02-12\nauthors: [Aida, 42]", "Aida | 42")],
            authors,
        );
    }

    #[test]
    fn yaml_booleans_follow_yaml_1_2_so_yes_is_not_true() {
        let not_bool = "invalid: front matter field `draft` must be true or false, not text";
        let draft = "skipped: a draft (`draft` is true in its front matter)";
        check(
            &[
                ("date: 2002-02-12\ndraft: true", draft),
                ("date: 2002-02-12\ndraft: True", draft),
                ("date: 2002-02-12\ndraft: TRUE", draft),
                ("date: 2002-02-12\ndraft: !!bool true", draft),
                ("date: 2002-02-12\ndraft: false", "2002-02-12"),
                ("date: 2002-02-12\ndraft: ~", "2002-02-12"),
                ("date: 2002-02-12\ndraft:", "2002-02-12"),
                // YAML 1.1 booleans are text in YAML 1.2, and so an error, not a draft.
                ("date: 2002-02-12\ndraft: yes", not_bool),
                ("date: 2002-02-12\ndraft: Yes", not_bool),
                ("date: 2002-02-12\ndraft: y", not_bool),
                ("date: 2002-02-12\ndraft: on", not_bool),
                ("date: 2002-02-12\ndraft: no", not_bool),
                ("date: 2002-02-12\ndraft: off", not_bool),
                ("date: 2002-02-12\ndraft: tRUE", not_bool),
                ("date: 2002-02-12\ndraft: \"true\"", not_bool),
                ("date: 2002-02-12\ndraft: 1", not_bool),
                ("date: 2002-02-12\ndraft: 0", not_bool),
                (
                    "date: 2002-02-12\ndraft: !!bool yes",
                    "invalid: invalid YAML front matter: draft: invalid value: string \"yes\", expected a boolean at line 2 column 8",
                ),
            ],
            dates,
        );
        check(
            &[
                ("date: 2002-02-12\ntitle: yes", "yes"),
                ("date: 2002-02-12\ntitle: no", "no"),
                ("date: 2002-02-12\ntitle: on", "on"),
                (
                    "date: 2002-02-12\ntitle: true",
                    "invalid: front matter field `title` must be text, not true/false; write it like `title: …`",
                ),
            ],
            title,
        );
    }

    #[test]
    fn yaml_nulls_are_absent_fields() {
        check(
            &[
                ("date: 2002-02-12\ntitle: ~", "<no title>"),
                ("date: 2002-02-12\ntitle: null", "<no title>"),
                ("date: 2002-02-12\ntitle: Null", "<no title>"),
                ("date: 2002-02-12\ntitle: NULL", "<no title>"),
                ("date: 2002-02-12\ntitle:", "<no title>"),
                ("date: 2002-02-12\ntitle: nULL", "nULL"),
                ("date: 2002-02-12\ntitle: \"null\"", "null"),
                ("date: 2002-02-12\ntitle: \"\\e\"", "<no title>"),
            ],
            title,
        );
        check(
            &[
                ("date: 2002-02-12\nauthor: ~", ""),
                ("date: 2002-02-12\nauthors: []", ""),
                (
                    "date: 2002-02-12\nauthors: [Aida, ~]",
                    "invalid: front matter field `authors` must be a name or a list of names, not a list holding empty; write it like `authors: Aida Bekova` or `authors: [\"Aida Bekova\", \"Timur Rakhimov\"]`",
                ),
            ],
            authors,
        );
        let no_date =
            "invalid: front matter has no `date`; add the article's date, like `date: 2002-02-12`";
        check(
            &[("~", no_date), ("# only a comment", no_date), ("", no_date)],
            dates,
        );
    }

    #[test]
    fn yaml_multi_line_strings() {
        let literal = "date: 2002-02-12\nsummary: |\n  Line one\n  line two.\n\n  After a blank.";
        let folded =
            "date: 2002-02-12\nsummary: >\n  Folded one\n  folded two.\n\n  New paragraph.";
        assert_eq!(
            raw(literal, "summary"),
            "Line one\nline two.\n\nAfter a blank."
        );
        assert_eq!(
            raw(folded, "summary"),
            "Folded one folded two.\nNew paragraph."
        );
        assert_eq!(
            raw("summary: |-\n  keep\n    indented\n", "summary"),
            "keep\n  indented"
        );
        assert_eq!(
            raw("summary: >+\n  trailing\n\n", "summary"),
            "trailing\n\n"
        );
        assert_eq!(raw("summary: |\n  clip\n\n", "summary"), "clip\n");
        check(
            &[
                (literal, "Line one line two. After a blank."),
                (folded, "Folded one folded two. New paragraph."),
                (
                    "date: 2002-02-12\nsummary: |-\n  keep\n    indented",
                    "keep indented",
                ),
                ("date: 2002-02-12\nsummary: >+\n  trailing\n\n", "trailing"),
                (
                    "date: 2002-02-12\nsummary: plain\n  continued\n  lines",
                    "plain continued lines",
                ),
                (
                    "date: 2002-02-12\nsummary: \"double\n  quoted\\nescape \\u0418 \\t tab\"",
                    "double quoted escape И tab",
                ),
                (
                    "date: 2002-02-12\nsummary: 'single ''quote''\n  folded'",
                    "single 'quote' folded",
                ),
                ("date: 2002-02-12\nsummary: '\\n stays'", "\\n stays"),
            ],
            summary,
        );
        check(
            &[(
                "date: 2002-02-12\ntitle: |\n  Title\n  on two lines",
                "Title on two lines",
            )],
            title,
        );
    }

    #[test]
    fn yaml_author_lists() {
        let holding = |what: &str| {
            format!("invalid: front matter field `authors` must be a name or a list of names, not {what}; write it like `authors: Aida Bekova` or `authors: [\"Aida Bekova\", \"Timur Rakhimov\"]`")
        };
        let cases = [
            ("date: 2002-02-12\nauthors: [Aida Bekova, Timur Rakhimov]", "Aida Bekova | Timur Rakhimov".to_string()),
            ("date: 2002-02-12\nauthors:\n- Aida Bekova\n- Timur Rakhimov", "Aida Bekova | Timur Rakhimov".to_string()),
            ("date: 2002-02-12\nauthors: Aida Bekova, Timur Rakhimov", "Aida Bekova | Timur Rakhimov".to_string()),
            ("date: 2002-02-12\nauthors:\n  - Aida Bekova\n  - \"\"", "Aida Bekova".to_string()),
            ("date: 2002-02-12\nauthors:\n  - Aida Bekova\n  -\n  - \"\"", holding("a list holding empty")),
            ("date: 2002-02-12\nauthors: [Aida, 42, true]", holding("a list holding true/false")),
            ("date: 2002-02-12\nauthors: [[Aida]]", holding("a list holding a list")),
            ("date: 2002-02-12\nauthors: {}", holding("a nested table")),
            (
                "date: 2002-02-12\nauthor: - Aida",
                "invalid: invalid YAML front matter: block sequence entries are not allowed in this context at line 2 column 9".to_string(),
            ),
        ];
        for (front, want) in cases {
            assert_eq!(seen(front, authors), want, "front matter:\n{front}");
        }
    }

    #[test]
    fn yaml_non_ascii_values_and_keys() {
        let front = "date: 2002-02-12\ntitle: Кыргызстан и база «Манас»\nauthor: Гульнара Исмаилова\nsection: Новости\nзаголовок: Манас\nautor: X";
        let a = article(&format!("---\n{front}\n---\nBody.\n"));
        assert_eq!(a.title.as_deref(), Some("Кыргызстан и база «Манас»"));
        assert_eq!(a.authors, ["Гульнара Исмаилова"]);
        assert_eq!(a.section.as_deref(), Some("Новости"));
        assert_eq!(
            a.warnings,
            ["front matter field `autor` is not one fortnight reads; did you mean `author`?"]
        );
        check(
            &[
                ("date: 2002-02-12\n\"title\": \"\\u041c\\u0430\\u043d\\u0430\\u0441\"", "Манас"),
                ("date: 2002-02-12\ntitle: \u{FEFF}bom", "bom"),
                ("date: 2002-02-12\ntitle: \"\\x01 control\"", "control"),
                (
                    "date: 2002-02-12\ntitle: \"\\ud800\"",
                    "invalid: invalid YAML front matter: found invalid Unicode character escape code at line 2 column 11, while parsing a quoted scalar at line 2 column 8",
                ),
            ],
            title,
        );
    }

    #[test]
    fn yaml_tabs_separate_but_do_not_indent() {
        check(
            &[
                ("date: 2002-02-12\ntitle:\tTab after colon", "Tab after colon"),
                ("date: 2002-02-12\ntitle: a\tb\t c", "a b c"),
                ("date: 2002-02-12\ntitle: trailing tab\t", "trailing tab"),
                ("date: 2002-02-12\ntitle: \"tab\tin quotes\"", "tab in quotes"),
                ("date: 2002-02-12\r\ntitle: CR", "CR"),
                (
                    "date: 2002-02-12\n\ttitle: T",
                    "invalid: invalid YAML front matter: found a tab character that violates indentation at line 2 column 1, while scanning a plain scalar at line 1 column 7",
                ),
                (
                    "date: 2002-02-12\nauthors:\n\t- Aida",
                    "invalid: invalid YAML front matter: found character that cannot start any token at line 3 column 1, while scanning for the next token",
                ),
            ],
            title,
        );
    }

    #[test]
    fn yaml_duplicate_keys_are_an_error() {
        check(
            &[
                (
                    "date: 2002-02-12\ntitle: A\ntitle: B",
                    "invalid: invalid YAML front matter: duplicate entry with key \"title\"",
                ),
                (
                    "date: 2002-02-12\ndate: 2002-02-13",
                    "invalid: invalid YAML front matter: duplicate entry with key \"date\"",
                ),
                // Keys differing in case are different keys.
                ("date: 2002-02-12\nTitle: A\ntitle: B", "B"),
            ],
            title,
        );
    }

    #[test]
    fn yaml_anchors_and_aliases_are_expanded_but_merge_keys_are_not() {
        check(
            &[(
                "date: 2002-02-12\nauthor: &a Aida Bekova\nsummary: *a",
                "Aida Bekova",
            )],
            summary,
        );
        check(
            &[(
                "date: 2002-02-12\nnames: &n [Aida, Timur]\nauthors: *n",
                "Aida | Timur",
            )],
            authors,
        );
        check(
            &[(
                "date: &d 2002-02-12\nissue: *d",
                "2002-02-12 issue 2002-02-12",
            )],
            dates,
        );
        check(
            &[
                (
                    "date: 2002-02-12\nbase: &b {title: Merged}\n<<: *b",
                    "<no title>",
                ),
                ("date: 2002-02-12\n<<: {title: Merged}", "<no title>"),
                (
                    "date: 2002-02-12\ntitle: *undefined",
                    "invalid: invalid YAML front matter: unknown anchor at line 2 column 8",
                ),
            ],
            title,
        );
    }

    #[test]
    fn yaml_tags_and_odd_keys() {
        check(
            &[
                ("date: 2002-02-12\ntitle: !custom Tagged", "Tagged"),
                ("date: 2002-02-12\n2024: x\ntrue: y\n~: z\n1.5: w\n[a]: x", "<no title>"),
                ("date: 2002-02-12\n? complex\n: key", "<no title>"),
                ("date: 2002-02-12\ntitle: A # comment", "A"),
                ("date: 2002-02-12\ntitle: A#b", "A#b"),
                ("date: 2002-02-12\n...", "<no title>"),
                ("\ndate: 2002-02-12\n\n\n", "<no title>"),
                (" date: 2002-02-12", "<no title>"),
                (
                    "date: 2002-02-12\ntitle: !!int x",
                    "invalid: invalid YAML front matter: title: invalid value: string \"x\", expected an integer at line 2 column 8",
                ),
                (
                    "date: 2002-02-12\ntitle: !!float x",
                    "invalid: invalid YAML front matter: title: invalid value: string \"x\", expected a float at line 2 column 8",
                ),
            ],
            title,
        );
    }

    /// The whole error text an editor sees for a front matter that is not YAML.
    #[test]
    fn broken_yaml_error_messages() {
        let not_map = "invalid: the YAML front matter is not a list of `key: value` lines";
        check(
            &[
                (
                    "date: 2002-02-12\ntitle: \"unclosed",
                    "invalid: invalid YAML front matter: found unexpected end of stream at line 2 column 17, while scanning a quoted scalar at line 2 column 8",
                ),
                (
                    "date: 2002-02-12\ntitle: [a, b",
                    "invalid: invalid YAML front matter: did not find expected ',' or ']' at line 3 column 1, while parsing a flow sequence at line 2 column 8",
                ),
                (
                    "date: 2002-02-12\ntitle: {a",
                    "invalid: invalid YAML front matter: did not find expected ',' or '}' at line 3 column 1, while parsing a flow mapping at line 2 column 8",
                ),
                (
                    "date: 2002-02-12\ntitle: a\n  b: c",
                    "invalid: invalid YAML front matter: mapping values are not allowed in this context at line 3 column 4",
                ),
                (
                    "date: 2002-02-12\ntitle: a: b",
                    "invalid: invalid YAML front matter: mapping values are not allowed in this context at line 2 column 9",
                ),
                (
                    "date: 2002-02-12\n  title: x",
                    "invalid: invalid YAML front matter: mapping values are not allowed in this context at line 2 column 8",
                ),
                (
                    "date: 2002-02-12\n: no key",
                    "invalid: invalid YAML front matter: did not find expected key at line 2 column 1, while parsing a block mapping",
                ),
                (
                    "date: 2002-02-12\ntitle: \"A\" trailing",
                    "invalid: invalid YAML front matter: did not find expected key at line 2 column 12, while parsing a block mapping",
                ),
                (
                    "date: 2002-02-12\ntitle: @at",
                    "invalid: invalid YAML front matter: found character that cannot start any token at line 2 column 8, while scanning for the next token",
                ),
                (
                    "date: 2002-02-12\ntitle: `tick",
                    "invalid: invalid YAML front matter: found character that cannot start any token at line 2 column 8, while scanning for the next token",
                ),
                (
                    "date: 2002-02-12\n--- x",
                    "invalid: invalid YAML front matter: deserializing from YAML containing more than one document is not supported",
                ),
                ("just a string", not_map),
                ("42", not_map),
                ("[a, b]", not_map),
                ("date:2002-02-12", not_map),
            ],
            title,
        );
    }
}
