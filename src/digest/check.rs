//! `fortnight check`: everything that would make a send fail or land badly, found beforehand.
//!
//! It renders both templates against the newest issue (or, when the articles cannot be
//! read, against the built-in sample issue, and says so), reports template errors with
//! file, line and cause chain, says whether copies are personalised by substitution or by
//! full renders, measures the HTML, looks for the visible unsubscribe link in both parts,
//! loads the subscriber list, and adds the message layer's deliverability findings. Any
//! error-level finding makes the command exit 2. It writes nothing.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::preview::{preview_keyring, unsubscribe_url};
use super::{Digest, RenderPath};
use crate::articles::{Catalog, Issue};
use crate::config::Config;
use crate::message::{deliverability_findings, Severity};
use crate::subscribers::{Status, SubscriberList};

/// Gmail clips messages larger than about 102 KB.
pub const HTML_LIMIT: usize = 100 * 1024;
/// The largest `<style>` block we keep in `<head>`.
pub const STYLE_LIMIT: usize = 16 * 1024;

/// How serious one line of the report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Note,
    Warning,
    Error,
}

/// The report of `check`.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub lines: Vec<(Level, String)>,
}

impl CheckReport {
    fn push(&mut self, level: Level, msg: impl Into<String>) {
        self.lines.push((level, msg.into()));
    }
    pub fn errors(&self) -> usize {
        self.lines
            .iter()
            .filter(|(l, _)| *l == Level::Error)
            .count()
    }
    pub fn warnings(&self) -> usize {
        self.lines
            .iter()
            .filter(|(l, _)| *l == Level::Warning)
            .count()
    }
    /// Whether a line at `level` contains `needle` (for tests and scripts).
    pub fn has(&self, level: Level, needle: &str) -> bool {
        self.lines
            .iter()
            .any(|(l, m)| *l == level && m.contains(needle))
    }
}

/// Runs the checks on a config, the newest issue (or why there is none) and the list.
pub fn check_report(
    config: &Config,
    issue: Result<&Issue, String>,
    list: Result<&SubscriberList, String>,
    now: DateTime<Utc>,
) -> CheckReport {
    let mut r = CheckReport::default();
    r.push(Level::Ok, format!("{} is valid", config.path.display()));

    let fixture;
    let issue = match issue {
        Ok(i) => {
            r.push(
                Level::Ok,
                format!(
                    "articles: the newest issue is {} with {} articles",
                    i.date,
                    i.articles.len()
                ),
            );
            i
        }
        Err(e) => {
            r.push(Level::Error, format!("articles: {e}"));
            r.push(
                Level::Note,
                "the templates are checked against the built-in sample issue instead",
            );
            fixture = super::fixture::sample_issue();
            &fixture
        }
    };

    match &list {
        Ok(l) => {
            let subscribed = l
                .subscribers
                .iter()
                .filter(|s| s.status == Status::Subscribed)
                .count();
            r.push(
                Level::Ok,
                format!(
                    "subscriber list {}: {} rows, {} subscribed",
                    config.subscribers_file().display(),
                    l.subscribers.len(),
                    subscribed
                ),
            );
        }
        Err(e) => r.push(
            Level::Error,
            format!(
                "subscriber list {}: {e}",
                config.subscribers_file().display()
            ),
        ),
    }

    let digest = match Digest::prepare(config, issue, now) {
        Ok(d) => d,
        Err(e) => {
            let mut msg = format!("templates: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n    caused by: {cause}"));
            }
            r.push(Level::Error, msg);
            return r;
        }
    };
    let customised = digest.customised_templates();
    r.push(
        Level::Ok,
        if customised.is_empty() {
            "templates: the default templates render".to_string()
        } else {
            format!(
                "templates render: {} (customised), the rest are the defaults",
                customised.join(", ")
            )
        },
    );
    match digest.path() {
        RenderPath::Fast => r.push(
            Level::Ok,
            "personalisation: fast path (rendered once, each copy is a substitution)",
        ),
        RenderPath::Full(reason) => r.push(
            Level::Note,
            format!("personalisation: full render for every copy (slower), because {reason}"),
        ),
    }

    let mut notes = Vec::new();
    let keyring = match preview_keyring(config, &mut notes) {
        Ok(k) => k,
        Err(e) => {
            r.push(Level::Error, format!("unsubscribe key: {e:#}"));
            return r;
        }
    };
    for n in notes {
        r.push(Level::Note, n);
    }
    let sample = crate::message::sample_subscriber(config).subscriber;
    if let Ok(l) = list {
        let missing: Vec<&String> = digest
            .attrs_used()
            .iter()
            .filter(|a| !l.extra_columns.contains(a))
            .collect();
        if !missing.is_empty() {
            r.push(
                Level::Warning,
                format!(
                    "the templates print subscriber.attrs.{} but the list has no such column (it renders empty)",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", subscriber.attrs.")
                ),
            );
        }
    }
    let url = unsubscribe_url(config, &keyring, &sample, &mut Vec::new());
    let rendered = match digest.render_for(&sample, &url) {
        Ok(x) => x,
        Err(e) => {
            r.push(Level::Error, format!("templates: {e:#}"));
            return r;
        }
    };

    let size = rendered.html.len();
    if size > HTML_LIMIT {
        r.push(
            Level::Warning,
            format!(
                "the HTML part is {:.0} KB: Gmail clips messages over about 102 KB (use `body = \"lead\"` or fewer articles)",
                size as f64 / 1024.0
            ),
        );
    } else {
        r.push(
            Level::Ok,
            format!(
                "the HTML part is {:.1} KB (under 100 KB)",
                size as f64 / 1024.0
            ),
        );
    }
    if let Some(rep) = digest.html_report() {
        if rep.head_style_bytes > STYLE_LIMIT {
            r.push(
                Level::Warning,
                format!(
                    "the <style> block kept in <head> is {} bytes; keep it under 16 KB (only media queries belong there)",
                    rep.head_style_bytes
                ),
            );
        }
        for removed in &rep.removed {
            r.push(
                Level::Warning,
                format!("removed from the HTML part: {removed}"),
            );
        }
        let visible_unsub = digest_links_visible_to(&rendered.html, &url);
        if visible_unsub {
            r.push(Level::Ok, "the HTML part has a visible unsubscribe link");
        } else {
            r.push(
                Level::Error,
                "the HTML part has no visible link to `{{ unsubscribe_url }}` (required in every message)",
            );
        }
    }
    if rendered.text.contains(&url) {
        r.push(Level::Ok, "the text part shows the unsubscribe URL");
    } else {
        r.push(
            Level::Error,
            "the text part does not show `{{ unsubscribe_url }}` (required in every message)",
        );
    }
    // The message layer's findings; the size and unsubscribe-link checks above already
    // cover (more strictly: a *visible* link) what its own versions of them say.
    for f in deliverability_findings(config, &rendered) {
        if f.message.contains("Gmail clips") || f.message.contains("shows no unsubscribe link") {
            continue;
        }
        r.push(
            match f.severity {
                Severity::Error => Level::Error,
                Severity::Warning => Level::Warning,
            },
            f.message,
        );
    }
    r
}

/// Whether the final HTML has a visible `<a>` with text pointing at `url`.
pub fn digest_links_visible_to(html: &str, url: &str) -> bool {
    let (_, report) = super::html::canonicalize(html, "\u{E000}unsubscribe_url\u{E001}");
    report
        .links
        .iter()
        .any(|l| l.href == url && l.visible && !l.text.trim().is_empty())
}

pub fn cmd_check(config: &Config, _args: &crate::cli::CheckArgs) -> Result<crate::Exit> {
    let catalog = Catalog::load(config).map_err(|e| format!("{e:#}"));
    let list = SubscriberList::load(&config.subscribers_file()).map_err(|e| format!("{e:#}"));
    let now = Utc::now();
    let mut report = match &catalog {
        Ok(c) => check_report(
            config,
            Ok(c.newest()),
            list.as_ref().map_err(Clone::clone),
            now,
        ),
        Err(e) => check_report(
            config,
            Err(e.clone()),
            list.as_ref().map_err(Clone::clone),
            now,
        ),
    };
    if let Ok(c) = &catalog {
        for w in &c.warnings {
            report.push(Level::Warning, format!("articles: {w}"));
        }
        for s in &c.skipped {
            report.push(
                Level::Warning,
                format!("articles: skipped {}: {}", s.file.display(), s.reason),
            );
        }
    }
    for (level, msg) in &report.lines {
        let tag = match level {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        println!("{tag}: {msg}");
    }
    let errors = report.errors();
    if errors > 0 {
        anyhow::bail!(
            "`fortnight check` found {errors} error(s) and {} warning(s); a send would be refused or go out broken",
            report.warnings()
        );
    }
    println!("check passed with {} warning(s)", report.warnings());
    Ok(crate::Exit::Success)
}
