//! `fortnight issues [--json]`: the catalog as a table for people or as stable JSON for
//! scripts; the articles folder's warnings (skipped files, missing titles) go to stderr.
//!
//! The JSON shape is a contract (documented field by field in the README): an array of
//! issues, newest first, each `{"date", "article_count", "articles": [...]}`. Fields are
//! only ever added, never renamed or removed.

use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use super::output;
use super::Exit;
use crate::articles::{join_names, Article, Catalog};
use crate::base::{plural, thousands, IssueDate};
use crate::cli::IssuesArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &IssuesArgs) -> Result<Exit> {
    let catalog = Catalog::load(config)?;
    for line in catalog.warning_lines(&config.articles_dir()) {
        output::warn(line);
    }
    let mut stdout = output::report();
    if args.json {
        write_json(&mut stdout, &catalog)?;
    } else {
        write_table(&mut stdout, &catalog, super::today()?)?;
    }
    stdout.flush()?;
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct IssueJson<'a> {
    date: IssueDate,
    article_count: usize,
    articles: Vec<ArticleJson<'a>>,
}

#[derive(Serialize)]
struct ArticleJson<'a> {
    title: &'a str,
    title_is_fallback: bool,
    authors: &'a [String],
    section: Option<&'a str>,
    date: String,
    issue: IssueDate,
    file: String,
    url: &'a str,
    summary: Option<&'a str>,
    lead: &'a str,
    paragraphs: &'a [String],
    body_html: &'a str,
    read_count: Option<u64>,
    word_count: usize,
}

impl<'a> ArticleJson<'a> {
    fn new(a: &'a Article) -> Self {
        ArticleJson {
            title: &a.title,
            title_is_fallback: a.title_is_fallback,
            authors: &a.authors,
            section: a.section.as_deref(),
            date: a.date.format("%Y-%m-%d").to_string(),
            issue: a.issue,
            file: file_name(a),
            url: &a.url,
            summary: a.summary.as_deref(),
            lead: &a.lead,
            paragraphs: &a.paragraphs,
            body_html: &a.body_html,
            read_count: a.read_count,
            word_count: a.word_count,
        }
    }
}

/// The file relative to the articles folder, `/`-separated on every platform.
fn file_name(a: &Article) -> String {
    a.file
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn write_json(out: &mut impl Write, catalog: &Catalog) -> Result<()> {
    let issues: Vec<IssueJson> = catalog
        .issues
        .iter()
        .map(|i| IssueJson {
            date: i.date,
            article_count: i.articles.len(),
            articles: i.articles.iter().map(ArticleJson::new).collect(),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &issues)?;
    writeln!(out)?;
    Ok(())
}

/// The table: each issue with its articles; the one a send takes is marked `(current)`,
/// those dated after `today` `(upcoming)`.
fn write_table(out: &mut impl Write, catalog: &Catalog, today: NaiveDate) -> Result<()> {
    let current = catalog.current(today).map(|i| i.date);
    for (n, issue) in catalog.issues.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        let mark = if Some(issue.date) == current {
            " (current)"
        } else if issue.date.date() > today {
            " (upcoming)"
        } else {
            ""
        };
        writeln!(
            out,
            "{}{mark}  {}",
            issue.date,
            plural(issue.articles.len(), "article")
        )?;
        for a in &issue.articles {
            let fallback = if a.title_is_fallback {
                "  [no title in file]"
            } else {
                ""
            };
            writeln!(out, "  • {}{fallback}", a.title)?;
            let authors = if a.authors.is_empty() {
                "no byline".to_string()
            } else {
                join_names(&a.authors)
            };
            let mut details = vec![
                a.section
                    .clone()
                    .unwrap_or_else(|| "no section".to_string()),
                authors,
                a.date.format("%Y-%m-%d").to_string(),
            ];
            if let Some(r) = a.read_count {
                details.push(format!("read {}", thousands(r)));
            }
            details.push(file_name(a));
            writeln!(out, "    {}", details.join(" · "))?;
        }
    }
    let articles: usize = catalog.issues.iter().map(|i| i.articles.len()).sum();
    writeln!(out)?;
    write!(
        out,
        "{}, {}",
        plural(catalog.issues.len(), "issue"),
        plural(articles, "article")
    )?;
    if !catalog.skipped.is_empty() {
        write!(
            out,
            "; {} skipped (see the warnings)",
            plural(catalog.skipped.len(), "file")
        )?;
    }
    writeln!(out)?;
    Ok(())
}
