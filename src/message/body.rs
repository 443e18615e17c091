//! The MIME body (everything after the header block), encoded once per issue.
//!
//! A rendered part is a list of [`Segment`]s: shared text and per-subscriber fields. Each
//! source line without a field is quoted-printable-encoded once, here, and kept as bytes
//! (merged with its neighbours, MIME boundaries and part headers into one [`Chunk::Static`]);
//! only lines holding a field are kept as templates and encoded per copy. For DKIM the
//! relaxed canonical form of every static chunk is computed once too, and the SHA-256 state
//! after the first chunk is saved, so a copy's body hash only feeds bytes to SHA-256.

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
    Line(DynLine),
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

/// A part of the alternative: its segments and how fields are escaped in it.
pub struct PartSource<'a> {
    pub segments: &'a [Segment],
    pub escape: Escape,
}

impl BodyTemplate {
    /// Encodes text/plain then text/html under `boundary` (which must not occur in
    /// quoted-printable output: start it with `=_`).
    pub fn new(boundary: &str, text: PartSource<'_>, html: PartSource<'_>) -> BodyTemplate {
        let mut b = Builder { chunks: Vec::new() };
        let header = |kind: &str| {
            format!(
                "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            )
        };
        b.push_static(header("plain").as_bytes());
        b.push_part(text.segments, text.escape);
        b.push_static(b"\r\n");
        b.push_static(header("html").as_bytes());
        b.push_part(html.segments, html.escape);
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
                Chunk::Line(_) => dyn_lines += 1,
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
            if let Chunk::Line(line) = chunk {
                text.clear();
                fill(&line.line, subscriber, unsubscribe_url, &mut text);
                let mut encoded = Vec::with_capacity(text.len() + text.len() / 8 + 8);
                qp::encode_text(text.as_bytes(), &mut encoded);
                if line.hard_break {
                    encoded.extend_from_slice(b"\r\n");
                }
                len += encoded.len();
                lines.push(encoded);
            }
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
                Chunk::Line(_) => {
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
