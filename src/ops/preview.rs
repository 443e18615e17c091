//! `preview`: the digest of one issue written to files for a person to look at.
//!
//! Writes `digest.html`, `digest.txt` and `sample.eml` (the real MIME message the sample
//! reader would get, built by [`crate::message::Composer`]). Everything is rendered before
//! anything is written, so a broken template writes nothing. Without
//! `FORTNIGHT_UNSUBSCRIBE_KEY` the unsubscribe link is signed with a throwaway key, and
//! without `[unsubscribe]` it is a placeholder; both are notes of the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};

use crate::articles::{Catalog, Issue};
use crate::base::IssueDate;
use crate::config::Config;
use crate::digest::{templates, Digest, Rendered};
use crate::message::Sample;
use crate::subscribers::Subscriber;
use crate::token::{KeySource, Keyring};

/// The unsubscribe URL used when `[unsubscribe]` is not configured.
pub(crate) const PLACEHOLDER_UNSUBSCRIBE: &str =
    "https://unsubscribe.invalid/configure-the-unsubscribe-url?t=";

/// What to preview, and where to write it.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// The issue's date; `None`: the newest issue dated on or before `today`.
    pub issue: Option<IssueDate>,
    /// The folder for `digest.html`, `digest.txt` and `sample.eml` (created if missing).
    pub out: PathBuf,
    /// The date taken as today: without `issue`, the newest issue dated on or before it.
    pub today: NaiveDate,
}

/// What `preview` rendered, for whom, and what it wrote.
#[derive(Debug)]
pub struct PreviewReport {
    pub issue: IssueDate,
    pub article_count: usize,
    /// Who the sample reader is (the description of `crate::message::Sample`).
    pub sample: String,
    pub output: PreviewOutput,
    /// Issues dated after today (soonest first), when the current one was previewed.
    pub upcoming: Vec<IssueDate>,
}

/// What `preview` wrote.
#[derive(Debug)]
pub struct PreviewOutput {
    pub html_path: PathBuf,
    pub text_path: PathBuf,
    /// `None` when the message could not be built (see `eml_error`).
    pub eml_path: Option<PathBuf>,
    pub eml_error: Option<anyhow::Error>,
    pub rendered: Rendered,
    pub eml_bytes: usize,
    /// Things the person should know (throwaway key, placeholder link).
    pub notes: Vec<String>,
}

/// The unsubscribe URL of `subscriber`, or the placeholder (and a note) without `[unsubscribe]`.
pub(crate) fn unsubscribe_url_or_placeholder(
    config: &Config,
    keyring: &Keyring,
    subscriber: &Subscriber,
    notes: &mut Vec<String>,
) -> String {
    crate::message::unsubscribe_url(config, keyring, &subscriber.email).unwrap_or_else(|| {
        notes.push(format!(
            "no `[unsubscribe] url` in {}: the unsubscribe link is a placeholder ({PLACEHOLDER_UNSUBSCRIBE}…); a send is refused until it is set",
            config.path.display()
        ));
        let token = keyring.current().mint(&config.sender.list_id, &subscriber.email);
        format!("{PLACEHOLDER_UNSUBSCRIBE}{token}")
    })
}

/// The keyring for previews and checks, with a note when the key is a throwaway.
pub(crate) fn preview_keyring(config: &Config, notes: &mut Vec<String>) -> Result<Keyring> {
    let (keyring, source) = crate::token::keyring_from_env(config.unsubscribe.as_ref(), true)?;
    if source == KeySource::Throwaway {
        notes.push(format!(
            "{} is not set: the unsubscribe link is signed with a throwaway key and will not work",
            crate::config::ENV_UNSUBSCRIBE_KEY
        ));
    }
    Ok(keyring)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::base::files::write_private(path, bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))
}

/// Renders `issue` for `sample` and writes the three files into `out`.
pub(crate) fn preview_issue(
    config: &Config,
    issue: &Issue,
    out: &Path,
    now: DateTime<Utc>,
    sample: &Subscriber,
) -> Result<PreviewOutput> {
    let mut notes = Vec::new();
    let digest = Digest::prepare(config, issue, now)?;
    let keyring = preview_keyring(config, &mut notes)?;
    let url = unsubscribe_url_or_placeholder(config, &keyring, sample, &mut notes);
    let rendered = digest.render_for(sample, &url)?;
    let message = crate::message::Composer::new(config, issue.date, Arc::new(digest), keyring, now)
        .and_then(|c| c.compose(sample));

    if let Some(note) =
        crate::base::files::private_dir(out).context("the preview's output folder is not safe")?
    {
        notes.push(note);
    }
    let html_path = out.join("digest.html");
    let text_path = out.join("digest.txt");
    write_private(&html_path, rendered.html.as_bytes())?;
    write_private(&text_path, rendered.text.as_bytes())?;
    let eml = out.join("sample.eml");
    let (eml_path, eml_error, eml_bytes) = match message {
        Ok(m) => {
            write_private(&eml, &m.bytes)?;
            (Some(eml), None, m.bytes.len())
        }
        Err(e) => {
            // Never leave an older sample.eml that no longer matches the digest.
            let _ = std::fs::remove_file(&eml);
            (None, Some(e), 0)
        }
    };
    Ok(PreviewOutput {
        html_path,
        text_path,
        eml_path,
        eml_error,
        rendered,
        eml_bytes,
        notes,
    })
}

/// The articles folder, read once the templates are known to parse (a template syntax
/// error is reported before the articles are even read).
pub fn load_articles(config: &Config) -> Result<Catalog> {
    templates::load(config)?;
    Catalog::load(config)
}

/// Previews the chosen issue of `catalog` for the sample reader of `config`'s list.
pub fn preview(
    config: &Config,
    catalog: &Catalog,
    options: &PreviewOptions,
    now: DateTime<Utc>,
) -> Result<PreviewReport> {
    let issue = catalog.select(options.issue, options.today)?;
    let upcoming = match options.issue {
        None => catalog
            .upcoming(options.today)
            .iter()
            .map(|i| i.date)
            .collect(),
        Some(_) => Vec::new(),
    };
    let Sample {
        subscriber,
        description,
    } = crate::message::sample_subscriber(config);
    let output = preview_issue(config, issue, &options.out, now, &subscriber)?;
    Ok(PreviewReport {
        issue: issue.date,
        article_count: issue.articles.len(),
        sample: description,
        output,
        upcoming,
    })
}
