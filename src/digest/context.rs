//! The template context: what an editor's templates can see, built from config and issue.
//!
//! Everything here is plain data (serde_json values) in a fixed, documented shape (see the
//! README's "Template context"): `publication`, `issue`, `sections` (configured order, empty
//! sections omitted), a flat `articles` list, `preheader`, `subject`, `today`, `body`,
//! `lang`, `dir`, `words` (the built-in templates' words in the edition's language), and
//! per copy `subscriber` and `unsubscribe_url`. Ordering is deterministic (sections by the
//! configured order then by name; articles by date, title, file) so output is reproducible.
//! It renders nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use crate::articles::{join_names, Article, Issue};
use crate::config::{BodyMode, Config};
use crate::subscribers::Subscriber;

use super::filters::{format_date, DEFAULT_DATE_FORMAT};

/// Words read per minute for `reading_time_minutes`.
const WORDS_PER_MINUTE: usize = 200;

/// The top-level keys of the context (for error messages and docs).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "publication",
    "issue",
    "sections",
    "articles",
    "subscriber",
    "unsubscribe_url",
    "preheader",
    "subject",
    "today",
    "body",
    "lang",
    "dir",
    "words",
];
/// The keys of each entry of `sections`.
pub const SECTION_KEYS: &[&str] = &["name", "articles"];
/// The keys of each article.
pub const ARTICLE_KEYS: &[&str] = &[
    "index",
    "title",
    "url",
    "authors",
    "author",
    "section",
    "date",
    "lead",
    "summary",
    "teaser",
    "paragraphs",
    "body_html",
    "links",
    "reading_time_minutes",
    "read_count",
    "word_count",
];
/// Keys of the other objects, as `object.key` paths.
pub const OTHER_PATHS: &[&str] = &[
    "publication.name",
    "publication.base_url",
    "publication.postal_address",
    "issue.date",
    "issue.number",
    "issue.title",
    "issue.article_count",
    "subscriber.email",
    "subscriber.name",
    "subscriber.attrs",
];

/// True for `http:`/`https:` URLs (the only ones a link may point to, with `mailto:`).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().get(..8).unwrap_or("").to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The issue number on the grid anchored at `first_issue` = `first_issue_number`.
pub fn issue_number(config: &Config, date: NaiveDate) -> Option<u64> {
    let first_number = config.publication.first_issue_number?;
    let anchor = config.publication.first_issue?.date();
    let days = (date - anchor).num_days();
    if days < 0 {
        return None;
    }
    let cadence = i64::from(config.publication.cadence_days.max(1));
    Some(u64::from(first_number) + (days / cadence) as u64)
}

fn human_date(config: &Config, date: NaiveDate) -> String {
    format_date(
        &date.format("%Y-%m-%d").to_string(),
        DEFAULT_DATE_FORMAT,
        config.language(),
    )
    .expect("the default date format is valid")
}

/// The articles of an issue grouped into sections: configured order first, other sections
/// alphabetically, articles without a section last (name `null`); each section's articles
/// by date, title, file.
pub fn ordered_sections<'a>(
    config: &Config,
    issue: &'a Issue,
) -> Vec<(Option<String>, Vec<&'a Article>)> {
    let mut by_section: BTreeMap<Option<String>, Vec<&Article>> = BTreeMap::new();
    for a in &issue.articles {
        let section = a
            .section
            .as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        by_section.entry(section).or_default().push(a);
    }
    for list in by_section.values_mut() {
        list.sort_by(|a, b| (a.date, &a.title, &a.file).cmp(&(b.date, &b.title, &b.file)));
    }
    let mut out = Vec::new();
    for name in &config.publication.sections {
        let key = Some(name.trim().to_string());
        if let Some(list) = by_section.remove(&key) {
            out.push((key, list));
        }
    }
    let no_section = by_section.remove(&None);
    // BTreeMap order is alphabetical for the remaining named sections.
    out.extend(by_section);
    if let Some(list) = no_section {
        out.push((None, list));
    }
    out
}

fn article_value(config: &Config, a: &Article, index: usize) -> Value {
    let base_url = safe_base_url(config);
    let url = if is_web_url(&a.url) {
        a.url.trim().to_string()
    } else {
        base_url
    };
    let words = if a.word_count > 0 {
        a.word_count
    } else {
        a.paragraphs
            .iter()
            .map(|p| p.split_whitespace().count())
            .sum()
    };
    let minutes = words.div_ceil(WORDS_PER_MINUTE).max(1);
    json!({
        "index": index,
        "title": a.title,
        "url": url,
        "authors": a.authors,
        "author": join_names(&a.authors),
        "section": a.section,
        "date": a.date.format("%Y-%m-%d").to_string(),
        "lead": a.lead,
        "summary": a.summary,
        "teaser": teaser(a.summary.as_deref(), &a.lead),
        "paragraphs": a.paragraphs,
        "body_html": a.body_html,
        "links": super::html::links_in_fragment(&a.body_html),
        "reading_time_minutes": minutes,
        "read_count": a.read_count,
        "word_count": words,
    })
}

fn safe_base_url(config: &Config) -> String {
    let b = config.publication.base_url.trim();
    if is_web_url(b) {
        b.to_string()
    } else {
        String::new()
    }
}

/// The shared part of the context (everything but `subscriber`, `unsubscribe_url`,
/// `preheader` and `subject`, which the renderer adds).
pub fn base_context(config: &Config, issue: &Issue, now: DateTime<Utc>) -> Map<String, Value> {
    let date = issue.date.date();
    let number = issue_number(config, date);
    let words = config.words();
    let title = match number {
        Some(n) => format!("{} {n} · {}", words.get("issue"), human_date(config, date)),
        None => format!("{} {}", words.get("issue_of"), human_date(config, date)),
    };
    let mut index = 0;
    let mut flat = Vec::new();
    let sections: Vec<Value> = ordered_sections(config, issue)
        .into_iter()
        .map(|(name, articles)| {
            let articles: Vec<Value> = articles
                .into_iter()
                .map(|a| {
                    index += 1;
                    let v = article_value(config, a, index);
                    flat.push(v.clone());
                    v
                })
                .collect();
            json!({ "name": name, "articles": articles })
        })
        .collect();
    let mut m = Map::new();
    m.insert(
        "publication".into(),
        json!({
            "name": config.publication.name,
            "base_url": safe_base_url(config),
            "postal_address": config.sender.postal_address,
        }),
    );
    m.insert(
        "issue".into(),
        json!({
            "date": issue.date.to_string(),
            "number": number,
            "title": title,
            "article_count": flat.len(),
        }),
    );
    let language = config.language();
    m.insert("lang".into(), Value::String(language.code().into()));
    m.insert("dir".into(), Value::String(language.dir().into()));
    m.insert(
        "words".into(),
        Value::Object(
            words
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        ),
    );
    m.insert("sections".into(), Value::Array(sections));
    m.insert("articles".into(), Value::Array(flat));
    m.insert(
        "today".into(),
        Value::String(now.date_naive().format("%Y-%m-%d").to_string()),
    );
    m.insert(
        "body".into(),
        Value::String(
            match config.digest.body {
                BodyMode::Lead => "lead",
                BodyMode::Full => "full",
            }
            .into(),
        ),
    );
    m
}

/// What a card shows of an article: its front-matter summary when it has one, else its
/// lead; a lead that ends mid-thought (a colon introducing a quote, a comma, a dash) is cut
/// back to its last full sentence, or ends with an ellipsis when it has none.
pub fn teaser(summary: Option<&str>, lead: &str) -> String {
    if let Some(s) = summary.map(str::trim).filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    let lead = lead.trim();
    let dangling = [':', ';', ',', '-', '–', '—'];
    if !lead.ends_with(dangling) {
        return lead.to_string();
    }
    // The end of the last full sentence: `.`, `!`, `?` or `…` (with closing quotes or
    // brackets) followed by a blank.
    let closers = ['"', '\'', '”', '’', '»', ')'];
    let mut cut = None;
    let chars: Vec<(usize, char)> = lead.char_indices().collect();
    for (n, (_, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        let mut end = n + 1;
        while chars.get(end).is_some_and(|(_, c)| closers.contains(c)) {
            end += 1;
        }
        if chars.get(end).is_some_and(|(_, c)| c.is_whitespace()) {
            cut = Some(chars.get(end).map_or(lead.len(), |(j, _)| *j));
        }
    }
    match cut {
        Some(end) => lead[..end].trim_end().to_string(),
        None => format!("{}…", lead.trim_end_matches(dangling).trim_end()),
    }
}

/// The default preheader: the first article's summary or lead, cut to about 20 words.
pub fn default_preheader(base: &Map<String, Value>) -> String {
    let first = base
        .get("articles")
        .and_then(|a| a.get(0))
        .map(|a| {
            a.get("summary")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| a.get("lead").and_then(Value::as_str))
                .unwrap_or("")
        })
        .unwrap_or("");
    super::filters::excerpt_words(first, 20)
}

/// A subscriber as the templates see it. `attr_names` are filled with "" when the
/// subscriber has no such column, so templates behave the same for every row.
pub fn subscriber_value(subscriber: &Subscriber, attr_names: &[String]) -> Value {
    let mut attrs: Map<String, Value> = subscriber
        .attrs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    for name in attr_names {
        attrs
            .entry(name.clone())
            .or_insert_with(|| Value::String(String::new()));
    }
    json!({
        "email": subscriber.email.as_str(),
        "name": subscriber.name,
        "attrs": attrs,
    })
}

#[cfg(test)]
mod teaser_tests {
    use super::teaser;

    #[test]
    fn the_summary_wins_and_a_dangling_lead_is_cut_at_its_last_sentence() {
        assert_eq!(teaser(Some(" A summary. "), "The lead."), "A summary.");
        assert_eq!(teaser(Some("  "), "The lead."), "The lead.");
        assert_eq!(
            teaser(None, "Ferries run again. The minister said:"),
            "Ferries run again."
        );
        assert_eq!(
            teaser(None, "\"They are back!\" said one. He added:"),
            "\"They are back!\" said one."
        );
        assert_eq!(teaser(None, "The minister said:"), "The minister said…");
        assert_eq!(
            teaser(None, "Version 2.5 is out, and"),
            "Version 2.5 is out, and"
        );
        assert_eq!(
            teaser(None, "Version 2.5 is out, said —"),
            "Version 2.5 is out, said…"
        );
    }
}
