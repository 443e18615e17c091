//! The publication's web page saved as text.
//!
//! The shape (see `corpus/articles/` and the README): an optional title line, a date line
//! (`Wednesday, 27 February 2002`), `Published in SECTION`, an optional byline
//! `By AUTHOR (M/D/YYYY issue of PUBLICATION)`, body paragraphs, then a trailer starting at
//! `Read N times` (site navigation, staff publications, sign-up text). The author's name
//! alone on the line before the trailer is a signature, and pages often repeat the lead
//! paragraph as the start of the next one. This module turns such text into a [`Draft`];
//! it does not decide the issue or the URL (the loader does) and never panics on any text.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate, Weekday};

use super::text::{fold_key, normalise_cow, split_lines, split_names};
use super::Draft;
use crate::base::{escape_html, IssueDate};

/// The date line must be among this many non-empty lines at the top of the file.
const HEADER_SEARCH_LINES: usize = 8;
/// A first paragraph this long (in words) that starts the second one is a repeated lead.
const MIN_REPEATED_LEAD_WORDS: usize = 8;

/// Parses page text. `Err` is the reason the text is not an article (the loader skips it).
pub(crate) fn parse(text: &str) -> Result<Draft, String> {
    let lines: Vec<Cow<str>> = split_lines(text).map(normalise_cow).collect();
    let mut warnings = Vec::new();
    // The date line anchors the header: a title may come before it, section and byline after.
    let (date_idx, date) = find_date(&lines, &mut warnings)?;
    let title = title_before(&lines[..date_idx]);
    let (section, byline, body_start) = header_after_date(&lines, date_idx, &mut warnings);
    if section.is_none() && byline.is_none() {
        return Err(
            "a date line but no `Published in SECTION` or `By AUTHOR` line after it; not an article"
                .to_string(),
        );
    }
    let (authors, issue, names_as_written) = match byline {
        Some(b) => (b.authors, b.issue, b.names_as_written),
        None => (Vec::new(), None, String::new()),
    };
    let (body_end, read_count) = trailer_start(&lines, body_start);
    let mut body: Vec<&str> = lines[body_start..body_end.max(body_start)]
        .iter()
        .map(|l| l.as_ref())
        .collect();

    // The signature: the author's name alone on the last line before the trailer.
    while body.last().is_some_and(|l| l.is_empty()) {
        body.pop();
    }
    if let Some(last) = body.last() {
        if is_signature(last, &authors, &names_as_written) {
            body.pop();
        }
    }

    // The repeat may follow on the very next line (no blank line between): compare lines.
    if let Some(first) = body.iter().position(|l| !l.is_empty()) {
        if body
            .get(first + 1)
            .is_some_and(|next| !next.is_empty() && is_repeated_lead(body[first], next))
        {
            body.remove(first);
        }
    }
    let mut paragraphs = paragraphs_of(&body);
    if paragraphs.len() >= 2 && is_repeated_lead(&paragraphs[0], &paragraphs[1]) {
        paragraphs.remove(0);
    }
    if paragraphs.is_empty() {
        return Err("no body text between the header and the `Read N times` trailer".to_string());
    }

    let body_html = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", escape_html(p)))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Draft {
        title,
        authors,
        section,
        date,
        issue,
        url: None,
        summary: None,
        paragraphs,
        body_html,
        read_count,
        warnings,
        markdown: None,
    })
}

/// The date line among the first non-empty lines: its index and date (a wrong weekday is a
/// warning; no date line, or one that is not a real date, means not an article).
fn find_date(lines: &[Cow<str>], warnings: &mut Vec<String>) -> Result<(usize, NaiveDate), String> {
    for (i, line) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .take(HEADER_SEARCH_LINES)
    {
        match parse_date_line(line) {
            DateLine::NotADate => {}
            DateLine::Invalid => {
                return Err(format!(
                    "the date line `{line}` is not a real date; write it like `Wednesday, 27 February 2002`"
                ))
            }
            DateLine::Date { date: d, weekday } => {
                if weekday.is_some_and(|w| w != d.weekday()) {
                    warnings.push(format!(
                        "the date line `{line}` names the wrong weekday: {} was a {}; using the date",
                        d.format("%-d %B %Y"),
                        d.format("%A")
                    ));
                }
                return Ok((i, d));
            }
        }
    }
    Err(format!(
        "no date line (like `Wednesday, 27 February 2002`) in its first {HEADER_SEARCH_LINES} lines; not an article"
    ))
}

/// Section and byline after the date line, in either order, until the first other line:
/// (section, byline, index of the first body line).
fn header_after_date(
    lines: &[Cow<str>],
    date_idx: usize,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<Byline>, usize) {
    let mut section = None;
    let mut byline: Option<Byline> = None;
    for (i, line) in lines.iter().enumerate().skip(date_idx + 1) {
        if line.is_empty() {
            continue;
        }
        if section.is_none() {
            if let Some(s) = strip_prefix_ci(line, "published in ") {
                let s = s.trim().trim_end_matches('.').trim();
                if !s.is_empty() {
                    section = Some(s.to_string());
                }
                continue;
            }
        }
        if byline.is_none() {
            if let Some(b) = parse_byline(line) {
                if let Some(w) = &b.warning {
                    warnings.push(w.clone());
                }
                byline = Some(b);
                continue;
            }
        }
        return (section, byline, i);
    }
    (section, byline, lines.len())
}

/// Where the trailer starts (at `Read N times`, or on pages without a counter at the site's
/// navigation; nothing from there on is article text), and the read count it gives.
fn trailer_start(lines: &[Cow<str>], body_start: usize) -> (usize, Option<u64>) {
    for (i, line) in lines.iter().enumerate().skip(body_start) {
        if let Some(n) = parse_read_count(line) {
            return (i, n);
        }
        if is_navigation_line(line) {
            return (i, None);
        }
    }
    (lines.len(), None)
}

/// The title: the last block of non-empty lines before the date line, joined.
fn title_before(lines: &[Cow<str>]) -> Option<String> {
    let end = lines.iter().rposition(|l| !l.is_empty())?;
    let start = lines[..end]
        .iter()
        .rposition(|l| l.is_empty())
        .map_or(0, |i| i + 1);
    let title = lines[start..=end]
        .iter()
        .map(|l| l.as_ref())
        .collect::<Vec<&str>>()
        .join(" ");
    (!title.is_empty()).then_some(title)
}

/// Joins runs of non-empty lines into paragraphs (hand-wrapped text stays one paragraph).
fn paragraphs_of(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The page repeats the lead: the first paragraph is the start of the second (or equal).
fn is_repeated_lead(first: &str, second: &str) -> bool {
    if second
        .strip_prefix(first)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        && (first.len() == second.len()
            || first.split_whitespace().count() >= MIN_REPEATED_LEAD_WORDS)
    {
        return true;
    }
    // Folding whole paragraphs costs; most second paragraphs differ within a few words.
    let head = |s: &str| {
        s.char_indices()
            .nth(48)
            .map_or(s, |(i, _)| &s[..i])
            .to_string()
    };
    let (ha, hb) = (fold_key(&head(first)), fold_key(&head(second)));
    if !(hb.starts_with(&ha) || ha.starts_with(&hb)) {
        return false;
    }
    let a = fold_key(first);
    let b = fold_key(second);
    if a == b {
        return true;
    }
    a.split_whitespace().count() >= MIN_REPEATED_LEAD_WORDS
        && b.strip_prefix(a.as_str())
            .is_some_and(|rest| rest.starts_with(' '))
}

fn is_signature(line: &str, authors: &[String], names_as_written: &str) -> bool {
    if authors.is_empty() || line.len() > 400 {
        return false;
    }
    let key = fold_key(line.trim_start_matches(['-', '\u{2014}', '\u{2013}']));
    key == fold_key(names_as_written)
        || authors.iter().any(|a| fold_key(a) == key)
        || split_names(line)
            .iter()
            .map(|n| fold_key(n))
            .eq(authors.iter().map(|a| fold_key(a)))
}

/// Lines of the site's navigation that end an article even without a `Read N times` line.
fn is_navigation_line(line: &str) -> bool {
    // Lines are normalised already; body paragraphs are long, so this is a quick no.
    line.len() <= 120
        && (line.eq_ignore_ascii_case("visit also")
            || line.eq_ignore_ascii_case("staff publications")
            || strip_prefix_ci(line, "sign up for upcoming events").is_some())
}

/// `Read 4474 times`, `Read 1,204 times`, `Read 1 204 times`, `Read 1 time`.
/// `Some(None)` is a trailer line whose number does not fit in a u64.
fn parse_read_count(line: &str) -> Option<Option<u64>> {
    let rest = strip_prefix_ci(line, "read ")?;
    let number = strip_suffix_ci(rest, " times").or_else(|| strip_suffix_ci(rest, " time"))?;
    let number = number.trim();
    if !number.starts_with(|c: char| c.is_ascii_digit())
        || !number.ends_with(|c: char| c.is_ascii_digit())
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | ' ' | '\'' | '\u{2019}'))
    {
        return None;
    }
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    Some(digits.parse().ok())
}

struct Byline {
    authors: Vec<String>,
    issue: Option<IssueDate>,
    /// The names as the byline wrote them (`A and B`), to recognise the signature.
    names_as_written: String,
    warning: Option<String>,
}

/// `By AUTHOR (M/D/YYYY issue of PUBLICATION)`, `By A and B`, `By A, B and C`, `By: A`.
/// Returns `None` for a line that only starts with "By" (`By the end of 2001, …`): every
/// name must start with a capital letter and the line must be short.
fn parse_byline(line: &str) -> Option<Byline> {
    let rest = strip_prefix_ci(line, "by ")
        .or_else(|| strip_prefix_ci(line, "by:"))?
        .trim()
        .trim_start_matches(':')
        .trim();
    let mut names = rest;
    let mut issue = None;
    let mut warning = None;
    if let (Some(open), true) = (rest.rfind('('), rest.ends_with(')')) {
        let inside = &rest[open + 1..rest.len() - 1];
        names = rest[..open].trim();
        if let Some((when, _)) = inside.split_once(" issue") {
            let when = when.trim();
            match parse_numeric_date(when) {
                Some(d) => issue = Some(IssueDate::new(d)),
                None => {
                    warning = Some(format!(
                        "the byline's issue date `{when}` is not a date (M/D/YYYY); the issue is taken from the grid instead"
                    ))
                }
            }
        }
    }
    let names = names.trim().trim_end_matches(',').trim();
    if names.is_empty() || names.chars().count() > 200 || names.split_whitespace().count() > 24 {
        return None;
    }
    let authors = split_names(names);
    let name_like = |n: &String| {
        n.chars().next().is_some_and(char::is_uppercase)
            && !n.ends_with('.')
            && !n.chars().any(|c| c.is_ascii_digit())
            && n.split_whitespace().count() <= 6
    };
    if authors.is_empty() || !authors.iter().all(name_like) {
        return None;
    }
    Some(Byline {
        authors,
        issue,
        names_as_written: names.to_string(),
        warning,
    })
}

/// `2/27/2002` (the byline's M/D/YYYY) or `2002-02-27`.
fn parse_numeric_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%m/%d/%Y")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .ok()
        .filter(|d| (1000..=9999).contains(&d.year()))
}

#[derive(Debug, PartialEq)]
enum DateLine {
    NotADate,
    /// Looks like a date line but names a day that does not exist (31 February).
    Invalid,
    Date {
        date: NaiveDate,
        weekday: Option<Weekday>,
    },
}

/// `Wednesday, 27 February 2002`, `27 February 2002`, `Wednesday, February 27, 2002`,
/// `27 Feb 2002`, `2002-02-27`.
fn parse_date_line(line: &str) -> DateLine {
    if line.len() > 48 {
        return DateLine::NotADate;
    }
    if let Ok(d) = NaiveDate::parse_from_str(line, "%Y-%m-%d") {
        return DateLine::Date {
            date: d,
            weekday: None,
        };
    }
    let cleaned = line.replace([',', '.'], " ");
    let mut tokens: Vec<&str> = cleaned.split_whitespace().collect();
    let weekday = match tokens.first().and_then(|t| weekday_of(t)) {
        Some(w) => {
            tokens.remove(0);
            Some(w)
        }
        None => None,
    };
    let (day, month, year) = match tokens.as_slice() {
        [d, m, y] if month_of(m).is_some() => (*d, month_of(m), *y),
        [m, d, y] if month_of(m).is_some() => (*d, month_of(m), *y),
        _ => return DateLine::NotADate,
    };
    let day = day.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let (Some(month), Ok(day), Ok(year)) = (month, day.parse::<u32>(), year.parse::<i32>()) else {
        return DateLine::NotADate;
    };
    if year.to_string().len() != 4 || !(1..=31).contains(&day) {
        return DateLine::NotADate;
    }
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => DateLine::Date { date, weekday },
        None => DateLine::Invalid,
    }
}

fn weekday_of(token: &str) -> Option<Weekday> {
    let t = token.to_ascii_lowercase();
    const DAYS: [(&str, Weekday); 7] = [
        ("monday", Weekday::Mon),
        ("tuesday", Weekday::Tue),
        ("wednesday", Weekday::Wed),
        ("thursday", Weekday::Thu),
        ("friday", Weekday::Fri),
        ("saturday", Weekday::Sat),
        ("sunday", Weekday::Sun),
    ];
    DAYS.iter()
        .find(|(name, _)| t == *name || (t.len() == 3 && name.starts_with(t.as_str())))
        .map(|(_, w)| *w)
}

fn month_of(token: &str) -> Option<u32> {
    let t = token.to_ascii_lowercase();
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    MONTHS
        .iter()
        .position(|m| {
            t == *m
                || (t.len() == 3 && m.starts_with(t.as_str()))
                || (t == "sept" && *m == "september")
        })
        .map(|i| i as u32 + 1)
}

/// `s` without `prefix`, compared ASCII-case-insensitively (never splits a character).
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const NATO_LIKE: &str = "Wednesday, 27 February 2002\n\n\nPublished in Field Reports\n\n\
By Gulnara Ismailova (2/27/2002 issue of the CACI Analyst)\n\n\
At the beginning of 1992, officials used the changes in the political situation to expand their influence.\n\n\
At the beginning of 1992, officials used the changes in the political situation to expand their influence. It became possible after the armistice.\n\n\
However, from 1996 Azerbaijan began to take a more active part.\u{00A0}\n\n\
Gulnara Ismailova\nRead 4474 times\n\nVisit also\n\nStaff Publications\n\nSign up for upcoming events, latest news and articles from the CACI Analyst";

    #[test]
    fn date_line_variants_are_recognised() {
        let cases: &[(&str, Option<NaiveDate>)] = &[
            ("Wednesday, 27 February 2002", Some(d(2002, 2, 27))),
            ("27 February 2002", Some(d(2002, 2, 27))),
            ("Wednesday, February 27, 2002", Some(d(2002, 2, 27))),
            ("Wed, 27 Feb 2002", Some(d(2002, 2, 27))),
            ("27th February 2002", Some(d(2002, 2, 27))),
            ("2002-02-27", Some(d(2002, 2, 27))),
            ("Sept 3 2002", Some(d(2002, 9, 3))),
            ("Published in Field Reports", None),
            ("By the end of February 2002", None),
            ("February 2002", None),
            ("27 February 02", None),
            ("Monday, 27 Smarch 2002", None),
        ];
        for (line, want) in cases {
            let got = match parse_date_line(line) {
                DateLine::Date { date, .. } => Some(date),
                _ => None,
            };
            assert_eq!(got, *want, "line {line:?}");
        }
        assert_eq!(
            parse_date_line("Thursday, 31 February 2002"),
            DateLine::Invalid
        );
    }

    #[test]
    fn read_count_trailer_forms() {
        let cases: &[(&str, Option<Option<u64>>)] = &[
            ("Read 4474 times", Some(Some(4474))),
            ("Read 1,204 times", Some(Some(1204))),
            ("Read 1.204 times", Some(Some(1204))),
            ("Read 1 204 times", Some(Some(1204))),
            ("read 12 TIMES", Some(Some(12))),
            ("Read 1 time", Some(Some(1))),
            ("Read 99999999999999999999999 times", Some(None)),
            ("Read the fine print three times", None),
            ("Read , times", None),
            ("Read 12 times more than expected", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_read_count(line), *want, "line {line:?}");
        }
    }

    #[test]
    fn byline_variants_give_authors_and_issue() {
        let cases: &[(&str, &[&str], Option<NaiveDate>)] = &[
            (
                "By Gulnara Ismailova (2/27/2002 issue of the CACI Analyst)",
                &["Gulnara Ismailova"],
                Some(d(2002, 2, 27)),
            ),
            ("By Nino Kharadze", &["Nino Kharadze"], None),
            (
                "By Aida Bekova and Timur Rakhimov (1/30/2002 issue of the CACI Analyst)",
                &["Aida Bekova", "Timur Rakhimov"],
                Some(d(2002, 1, 30)),
            ),
            (
                "By A. One, B. Two and C. Three",
                &["A. One", "B. Two", "C. Three"],
                None,
            ),
            ("By: Rəşad Əliyev", &["Rəşad Əliyev"], None),
            (
                "BY Гульнара Исмаилова (2002-02-13 issue of the CACI Analyst)",
                &["Гульнара Исмаилова"],
                Some(d(2002, 2, 13)),
            ),
            ("By Sean O\u{2019}Neill", &["Sean O\u{2019}Neill"], None),
        ];
        for (line, authors, issue) in cases {
            let b = parse_byline(line).unwrap_or_else(|| panic!("no byline in {line:?}"));
            assert_eq!(b.authors, *authors, "line {line:?}");
            assert_eq!(b.issue.map(|i| i.date()), *issue, "line {line:?}");
        }
    }

    #[test]
    fn sentences_starting_with_by_are_not_bylines() {
        for line in [
            "By the end of 2001, grain exports had doubled.",
            "By March, prices had risen",
            "By 2003 the pipeline should be finished",
            "by mid-year",
        ] {
            assert!(parse_byline(line).is_none(), "{line:?} taken as a byline");
        }
    }

    #[test]
    fn byline_with_a_bad_issue_date_keeps_authors_and_warns() {
        let b = parse_byline("By Nino Kharadze (2/30/2002 issue of the CACI Analyst)").unwrap();
        assert_eq!(b.authors, ["Nino Kharadze"]);
        assert!(b.issue.is_none());
        assert!(b.warning.unwrap().contains("2/30/2002"));
    }

    #[test]
    fn real_page_shape_drops_trailer_signature_and_repeated_lead() {
        let a = parse(NATO_LIKE).unwrap();
        assert_eq!(a.title, None);
        assert_eq!(a.date, d(2002, 2, 27));
        assert_eq!(a.section.as_deref(), Some("Field Reports"));
        assert_eq!(a.authors, ["Gulnara Ismailova"]);
        assert_eq!(a.issue.map(|i| i.date()), Some(d(2002, 2, 27)));
        assert_eq!(a.read_count, Some(4474));
        assert_eq!(a.paragraphs.len(), 2, "{:#?}", a.paragraphs);
        assert!(a.paragraphs[0].ends_with("It became possible after the armistice."));
        assert_eq!(
            a.paragraphs[1],
            "However, from 1996 Azerbaijan began to take a more active part."
        );
        let all = a.paragraphs.join("\n");
        for junk in [
            "Read 4474",
            "Visit also",
            "Staff Publications",
            "Sign up",
            "Gulnara",
        ] {
            assert!(!all.contains(junk), "{junk} leaked into the body");
        }
    }

    #[test]
    fn crlf_and_lone_cr_parse_like_lf() {
        let lf = parse(NATO_LIKE).unwrap();
        let crlf = parse(&NATO_LIKE.replace('\n', "\r\n")).unwrap();
        let cr = parse(&NATO_LIKE.replace('\n', "\r")).unwrap();
        for other in [&crlf, &cr] {
            assert_eq!(other.paragraphs, lf.paragraphs);
            assert_eq!(other.authors, lf.authors);
            assert_eq!(other.read_count, lf.read_count);
        }
    }

    /// Table of header shapes: (text, title, section, authors, issue).
    #[test]
    fn every_header_variant_parses() {
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [&'a str],
            Option<NaiveDate>,
        );
        let cases: &[Case] = &[
            (
                "A Title\n\nWednesday, 27 February 2002\n\nPublished in Analytical Articles\n\nBy Nino Kharadze (2/27/2002 issue of the CACI Analyst)\n\nBody.\n\nRead 5 times\n",
                Some("A Title"),
                Some("Analytical Articles"),
                &["Nino Kharadze"],
                Some(d(2002, 2, 27)),
            ),
            (
                "A Title\nWednesday, 27 February 2002\nPublished in Field Reports\nBy Nino Kharadze\n\nBody.\n",
                Some("A Title"),
                Some("Field Reports"),
                &["Nino Kharadze"],
                None,
            ),
            (
                "Monday, 25 February 2002\n\n\nPublished in News Digest\n\nTajikistan and China agreed.\n\nRead 402 times\n",
                None,
                Some("News Digest"),
                &[],
                None,
            ),
            (
                "A Title Wrapped\nOver Two Lines\n\n27 February 2002\n\nBy Aida Bekova and Timur Rakhimov\n\nPublished in Field Reports\n\nBody.\n",
                Some("A Title Wrapped Over Two Lines"),
                Some("Field Reports"),
                &["Aida Bekova", "Timur Rakhimov"],
                None,
            ),
            (
                "\u{FEFF}\u{201C}Quoted\u{201D} Title\u{00A0}\n\nWednesday, 27 February 2002\n\nPublished in Field Reports\n\nBy Гульнара Исмаилова, Rəşad Əliyev and Aysel Məmmədova (2/27/2002 issue of the CACI Analyst)\n\nBody text.\n\nRead 1,204 times\n",
                Some("\u{201C}Quoted\u{201D} Title"),
                Some("Field Reports"),
                &["Гульнара Исмаилова", "Rəşad Əliyev", "Aysel Məmmədova"],
                Some(d(2002, 2, 27)),
            ),
        ];
        for (text, title, section, authors, issue) in cases {
            let a = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(a.title.as_deref(), *title, "{text}");
            assert_eq!(a.section.as_deref(), *section, "{text}");
            assert_eq!(a.authors, *authors, "{text}");
            assert_eq!(a.issue.map(|i| i.date()), *issue, "{text}");
        }
    }

    #[test]
    fn body_sentence_starting_with_by_is_kept_as_body_of_a_news_item() {
        let a = parse("Monday, 25 February 2002\n\nPublished in News Digest\n\nBy the end of 2001, exports had doubled.\n\nRead 3 times").unwrap();
        assert!(a.authors.is_empty());
        assert_eq!(a.paragraphs, ["By the end of 2001, exports had doubled."]);
    }

    #[test]
    fn signature_forms_are_dropped_and_a_bio_is_kept() {
        let cases = [
            ("By Nino Kharadze", "Nino Kharadze"),
            ("By Nino Kharadze", "NINO  KHARADZE"),
            (
                "By Aida Bekova and Timur Rakhimov",
                "Aida Bekova and Timur Rakhimov",
            ),
            (
                "By Aida Bekova and Timur Rakhimov",
                "Aida Bekova, Timur Rakhimov",
            ),
            ("By Aida Bekova and Timur Rakhimov", "Timur Rakhimov"),
            ("By Rəşad Əliyev", "Rəşad Əliyev"),
        ];
        for (byline, signature) in cases {
            let text = format!(
                "27 February 2002\nPublished in Field Reports\n{byline}\n\nBody.\n\nAUTHOR\u{2019}S BIO: Someone is a researcher.\n\n{signature}\nRead 7 times\n"
            );
            let a = parse(&text).unwrap();
            assert_eq!(
                a.paragraphs,
                ["Body.", "AUTHOR\u{2019}S BIO: Someone is a researcher."],
                "{byline} / {signature}"
            );
        }
    }

    #[test]
    fn last_paragraph_that_is_not_the_author_is_kept() {
        let a = parse("27 February 2002\nPublished in Field Reports\nBy Nino Kharadze\n\nBody.\n\nTbilisi\nRead 7 times\n").unwrap();
        assert_eq!(a.paragraphs, ["Body.", "Tbilisi"]);
    }

    #[test]
    fn lead_dedupe_table() {
        let long = "one two three four five six seven eight nine";
        let cases: &[(&str, &str, bool)] = &[
            (long, &format!("{long} ten eleven."), true),
            (long, long, true),
            ("Short lead.", "Short lead.", true),
            (
                "Baku",
                "Baku is the capital of Azerbaijan and more words follow here.",
                false,
            ),
            (long, &format!("{long}teen is not the same word"), false),
            (
                long,
                "A different second paragraph with many more words in it.",
                false,
            ),
            (
                &long.replace("one", "\u{201C}one\u{201D}"),
                &format!("{}  ten.", long.replace("one", "\"one\"")),
                true,
            ),
        ];
        for (first, second, want) in cases {
            assert_eq!(
                is_repeated_lead(first, second),
                *want,
                "{first:?} / {second:?}"
            );
        }
    }

    #[test]
    fn navigation_ends_a_page_without_a_read_counter() {
        let a = parse("27 February 2002\nPublished in Field Reports\n\nBody.\n\nVisit also\n\nOther article\n").unwrap();
        assert_eq!(a.paragraphs, ["Body."]);
        assert_eq!(a.read_count, None);
    }

    #[test]
    fn notes_that_are_not_articles_say_why() {
        let cases: &[(&str, &str)] = &[
            (
                "Just a note to self about the next issue.\n",
                "no date line",
            ),
            (
                "Wednesday, 27 February 2002\n\nSome words.\n",
                "no `Published in",
            ),
            (
                "Wednesday, 27 February 2002\nPublished in Field Reports\n\nRead 5 times\n",
                "no body text",
            ),
            (
                "Thursday, 31 February 2002\nPublished in Field Reports\n\nBody\n",
                "not a real date",
            ),
        ];
        for (text, why) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn wrong_weekday_is_a_warning_not_a_skip() {
        let a = parse("Monday, 27 February 2002\nPublished in Field Reports\n\nBody.\n").unwrap();
        assert_eq!(a.date, d(2002, 2, 27));
        assert!(
            a.warnings[0].contains("was a Wednesday"),
            "{:?}",
            a.warnings
        );
    }

    #[test]
    fn body_html_is_escaped() {
        let a = parse(
            "27 February 2002\nPublished in Field Reports\n\n<script>alert(1)</script> & co\n",
        )
        .unwrap();
        assert_eq!(
            a.body_html,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"
        );
    }
}
