//! The filters fortnight adds to Tera: small pure functions, `date_format`, `excerpt`, `wrap`
//! and `ordinal`. Nothing here knows about issues or subscribers. (Autoescaping uses
//! `crate::base::escape_html`, set on the engine in `templates`, which the fast path also
//! uses for the values it substitutes, so both paths agree byte for byte.)

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::base::lang::Language;
use tera::{Tera, Value};
use unicode_width::UnicodeWidthStr;

/// The filters fortnight adds, with a one-line description each (for error messages and docs).
pub const FILTERS: &[(&str, &str)] = &[
    (
        "date_format",
        "formats a YYYY-MM-DD date: `issue.date | date_format(fmt=\"%-d %B %Y\")`",
    ),
    (
        "excerpt",
        "the first N words, with … when cut: `article.lead | excerpt(words=30)`",
    ),
    (
        "wrap",
        "wraps text for the plain part: `article.lead | wrap(width=78, indent=\"  \")`",
    ),
    ("ordinal", "1 → 1st, 22 → 22nd: `issue.number | ordinal`"),
];

/// Registers the filters on a Tera instance, and takes away the built-in function that reads
/// outside state: `get_env` would put the SMTP password or the unsubscribe key (both come from
/// the environment) into every copy.
pub fn register(tera: &mut Tera, language: Language) {
    tera.register_filter(
        "date_format",
        move |v: &Value, args: &HashMap<String, Value>| date_format(v, args, language),
    );
    tera.register_filter("excerpt", excerpt);
    tera.register_filter("wrap", wrap);
    tera.register_filter("ordinal", ordinal);
    tera.register_function("get_env", no_env);
}

/// Stands in for Tera's `get_env`: templates never read the environment.
fn no_env(_: &HashMap<String, Value>) -> tera::Result<Value> {
    Err(tera::Error::msg(
        "`get_env` is not available in fortnight templates: they cannot read the environment \
         (it holds the SMTP password and the unsubscribe key); put the value in config.toml \
         and use it from there",
    ))
}

fn str_arg<'a>(
    args: &'a HashMap<String, Value>,
    filter: &str,
    name: &str,
) -> tera::Result<Option<&'a str>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(tera::Error::msg(format!(
            "the `{name}` argument of `{filter}` must be text in quotes, not {other}"
        ))),
    }
}

fn usize_arg(
    args: &HashMap<String, Value>,
    filter: &str,
    name: &str,
    default: usize,
) -> tera::Result<usize> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
            tera::Error::msg(format!(
                "the `{name}` argument of `{filter}` must be a whole number, not {v}"
            ))
        }),
    }
}

fn input_str<'a>(value: &'a Value, filter: &str) -> tera::Result<&'a str> {
    value.as_str().ok_or_else(|| {
        tera::Error::msg(format!(
            "the `{filter}` filter works on text, but it was given {value}"
        ))
    })
}

/// The default date format: `27 February 2002`.
pub const DEFAULT_DATE_FORMAT: &str = "%-d %B %Y";

/// Formats a `YYYY-MM-DD` date with a chrono/strftime format, names in `language`.
pub fn format_date(date: &str, fmt: &str, language: Language) -> Result<String, String> {
    let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
        format!("`date_format` expects a date like 2002-02-27, but it was given `{date}`")
    })?;
    language.format_date(d, fmt)
}

fn date_format(
    value: &Value,
    args: &HashMap<String, Value>,
    language: Language,
) -> tera::Result<Value> {
    let date = input_str(value, "date_format")?;
    let fmt = str_arg(args, "date_format", "fmt")?.unwrap_or(DEFAULT_DATE_FORMAT);
    format_date(date, fmt, language)
        .map(Value::String)
        .map_err(tera::Error::msg)
}

/// The first `words` words of `text`; an ellipsis marks a cut.
pub fn excerpt_words(text: &str, words: usize) -> String {
    let all: Vec<&str> = text.split_whitespace().collect();
    if all.len() <= words {
        return all.join(" ");
    }
    let mut out = all[..words].join(" ");
    while out.ends_with([',', ';', ':', '.', '-', '–', '—']) {
        out.pop();
    }
    out.push('…');
    out
}

fn excerpt(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = input_str(value, "excerpt")?;
    let words = usize_arg(args, "excerpt", "words", 30)?;
    Ok(Value::String(excerpt_words(text, words)))
}

/// Greedy word wrap at `width` columns (display width). Each input line is wrapped on its
/// own; blank lines are kept. `first_indent` starts the first output line, `indent` every
/// other one. A word longer than the line (a URL) gets a line of its own, unbroken.
pub fn wrap_text(text: &str, width: usize, indent: &str, first_indent: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut first = true;
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            continue;
        }
        let mut prefix = if first { first_indent } else { indent };
        first = false;
        let mut col = 0;
        let mut line_has_word = false;
        for word in words {
            let w = word.width();
            if line_has_word && col + 1 + w > width {
                out.push('\n');
                prefix = indent;
                line_has_word = false;
            }
            if !line_has_word {
                out.push_str(prefix);
                col = prefix.width();
            } else {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += w;
            line_has_word = true;
        }
    }
    out
}

fn wrap(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = input_str(value, "wrap")?;
    let width = usize_arg(args, "wrap", "width", 78)?;
    let indent = str_arg(args, "wrap", "indent")?.unwrap_or("");
    let first_indent = str_arg(args, "wrap", "first_indent")?.unwrap_or(indent);
    if width < 20 {
        return Err(tera::Error::msg(format!(
            "`wrap(width={width})` is too narrow; use 20 or more"
        )));
    }
    Ok(Value::String(wrap_text(text, width, indent, first_indent)))
}

/// `1st`, `2nd`, `3rd`, `4th`, `11th`, `21st`, …
pub fn ordinal_of(n: i64) -> String {
    let suffix = match (n.rem_euclid(100), n.rem_euclid(10)) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn ordinal(value: &Value, _args: &HashMap<String, Value>) -> tera::Result<Value> {
    let n = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        tera::Error::msg(format!(
            "the `ordinal` filter needs a whole number, but it was given {value}"
        ))
    })?;
    Ok(Value::String(ordinal_of(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_format_formats_iso_dates_and_rejects_other_text() {
        assert_eq!(
            format_date("2002-02-27", DEFAULT_DATE_FORMAT, Language::En).unwrap(),
            "27 February 2002"
        );
        assert_eq!(
            format_date("2002-02-07", "%A %-d %b", Language::En).unwrap(),
            "Thursday 7 Feb"
        );
        assert!(format_date("27/2/2002", "%Y", Language::En)
            .unwrap_err()
            .contains("2002-02-27"));
        assert!(format_date("2002-02-27", "%Q", Language::En)
            .unwrap_err()
            .contains("not a valid"));
    }

    #[test]
    fn excerpt_cuts_at_a_word_boundary_and_marks_the_cut() {
        assert_eq!(excerpt_words("one two, three four", 2), "one two…");
        assert_eq!(excerpt_words("  one   two ", 5), "one two");
    }

    #[test]
    fn wrap_keeps_lines_within_the_width_and_indents() {
        let text = "The construction of the Baku-Tbilisi-Ceyhan oil pipeline has moved from the drawing board to the survey stage.\n\nSecond paragraph.";
        let out = wrap_text(text, 40, "  ", "* ");
        for line in out.lines() {
            assert!(line.width() <= 40, "{line:?}");
        }
        assert!(out.starts_with("* The construction"));
        assert!(out.contains("\n\n  Second paragraph."), "{out}");
        // a long URL stays whole on its own line
        let url = format!("https://example.org/{}", "x".repeat(60));
        let out = wrap_text(&format!("see {url} now"), 30, "", "");
        assert_eq!(out, format!("see\n{url}\nnow"));
    }

    #[test]
    fn wrap_measures_display_width_not_bytes() {
        let out = wrap_text("Zoë Zoë Zoë Zoë Zoë", 11, "", "");
        assert_eq!(out, "Zoë Zoë Zoë\nZoë Zoë");
    }

    #[test]
    fn ordinals_follow_english_rules() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .iter()
            .map(|n| ordinal_of(*n))
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }
}
