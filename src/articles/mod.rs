//! Articles: the publication's files in, a catalog of biweekly issues out.
//!
//! An editor keeps one file per article, either the publication's web page saved as text
//! (`page_text`) or Markdown with YAML/TOML front matter (`markdown`). This module finds
//! those files, parses them into [`Article`]s, assigns each to a biweekly issue on the
//! grid, and groups them into [`Issue`]s, newest first. Files that are not articles are
//! skipped with a reason; it never renders or sends anything.
//!
//! Submodules: `text` (bytes to clean text), `page_text` and `markdown` (one parser per
//! format, both producing a `Draft`), `grid` (issue dates) and `load` (the folder walk,
//! parallel parsing, issue assignment). Showing the catalog is the command layer's
//! (`cmd/issues.rs`); the warnings come back as lines ([`Catalog::warning_lines`]).

mod grid;
mod load;
mod markdown;
mod page_text;
mod text;

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use crate::base::IssueDate;
use crate::config::Config;

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

/// What a parser makes of one file, before the issue and the URL are decided.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub title: Option<String>,
    pub authors: Vec<String>,
    pub section: Option<String>,
    pub date: NaiveDate,
    /// The explicit issue (byline `issue of` marker or front matter `issue`).
    pub issue: Option<IssueDate>,
    pub url: Option<String>,
    pub summary: Option<String>,
    /// Plain-text paragraphs, never empty.
    pub paragraphs: Vec<String>,
    pub body_html: String,
    pub read_count: Option<u64>,
    /// Problems worth telling the editor about (without the file name; the loader adds it).
    pub warnings: Vec<String>,
    /// A Markdown body with relative link targets, rendered again once the article's URL
    /// is known (they resolve against it).
    pub markdown: Option<Box<markdown::MarkdownBody>>,
}

/// The verdict of a parser on one file's text.
#[derive(Debug)]
pub(crate) enum Parsed {
    Article(Draft),
    /// Not an article (a note, a draft…): skipped, with the reason.
    NotArticle(String),
    /// Meant as an article but wrong (bad front matter): an error, with what to fix.
    Invalid(String),
}

/// Names as a reader would write them: `A`, `A and B`, `A, B and C`.
pub fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The title of an article that has none: what it is (the section in the singular) and who
/// wrote it, or when: "Field Report by Gulnara Ismailova", "News Digest item of 25 February
/// 2002", "Article by …" without a section. Never empty, never a file name.
pub(crate) fn fallback_title(section: Option<&str>, authors: &[String], date: NaiveDate) -> String {
    let kind = match section.map(str::trim).filter(|s| !s.is_empty()) {
        None => "Article".to_string(),
        Some(s) => {
            let last = s.split_whitespace().last().unwrap_or(s).to_lowercase();
            let plural =
                last.ends_with('s') && !["ss", "us", "is", "ews"].iter().any(|e| last.ends_with(e));
            match s.strip_suffix(['s', 'S']) {
                Some(singular) if plural => singular.to_string(),
                _ => format!("{s} item"),
            }
        }
    };
    if authors.is_empty() {
        format!("{kind} of {}", date.format("%-d %B %Y"))
    } else {
        format!("{kind} by {}", join_names(authors))
    }
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
    /// Loads the configured articles folder (`[publication] articles_dir`, resolved against
    /// the config file's folder). Files that are not articles are listed in `skipped`; an
    /// error means the folder is missing, holds no article at all, or holds a Markdown
    /// article with invalid front matter (every such file is named).
    pub fn load(config: &Config) -> Result<Catalog> {
        load::load(&config.articles_dir(), &config.publication, &config.path)
    }

    /// One warning line per skipped file, then one per problem; `articles_dir` is the
    /// folder the catalog was loaded from (for full file names).
    pub fn warning_lines(&self, articles_dir: &Path) -> Vec<String> {
        let skipped = self.skipped.iter().map(|s| {
            format!(
                "skipped `{}`: {}",
                articles_dir.join(&s.file).display(),
                s.reason
            )
        });
        skipped.chain(self.warnings.iter().cloned()).collect()
    }

    /// Every article of every issue, newest issue first.
    pub fn articles(&self) -> impl Iterator<Item = &Article> {
        self.issues.iter().flat_map(|i| i.articles.iter())
    }

    pub fn newest(&self) -> &Issue {
        &self.issues[0]
    }

    /// The issue a command takes without `--issue`: the newest one dated on or before
    /// `today` (`None` when every issue is dated later).
    pub fn current(&self, today: NaiveDate) -> Option<&Issue> {
        self.issues.iter().find(|i| i.date.date() <= today)
    }

    /// The issues dated after `today`, soonest first: sent only with `--issue DATE`.
    pub fn upcoming(&self, today: NaiveDate) -> Vec<&Issue> {
        let mut later: Vec<&Issue> = self
            .issues
            .iter()
            .filter(|i| i.date.date() > today)
            .collect();
        later.reverse();
        later
    }

    /// The current issue (see [`Catalog::current`]), or the one with the given date (an
    /// error listing the known dates).
    pub(crate) fn select(&self, date: Option<IssueDate>, today: NaiveDate) -> Result<&Issue> {
        match date {
            None => self.current(today).ok_or_else(|| {
                let later: Vec<String> = self
                    .upcoming(today)
                    .iter()
                    .map(|i| i.date.to_string())
                    .collect();
                anyhow::anyhow!(
                    "every issue in the articles folder is dated after today ({today}): {}; choose one with `--issue DATE`",
                    later.join(", ")
                )
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn fallback_titles_name_the_kind_and_the_author_or_the_date() {
        let gi = vec!["Gulnara Ismailova".to_string()];
        let two = vec!["Aida Bekova".to_string(), "Timur Rakhimov".to_string()];
        let cases: &[(Option<&str>, &[String], &str)] = &[
            (
                Some("Field Reports"),
                &gi,
                "Field Report by Gulnara Ismailova",
            ),
            (
                Some("Analytical Articles"),
                &two,
                "Analytical Article by Aida Bekova and Timur Rakhimov",
            ),
            (
                Some("News Digest"),
                &[],
                "News Digest item of 25 February 2002",
            ),
            (Some("News"), &[], "News item of 25 February 2002"),
            (Some("Analysis"), &gi, "Analysis item by Gulnara Ismailova"),
            (None, &gi, "Article by Gulnara Ismailova"),
            (Some("  "), &[], "Article of 25 February 2002"),
        ];
        for (section, authors, want) in cases {
            assert_eq!(fallback_title(*section, authors, d("2002-02-25")), *want);
        }
    }

    #[test]
    fn names_join_like_a_byline() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(join_names(&n(&[])), "");
        assert_eq!(join_names(&n(&["A"])), "A");
        assert_eq!(join_names(&n(&["A", "B"])), "A and B");
        assert_eq!(join_names(&n(&["A", "B", "C"])), "A, B and C");
    }
}

#[cfg(test)]
mod fuzz_tests;
