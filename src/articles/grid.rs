//! The issue grid: issue dates every `cadence_days` days from an anchor.
//!
//! An article without an explicit issue belongs to the first issue date on or after its own
//! date. The anchor is `[publication] first_issue` when configured; otherwise it is inferred
//! from the explicit issue dates found in the articles (bylines' `M/D/YYYY issue of`, front
//! matter `issue:`): the dates that agree on one grid win (the majority, ties going to the
//! grid of the newest date), and the newest of them anchors it. With no explicit issue date
//! anywhere, the grid is anchored at the newest article's date. This module only computes
//! dates; it does not read files or print warnings.

use chrono::{NaiveDate, TimeDelta};

use crate::base::IssueDate;

/// Issue dates `anchor + k * cadence_days` for every integer k (before and after the anchor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    anchor: NaiveDate,
    cadence_days: u32,
}

impl Grid {
    /// A grid through `anchor`; a cadence of 0 is treated as 1 (config validation forbids 0).
    pub(crate) fn new(anchor: IssueDate, cadence_days: u32) -> Grid {
        Grid {
            anchor: anchor.date(),
            cadence_days: cadence_days.max(1),
        }
    }

    pub(crate) fn anchor(&self) -> IssueDate {
        IssueDate::new(self.anchor)
    }

    pub(crate) fn cadence_days(&self) -> u32 {
        self.cadence_days
    }

    /// The first issue date on or after `date` (the date itself when it is an issue date).
    pub(crate) fn issue_on_or_after(&self, date: NaiveDate) -> IssueDate {
        let cadence = i64::from(self.cadence_days);
        let days = (date - self.anchor).num_days();
        let steps = days.div_euclid(cadence) + i64::from(days.rem_euclid(cadence) != 0);
        // Out of chrono's range only for dates hundreds of thousands of years away, where
        // the article's own date is as good an issue date as any.
        let issue = steps
            .checked_mul(cadence)
            .and_then(TimeDelta::try_days)
            .and_then(|d| self.anchor.checked_add_signed(d))
            .unwrap_or(date);
        IssueDate::new(issue)
    }

    /// Is `date` one of the grid's issue dates?
    pub(crate) fn is_issue_date(&self, date: NaiveDate) -> bool {
        (date - self.anchor)
            .num_days()
            .rem_euclid(i64::from(self.cadence_days))
            == 0
    }

    /// The grid that most of the given explicit issue dates agree on (ties: the one holding
    /// the newest date), anchored at the newest date on it. `None` without dates.
    pub(crate) fn infer(explicit: &[NaiveDate], cadence_days: u32) -> Option<Grid> {
        let cadence = i64::from(cadence_days.max(1));
        let mut dates = explicit.to_vec();
        dates.sort_unstable();
        dates.dedup();
        let residue = |d: &NaiveDate| (*d - NaiveDate::MIN).num_days().rem_euclid(cadence);
        // Walk newest first so that on a tie the class seen first (newest) wins.
        let mut best: Option<(usize, NaiveDate)> = None;
        for newest in dates.iter().rev() {
            let class = residue(newest);
            let count = dates.iter().filter(|d| residue(d) == class).count();
            if best.is_none_or(|(c, _)| count > c) {
                best = Some((count, *newest));
            }
        }
        best.map(|(_, anchor)| Grid::new(IssueDate::new(anchor), cadence_days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn grid(anchor: &str) -> Grid {
        Grid::new(IssueDate::new(d(anchor)), 14)
    }

    /// (anchor, article date, expected issue)
    #[test]
    fn articles_go_to_the_first_issue_on_or_after_their_date() {
        let cases = [
            ("2002-01-30", "2002-02-27", "2002-02-27"), // on the issue day
            ("2002-01-30", "2002-02-28", "2002-03-13"), // the day after
            ("2002-01-30", "2002-02-26", "2002-02-27"), // the day before
            ("2002-01-30", "2002-02-14", "2002-02-27"),
            ("2002-01-30", "2002-02-13", "2002-02-13"),
            ("2002-01-30", "2002-01-30", "2002-01-30"), // the anchor itself
            ("2002-01-30", "2002-01-17", "2002-01-30"), // before the anchor
            ("2002-01-30", "2002-01-16", "2002-01-16"), // an issue day before the anchor
            ("2002-01-30", "2002-01-15", "2002-01-16"),
            ("2002-02-27", "2002-02-25", "2002-02-27"), // anchored at the newest issue
            ("2002-02-27", "1999-12-31", "2000-01-05"),
            ("2002-02-27", "2024-02-29", "2024-03-13"), // leap day, years later
        ];
        for (anchor, date, want) in cases {
            assert_eq!(
                grid(anchor).issue_on_or_after(d(date)).to_string(),
                want,
                "anchor {anchor}, article {date}"
            );
        }
    }

    #[test]
    fn other_cadences_work_too() {
        let weekly = Grid::new(IssueDate::new(d("2002-01-02")), 7);
        assert_eq!(
            weekly.issue_on_or_after(d("2002-01-03")).to_string(),
            "2002-01-09"
        );
        let daily = Grid::new(IssueDate::new(d("2002-01-02")), 0);
        assert_eq!(daily.cadence_days(), 1);
        assert_eq!(
            daily.issue_on_or_after(d("1990-05-05")).to_string(),
            "1990-05-05"
        );
    }

    #[test]
    fn extreme_dates_never_panic() {
        let g = grid("2002-01-30");
        for date in [NaiveDate::MIN, NaiveDate::MAX] {
            assert!(g.issue_on_or_after(date).date() >= date);
        }
    }

    #[test]
    fn grid_membership() {
        let g = grid("2002-01-30");
        assert!(g.is_issue_date(d("2002-02-13")));
        assert!(g.is_issue_date(d("2002-01-16")));
        assert!(!g.is_issue_date(d("2002-02-14")));
    }

    #[test]
    fn inferred_grid_follows_the_majority_and_is_anchored_at_its_newest_date() {
        let dates = [
            d("2002-01-30"),
            d("2002-02-13"),
            d("2002-02-27"),
            d("2002-02-28"),
        ];
        let g = Grid::infer(&dates, 14).unwrap();
        assert_eq!(g.anchor().to_string(), "2002-02-27");
        assert!(!g.is_issue_date(d("2002-02-28")));
    }

    #[test]
    fn inferred_grid_tie_goes_to_the_newest_date() {
        let g = Grid::infer(&[d("2002-02-13"), d("2002-02-20")], 14).unwrap();
        assert_eq!(g.anchor().to_string(), "2002-02-20");
        assert!(Grid::infer(&[], 14).is_none());
    }

    #[test]
    fn repeated_explicit_dates_count_once() {
        let g = Grid::infer(
            &[
                d("2002-02-13"),
                d("2002-02-13"),
                d("2002-02-13"),
                d("2002-02-20"),
                d("2002-03-06"),
            ],
            14,
        )
        .unwrap();
        assert_eq!(g.anchor().to_string(), "2002-03-06");
    }
}
