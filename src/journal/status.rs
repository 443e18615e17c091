//! What the journal knows of one issue (the report behind `fortnight status`): counts by
//! state, the rows that need attention and the test copies, read without ever creating the
//! journal.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::db::Journal;
use super::rows::{Counts, ProblemRow};
use crate::base::IssueDate;

/// The journal's account of one issue.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub journal: String,
    /// The issue reported on; `None` when nothing was journaled yet.
    pub issue: Option<IssueDate>,
    pub counts: Counts,
    pub problems: Vec<ProblemRow>,
    pub test_copies: usize,
    /// Every issue in the journal, newest first.
    pub issues: Vec<IssueDate>,
}

/// Reports on `issue` (default: the newest issue in the journal) from the journal at `path`;
/// a journal that does not exist yet reports nothing sent.
pub fn status(path: &Path, issue: Option<IssueDate>) -> Result<StatusReport> {
    let journal = path.display().to_string();
    let Some(j) = Journal::open_existing(path)? else {
        return Ok(StatusReport {
            journal,
            issue,
            counts: Counts::default(),
            problems: Vec::new(),
            test_copies: 0,
            issues: Vec::new(),
        });
    };
    let issues = j.issues()?;
    let issue = issue.or_else(|| issues.first().copied());
    let (counts, problems, test_copies) = match issue {
        Some(i) => (j.counts(i)?, j.problems(i)?, j.test_copies(i)?.len()),
        None => (Counts::default(), Vec::new(), 0),
    };
    Ok(StatusReport {
        journal,
        issue,
        counts,
        problems,
        test_copies,
        issues,
    })
}
