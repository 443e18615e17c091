//! Digest: one issue rendered to a subject, an HTML part and a text part from Tera templates.
//!
//! Built-in templates are compiled into the binary; files in the configured templates folder
//! override them. Rendering is done once per issue: the templates are rendered with marker
//! values in place of every per-subscriber field, and the output is kept as [`Segment`]s so
//! that personalising a copy is string concatenation (the "fast path"). A template that uses
//! subscriber data in ways markers cannot survive (filters over the name, conditions on
//! attributes) falls back to a full Tera render per subscriber.
//!
//! What the message layer may rely on is in [`contract`] (the parts, the fields, the rules
//! for filling them, and the [`Personalise`] trait that [`Digest`] implements); nothing here
//! knows about MIME, the list or sending. [`sample_issue`] is the built-in issue `check`
//! renders when the articles cannot be read.

mod bounds;
pub(crate) mod context;
pub mod contract;
pub(crate) mod fast;
pub(crate) mod filters;
pub(crate) mod html;
mod personal;
mod sample;
pub(crate) mod templates;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::articles::Issue;
use crate::config::Config;
use crate::subscribers::{Status, Subscriber, SubscriberEmail};

use contract::normalize_line;
pub use contract::{Escape, Field, Part, Personalise, Rendered, Segment};
pub(crate) use html::HtmlReport;
pub use sample::sample_issue;

/// One issue, rendered once, ready to personalise.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Present when the templates allow the fast path: (subject, html, text).
    fast: Option<[Part; 3]>,
    engine: Arc<Engine>,
}

/// What a full render needs, and what `check` wants to know about the templates.
struct Engine {
    set: templates::TemplateSet,
    base: tera::Context,
    /// `subscriber.attrs.NAME` printed by the templates (filled with "" when a row lacks it).
    attrs: Vec<String>,
    default_preheader: String,
    /// Why every copy is rendered in full, when it is.
    fallback: Option<String>,
    /// The final pass's report on the HTML part (of the marker render).
    report: HtmlReport,
    /// Template files of the editor's folder that no template renders, includes or extends.
    unused: Vec<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("templates", &self.set)
            .field("attrs", &self.attrs)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// Which way copies are personalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderPath {
    /// Rendered once; each copy is a substitution.
    Fast,
    /// Each copy is a full Tera render, for this reason.
    Full(String),
}

/// The text part: LF line endings, blank-only lines emptied, at most one blank line in a
/// row, no blank lines at the start, one line break at the end.
fn normalize_text(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.split('\n') {
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    out.push('\n');
    out
}

fn probe(email: &str, name: &str, attr_value: &str, attrs: &[String]) -> Subscriber {
    Subscriber {
        email: SubscriberEmail::parse(email).expect("the probe address is valid"),
        name: name.to_string(),
        status: Status::Subscribed,
        since: String::new(),
        source: "probe".to_string(),
        tags: vec![],
        attrs: attrs
            .iter()
            .map(|a| (a.clone(), attr_value.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The two probe copies the fast path must reproduce exactly.
fn probes(attrs: &[String]) -> [(Subscriber, &'static str); 2] {
    [
        (
            probe("probe.one@example.org", "", "", attrs),
            "https://example.org/unsubscribe?t=probe-one",
        ),
        (
            probe(
                "Probe.Two+x@example.org",
                "<Zoë & \"Bo\"> O'Neil",
                "<b>Attr & \"v\"</b> it's",
                attrs,
            ),
            "https://example.org/unsubscribe?t=probe-two&list=a%20b",
        ),
    ]
}

/// Where two strings first differ, shown briefly.
fn first_difference(a: &str, b: &str) -> String {
    let pos = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    let start = a[..pos].char_indices().rev().nth(30).map_or(0, |(i, _)| i);
    let show = |s: &str| -> String { s[start.min(s.len())..].chars().take(80).collect() };
    format!("`{}` vs `{}`", show(a), show(b))
}

impl Engine {
    fn render_one(&self, name: &str, ctx: &tera::Context) -> Result<String> {
        self.set
            .tera
            .render(name, ctx)
            .map_err(|e| self.set.explain(e, name).into())
    }

    /// A full render for one subscriber (as a context value), plus the HTML report.
    fn render(&self, subscriber: &Value, unsubscribe_url: &str) -> Result<(Rendered, HtmlReport)> {
        let mut ctx = self.base.clone();
        ctx.insert("subscriber", subscriber);
        ctx.insert("unsubscribe_url", unsubscribe_url);
        let preheader = if self.set.sources.contains_key(templates::PREHEADER) {
            normalize_line(&self.render_one(templates::PREHEADER, &ctx)?)
        } else {
            self.default_preheader.clone()
        };
        ctx.insert("preheader", &preheader);
        let subject = normalize_line(&self.render_one(templates::SUBJECT, &ctx)?);
        ctx.insert("subject", &subject);
        let html = self.render_one(templates::HTML, &ctx)?;
        let (html, report) = html::finish(&html, &fast::marker(&Field::UnsubscribeUrl))?;
        let text = normalize_text(&self.render_one(templates::TEXT, &ctx)?);
        Ok((
            Rendered {
                subject,
                html,
                text,
            },
            report,
        ))
    }

    fn render_subscriber(&self, s: &Subscriber, unsubscribe_url: &str) -> Result<Rendered> {
        let v = context::subscriber_value(s, &self.attrs);
        Ok(self.render(&v, unsubscribe_url)?.0)
    }
}

/// Which context values differ per subscriber, and what the templates do with them: the
/// subject and preheader count as personal when their templates use subscriber data. Fails
/// on a filter, test or function no template engine knows.
fn analyse(set: &templates::TemplateSet) -> Result<fast::Analysis> {
    let has_preheader = set.sources.contains_key(templates::PREHEADER);
    let mut personal: HashSet<String> = ["subscriber", "unsubscribe_url"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if has_preheader
        && fast::analyse(&set.tera, &[templates::PREHEADER.to_string()], &personal).uses_personal
    {
        personal.insert("preheader".to_string());
    }
    if fast::analyse(&set.tera, &[templates::SUBJECT.to_string()], &personal).uses_personal {
        personal.insert("subject".to_string());
    }
    let mut roots = vec![
        templates::HTML.to_string(),
        templates::TEXT.to_string(),
        templates::SUBJECT.to_string(),
    ];
    if has_preheader {
        roots.push(templates::PREHEADER.to_string());
    }
    let analysis = fast::analyse(&set.tera, &roots, &personal);
    for (template, kind, name) in &analysis.calls {
        let known = match *kind {
            // `safe` and `default` are handled by Tera itself, not registered filters.
            "filter" => name == "safe" || name == "default" || set.tera.get_filter(name).is_ok(),
            "test" => set.tera.get_tester(name).is_ok(),
            // `get_env` is registered only to fail; refuse it before anything renders.
            _ => name != "get_env" && set.tera.get_function(name).is_ok(),
        };
        if !known {
            return Err(set.unknown_call(template, kind, name).into());
        }
    }
    Ok(analysis)
}

/// The subscriber of the marker render: every field is its marker.
fn marker_subscriber(attrs: &[String]) -> Value {
    serde_json::json!({
        "email": fast::marker(&Field::Email),
        "name": fast::marker(&Field::Name),
        "attrs": attrs
            .iter()
            .map(|a| (a.clone(), Value::String(fast::marker(&Field::Attr(a.clone())))))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// The marker render split into (subject, html, text) parts; `Err` says why it cannot be.
fn split_parts(marked: &Rendered, chains: &[contract::Chain]) -> Result<[Part; 3], String> {
    Ok([
        fast::split(&marked.subject, Escape::None, chains)?,
        fast::split(&marked.html, Escape::Html, chains)?,
        fast::split(&marked.text, Escape::None, chains)?,
    ])
}

/// Why substituting a copy does not give its full render, if it does not.
fn mismatch(quick: &Rendered, full: &Rendered) -> Option<String> {
    [
        ("subject", &quick.subject, &full.subject),
        ("HTML part", &quick.html, &full.html),
        ("text part", &quick.text, &full.text),
    ]
    .into_iter()
    .find(|(_, a, b)| a != b)
    .map(|(what, a, b)| {
        format!(
            "the {what} depends on subscriber data in a way substitution cannot reproduce ({})",
            first_difference(a, b)
        )
    })
}

impl Engine {
    /// Why every copy must be rendered in full, as far as the syntax and the marker
    /// render's HTML show.
    fn static_fallback(&self, analysis: &fast::Analysis) -> Option<String> {
        if !analysis.reasons.is_empty() {
            Some(format!(
                "the templates transform subscriber data: {}",
                analysis.reasons.join("; ")
            ))
        } else if self.report.personal_link {
            Some("a link address in the HTML template starts with subscriber data".to_string())
        } else {
            None
        }
    }

    /// Renders the two probes in full (an error there fails `prepare`) and, when `parts` are
    /// given, says why substituting them does not reproduce those renders.
    fn probe(&self, parts: Option<&[Part; 3]>) -> Result<Option<String>> {
        let mut fallback = None;
        for (p, url) in probes(&self.attrs) {
            let full = self.render_subscriber(&p, url)?;
            if let (None, Some(parts)) = (&fallback, parts) {
                fallback = mismatch(&contract::substitute(parts, &p, url), &full);
            }
        }
        Ok(fallback)
    }
}

impl Digest {
    /// Loads the templates and renders the issue once. `now` is injected for reproducible output.
    pub fn prepare(config: &Config, issue: &Issue, now: DateTime<Utc>) -> Result<Digest> {
        let set = templates::load(config)?;
        let analysis = analyse(&set)?;
        let base_map = context::base_context(config, issue, now);
        let default_preheader = context::default_preheader(&base_map);
        let base = tera::Context::from_value(Value::Object(base_map))
            .expect("the context is a JSON object");
        let mut engine = Engine {
            set,
            base,
            attrs: analysis.attrs.iter().cloned().collect(),
            default_preheader,
            fallback: None,
            report: HtmlReport::default(),
            unused: Vec::new(),
        };
        engine.unused = engine
            .set
            .sources
            .iter()
            .filter(|(n, s)| s.user && n.ends_with(".tera") && !analysis.visited.contains(n))
            .map(|(n, _)| n.clone())
            .collect();
        let (marked, report) = engine.render(
            &marker_subscriber(&engine.attrs),
            &fast::marker(&Field::UnsubscribeUrl),
        )?;
        engine.report = report;

        let mut fallback = engine.static_fallback(&analysis);
        let parts = split_parts(&marked, &engine.set.chains)
            .map_err(|e| {
                fallback.get_or_insert(e);
            })
            .ok();
        // Probes: a full render must equal the substituted copy, byte for byte.
        let probed = engine.probe(parts.as_ref().filter(|_| fallback.is_none()))?;
        fallback = fallback.or(probed);
        engine.fallback = fallback;
        Ok(Digest {
            fast: parts.filter(|_| engine.fallback.is_none()),
            engine: Arc::new(engine),
        })
    }

    fn substitutable(&self, subscriber: &Subscriber, unsubscribe_url: &str) -> bool {
        let Some(parts) = &self.fast else {
            return false;
        };
        parts.iter().flat_map(|p| &p.segments).all(|seg| match seg {
            Segment::Lit(_) => true,
            Segment::Field(f) => contract::value_is_substitutable(&contract::field_value(
                f,
                subscriber,
                unsubscribe_url,
            )),
        })
    }

    /// This subscriber's copy (fast path when possible, else a full render).
    pub fn render_for(&self, subscriber: &Subscriber, unsubscribe_url: &str) -> Result<Rendered> {
        match &self.fast {
            Some(parts) if self.substitutable(subscriber, unsubscribe_url) => {
                Ok(contract::substitute(parts, subscriber, unsubscribe_url))
            }
            _ => self.render_full_for(subscriber, unsubscribe_url),
        }
    }

    /// This subscriber's copy by a full Tera render, whatever the path (tests, benchmarks).
    pub fn render_full_for(
        &self,
        subscriber: &Subscriber,
        unsubscribe_url: &str,
    ) -> Result<Rendered> {
        self.engine.render_subscriber(subscriber, unsubscribe_url)
    }

    /// How copies are personalised, and why not by substitution when they are not.
    pub fn path(&self) -> RenderPath {
        match (&self.fast, &self.engine.fallback) {
            (Some(_), _) => RenderPath::Fast,
            (None, Some(reason)) => RenderPath::Full(reason.clone()),
            (None, None) => RenderPath::Full("no fast path".to_string()),
        }
    }

    /// What the final HTML pass found (removed elements, kept `<style>` size).
    pub(crate) fn html_report(&self) -> &HtmlReport {
        &self.engine.report
    }

    /// The `subscriber.attrs.NAME` the templates print.
    pub(crate) fn attrs_used(&self) -> &[String] {
        &self.engine.attrs
    }

    /// Template files of the templates folder that nothing uses (a misnamed override such
    /// as `digst.txt.tera`): (the file as shown, the closest template name in use).
    pub(crate) fn unused_templates(&self) -> Vec<(String, Option<String>)> {
        let set = &self.engine.set;
        let used: Vec<&str> = templates::BUILTIN
            .iter()
            .map(|(n, _)| *n)
            .chain(
                set.sources
                    .keys()
                    .map(String::as_str)
                    .filter(|n| !self.engine.unused.iter().any(|u| u == n)),
            )
            .filter(|n| n.ends_with(".tera"))
            .collect();
        self.engine
            .unused
            .iter()
            .map(|n| {
                let hint = crate::base::closest(n, used.iter().copied()).map(str::to_string);
                (set.display(n), hint)
            })
            .collect()
    }

    /// Template files from the templates folder that differ from the built-in defaults.
    pub(crate) fn customised_templates(&self) -> Vec<String> {
        self.engine
            .set
            .sources
            .iter()
            .filter(|(n, s)| {
                s.user
                    && n.ends_with(".tera")
                    && !self.engine.unused.contains(n)
                    && !templates::BUILTIN.iter().any(|(bn, bt)| {
                        bn == n && bt.replace("\r\n", "\n") == s.text.replace("\r\n", "\n")
                    })
            })
            .map(|(_, s)| s.display.clone())
            .collect()
    }
}

impl Personalise for Digest {
    fn fast_parts(&self) -> Option<&[Part; 3]> {
        self.fast.as_ref()
    }

    fn render_for(&self, subscriber: &Subscriber, unsubscribe_url: &str) -> Result<Rendered> {
        Digest::render_for(self, subscriber, unsubscribe_url)
    }
}

#[cfg(test)]
impl Digest {
    /// The templates in use: (name, where it came from), built-ins included.
    pub(crate) fn templates_in_use(&self) -> Vec<(String, String)> {
        self.engine
            .set
            .sources
            .iter()
            .map(|(n, s)| (n.clone(), s.display.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[allow(dead_code)]
pub(crate) mod fixture;
