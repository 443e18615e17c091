//! Turning an export's bytes into text without inventing characters.
//!
//! Exports arrive as UTF-8 (with or without a BOM), as UTF-16 from Excel's "Unicode Text"
//! (with a BOM), or in a legacy single-byte encoding such as Windows-1252 from older tools.
//! A BOM decides; otherwise valid UTF-8 is UTF-8; otherwise `chardetng` guesses, and the
//! guess is used only when it is a single-byte encoding that decodes every byte to a
//! printable character. Anything else is an error suggesting `--encoding`, never text with
//! U+FFFD or mojibake in it.

use std::path::Path;

use anyhow::{bail, Result};
use encoding_rs::{UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// The encoding of an export: detected (`Auto`) or named by the person importing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Auto,
    Utf8,
    Windows1252,
    Utf16,
}

/// An export decoded to UTF-8 without its BOM.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    /// The encoding used, e.g. `UTF-8`, `UTF-16LE`, `windows-1252`.
    pub encoding: &'static str,
    /// Whether the encoding was guessed from the content (no BOM, not UTF-8).
    pub guessed: bool,
}

/// Decodes `bytes` read from `file` as `wanted` (or detected with `Auto`).
pub(crate) fn decode(bytes: Vec<u8>, wanted: Encoding, file: &Path) -> Result<Decoded> {
    let shown = file.display();
    let bom = encoding_rs::Encoding::for_bom(&bytes);
    match wanted {
        Encoding::Utf8 => utf8(bytes, file),
        Encoding::Utf16 => {
            let enc = match bom {
                Some((e, _)) if e == UTF_16LE || e == UTF_16BE => e,
                _ => utf16_without_bom(&bytes).unwrap_or(UTF_16LE),
            };
            with(enc, &bytes, file, false)
        }
        Encoding::Windows1252 => {
            if bom.is_some() {
                bail!(
                    "{shown} starts with a {} byte-order mark, so it is not windows-1252; \
                     run again without --encoding",
                    bom.map(|(e, _)| e.name()).unwrap_or("Unicode")
                );
            }
            with(WINDOWS_1252, &bytes, file, false)
        }
        Encoding::Auto => {
            if let Some((enc, _)) = bom {
                if enc == UTF_8 {
                    return utf8(bytes, file);
                }
                return with(enc, &bytes, file, false);
            }
            if std::str::from_utf8(&bytes).is_ok() {
                return utf8(bytes, file);
            }
            if let Some(enc) = utf16_without_bom(&bytes) {
                return with(enc, &bytes, file, true);
            }
            let mut detector = chardetng::EncodingDetector::new();
            detector.feed(&bytes, true);
            let guess = detector.guess(None, false);
            let (text, had_errors) = guess.decode_without_bom_handling(&bytes);
            if guess.is_single_byte() && !had_errors && !has_stray_controls(&text) {
                return Ok(Decoded {
                    text: text.into_owned(),
                    encoding: guess.name(),
                    guessed: true,
                });
            }
            bail!(
                "{shown} is not UTF-8 and its encoding could not be recognised with confidence \
                 (first invalid byte on line {}); if it came from Excel or an older tool, run \
                 again with `--encoding windows-1252`, or save it as UTF-8",
                first_invalid_utf8_line(&bytes)
            )
        }
    }
}

fn utf8(mut bytes: Vec<u8>, file: &Path) -> Result<Decoded> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Decoded {
            text,
            encoding: "UTF-8",
            guessed: false,
        }),
        Err(e) => bail!(
            "{} is not valid UTF-8 (first invalid byte on line {}); if it came from Excel or an \
             older tool, run again with `--encoding windows-1252`",
            file.display(),
            first_invalid_utf8_line(e.as_bytes())
        ),
    }
}

fn with(
    enc: &'static encoding_rs::Encoding,
    bytes: &[u8],
    file: &Path,
    guessed: bool,
) -> Result<Decoded> {
    let (text, had_errors) = enc.decode_with_bom_removal(bytes);
    if had_errors {
        bail!(
            "{} is not valid {} (a byte sequence could not be decoded); check the file or \
             choose another --encoding",
            file.display(),
            enc.name()
        );
    }
    Ok(Decoded {
        text: text.into_owned(),
        encoding: enc.name(),
        guessed,
    })
}

/// UTF-16 without a BOM shows as mostly-zero high bytes in mostly-ASCII text.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    if sample.len() < 4 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zero = sample.chunks(2).filter(|p| p[0] == 0).count();
    let odd_zero = sample.chunks(2).filter(|p| p[1] == 0).count();
    if odd_zero * 10 >= pairs * 7 && even_zero * 10 < pairs {
        Some(UTF_16LE)
    } else if even_zero * 10 >= pairs * 7 && odd_zero * 10 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Control characters other than TAB, CR and LF after a single-byte decode mean the guess
/// was wrong (C1 controls) or the bytes are not text at all.
fn has_stray_controls(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

fn first_invalid_utf8_line(bytes: &[u8]) -> usize {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    1 + bytes[..valid].iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(bytes: &[u8]) -> Result<Decoded> {
        decode(bytes.to_vec(), Encoding::Auto, Path::new("f.csv"))
    }

    #[test]
    fn utf8_bom_is_removed() {
        let d = auto(b"\xEF\xBB\xBFemail\n").unwrap();
        assert_eq!(d.text, "email\n");
        assert_eq!(d.encoding, "UTF-8");
    }

    #[test]
    fn utf16_with_bom_in_both_byte_orders_is_decoded() {
        let s = "email\tname\nlena@example.de\tMüller\n";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in s.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(auto(&le).unwrap().text, s);
        assert_eq!(auto(&be).unwrap().text, s);
        // without a BOM too
        assert_eq!(auto(&le[2..]).unwrap().text, s);
    }

    #[test]
    fn windows_1252_is_detected_without_replacement_characters() {
        let bytes =
            b"email;name\nlena@example.de;M\xFCller, Lena\nfr@example.fr;\xC7a Fran\xE7ois\n";
        let d = auto(bytes).unwrap();
        assert!(d.guessed);
        assert!(d.text.contains("Müller, Lena"), "{}", d.text);
        assert!(d.text.contains("Ça François"), "{}", d.text);
        assert!(!d.text.contains('\u{FFFD}'));
    }

    #[test]
    fn forced_utf8_on_legacy_bytes_suggests_windows_1252() {
        let err = decode(
            b"email\nm\xFCller@example.de\n".to_vec(),
            Encoding::Utf8,
            Path::new("old.csv"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("old.csv") && err.contains("--encoding windows-1252"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn binary_garbage_is_refused_with_advice() {
        let bytes: Vec<u8> = (0u8..=255).cycle().take(2000).collect();
        let err = auto(&bytes).unwrap_err().to_string();
        assert!(err.contains("--encoding"), "{err}");
    }
}
