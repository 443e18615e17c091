//! The MIME body (everything after the header block), encoded once per issue.
//!
//! A rendered part is a list of [`Segment`]s: shared text and per-subscriber fields. Each
//! part goes out in the shorter of quoted-printable and base64 ([`choose_encoding`], decided
//! on its shared text): Latin text stays readable quoted-printable, Cyrillic or Greek text
//! (two octets a letter, six once escaped) goes out in base64 at 4/3 of its size.
//! In quoted-printable each source line without a field is encoded once, here, and kept as
//! bytes (merged with its neighbours, MIME boundaries and part headers into one
//! [`Chunk::Static`]); only lines holding a field are kept as templates and encoded per copy.
//! A base64 part with fields is filled and encoded whole per copy ([`Chunk::Part`]): base64
//! has no lines to keep apart, and encoding ~50 KB costs tens of microseconds (measured in
//! docs/standards.md "Transfer encoding"). For DKIM the relaxed canonical form of every
//! static chunk is computed once too, and the SHA-256 state after the first chunk is saved,
//! so a copy's body hash only feeds bytes to SHA-256.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest as _, Sha256};

use super::dkim::relaxed_body;
use super::qp;
use crate::digest::contract::{fill, Escape, Part, Segment};
use crate::subscribers::Subscriber;

/// A source line that holds at least one field, encoded per copy.
#[derive(Debug, Clone)]
struct DynLine {
    line: Part,
    hard_break: bool,
}

#[derive(Debug, Clone)]
enum Chunk {
    /// Encoded bytes shared by every copy, and their relaxed canonical form when it differs.
    Static {
        wire: Vec<u8>,
        canon: Option<Vec<u8>>,
    },
    /// A quoted-printable line with a field.
    Line(DynLine),
    /// A whole base64 part with a field.
    Part(Part),
}

/// A part's Content-Transfer-Encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    QuotedPrintable,
    Base64,
}

impl TransferEncoding {
    /// The header value.
    pub fn name(self) -> &'static str {
        match self {
            TransferEncoding::QuotedPrintable => "quoted-printable",
            TransferEncoding::Base64 => "base64",
        }
    }
}

/// The encoding a part whose text is `text` goes out in, and its encoded length in octets:
/// quoted-printable unless base64 is shorter (when many octets need escaping: non-Latin
/// scripts). Line breaks count as CRLF either way. [RFC 2045 §6.7, §6.8]
pub fn choose_encoding(text: &[u8]) -> (TransferEncoding, usize) {
    let mut qp_out = Vec::with_capacity(text.len() + text.len() / 4);
    qp::encode_text(text, &mut qp_out);
    let b64 = base64_len(text);
    if b64 < qp_out.len() {
        (TransferEncoding::Base64, b64)
    } else {
        (TransferEncoding::QuotedPrintable, qp_out.len())
    }
}

/// `text` with every line break (CRLF, CR, LF) as CRLF: the canonical form base64 encodes.
fn to_crlf(text: &[u8], out: &mut Vec<u8>) {
    qp::for_each_line(text, |line, brk| {
        out.extend_from_slice(line);
        if brk {
            out.extend_from_slice(b"\r\n");
        }
    });
}

/// The length of [`encode_base64`]'s output for `text`.
fn base64_len(text: &[u8]) -> usize {
    let lone_breaks = text
        .iter()
        .enumerate()
        .filter(|&(i, &b)| {
            (b == b'\n' && (i == 0 || text[i - 1] != b'\r'))
                || (b == b'\r' && text.get(i + 1) != Some(&b'\n'))
        })
        .count();
    let n = (text.len() + lone_breaks).div_ceil(3) * 4;
    n + 2 * (n.saturating_sub(1) / B64_LINE)
}

/// Encoded characters per base64 line (RFC 2045 §6.8: at most 76).
const B64_LINE: usize = 76;

/// Encodes `text` (line breaks made CRLF) as base64 lines of 76 characters, CRLF between
/// lines and none after the last.
fn encode_base64(text: &[u8], out: &mut Vec<u8>) {
    let mut canonical = Vec::with_capacity(text.len() + text.len() / 32);
    to_crlf(text, &mut canonical);
    let encoded = STANDARD.encode(&canonical);
    out.reserve(encoded.len() + encoded.len() / 38 + 2);
    for (i, line) in encoded.as_bytes().chunks(B64_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
}

/// One multipart/alternative body, ready to personalise.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    chunks: Vec<Chunk>,
    static_len: usize,
    dyn_lines: usize,
    /// SHA-256 over the canonical form of the first chunk (always static).
    prefix_hash: Sha256,
}

/// A copy's personalised lines, encoded.
pub struct Personalised {
    lines: Vec<Vec<u8>>,
    len: usize,
}

/// Accumulates chunks.
struct Builder {
    chunks: Vec<Chunk>,
}

impl Builder {
    fn static_buf(&mut self) -> &mut Vec<u8> {
        if !matches!(self.chunks.last(), Some(Chunk::Static { .. })) {
            self.chunks.push(Chunk::Static {
                wire: Vec::new(),
                canon: None,
            });
        }
        match self.chunks.last_mut() {
            Some(Chunk::Static { wire, .. }) => wire,
            _ => unreachable!("a static chunk was just pushed"),
        }
    }

    fn push_static(&mut self, bytes: &[u8]) {
        self.static_buf().extend_from_slice(bytes);
    }

    fn finish_line(
        &mut self,
        line: &mut Vec<Segment>,
        has_field: &mut bool,
        escape: Escape,
        hard_break: bool,
    ) {
        if *has_field {
            self.chunks.push(Chunk::Line(DynLine {
                line: Part {
                    segments: std::mem::take(line),
                    escape,
                },
                hard_break,
            }));
        } else {
            let text: String = line
                .drain(..)
                .map(|p| match p {
                    Segment::Lit(s) => s,
                    Segment::Field(_) => unreachable!("a line without fields has only literals"),
                })
                .collect();
            qp::encode_line(text.as_bytes(), hard_break, self.static_buf());
        }
        *has_field = false;
    }

    /// Adds one part's content in base64: encoded here when it has no field, else per copy.
    fn push_base64_part(&mut self, segments: &[Segment], escape: Escape) {
        match literal_text(segments) {
            Some(text) => encode_base64(text.as_bytes(), self.static_buf()),
            None => self.chunks.push(Chunk::Part(Part {
                segments: segments.to_vec(),
                escape,
            })),
        }
    }

    /// Adds one part's content (quoted-printable), line by line.
    fn push_part(&mut self, segments: &[Segment], escape: Escape) {
        // Merge neighbouring literals so a CR LF split across two of them stays one break.
        let mut merged: Vec<Segment> = Vec::with_capacity(segments.len());
        for s in segments {
            match (s, merged.last_mut()) {
                (Segment::Lit(t), Some(Segment::Lit(prev))) => prev.push_str(t),
                (s, _) => merged.push(s.clone()),
            }
        }
        let mut line: Vec<Segment> = Vec::new();
        let mut has_field = false;
        for piece in merged {
            match piece {
                Segment::Field(f) => {
                    line.push(Segment::Field(f));
                    has_field = true;
                }
                Segment::Lit(text) => qp::for_each_line(text.as_bytes(), |l, brk| {
                    if !l.is_empty() {
                        let l =
                            std::str::from_utf8(l).expect("split at ASCII CR/LF, so still UTF-8");
                        line.push(Segment::Lit(l.to_string()));
                    }
                    if brk {
                        self.finish_line(&mut line, &mut has_field, escape, true);
                    }
                }),
            }
        }
        if !line.is_empty() {
            self.finish_line(&mut line, &mut has_field, escape, false);
        }
    }
}

/// The text of a segment list (a part, the subject) when it holds no field.
pub(crate) fn literal_text(segments: &[Segment]) -> Option<String> {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Lit(t) => out.push_str(t),
            Segment::Field(_) => return None,
        }
    }
    Some(out)
}

/// The encoding of a part, decided on its shared text (the fields are a few short values).
fn part_encoding(segments: &[Segment]) -> TransferEncoding {
    let mut shared = String::new();
    for s in segments {
        if let Segment::Lit(t) = s {
            shared.push_str(t);
        }
    }
    choose_encoding(shared.as_bytes()).0
}

/// A part of the alternative: its segments and how fields are escaped in it.
pub struct PartSource<'a> {
    pub segments: &'a [Segment],
    pub escape: Escape,
}

impl BodyTemplate {
    /// Encodes text/plain then text/html under `boundary` (which must not occur in
    /// quoted-printable or base64 output: start it with `=_`).
    pub fn new(boundary: &str, text: PartSource<'_>, html: PartSource<'_>) -> BodyTemplate {
        let mut b = Builder { chunks: Vec::new() };
        for (kind, part) in [("plain", &text), ("html", &html)] {
            let encoding = part_encoding(part.segments);
            if kind == "html" {
                b.push_static(b"\r\n");
            }
            b.push_static(
                format!(
                    "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n\
                     Content-Transfer-Encoding: {}\r\n\r\n",
                    encoding.name()
                )
                .as_bytes(),
            );
            match encoding {
                TransferEncoding::QuotedPrintable => b.push_part(part.segments, part.escape),
                TransferEncoding::Base64 => b.push_base64_part(part.segments, part.escape),
            }
        }
        b.push_static(format!("\r\n--{boundary}--\r\n").as_bytes());

        let mut static_len = 0;
        let mut dyn_lines = 0;
        for chunk in &mut b.chunks {
            match chunk {
                Chunk::Static { wire, canon } => {
                    static_len += wire.len();
                    let mut c = Vec::with_capacity(wire.len());
                    relaxed_body(wire, &mut c);
                    if c != *wire {
                        *canon = Some(c);
                    }
                }
                Chunk::Line(_) | Chunk::Part(_) => dyn_lines += 1,
            }
        }
        let mut prefix_hash = Sha256::new();
        if let Some(Chunk::Static { wire, canon }) = b.chunks.first() {
            prefix_hash.update(canon.as_ref().unwrap_or(wire));
        }
        BodyTemplate {
            chunks: b.chunks,
            static_len,
            dyn_lines,
            prefix_hash,
        }
    }

    /// Encodes this subscriber's lines.
    pub fn personalise(&self, subscriber: &Subscriber, unsubscribe_url: &str) -> Personalised {
        let mut lines = Vec::with_capacity(self.dyn_lines);
        let mut len = self.static_len;
        let mut text = String::new();
        for chunk in &self.chunks {
            let encoded = match chunk {
                Chunk::Static { .. } => continue,
                Chunk::Line(line) => {
                    text.clear();
                    fill(&line.line, subscriber, unsubscribe_url, &mut text);
                    let mut encoded = Vec::with_capacity(text.len() + text.len() / 8 + 8);
                    qp::encode_text(text.as_bytes(), &mut encoded);
                    if line.hard_break {
                        encoded.extend_from_slice(b"\r\n");
                    }
                    encoded
                }
                Chunk::Part(part) => {
                    text.clear();
                    fill(part, subscriber, unsubscribe_url, &mut text);
                    let mut encoded = Vec::with_capacity(text.len() / 3 * 4 + text.len() / 16 + 8);
                    encode_base64(text.as_bytes(), &mut encoded);
                    encoded
                }
            };
            len += encoded.len();
            lines.push(encoded);
        }
        Personalised { lines, len }
    }

    /// SHA-256 of the relaxed canonical body (DKIM `bh=`).
    pub fn body_hash(&self, copy: &Personalised) -> [u8; 32] {
        let mut hash = self.prefix_hash.clone();
        let mut lines = copy.lines.iter();
        let mut scratch = Vec::new();
        for chunk in self.chunks.iter().skip(1) {
            match chunk {
                Chunk::Static { wire, canon } => hash.update(canon.as_ref().unwrap_or(wire)),
                Chunk::Line(_) => {
                    let encoded = lines.next().expect("one encoded line per template line");
                    scratch.clear();
                    relaxed_body(encoded, &mut scratch);
                    hash.update(&scratch);
                }
                // base64 holds no spaces or tabs: its relaxed form is itself.
                Chunk::Part(_) => {
                    hash.update(lines.next().expect("one encoded part per template part"))
                }
            }
        }
        hash.finalize().into()
    }

    /// The body's length in octets for this copy.
    pub fn len(&self, copy: &Personalised) -> usize {
        copy.len
    }

    /// Appends the body of this copy.
    pub fn write(&self, copy: &Personalised, out: &mut Vec<u8>) {
        let mut lines = copy.lines.iter();
        for chunk in &self.chunks {
            match chunk {
                Chunk::Static { wire, .. } => out.extend_from_slice(wire),
                Chunk::Line(_) | Chunk::Part(_) => {
                    out.extend_from_slice(lines.next().expect("one encoded line per template line"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::contract::Field;
    use crate::subscribers::{Status, SubscriberEmail};

    fn subscriber(email: &str, name: &str) -> Subscriber {
        Subscriber {
            email: SubscriberEmail::parse(email).unwrap(),
            name: name.to_string(),
            status: Status::Subscribed,
            since: String::new(),
            source: String::new(),
            tags: vec![],
            attrs: Default::default(),
        }
    }

    fn lit(s: &str) -> Segment {
        Segment::Lit(s.to_string())
    }

    #[test]
    fn only_lines_with_fields_are_left_to_personalise() {
        let text = vec![
            lit("Hello "),
            Segment::Field(Field::Name),
            lit(",\nshared line\nanother\nUnsubscribe: "),
            Segment::Field(Field::UnsubscribeUrl),
            lit("\n"),
        ];
        let html = vec![
            lit("<p>"),
            Segment::Field(Field::Name),
            lit("</p>\n<p>static</p>\n"),
        ];
        let t = BodyTemplate::new(
            "=_b",
            PartSource {
                segments: &text,
                escape: Escape::None,
            },
            PartSource {
                segments: &html,
                escape: Escape::Html,
            },
        );
        assert_eq!(t.dyn_lines, 3);
        let copy = t.personalise(
            &subscriber("a@example.org", "Tom & \"Jerry\""),
            "https://x.example.org/u?t=abc",
        );
        let mut out = Vec::new();
        t.write(&copy, &mut out);
        assert_eq!(out.len(), t.len(&copy));
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("Hello Tom & \"Jerry\",\r\nshared line\r\n"),
            "{s}"
        );
        assert!(s.contains("<p>Tom &amp; &quot;Jerry&quot;</p>"), "{s}");
        assert!(
            s.contains("Unsubscribe: https://x.example.org/u?t=3Dabc\r\n"),
            "{s}"
        );
        assert!(s.ends_with("\r\n--=_b--\r\n"));
    }

    #[test]
    fn cyrillic_parts_go_out_in_base64_latin_ones_in_quoted_printable() {
        let cyr = "Тбилиси и Баку договорились о новом пароме через Каспий.\n".repeat(40);
        let latin = "Tbilisi and Baku agreed on a new Caspian ferry.\n".repeat(40);
        assert_eq!(choose_encoding(cyr.as_bytes()).0, TransferEncoding::Base64);
        assert_eq!(
            choose_encoding(latin.as_bytes()).0,
            TransferEncoding::QuotedPrintable
        );
        for text in ["", "a", "ab\n", "abc\r\nd", "x\ry", &cyr] {
            let mut out = Vec::new();
            encode_base64(text.as_bytes(), &mut out);
            assert_eq!(out.len(), base64_len(text.as_bytes()), "{text:?}");
            assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 77));
        }
        let html = vec![
            lit(&format!("<p>{}</p>\n<a href=\"", cyr.trim_end())),
            Segment::Field(Field::UnsubscribeUrl),
            lit("\">Отписаться</a>\n"),
        ];
        let text = vec![lit(&latin), Segment::Field(Field::Name), lit("\n")];
        let t = BodyTemplate::new(
            "=_b",
            PartSource {
                segments: &text,
                escape: Escape::None,
            },
            PartSource {
                segments: &html,
                escape: Escape::Html,
            },
        );
        let copy = t.personalise(&subscriber("e@x.org", "Ann"), "https://x.org/u?t=tok");
        let mut out = Vec::new();
        t.write(&copy, &mut out);
        assert_eq!(out.len(), t.len(&copy));
        let s = String::from_utf8(out.clone()).unwrap();
        let (_, html_part) = s
            .split_once("Content-Transfer-Encoding: base64\r\n\r\n")
            .unwrap();
        let b64: String = html_part
            .split("\r\n--=_b--")
            .next()
            .unwrap()
            .split("\r\n")
            .collect();
        let decoded = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert!(
            decoded.contains("https://x.org/u?t=tok\">Отписаться</a>\r\n"),
            "{decoded}"
        );
        assert!(s.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nTbilisi"));
        let mut canon = Vec::new();
        relaxed_body(&out, &mut canon);
        let expected: [u8; 32] = Sha256::digest(&canon).into();
        assert_eq!(t.body_hash(&copy), expected);
    }

    #[test]
    fn the_body_hash_is_the_hash_of_the_canonical_written_body() {
        let text = vec![lit("a  b\n"), Segment::Field(Field::Email), lit("   c\n\n")];
        let html = vec![lit("<p>  x </p>\n")];
        let t = BodyTemplate::new(
            "=_b",
            PartSource {
                segments: &text,
                escape: Escape::None,
            },
            PartSource {
                segments: &html,
                escape: Escape::Html,
            },
        );
        let copy = t.personalise(&subscriber("e@x.org", ""), "");
        let mut out = Vec::new();
        t.write(&copy, &mut out);
        let mut canon = Vec::new();
        relaxed_body(&out, &mut canon);
        let expected: [u8; 32] = Sha256::digest(&canon).into();
        assert_eq!(t.body_hash(&copy), expected);
    }
}
