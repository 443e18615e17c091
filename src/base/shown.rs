//! User text quoted in messages: as written, except control characters, which are shown
//! as escapes (`\u{1b}`) so that a cell cannot move the cursor or recolour a terminal.

use std::borrow::Cow;

/// `s` as written (quotes, backslashes and every script unchanged), with control
/// characters escaped.
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn text_is_shown_as_written_but_control_characters_are_escaped() {
        assert_eq!(
            shown("quoted\"local\"@example.org"),
            "quoted\"local\"@example.org"
        );
        assert_eq!(shown("Zoë \\ O'Neil"), "Zoë \\ O'Neil");
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
    }
}
