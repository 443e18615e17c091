//! The one HTML escaper: templates, the personalisation fast path, article bodies and the
//! unsubscribe pages all escape through it, so every path writes the same bytes.
//!
//! It escapes only what HTML needs (`& < > " '`, plus the no-break space so that the output
//! matches what the CSS inliner writes); Tera 1's own escaper also escapes `/`, which turns
//! every link into `https:&#x2F;&#x2F;…`.

/// Escapes `&`, `<`, `>`, `"`, `'` and U+00A0 (as `&nbsp;`) for HTML text and attribute values.
pub fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 8);
    escape_html_into(input, &mut out);
    out
}

/// [`escape_html`] appending to `out` (no allocation when nothing needs escaping).
pub fn escape_html_into(input: &str, out: &mut String) {
    let mut last = 0;
    for (i, c) in input.char_indices() {
        let rep = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            '\u{a0}' => "&nbsp;",
            _ => continue,
        };
        out.push_str(&input[last..i]);
        out.push_str(rep);
        last = i + c.len_utf8();
    }
    out.push_str(&input[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaper_leaves_slashes_alone_and_escapes_markup_characters() {
        assert_eq!(
            escape_html("https://a.org/x?a=1&b=<2> \"q\" 'q'\u{a0}"),
            "https://a.org/x?a=1&amp;b=&lt;2&gt; &quot;q&quot; &#39;q&#39;&nbsp;"
        );
        assert_eq!(escape_html("plain"), "plain");
    }
}
