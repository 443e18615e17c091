//! `init`: a working starter project in one call.
//!
//! Writes a commented `config.toml`, copies of the built-in templates to customise, one
//! sample article and an example list, and returns the files it wrote. It never overwrites
//! anything: every target is checked first, and if one exists nothing at all is written.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::digest::templates::BUILTIN;

const CONFIG: &str = r#"# fortnight configuration: one publication, one list.
# Paths are relative to the folder of this file. Secrets never go here: the SMTP password
# comes from FORTNIGHT_SMTP_PASSWORD and the unsubscribe signing key from
# FORTNIGHT_UNSUBSCRIBE_KEY (generate one with `openssl rand -base64 48`).

[publication]
name = "My Publication"                  # masthead, subject line and footer
base_url = "https://example.org"         # the publication's website
articles_dir = "articles"                # one file per article: Markdown or saved web pages
cadence_days = 14                        # one issue every two weeks
first_issue = "{DATE}"             # the first issue's date: anchors the biweekly grid
first_issue_number = 1                   # issue numbers count from here (remove: no numbers)
sections = ["Analysis", "Field Reports", "News"]   # section order in the digest

[sender]
from = "My Publication <digest@example.org>"
reply_to = "editors@example.org"
bounce = "bounces@example.org"           # envelope sender: bounces come back here
list_id = "digest.example.org"           # List-Id label: keep it the same forever
postal_address = "My Publication, 1 Example Street, Example City"   # in every footer

[digest]
templates_dir = "templates"              # your templates; delete a file to use the built-in one
subject = "{{ publication.name }}: {{ issue.title }}"
# preheader = "{{ articles.0.title }}"   # hidden preview line; default: the first lead
body = "lead"                            # "lead": cards show the lead; "full": whole articles

[subscribers]
file = "subscribers.csv"                 # email,name,status,since,source,tags + your columns

[unsubscribe]
url = "https://example.org/unsubscribe?t={token}"   # served by `fortnight serve`; https only
# mailto = "unsubscribe@example.org"

# [smtp]
# host = "smtp.example.org"
# port = 587
# tls = "starttls"                       # "tls" (465), "starttls", or "none" (loopback only)
# username = "digest@example.org"        # password: FORTNIGHT_SMTP_PASSWORD

[throttle]
per_second = 5
concurrency = 2
"#;

const ARTICLE: &str = r#"---
title: "Welcome to My Publication"
author: Your Name
date: {DATE}
issue: {DATE}
section: Analysis
---

This is a sample article. fortnight reads every file in the `articles` folder, groups the
articles into biweekly issues and sends the newest issue to the list as an email digest.

Replace this file with your own articles: Markdown with front matter like this one, or the
publication's web pages saved as text.

Run `fortnight preview` to see the digest in `preview/digest.html`, and `fortnight check`
before the first send.
"#;

const LIST: &str = "email,name,status,since,source,tags\n\
reader@example.org,Sample Reader,subscribed,{DATE},manual,\n\
editor@example.org,Sample Editor,subscribed,{DATE},manual,\n";

/// The files of a starter project dated `date`: (relative path, contents).
fn starter_files(date: NaiveDate) -> Vec<(PathBuf, String)> {
    let d = date.format("%Y-%m-%d").to_string();
    let mut files = vec![
        (PathBuf::from("config.toml"), CONFIG.replace("{DATE}", &d)),
        (
            PathBuf::from("articles").join("welcome.md"),
            ARTICLE.replace("{DATE}", &d),
        ),
        (PathBuf::from("subscribers.csv"), LIST.replace("{DATE}", &d)),
    ];
    for (name, text) in BUILTIN {
        let mut p = PathBuf::from("templates");
        for part in name.split('/') {
            p.push(part);
        }
        files.push((p, text.to_string()));
    }
    files
}

/// Writes the starter project into `dir`, refusing if any of its files exists.
pub fn init_dir(dir: &Path, date: NaiveDate) -> Result<Vec<PathBuf>> {
    let files = starter_files(date);
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| format!("`{}`", p.display()))
        .collect();
    if !existing.is_empty() {
        anyhow::bail!(
            "{} already exist{}; `fortnight init` never overwrites files, so nothing was written (choose an empty folder, or move those files away)",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        );
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the folder `{}`", parent.display()))?;
        }
        // Created new (never over a file or through a link planted since the check above);
        // the list holds addresses: owner-only (0600), as the README promises.
        let created = if rel.ends_with("subscribers.csv") {
            crate::base::files::create_new_private(&path)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
        };
        created
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
