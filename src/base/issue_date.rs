//! The date of a biweekly issue: the one type every layer uses to name an issue.
//!
//! Parsed once at the boundary (CLI flags, config, front matter, journal rows) from
//! `YYYY-MM-DD`; past that point an issue date cannot be malformed. It knows nothing about
//! the biweekly grid (that is `articles::Grid`).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
