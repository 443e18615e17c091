//! `check`: everything that would make a send fail or land badly, found beforehand.
//!
//! It renders the templates against the newest issue (or, when the articles cannot be read,
//! against the built-in sample issue, and says so), reports template errors with file, line
//! and cause chain, says whether copies are personalised by substitution or by full renders,
//! measures the HTML, looks for the visible unsubscribe link in both parts, loads the
//! subscriber list, and adds the message layer's deliverability findings. The result is a
//! [`CheckReport`]: one line per finding, each with its [`Severity`]; the caller decides
//! what an error-level line means for its exit code. It writes nothing.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};

use super::preview::{preview_keyring, unsubscribe_url_or_placeholder};
use crate::articles::{Catalog, Issue};
use crate::base::plural;
use crate::config::Config;
use crate::digest::html::digest_links_visible_to;
use crate::digest::{Digest, RenderPath, Rendered};
use crate::message::{
    choose_encoding, deliverability_findings, FindingKind, Severity, HTML_CLIP_BYTES,
};
use crate::subscribers::{Status, SubscriberList};

/// The largest `<style>` block we keep in `<head>`.
const STYLE_LIMIT: usize = 16 * 1024;

/// The report of `check`: one line per finding, in the order they were found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub lines: Vec<(Severity, String)>,
}

impl CheckReport {
    /// Adds a finding; one already reported is not repeated.
    fn push(&mut self, level: Severity, msg: impl Into<String>) {
        let line = (level, msg.into());
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }

    fn count(&self, level: Severity) -> usize {
        self.lines.iter().filter(|(l, _)| *l == level).count()
    }

    /// How many error lines: a send would be refused or go out broken.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }
}

/// Reads the articles and the list of `config` and checks everything a send depends on;
/// the articles folder's warnings and skipped files end the report.
/// `today` picks the issue a send would take (the newest dated on or before it).
pub fn check(config: &Config, now: DateTime<Utc>, today: NaiveDate) -> CheckReport {
    let catalog = Catalog::load(config).map_err(|e| format!("{e:#}"));
    let list = SubscriberList::load(&config.subscribers_file()).map_err(|e| format!("{e:#}"));
    let current = catalog
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|c| c.select(None, today).map_err(|e| format!("{e:#}")));
    let mut report = check_report(config, current, list.as_ref().map_err(Clone::clone), now);
    if let Ok(c) = &catalog {
        upcoming_lines(&mut report, config, c, today);
        for w in &c.warnings {
            report.push(Severity::Warning, format!("articles: {w}"));
        }
        for s in &c.skipped {
            report.push(
                Severity::Warning,
                format!("articles: skipped {}: {}", s.file.display(), s.reason),
            );
        }
    }
    report
}

/// The issues dated after `today`: a note each (sent only with `--issue`), and a warning
/// naming the articles when one is more than one cadence away (likely a mistyped date).
fn upcoming_lines(r: &mut CheckReport, config: &Config, catalog: &Catalog, today: NaiveDate) {
    let cadence = i64::from(config.publication.cadence_days.max(1));
    for issue in catalog.upcoming(today) {
        let days = (issue.date.date() - today).num_days();
        r.push(
            Severity::Note,
            format!(
                "articles: upcoming issue {} ({}), sent only with `--issue {}`",
                issue.date,
                plural(issue.articles.len(), "article"),
                issue.date
            ),
        );
        if days > cadence {
            let files: Vec<String> = issue
                .articles
                .iter()
                .map(|a| config.articles_dir().join(&a.file).display().to_string())
                .collect();
            r.push(
                Severity::Warning,
                format!(
                    "articles: the issue of {} is {days} days away, more than one cadence ({cadence} days); is the date of {} a typo?",
                    issue.date,
                    files.join(", ")
                ),
            );
        }
    }
}

/// Runs the checks on a config, the current issue (or why there is none) and the list.
pub(crate) fn check_report(
    config: &Config,
    issue: Result<&Issue, String>,
    list: Result<&SubscriberList, String>,
    now: DateTime<Utc>,
) -> CheckReport {
    let mut r = CheckReport::default();
    r.push(Severity::Ok, format!("{} is valid", config.path.display()));
    if let Some(w) = config.serve.proxy_warning(&config.serve.listen) {
        r.push(Severity::Warning, w);
    }
    if config.smtp.is_none() {
        r.push(
            Severity::Warning,
            format!(
                "{} has no [smtp] section: ready to preview, not to send (add [smtp] with the relay's host and port)",
                config.path.display()
            ),
        );
    }
    let issue = issue_to_render(&mut r, issue);
    list_lines(&mut r, config, &list);
    let Some(digest) = templates(&mut r, config, &issue, now) else {
        return r;
    };
    let Some((rendered, url)) = render_sample(&mut r, config, &digest, list.ok()) else {
        return r;
    };
    html_lines(&mut r, &digest, &rendered, &url);
    if rendered.text.contains(&url) {
        r.push(Severity::Ok, "the text part shows the unsubscribe URL");
    } else {
        r.push(
            Severity::Error,
            "the text part does not show `{{ unsubscribe_url }}` (required in every message)",
        );
    }
    // The message layer's findings; the size and unsubscribe-link checks above already
    // cover (more strictly: a *visible* link) what its own versions of them say.
    for f in deliverability_findings(config, &rendered) {
        if !matches!(f.kind, FindingKind::HtmlSize | FindingKind::UnsubscribeLink) {
            r.push(f.severity, f.message);
        }
    }
    r
}

/// The current issue, or the built-in sample issue (and why) when there is none.
fn issue_to_render<'a>(r: &mut CheckReport, issue: Result<&'a Issue, String>) -> Cow<'a, Issue> {
    match issue {
        Ok(i) => {
            r.push(
                Severity::Ok,
                format!(
                    "articles: the current issue is {} with {}",
                    i.date,
                    plural(i.articles.len(), "article")
                ),
            );
            Cow::Borrowed(i)
        }
        Err(e) => {
            r.push(Severity::Error, format!("articles: {e}"));
            r.push(
                Severity::Note,
                "the templates are checked against the built-in sample issue instead",
            );
            Cow::Owned(crate::digest::sample_issue())
        }
    }
}

fn list_lines(r: &mut CheckReport, config: &Config, list: &Result<&SubscriberList, String>) {
    let file = config.subscribers_file();
    match list {
        Ok(l) => {
            let subscribed = l
                .subscribers
                .iter()
                .filter(|s| s.status == Status::Subscribed)
                .count();
            let (level, end) = if subscribed == 0 {
                (
                    Severity::Warning,
                    ": a send would send nothing (and exit 1)",
                )
            } else {
                (Severity::Ok, "")
            };
            r.push(
                level,
                format!(
                    "subscriber list {}: {}, {subscribed} subscribed{end}",
                    file.display(),
                    plural(l.subscribers.len(), "row"),
                ),
            );
        }
        Err(e) => r.push(
            Severity::Error,
            format!("subscriber list {}: {e}", file.display()),
        ),
    }
}

/// Renders the issue once; says which templates render and how copies are personalised.
fn templates(
    r: &mut CheckReport,
    config: &Config,
    issue: &Issue,
    now: DateTime<Utc>,
) -> Option<Digest> {
    let digest = match Digest::prepare(config, issue, now) {
        Ok(d) => d,
        Err(e) => {
            let mut msg = format!("templates: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n    caused by: {cause}"));
            }
            r.push(Severity::Error, msg);
            return None;
        }
    };
    let customised = digest.customised_templates();
    r.push(
        Severity::Ok,
        if customised.is_empty() {
            "templates: the default templates render".to_string()
        } else {
            format!(
                "templates render: {} (customised), the rest are the defaults",
                customised.join(", ")
            )
        },
    );
    for (file, hint) in digest.unused_templates() {
        let hint = hint
            .map(|h| format!("; did you mean `{h}`?"))
            .unwrap_or_default();
        r.push(
            Severity::Warning,
            format!(
                "templates: `{file}` is not used: no template has that name or includes it{hint}"
            ),
        );
    }
    match digest.path() {
        RenderPath::Fast => r.push(
            Severity::Ok,
            "personalisation: fast path (rendered once, each copy is a substitution)",
        ),
        RenderPath::Full(reason) => r.push(
            Severity::Note,
            format!("personalisation: full render for every copy (slower), because {reason}"),
        ),
    }
    Some(digest)
}

/// The sample reader's copy and its unsubscribe URL; on the way, the notes about the key
/// and the attributes the templates print that the list lacks.
fn render_sample(
    r: &mut CheckReport,
    config: &Config,
    digest: &Digest,
    list: Option<&SubscriberList>,
) -> Option<(Rendered, String)> {
    let mut notes = Vec::new();
    let keyring = match preview_keyring(config, &mut notes) {
        Ok(k) => k,
        Err(e) => {
            r.push(Severity::Error, format!("unsubscribe key: {e:#}"));
            return None;
        }
    };
    for n in notes {
        r.push(Severity::Note, n);
    }
    let sample = crate::message::sample_subscriber(config).subscriber;
    if let Some(l) = list {
        let missing: Vec<&str> = digest
            .attrs_used()
            .iter()
            .filter(|a| !l.extra_columns.contains(a))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            r.push(
                Severity::Warning,
                format!(
                    "the templates print subscriber.attrs.{} but the list has no such column (it renders empty)",
                    missing.join(", subscriber.attrs.")
                ),
            );
        }
    }
    let url = unsubscribe_url_or_placeholder(config, &keyring, &sample, &mut Vec::new());
    match digest.render_for(&sample, &url) {
        Ok(x) => Some((x, url)),
        Err(e) => {
            r.push(Severity::Error, format!("templates: {e:#}"));
            None
        }
    }
}

/// The HTML part: its size, the `<style>` kept, what the final pass removed, and the
/// visible unsubscribe link.
fn html_lines(r: &mut CheckReport, digest: &Digest, rendered: &Rendered, url: &str) {
    // Measured as sent: the encoded part is what Gmail's ~102 KB clip counts.
    let (encoding, size) = choose_encoding(rendered.html.as_bytes());
    let decoded = rendered.html.len() as f64 / 1024.0;
    let (_, text_size) = choose_encoding(rendered.text.as_bytes());
    if size > HTML_CLIP_BYTES {
        r.push(
            Severity::Warning,
            format!(
                "the HTML part is {:.0} KB on the wire ({}, {decoded:.0} KB decoded): Gmail clips messages over about 102 KB (use `body = \"lead\"` or fewer articles)",
                size as f64 / 1024.0,
                encoding.name()
            ),
        );
    } else {
        r.push(
            Severity::Ok,
            format!(
                "the HTML part is {:.1} KB on the wire ({}, {decoded:.1} KB decoded; under 90 KB), the text part {:.1} KB on the wire",
                size as f64 / 1024.0,
                encoding.name(),
                text_size as f64 / 1024.0
            ),
        );
    }
    let rep = digest.html_report();
    if rep.head_style_bytes > STYLE_LIMIT {
        r.push(
            Severity::Warning,
            format!(
                "the <style> block kept in <head> is {} bytes; keep it under 16 KB (only media queries belong there)",
                rep.head_style_bytes
            ),
        );
    }
    for removed in &rep.removed {
        r.push(
            Severity::Warning,
            format!("removed from the HTML part: {removed}"),
        );
    }
    if digest_links_visible_to(&rendered.html, url) {
        r.push(Severity::Ok, "the HTML part has a visible unsubscribe link");
    } else {
        r.push(
            Severity::Error,
            "the HTML part has no visible link to `{{ unsubscribe_url }}` (required in every message)",
        );
    }
}

#[cfg(test)]
impl CheckReport {
    /// Whether a line at `level` contains `needle`.
    pub(crate) fn has(&self, level: Severity, needle: &str) -> bool {
        self.lines
            .iter()
            .any(|(l, m)| *l == level && m.contains(needle))
    }
}
