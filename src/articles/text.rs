//! Text clean-up shared by both article formats.
//!
//! Article files come from browsers, word processors and editors: UTF-8 with or without a
//! byte order mark, sometimes UTF-16 or Windows-1252, CRLF or lone CR line endings, no-break
//! spaces (U+00A0) where the page had `&nbsp;`, zero-width characters and soft hyphens. This
//! module turns bytes into clean text (or says why they are not text) and provides the
//! comparison key used to recognise repeated paragraphs and signatures. It does not know
//! anything about the article formats themselves.

use std::borrow::Cow;

/// Files larger than this are not articles (the longest real page is a few dozen KB).
pub(crate) const MAX_ARTICLE_BYTES: usize = 8 * 1024 * 1024;

/// The text of a file, or why it is not text.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    /// Set when the bytes were repaired (e.g. read as Windows-1252); worth a warning.
    pub note: Option<&'static str>,
}

/// Decodes file bytes into text.
///
/// UTF-8 (a BOM is removed) is the norm. UTF-16 with a BOM is decoded. Bytes that are not
/// UTF-8 but look like text are read as Windows-1252 (what a Windows editor writes), with a
/// note. NUL bytes, or more than a few control characters, mean a binary file.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<Decoded, String> {
    if bytes.len() > MAX_ARTICLE_BYTES {
        return Err(format!(
            "the file is larger than {} MB, too large to be an article",
            MAX_ARTICLE_BYTES / (1024 * 1024)
        ));
    }
    let utf16 = if bytes.starts_with(&[0xFF, 0xFE]) {
        Some(encoding_rs::UTF_16LE)
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    };
    let (text, note) = if let Some(enc) = utf16 {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[2..]);
        if had_errors {
            return Err("binary file (starts like UTF-16 but is not valid UTF-16)".to_string());
        }
        (
            text.into_owned(),
            Some("the file is UTF-16; read it as such"),
        )
    } else {
        let mut bytes = bytes;
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        if bytes.contains(&0) {
            return Err("binary file (contains NUL bytes)".to_string());
        }
        match String::from_utf8(bytes) {
            Ok(s) => (s, None),
            Err(e) => {
                let (text, _, _) = encoding_rs::WINDOWS_1252.decode(e.as_bytes());
                (
                    text.into_owned(),
                    Some("the file is not valid UTF-8; read it as Windows-1252 (save it as UTF-8 to silence this)"),
                )
            }
        }
    };
    let (controls, chars) = count_controls(&text);
    let chars = chars.max(1);
    // A stray control character here and there is repaired (dropped); a file full of them
    // is not text at all.
    if controls > 8 && controls * 100 > chars {
        return Err(format!(
            "binary file ({controls} control characters in {chars} characters; not text)"
        ));
    }
    if text.trim().is_empty() {
        return Err("empty file".to_string());
    }
    Ok(Decoded { text, note })
}

/// Counts (control characters that have no business in article text, characters) in one
/// pass over the bytes. Tab, line feed, carriage return and form feed are fine; C1 controls
/// (U+0080–U+009F, UTF-8 `C2 80`–`C2 9F`) are not.
fn count_controls(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    // Written as independent counts over the bytes so that the compiler vectorises them.
    let c0 = bytes
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        .count();
    let chars = bytes.iter().filter(|&&b| (b as i8) >= -0x40).count();
    let c1 = if text.is_ascii() {
        0
    } else {
        bytes
            .windows(2)
            .filter(|w| w[0] == 0xC2 && (0x80..=0x9f).contains(&w[1]))
            .count()
    };
    (c0 + c1, chars)
}

/// Splits text into lines on `\n`, `\r\n` and lone `\r`.
pub(crate) fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
}

/// Normalises one line (or a run of text): every kind of space (no-break, thin, ideographic,
/// tab) becomes an ASCII space, runs of spaces collapse to one, zero-width characters, soft
/// hyphens and stray control characters disappear, and the ends are trimmed. Curly quotes
/// and every letter are kept as they are.
pub(crate) fn normalise(s: &str) -> String {
    normalise_cow(s).into_owned()
}

/// [`normalise`] without a copy when the text is already normal.
pub(crate) fn normalise_cow(s: &str) -> Cow<'_, str> {
    if is_clean_ascii(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
        ) || c.is_control()
        {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Printable ASCII without leading, trailing or doubled spaces: already normal (the
/// common case, checked fast).
fn is_clean_ascii(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let mut prev_space = false;
    for &c in b {
        if !(0x20..0x7f).contains(&c) {
            return false;
        }
        let space = c == b' ';
        if space && prev_space {
            return false;
        }
        prev_space = space;
    }
    true
}

/// The key two pieces of text are compared by: normalised, lowercased, curly quotes and
/// dashes folded to their ASCII forms. "Nino Kharadze" matches "nino  kharadze".
pub(crate) fn fold_key(s: &str) -> String {
    normalise(s)
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '«' | '»' => '"',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Words in a paragraph: whitespace-separated tokens holding at least one letter or digit.
pub(crate) fn word_count(paragraphs: &[String]) -> usize {
    paragraphs.iter().map(|p| words_in(p)).sum()
}

fn words_in(p: &str) -> usize {
    if !p.is_ascii() {
        return p
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .count();
    }
    // ASCII fast path: a word ends at whitespace and counts if it held a letter or digit.
    let mut count = 0;
    let mut has_alnum = false;
    for &b in p.as_bytes() {
        if b.is_ascii_whitespace() {
            count += usize::from(has_alnum);
            has_alnum = false;
        } else if b.is_ascii_alphanumeric() {
            has_alnum = true;
        }
    }
    count + usize::from(has_alnum)
}

/// Splits a list of names as written in a byline or a front matter `author` string:
/// `A and B`, `A, B and C`, `A, B, and C`, `A & B`.
pub(crate) fn split_names(s: &str) -> Vec<String> {
    let s = normalise(s).replace(" & ", ", ");
    let mut names = Vec::new();
    for piece in s.split(',') {
        for name in piece.trim().split(" and ") {
            let name = name.trim();
            let name = name.strip_prefix("and ").unwrap_or(name).trim();
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::escape_html;

    #[test]
    fn utf8_bom_is_removed_and_text_kept() {
        let d = decode("\u{FEFF}Ab\u{0259}".as_bytes().to_vec()).unwrap();
        assert_eq!(d.text, "Abə");
        assert!(d.note.is_none());
    }

    #[test]
    fn nul_bytes_make_a_binary_file() {
        let err = decode(b"Wednesday\0\0\0".to_vec()).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn windows_1252_text_is_repaired_with_a_note() {
        let d = decode(b"caf\xe9 \x93quoted\x94".to_vec()).unwrap();
        assert_eq!(d.text, "café \u{201C}quoted\u{201D}");
        assert!(d.note.unwrap().contains("Windows-1252"));
    }

    #[test]
    fn utf16_with_bom_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "Read 5 times".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(bytes).unwrap().text, "Read 5 times");
    }

    #[test]
    fn control_character_soup_is_binary_and_blank_text_is_empty() {
        let soup: Vec<u8> = (1u8..32).cycle().take(400).collect();
        assert!(decode(soup).unwrap_err().contains("binary"));
        assert_eq!(decode(b" \r\n\t\n".to_vec()).unwrap_err(), "empty file");
    }

    #[test]
    fn normalise_turns_every_space_into_one_ascii_space() {
        assert_eq!(
            normalise("\u{00A0} of\u{00A0} building\u{202F}x\u{200B}y\t "),
            "of building xy"
        );
    }

    #[test]
    fn normalise_keeps_clean_ascii_and_fixes_the_rest() {
        let cases = [
            ("Plain text, already normal.", "Plain text, already normal."),
            (" leading", "leading"),
            ("trailing ", "trailing"),
            ("double  space", "double space"),
            ("tab\there", "tab here"),
            ("bell\x07", "bell"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalise(input), want, "{input:?}");
        }
    }

    #[test]
    fn escape_html_escapes_the_five_characters() {
        assert_eq!(escape_html("a<b>&\"c'ə"), "a&lt;b&gt;&amp;&quot;c&#39;ə");
        assert_eq!(escape_html("plain"), "plain");
    }

    #[test]
    fn c1_control_characters_count_as_binary() {
        let soup: String = (0x80u32..0xA0)
            .cycle()
            .take(300)
            .filter_map(char::from_u32)
            .collect();
        assert!(decode(soup.into_bytes()).unwrap_err().contains("binary"));
    }

    #[test]
    fn words_are_tokens_with_a_letter_or_digit_in_any_script() {
        let cases: &[(&str, usize)] = &[
            ("one two  three", 3),
            ("a - b \u{2014} c", 3),
            ("1,204 readers", 2),
            ("Rəşad Əliyev \u{2014} Гульнара", 3),
            ("", 0),
            ("  ", 0),
        ];
        for (p, want) in cases {
            assert_eq!(word_count(&[p.to_string()]), *want, "{p:?}");
        }
        assert_eq!(word_count(&["a b".to_string(), "c".to_string()]), 3);
    }

    #[test]
    fn fold_key_ignores_case_quotes_and_spacing() {
        assert_eq!(fold_key("Azerbaijan\u{2019}s  NATO"), "azerbaijan's nato");
    }

    #[test]
    fn lines_split_on_every_line_ending() {
        let lines: Vec<&str> = split_lines("a\r\nb\rc\nd").collect();
        assert_eq!(lines, ["a", "b", "c", "d"]);
    }

    #[test]
    fn names_split_on_and_commas_and_ampersands() {
        let cases: &[(&str, &[&str])] = &[
            ("Nino Kharadze", &["Nino Kharadze"]),
            ("A One and B Two", &["A One", "B Two"]),
            ("A, B and C", &["A", "B", "C"]),
            ("A, B, and C", &["A", "B", "C"]),
            ("A & B", &["A", "B"]),
            (
                "Гульнара Исмаилова and Rəşad Əliyev",
                &["Гульнара Исмаилова", "Rəşad Əliyev"],
            ),
            ("Alexander Sandro", &["Alexander Sandro"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_names(input), *want, "input {input:?}");
        }
    }
}
