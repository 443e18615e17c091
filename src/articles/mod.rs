//! Articles: the publication's files in, a catalog of biweekly issues out.
//!
//! An editor keeps one file per article, either the publication's web page saved as text
//! (`page_text`) or Markdown with YAML/TOML front matter (`markdown`). This module finds
//! those files, parses them into [`Article`]s, assigns each to a biweekly issue on the
//! grid, and groups them into [`Issue`]s, newest first. Files that are not articles are
//! skipped with a reason; it never renders or sends anything.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::Config;

/// The date of a biweekly issue (the day it appears), `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueDate(NaiveDate);

/// Why an issue date could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not a date in the form YYYY-MM-DD (for example 2002-02-27)")]
pub struct IssueDateError {
    pub input: String,
}

impl IssueDate {
    pub fn new(date: NaiveDate) -> IssueDate {
        IssueDate(date)
    }
    pub fn parse(s: &str) -> Result<IssueDate, IssueDateError> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(IssueDate)
            .map_err(|_| IssueDateError {
                input: s.to_string(),
            })
    }
    pub fn date(self) -> NaiveDate {
        self.0
    }
}

impl FromStr for IssueDate {
    type Err = IssueDateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IssueDate::parse(s)
    }
}

impl fmt::Display for IssueDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for IssueDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IssueDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IssueDate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One article, whatever format it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Article {
    /// The file, relative to the articles folder.
    pub file: PathBuf,
    /// Never empty; a fallback built from section and author when the file has none.
    pub title: String,
    pub title_is_fallback: bool,
    pub authors: Vec<String>,
    pub section: Option<String>,
    /// The article's own date.
    pub date: NaiveDate,
    /// The issue it belongs to.
    pub issue: IssueDate,
    /// Link to the article on the web (front matter `url`, else derived from base_url).
    pub url: String,
    /// Optional summary from front matter.
    pub summary: Option<String>,
    /// The first body paragraph, plain text.
    pub lead: String,
    /// All body paragraphs as plain text, lead included (first), repeated lead removed.
    pub paragraphs: Vec<String>,
    /// The body as HTML (escaped paragraphs for page text; rendered Markdown).
    pub body_html: String,
    /// "Read N times" from the page trailer.
    pub read_count: Option<u64>,
    pub word_count: usize,
}

/// The articles of one issue.
#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    pub date: IssueDate,
    pub articles: Vec<Article>,
}

/// A file in the articles folder that is not an article, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub file: PathBuf,
    pub reason: String,
}

/// Everything found in the articles folder.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Newest first; never empty.
    pub issues: Vec<Issue>,
    pub skipped: Vec<Skipped>,
    /// Non-fatal problems (e.g. missing titles), one line each.
    pub warnings: Vec<String>,
}

impl Catalog {
    /// Loads the configured articles folder.
    pub fn load(config: &Config) -> Result<Catalog> {
        let _ = config;
        anyhow::bail!("article loading is not implemented yet")
    }

    pub fn newest(&self) -> &Issue {
        &self.issues[0]
    }

    /// The newest issue, or the one with the given date (an error listing the known dates).
    pub fn select(&self, date: Option<IssueDate>) -> Result<&Issue> {
        match date {
            None => Ok(self.newest()),
            Some(d) => self.issues.iter().find(|i| i.date == d).ok_or_else(|| {
                let known: Vec<String> = self.issues.iter().map(|i| i.date.to_string()).collect();
                anyhow::anyhow!(
                    "there is no issue dated {d}; the articles folder has issues {}",
                    known.join(", ")
                )
            }),
        }
    }
}

/// `fortnight issues [--json]`.
pub fn cmd_issues(config: &Config, args: &crate::cli::IssuesArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight issues` is not implemented yet")
}
