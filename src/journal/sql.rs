//! How the journal's typed values are stored as SQL text and read back: states, attempt
//! kinds, list statuses, issue dates and timestamps. The only place that spells them.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Row;

use super::rows::{AttemptKind, State};
use crate::base::IssueDate;
use crate::subscribers::Status;

impl ToSql for State {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for State {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        State::parse(s).ok_or_else(|| unknown("state", s))
    }
}

impl ToSql for AttemptKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            AttemptKind::Delivery => "delivery",
            AttemptKind::Test => "test",
        }
        .into())
    }
}

fn unknown(what: &str, s: &str) -> FromSqlError {
    FromSqlError::Other(format!("the journal holds an unknown {what} `{s}`").into())
}

/// An issue date as stored (`YYYY-MM-DD`).
pub(super) fn issue_text(issue: IssueDate) -> String {
    issue.to_string()
}

/// Reads an issue date column.
pub(super) fn issue_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<IssueDate> {
    let s: String = row.get(idx)?;
    IssueDate::parse(&s).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(unknown("issue", &s)),
        )
    })
}

/// A list status as stored (`bounced`, …).
pub(super) fn status_text(status: Status) -> &'static str {
    status.as_str()
}

/// Reads a list status column.
pub(super) fn status_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Status> {
    let s: String = row.get(idx)?;
    Status::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(unknown("list status", &s)),
        )
    })
}

/// A timestamp as stored: RFC 3339 UTC with milliseconds, so text order is time order.
pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
