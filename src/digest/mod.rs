//! Digest: one issue rendered to a subject, an HTML part and a text part from Tera templates.
//!
//! Built-in templates are compiled into the binary; files in the configured templates folder
//! override them. Rendering is done once per issue: the templates are rendered with marker
//! values in place of every per-subscriber field, and the output is kept as [`Segment`]s so
//! that personalising a copy is string concatenation (the "fast path"). A template that uses
//! subscriber data in ways markers cannot survive (filters over the name, conditions on
//! attributes) falls back to a full Tera render per subscriber. Nothing here builds MIME or
//! sends anything.

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::articles::Issue;
use crate::config::Config;
use crate::subscribers::Subscriber;

/// The three rendered texts of one subscriber's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// A per-subscriber value that the fast path substitutes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Email,
    Name,
    UnsubscribeUrl,
    Attr(String),
}

/// A piece of a rendered part: shared text, or a field to fill per subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Lit(String),
    Field(Field),
}

/// How a field is written into a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML-escaped (the HTML part).
    Html,
    /// As is (text part, subject).
    None,
}

/// A rendered part as segments, with how its fields must be escaped.
#[derive(Debug, Clone)]
pub struct Part {
    pub segments: Vec<Segment>,
    pub escape: Escape,
}

/// One issue, rendered once, ready to personalise.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Present when the templates allow the fast path: (subject, html, text).
    pub fast: Option<[Part; 3]>,
}

impl Digest {
    /// Loads the templates and renders the issue once. `now` is injected for reproducible output.
    pub fn prepare(config: &Config, issue: &Issue, now: DateTime<Utc>) -> Result<Digest> {
        let _ = (config, issue, now);
        anyhow::bail!("rendering is not implemented yet")
    }

    /// This subscriber's copy (fast path when possible, else a full render).
    pub fn render_for(&self, subscriber: &Subscriber, unsubscribe_url: &str) -> Result<Rendered> {
        let _ = (subscriber, unsubscribe_url);
        anyhow::bail!("rendering is not implemented yet")
    }
}

/// `fortnight preview`.
pub fn cmd_preview(config: &Config, args: &crate::cli::PreviewArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight preview` is not implemented yet")
}

/// `fortnight init DIR`.
pub fn cmd_init(args: &crate::cli::InitArgs) -> Result<crate::Exit> {
    let _ = args;
    anyhow::bail!("`fortnight init` is not implemented yet")
}

/// `fortnight check`.
pub fn cmd_check(config: &Config, args: &crate::cli::CheckArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight check` is not implemented yet")
}
