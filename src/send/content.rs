//! Content lock: the fingerprint of an issue (its rendered subject, HTML and text before
//! personalisation, and its article list), recorded in the journal when the first copies go
//! out, so a later run of the same issue that would send something else is refused and says
//! what changed (docs/guarantees.md "Content lock").
//!
//! The parts are rendered for a fixed, made-up reader with a fixed clock, so neither the
//! list nor the day of the run changes the fingerprint; only the articles, the templates,
//! the subject and the configuration that shapes them do.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::articles::Issue;
use crate::base::hex;
use crate::config::Config;
use crate::digest::Digest;
use crate::subscribers::{Status, Subscriber, SubscriberEmail};

/// What identifies the content of one issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    /// The subject as rendered (kept as text, to say how it changed).
    pub subject: String,
    /// SHA-256 of the HTML and of the text part.
    pub html: String,
    pub text: String,
    pub articles: Vec<ArticlePrint>,
}

/// One article of the issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ArticlePrint {
    pub file: String,
    pub title: String,
    /// SHA-256 of everything parsed from the file.
    pub hash: String,
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..16])
}

impl Fingerprint {
    /// The fingerprint of `issue` as `config` renders it.
    pub(crate) fn of(config: &Config, issue: &Issue) -> Result<Fingerprint> {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let digest = Digest::prepare(config, issue, epoch)
            .with_context(|| format!("cannot render the issue of {}", issue.date))?;
        let reader = Subscriber {
            email: SubscriberEmail::parse("reader@fingerprint.example.org")
                .context("the fingerprint's reader address")?,
            name: "Reader".to_string(),
            status: Status::Subscribed,
            since: String::new(),
            source: String::new(),
            tags: Vec::new(),
            attrs: Default::default(),
        };
        let r = digest.render_for(&reader, "https://fingerprint.example.org/unsubscribe")?;
        let articles = issue
            .articles
            .iter()
            .map(|a| {
                let json = serde_json::to_vec(a).unwrap_or_default();
                ArticlePrint {
                    file: a.file.display().to_string(),
                    title: a.title.clone(),
                    hash: sha(&json),
                }
            })
            .collect();
        Ok(Fingerprint {
            subject: r.subject,
            html: sha(r.html.as_bytes()),
            text: sha(r.text.as_bytes()),
            articles,
        })
    }

    /// The fingerprint as stored.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a fingerprint serialises")
    }

    pub(crate) fn from_json(s: &str) -> Option<Fingerprint> {
        serde_json::from_str(s).ok()
    }

    /// A short id of the whole fingerprint.
    pub(crate) fn id(&self) -> String {
        sha(self.to_json().as_bytes())
    }

    /// What changed from `old` to `self`, one line each (empty: nothing).
    pub(crate) fn changes_from(&self, old: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.articles {
            match old.articles.iter().find(|o| o.file == a.file) {
                None => out.push(format!("article added: {} (\"{}\")", a.file, a.title)),
                Some(o) if o.hash != a.hash => {
                    out.push(format!("article edited: {} (\"{}\")", a.file, a.title))
                }
                Some(_) => {}
            }
        }
        for o in &old.articles {
            if !self.articles.iter().any(|a| a.file == o.file) {
                out.push(format!("article removed: {} (\"{}\")", o.file, o.title));
            }
        }
        if self.subject != old.subject {
            out.push(format!(
                "subject changed: \"{}\" -> \"{}\"",
                old.subject, self.subject
            ));
        }
        if out.is_empty() && (self.html != old.html || self.text != old.text) {
            out.push(
                "the rendered digest changed (templates or the configuration that shapes them)"
                    .to_string(),
            );
        }
        out
    }
}
