//! Header fields written by hand: RFC 2047 encoded-words, display names, folding, dates.
//!
//! Everything a subscriber or an editor typed (names, subjects, the publication name) goes
//! through [`sanitize`] first, so CR, LF, NUL and other control characters can never reach a
//! header raw (no `Bcc:` smuggled in a name). Non-ASCII text becomes encoded-words (Q or B,
//! whichever is shorter); an ASCII name with specials (`Doe, John`) becomes a quoted string.
//! Lines are folded at spaces to stay within 78 octets where the content allows it and never
//! inside an encoded-word or an `<address>`.

use chrono::{DateTime, Utc};

/// Preferred longest header line (RFC 5322 §2.1.1), CRLF excluded.
pub const FOLD_AT: usize = 78;
/// The longest encoded-word (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;
/// Longest word left as plain text; longer ones are encoded so they can be split.
const MAX_PLAIN_WORD: usize = 66;

/// Control characters become spaces, runs of whitespace one space, ends trimmed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() || c == '\u{FEFF}' {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// RFC 5322 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// A display name as RFC 5322 phrase tokens (joined by single spaces when written).
/// `name` must already be [`sanitize`]d.
pub fn phrase(name: &str) -> Vec<String> {
    let printable = name.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable && !name.contains("=?") {
        if name.split(' ').all(|w| w.bytes().all(is_atext))
            && name.split(' ').all(|w| w.len() <= MAX_PLAIN_WORD)
        {
            return name.split(' ').map(str::to_string).collect();
        }
        let mut quoted = String::with_capacity(name.len() + 2);
        quoted.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        if quoted.len() <= MAX_PLAIN_WORD {
            return vec![quoted];
        }
    }
    encoded_words(name)
}

/// Unstructured text (Subject) as tokens. `text` must already be [`sanitize`]d.
pub fn unstructured(text: &str) -> Vec<String> {
    let plain = text.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' ')
        && !text.contains("=?")
        && text.split(' ').all(|w| w.len() <= MAX_PLAIN_WORD);
    if plain {
        text.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        encoded_words(text)
    }
}

/// Characters an encoded-word in a phrase may carry literally in Q encoding (RFC 2047 §5(3)).
fn q_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!*+-/".contains(&b)
}

fn q_width(c: char) -> usize {
    if c == ' ' || (c.is_ascii() && q_literal(c as u8)) {
        1
    } else {
        3 * c.len_utf8()
    }
}

/// Room for the first encoded-word: what is left of a 78-octet line after the longest field
/// name that carries words (`Reply-To: `), so the first line never needs a fold.
const FIRST_WORD_ROOM: usize = FOLD_AT - "Reply-To: ".len();

/// `text` as UTF-8 encoded-words (Q for mostly-Latin text, B otherwise), each covering whole
/// words where they fit: splits fall at spaces (the space starts the next word, which
/// decoders join without a gap), inside a word only when it alone is too long, and always
/// on character boundaries. The first is at most [`FIRST_WORD_ROOM`] octets, the rest 75.
/// [RFC 2047 §2, §5(3), §6.2]
pub fn encoded_words(text: &str) -> Vec<String> {
    const PREFIX: usize = "=?UTF-8?Q?".len() + "?=".len();
    let q_len: usize = text.chars().map(q_width).sum();
    let b_len = text.len().div_ceil(3) * 4;
    // Q stays readable for mostly-Latin text; B is shorter for other scripts.
    let q = q_len <= b_len + b_len / 2;
    let encoded_len = |s: &str| {
        PREFIX
            + if q {
                s.chars().map(q_width).sum()
            } else {
                s.len().div_ceil(3) * 4
            }
    };
    let encode = |s: &str| {
        if q {
            let mut word = String::from("=?UTF-8?Q?");
            for c in s.chars() {
                if c == ' ' {
                    word.push('_');
                } else if c.is_ascii() && q_literal(c as u8) {
                    word.push(c);
                } else {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        word.push('=');
                        word.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
                        word.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
                    }
                }
            }
            word.push_str("?=");
            word
        } else {
            use base64::engine::general_purpose::STANDARD;
            use base64::Engine;
            format!("=?UTF-8?B?{}?=", STANDARD.encode(s))
        }
    };
    // The text cut before each space: "a", " b", " c".
    let mut pieces = Vec::new();
    let mut from = 0;
    for (i, _) in text.match_indices(' ') {
        if i > from {
            pieces.push(&text[from..i]);
            from = i;
        }
    }
    pieces.push(&text[from..]);

    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let limit = |words: &Vec<String>| {
        if words.is_empty() {
            FIRST_WORD_ROOM
        } else {
            MAX_ENCODED_WORD
        }
    };
    for piece in pieces {
        let joined = format!("{current}{piece}");
        if encoded_len(&joined) <= limit(&words) {
            current = joined;
            continue;
        }
        if !current.is_empty() {
            words.push(encode(&current));
            current.clear();
        }
        // A word too long for one encoded-word is split between characters.
        for c in piece.chars() {
            current.push(c);
            if encoded_len(&current) > limit(&words) {
                current.pop();
                words.push(encode(&current));
                current.clear();
                current.push(c);
            }
        }
    }
    if !current.is_empty() || words.is_empty() {
        words.push(encode(&current));
    }
    words
}

/// Writes `Name: tokens…` with a final CRLF, folding before a token when the line would pass
/// 78 octets (before the first one too, when it fits a line of its own).
pub fn write_field(out: &mut String, name: &str, tokens: &[impl AsRef<str>]) {
    out.push_str(name);
    out.push(':');
    let mut line = name.len() + 1;
    for (i, token) in tokens.iter().enumerate() {
        let token = token.as_ref();
        // A first token too long for the name's line (a Message-ID) starts the next one.
        let fold_first = i == 0 && token.len() < FOLD_AT;
        if (i > 0 || fold_first) && line + 1 + token.len() > FOLD_AT {
            out.push_str("\r\n ");
            line = 1;
        } else {
            out.push(' ');
            line += 1;
        }
        out.push_str(token);
        line += token.len();
    }
    out.push_str("\r\n");
}

/// A mailbox (`phrase <address>` or the bare address) as tokens.
pub fn mailbox(name: &str, address: &str) -> Vec<String> {
    let name = sanitize(name);
    if name.is_empty() {
        vec![address.to_string()]
    } else {
        let mut tokens = phrase(&name);
        tokens.push(format!("<{address}>"));
        tokens
    }
}

/// Whether `address` can go into a header as is: printable ASCII, one `@`, no specials
/// that would end an angle-addr or a list.
pub fn is_header_safe_address(address: &str) -> bool {
    let (local, domain) = match address.rsplit_once('@') {
        Some(p) => p,
        None => return false,
    };
    !local.is_empty()
        && !domain.is_empty()
        && address.len() <= 254
        && address
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"<>()[]\\,;:\"".contains(&b))
        && !domain.contains('@')
}

/// RFC 5322 date-time with a numeric zone, e.g. `Wed, 27 Feb 2002 09:30:00 +0000`.
pub fn date(now: DateTime<Utc>) -> String {
    now.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, tokens: &[String]) -> String {
        let mut s = String::new();
        write_field(&mut s, name, tokens);
        s
    }

    #[test]
    fn control_characters_and_line_breaks_become_single_spaces() {
        assert_eq!(sanitize("  Ann\r\nBcc: x@y\0 \t"), "Ann Bcc: x@y");
        assert_eq!(sanitize("\u{FEFF}Zoë\u{85}Özil"), "Zoë Özil");
    }

    #[test]
    fn plain_names_stay_atoms_and_specials_are_quoted() {
        assert_eq!(phrase("Anna Petrova"), vec!["Anna", "Petrova"]);
        assert_eq!(phrase("Doe, John"), vec!["\"Doe, John\""]);
        assert_eq!(phrase("A \"B\" C\\"), vec!["\"A \\\"B\\\" C\\\\\""]);
        assert!(phrase("=?utf-8?q?x?=")[0].starts_with("=?UTF-8?"));
    }

    #[test]
    fn non_ascii_names_become_short_encoded_words() {
        assert_eq!(phrase("Zoë Özil"), vec!["=?UTF-8?Q?Zo=C3=AB_=C3=96zil?="]);
        let cyr = phrase("Мурат Аманов");
        assert_eq!(cyr.len(), 1);
        assert!(cyr[0].starts_with("=?UTF-8?B?"), "{cyr:?}");
        let long = encoded_words(&"Ж".repeat(100));
        assert!(long.len() > 1);
        assert!(long.iter().all(|w| w.len() <= 75), "{long:?}");
        let long_q = encoded_words(&"é".repeat(40));
        assert!(long_q.iter().all(|w| w.len() <= 75), "{long_q:?}");
    }

    #[test]
    fn encoded_words_split_at_spaces_and_every_line_fits_78() {
        let subject = "Новый паромный маршрут через Каспий: Баку и Актау договорились о расписании";
        let words = unstructured(subject);
        assert!(words.len() > 1, "{words:?}");
        let f = field("Subject", &words);
        for line in f.trim_end().split("\r\n") {
            assert!(line.len() <= FOLD_AT, "{} > 78: {line}", line.len());
        }
        // Each encoded-word decodes to whole words (the space starts the next one).
        use base64::Engine;
        let decoded: Vec<String> = words
            .iter()
            .map(|w| {
                let b64 = w.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(decoded.concat(), subject);
        for d in &decoded[1..] {
            assert!(d.starts_with(' '), "split inside a word: {decoded:?}");
        }
        let latin = "Zoë Özil’s long report on the Caspian ferries, customs and rail freight";
        let f = field("Subject", &unstructured(latin));
        for line in f.trim_end().split("\r\n") {
            assert!(line.len() <= FOLD_AT, "{} > 78: {line}", line.len());
        }
        assert!(f.contains("?=\r\n =?UTF-8?Q?_"), "{f}");
        // A Message-ID longer than its line goes on the next one.
        let id = format!("<20020227.{}@analyst.example.org>", "a".repeat(40));
        let f = field("Message-ID", std::slice::from_ref(&id));
        assert_eq!(f, format!("Message-ID:\r\n {id}\r\n"));
    }

    #[test]
    fn long_fields_fold_between_tokens_only() {
        let tokens = unstructured(&"word ".repeat(40));
        let f = field("Subject", &tokens);
        assert!(f.ends_with("\r\n"));
        for line in f.trim_end().split("\r\n") {
            assert!(line.len() <= FOLD_AT, "{line}");
        }
        assert_eq!(
            f.trim_end().replace("\r\n ", " "),
            format!("Subject: {}", "word ".repeat(40).trim_end())
        );
    }

    #[test]
    fn addresses_with_specials_are_not_header_safe() {
        assert!(is_header_safe_address("a.b+c@example.org"));
        for bad in [
            "a b@x.org",
            "a@x.org>",
            "a\r\n@x.org",
            "x.org",
            "a,b@x.org",
            "é@x.org",
        ] {
            assert!(!is_header_safe_address(bad), "{bad}");
        }
    }

    #[test]
    fn dates_have_a_numeric_zone() {
        let d = DateTime::parse_from_rfc3339("2002-02-27T09:05:00Z").unwrap();
        assert_eq!(
            date(d.with_timezone(&Utc)),
            "Wed, 27 Feb 2002 09:05:00 +0000"
        );
    }
}
