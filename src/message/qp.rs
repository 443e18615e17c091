//! Quoted-printable (RFC 2045 §6.7), written line by line.
//!
//! A hard line break of the text stays a CRLF in the encoding, so every source line encodes
//! on its own: that is what lets the composer encode the lines all subscribers share once
//! and only the personalised ones per copy. Beyond what RFC 2045 requires, the output never
//! starts a line with `.` (written `=2E`) or `From ` (`=46rom `), and never carries a tab or
//! a trailing space literally, so it survives SMTP dot handling, mbox files and DKIM relaxed
//! canonicalisation unchanged in meaning. Encoded lines are at most [`MAX_LINE`] octets.

/// The longest encoded line, soft-break `=` included (RFC 2045 §6.7 rule 5).
pub const MAX_LINE: usize = 76;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Encodes `text`, turning every line break (CRLF, bare CR or bare LF) into CRLF.
/// A final line without a break is written without one.
pub fn encode_text(text: &[u8], out: &mut Vec<u8>) {
    for_each_line(text, |line, has_break| encode_line(line, has_break, out));
}

/// Calls `f(line, has_break)` for each line of `text`; `\r\n`, `\r` and `\n` each end a line.
pub fn for_each_line(text: &[u8], mut f: impl FnMut(&[u8], bool)) {
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' => {
                f(&text[start..i], true);
                i += 1;
                start = i;
            }
            b'\r' => {
                f(&text[start..i], true);
                i += if text.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < text.len() {
        f(&text[start..], false);
    }
}

/// Encodes one line (no line break inside `line`), then CRLF when `hard_break`.
pub fn encode_line(line: &[u8], hard_break: bool, out: &mut Vec<u8>) {
    out.reserve(line.len() + line.len() / 16 + 4);
    let mut col = 0usize;
    let last_index = line.len().wrapping_sub(1);
    for (i, &b) in line.iter().enumerate() {
        let last = i == last_index;
        let mut literal = is_literal(b, col, last, &line[i..]);
        let mut width = if literal { 1 } else { 3 };
        // Room for this token, and for a soft-break `=` unless it ends the line.
        let limit = if last { MAX_LINE } else { MAX_LINE - 1 };
        if col + width > limit {
            out.extend_from_slice(b"=\r\n");
            col = 0;
            literal = is_literal(b, col, last, &line[i..]);
            width = if literal { 1 } else { 3 };
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        col += width;
    }
    if hard_break {
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether byte `b` at column `col` may be written as itself.
#[inline]
fn is_literal(b: u8, col: usize, last: bool, rest: &[u8]) -> bool {
    match b {
        b'=' => false,
        b' ' => !last,
        b'.' => col != 0,
        b'F' => !(col == 0 && rest.starts_with(b"From ")),
        33..=126 => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes quoted-printable; soft breaks removed, CRLF kept.
    fn decode(encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(encoded.len());
        let mut i = 0;
        while i < encoded.len() {
            let b = encoded[i];
            if b == b'=' {
                if encoded[i + 1..].starts_with(b"\r\n") {
                    i += 3;
                    continue;
                }
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                if let (Some(h), Some(l)) = (
                    encoded.get(i + 1).copied().and_then(hex),
                    encoded.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
        out
    }

    fn enc(s: &str) -> String {
        let mut out = Vec::new();
        encode_text(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_line_break_becomes_crlf_and_round_trips() {
        let e = enc("a\nb\r\nc\rd");
        assert_eq!(e, "a\r\nb\r\nc\r\nd");
        assert_eq!(decode(e.as_bytes()), b"a\r\nb\r\nc\r\nd");
    }

    #[test]
    fn long_lines_get_soft_breaks_and_no_line_exceeds_76() {
        let text = "é".repeat(100) + &"x".repeat(200) + " =.\n" + &"word ".repeat(60);
        let e = enc(&text);
        for line in e.split("\r\n") {
            assert!(line.len() <= MAX_LINE, "{} > 76: {line}", line.len());
        }
        let expected = text.replace('\n', "\r\n");
        assert_eq!(String::from_utf8(decode(e.as_bytes())).unwrap(), expected);
    }

    #[test]
    fn escapes_are_never_split_by_a_soft_break() {
        for n in 60..80 {
            let text = "a".repeat(n) + "ééééé";
            let e = enc(&text);
            for line in e.split("\r\n") {
                let bytes = line.as_bytes();
                for (i, &b) in bytes.iter().enumerate() {
                    if b == b'=' {
                        assert!(i + 1 == bytes.len() || i + 2 < bytes.len(), "{line}");
                    }
                }
            }
            assert_eq!(String::from_utf8(decode(e.as_bytes())).unwrap(), text);
        }
    }

    #[test]
    fn dots_from_lines_tabs_and_trailing_spaces_are_encoded() {
        assert_eq!(enc(".\n"), "=2E\r\n");
        assert_eq!(enc("From here"), "=46rom here");
        assert_eq!(enc("Fromage"), "Fromage");
        assert_eq!(enc("a.b"), "a.b");
        assert_eq!(enc("end \n"), "end=20\r\n");
        assert_eq!(enc("a\tb"), "a=09b");
        // a soft-broken continuation starting with a dot is encoded too
        let text = "x".repeat(75) + "..";
        let e = enc(&text);
        assert!(e.contains("=\r\n=2E"), "{e}");
        assert!(e.lines().all(|l| !l.starts_with('.')), "{e}");
        assert_eq!(decode(e.as_bytes()), text.as_bytes());
    }
}
