//! The digest→message contract: everything the message layer needs of a rendered issue, in
//! one place.
//!
//! A rendered issue hands over its three parts (subject, HTML, text) as [`Segment`]s when
//! every copy can be personalised by substitution, and renders any one copy on request
//! ([`Personalise`], implemented by [`super::Digest`]). The rules for filling a part
//! (`fill`, [`substitute`]), the filter chains a field may go through per copy ([`Chain`]:
//! `default`, `upper`, …) and when a value may be substituted as it is
//! (`value_is_substitutable`) live here too, so the message layer builds exactly the copy a
//! full render would. Nothing here knows about Tera or templates.

use std::borrow::Cow;
use std::sync::Arc;

use anyhow::Result;

use crate::base::escape_html_into;
use crate::subscribers::Subscriber;

/// Opens the marker standing for a field in a marker render (a private-use character that no
/// article, template or substituted value contains).
pub(crate) const MARK_START: char = '\u{E000}';
/// Closes a marker.
pub(crate) const MARK_END: char = '\u{E001}';

/// The three rendered texts of one subscriber's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// A per-subscriber value that the fast path substitutes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Email,
    Name,
    UnsubscribeUrl,
    Attr(String),
    /// A field through the filters of chain `id` (`default`, `upper`, …), computed per copy.
    Filtered {
        field: Box<Field>,
        id: usize,
        chain: Arc<Chain>,
    },
}

/// A piece of a rendered part: shared text, or a field to fill per subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Lit(String),
    Field(Field),
}

/// How a field is written into a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML-escaped (the HTML part).
    Html,
    /// As is (text part, subject).
    None,
}

/// A rendered part as segments, with how its fields must be escaped.
///
/// The HTML part's literal segments are final HTML; the text part uses LF line endings.
/// The subject's segments are joined and then trimmed of blanks and line breaks by
/// [`substitute`]: use that rather than joining by hand.
#[derive(Debug, Clone)]
pub struct Part {
    pub segments: Vec<Segment>,
    pub escape: Escape,
}

/// What the message layer needs of a rendered issue.
pub trait Personalise: Send + Sync {
    /// The subject, HTML and text parts as segments, when copies are substitutions.
    fn fast_parts(&self) -> Option<&[Part; 3]>;
    /// This subscriber's copy (by substitution when possible, else a full render).
    fn render_for(&self, subscriber: &Subscriber, unsubscribe_url: &str) -> Result<Rendered>;
}

/// One filter of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// `default(value=…)`: the value when the field is empty.
    Default(String),
    Upper,
    Lower,
    Title,
    Capitalize,
    Trim,
    /// `truncate(length=255, end="…")`, counted in characters.
    Truncate {
        length: usize,
        end: String,
    },
    Replace {
        from: String,
        to: String,
    },
}

/// The filters of one print, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    pub ops: Vec<Op>,
}

impl Chain {
    /// The chain applied to one value.
    pub fn apply(&self, value: &str) -> String {
        let mut v = value.to_string();
        for op in &self.ops {
            v = match op {
                Op::Default(d) if v.is_empty() => d.clone(),
                Op::Default(_) => v,
                Op::Upper => v.to_uppercase(),
                Op::Lower => v.to_lowercase(),
                Op::Title => title(&v),
                Op::Capitalize => {
                    let mut chars = v.chars();
                    match chars.next() {
                        None => String::new(),
                        Some(f) => {
                            f.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase()
                        }
                    }
                }
                Op::Trim => v.trim().to_string(),
                Op::Truncate { length, end } => match v.char_indices().nth(*length) {
                    None => v,
                    Some((i, _)) => format!("{}{end}", &v[..i]),
                },
                Op::Replace { from, to } if !from.is_empty() => v.replace(from.as_str(), to),
                Op::Replace { .. } => v,
            };
        }
        v
    }
}

/// Tera's `title`: each word's first letter upper case, the rest lower case (a word is a
/// run of letters, digits, `_` and `'`).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        let word = c.is_alphanumeric() || c == '_' || c == '\'';
        if !word {
            at_start = true;
            out.push(c);
        } else if at_start && c != '\'' {
            out.extend(c.to_uppercase());
            at_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// One line for a header: line breaks and tabs become spaces, the ends are trimmed.
pub(crate) fn normalize_line(s: &str) -> String {
    let joined: String = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined.replace('\t', " ")
}

/// The value of a field for one copy.
pub(crate) fn field_value<'a>(
    field: &Field,
    subscriber: &'a Subscriber,
    unsubscribe_url: &'a str,
) -> Cow<'a, str> {
    Cow::Borrowed(match field {
        Field::Email => subscriber.email.as_str(),
        Field::Name => &subscriber.name,
        Field::UnsubscribeUrl => unsubscribe_url,
        Field::Attr(a) => subscriber.attrs.get(a).map_or("", String::as_str),
        Field::Filtered { field, chain, .. } => {
            return Cow::Owned(chain.apply(&field_value(field, subscriber, unsubscribe_url)))
        }
    })
}

/// Whether a value can be substituted as is: the full render would write it unchanged
/// (no control characters, which the HTML parser and the line-ending normalisation touch;
/// no leading/trailing blanks, which the subject trims; no marker characters).
pub(crate) fn value_is_substitutable(v: &str) -> bool {
    v.trim() == v
        && !v
            .chars()
            .any(|c| c.is_control() || c == MARK_START || c == MARK_END)
}

/// Concatenates a part for one copy.
pub(crate) fn fill(part: &Part, subscriber: &Subscriber, unsubscribe_url: &str, out: &mut String) {
    for seg in &part.segments {
        match seg {
            Segment::Lit(s) => out.push_str(s),
            Segment::Field(f) => {
                let v = field_value(f, subscriber, unsubscribe_url);
                match part.escape {
                    Escape::Html => escape_html_into(&v, out),
                    Escape::None => out.push_str(&v),
                }
            }
        }
    }
}

/// A rough size of a part (its literal bytes), to size buffers.
fn literal_len(part: &Part) -> usize {
    part.segments
        .iter()
        .map(|s| match s {
            Segment::Lit(l) => l.len(),
            Segment::Field(_) => 48,
        })
        .sum()
}

/// One copy by substitution: the (subject, HTML, text) parts filled for `subscriber`, the
/// subject made one line.
pub fn substitute(parts: &[Part; 3], subscriber: &Subscriber, unsubscribe_url: &str) -> Rendered {
    let [s, h, t] = parts;
    let mut subject = String::new();
    fill(s, subscriber, unsubscribe_url, &mut subject);
    let mut html = String::with_capacity(literal_len(h) + 64);
    fill(h, subscriber, unsubscribe_url, &mut html);
    let mut text = String::with_capacity(literal_len(t) + 64);
    fill(t, subscriber, unsubscribe_url, &mut text);
    Rendered {
        subject: normalize_line(&subject),
        html,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_controls_or_padding_are_not_substituted() {
        assert!(value_is_substitutable("Zoë & Bo"));
        assert!(value_is_substitutable(""));
        assert!(!value_is_substitutable(" Zoë"));
        assert!(!value_is_substitutable("a\rb"));
        assert!(!value_is_substitutable("a\u{E000}"));
    }
}
