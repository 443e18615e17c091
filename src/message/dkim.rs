//! DKIM signing (RFC 6376) with `ring`: rsa-sha256 (RFC 8301, 2048 to 4096 bits) or
//! ed25519-sha256 (RFC 8463), relaxed/relaxed canonicalisation.
//!
//! lettre's own signer uses the pure-Rust `rsa` crate (~1.7 ms per signature here, and a
//! RUSTSEC advisory), which alone would cap a send below 600 messages/s per core; ring signs
//! the same key several times faster. This module only knows how to canonicalise and sign;
//! the composer decides which header fields are signed and hashes the body (most of which it
//! canonicalised once for every copy). It never reads anything but the key file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use sha2::{Digest as _, Sha256};

/// How long a signature stays valid (`x=` minus `t=`): a week, longer than a relay keeps
/// retrying a message (RFC 5321 §4.5.4.1 suggests giving up after 4–5 days), short enough
/// that a message replayed later no longer carries a valid signature. [RFC 6376 §3.5]
pub const EXPIRY_SECS: i64 = 7 * 24 * 3600;

/// The private key, by algorithm.
enum SigningKey {
    Rsa { pair: RsaKeyPair, rng: SystemRandom },
    Ed25519(Ed25519KeyPair),
}

/// A loaded DKIM key with its signing domain and selector.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: SigningKey,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm())
            .finish()
    }
}

/// Whether `s` is a dot-separated run of LDH labels (a domain name or a selector).
pub(crate) fn is_ldh_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl DkimSigner {
    /// Loads the PEM key file of `[dkim]` (PKCS#8 RSA or Ed25519; PKCS#1 RSA accepted too).
    pub fn load(domain: &str, selector: &str, path: &Path) -> Result<DkimSigner> {
        let pem = crate::base::files::read_regular(path, 1 << 20).with_context(|| {
            format!(
                "cannot read the DKIM private key `{}` ([dkim] private_key)",
                path.display()
            )
        })?;
        DkimSigner::from_pem(domain, selector, &pem)
            .with_context(|| format!("unusable DKIM private key `{}`", path.display()))
    }

    /// Parses a PEM private key.
    pub(crate) fn from_pem(domain: &str, selector: &str, pem: &[u8]) -> Result<DkimSigner> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_ldh_name(&domain) || !domain.contains('.') {
            bail!("[dkim] domain `{domain}` is not a domain name");
        }
        if !is_ldh_name(selector) {
            bail!("[dkim] selector `{selector}` must be letters, digits, `-`, `_` and dots");
        }
        let (label, der) = pem_decode(pem)?;
        let key = match label.as_str() {
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(pair) => SigningKey::Rsa {
                    pair,
                    rng: SystemRandom::new(),
                },
                Err(rsa_err) => match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    Ok(pair) => SigningKey::Ed25519(pair),
                    Err(_) if rsa_err.to_string() == "TooSmall" => bail!(
                        "the RSA key is too small: DKIM needs at least 2048 bits (RFC 8301); \
                         generate one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem`"
                    ),
                    Err(ed_err) => bail!(
                        "the PKCS#8 key is neither a usable RSA key ({rsa_err}) nor an Ed25519 key ({ed_err}); \
                         fortnight signs with RSA (2048 to 4096 bits) or Ed25519"
                    ),
                },
            },
            "RSA PRIVATE KEY" => SigningKey::Rsa {
                pair: RsaKeyPair::from_der(&der).map_err(|e| {
                    anyhow::anyhow!("the PKCS#1 RSA key is not usable ({e}); DKIM needs 2048 to 4096 bits")
                })?,
                rng: SystemRandom::new(),
            },
            "ENCRYPTED PRIVATE KEY" => bail!(
                "the key is encrypted: write an unencrypted copy readable only by fortnight \
                 (`openssl pkey -in KEY -out dkim.pem`, then chmod 600 dkim.pem)"
            ),
            other => bail!(
                "a `{other}` PEM block is not a PKCS#8 private key: convert it with \
                 `openssl pkcs8 -topk8 -nocrypt -in KEY -out dkim.pem`"
            ),
        };
        Ok(DkimSigner {
            domain,
            selector: selector.to_string(),
            key,
        })
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SigningKey::Rsa { .. } => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// Where the public key must be published: `selector._domainkey.domain`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish at [`DkimSigner::dns_name`].
    pub fn dns_record(&self) -> String {
        match &self.key {
            SigningKey::Rsa { pair, .. } => format!(
                "v=DKIM1; k=rsa; p={}",
                STANDARD.encode(rsa_spki(pair.public().as_ref()))
            ),
            SigningKey::Ed25519(pair) => format!(
                "v=DKIM1; k=ed25519; p={}",
                STANDARD.encode(pair.public_key().as_ref())
            ),
        }
    }

    /// The DKIM-Signature field up to and including `b=` (value still empty), folded at tag
    /// boundaries and at the colons of `h=` so no line passes 78 octets (RFC 5322 §2.1.1).
    /// `x=` is [`EXPIRY_SECS`] after `t=`.
    pub(crate) fn unsigned_field(&self, signed_headers: &str, timestamp: i64, bh: &str) -> String {
        let mut field = String::with_capacity(256 + signed_headers.len());
        field.push_str("DKIM-Signature:");
        let mut line = field.len();
        let mut put = |field: &mut String, piece: &str, space: bool| {
            let sep = usize::from(space);
            if line + sep + piece.len() > super::headers::FOLD_AT {
                field.push_str("\r\n ");
                line = 1;
            } else if space {
                field.push(' ');
                line += 1;
            }
            field.push_str(piece);
            line += piece.len();
        };
        for tag in [
            "v=1;".to_string(),
            format!("a={};", self.algorithm()),
            "c=relaxed/relaxed;".to_string(),
            format!("d={};", self.domain),
            format!("s={};", self.selector),
            format!("t={timestamp};"),
            format!("x={};", timestamp + EXPIRY_SECS),
        ] {
            put(&mut field, &tag, true);
        }
        let names: Vec<&str> = signed_headers.split(':').collect();
        for (i, name) in names.iter().enumerate() {
            let piece = match (i == 0, i + 1 == names.len()) {
                (true, true) => format!("h={name};"),
                (true, false) => format!("h={name}:"),
                (false, true) => format!("{name};"),
                (false, false) => format!("{name}:"),
            };
            // Folding whitespace is allowed around the colons of h= (RFC 6376 §3.5).
            put(&mut field, &piece, i == 0);
        }
        put(&mut field, &format!("bh={bh};"), true);
        field.push_str("\r\n b=");
        field
    }

    /// Signs the RFC 6376 §3.7 input: the canonicalised signed header fields, then the
    /// canonicalised DKIM-Signature field with an empty `b=` and no final CRLF.
    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            SigningKey::Rsa { pair, rng } => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, rng, input, &mut sig)
                    .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
                Ok(sig)
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the input.
            SigningKey::Ed25519(pair) => Ok(pair.sign(&Sha256::digest(input)).as_ref().to_vec()),
        }
    }

    /// The complete DKIM-Signature field (CRLF-terminated) for a message whose signed header
    /// fields canonicalise to `canonical_headers` and whose canonical body hashes to `body_hash`.
    pub(crate) fn field(
        &self,
        signed_headers: &str,
        timestamp: i64,
        canonical_headers: &[u8],
        body_hash: &[u8],
    ) -> Result<String> {
        let mut field = self.unsigned_field(signed_headers, timestamp, &STANDARD.encode(body_hash));
        let mut input = Vec::with_capacity(canonical_headers.len() + field.len());
        input.extend_from_slice(canonical_headers);
        relaxed_header(field.as_bytes(), &mut input);
        // The DKIM-Signature field is hashed without its final CRLF.
        input.truncate(input.len() - 2);
        let sig = STANDARD.encode(self.sign(&input)?);
        // Fold b= into lines of at most 76 octets; whitespace in b= is ignored by verifiers.
        let mut line = " b=".len();
        for (i, c) in sig.char_indices() {
            if line >= 76 {
                field.push_str("\r\n ");
                line = 1;
            }
            field.push_str(&sig[i..i + c.len_utf8()]);
            line += 1;
        }
        field.push_str("\r\n");
        Ok(field)
    }
}

/// Relaxed header canonicalisation (RFC 6376 §3.4.2) of one CRLF-terminated field
/// `Name: value` (folds allowed), appended to `out` as `name:value\r\n`.
pub fn relaxed_header(field: &[u8], out: &mut Vec<u8>) {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name = &field[..colon];
    let name_end = name
        .iter()
        .rposition(|b| !b" \t".contains(b))
        .map_or(0, |p| p + 1);
    out.extend(name[..name_end].iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or(&[]);
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => pending_space = started,
            _ => {
                if pending_space {
                    out.push(b' ');
                    pending_space = false;
                }
                started = true;
                out.push(b);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Relaxed body canonicalisation (RFC 6376 §3.4.4) of complete lines: runs of spaces and
/// tabs become one space, whitespace before a CRLF goes. (The composer's bodies never end in
/// empty lines, so the rule about trailing empty lines has nothing to remove.)
pub fn relaxed_body(lines: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    for &b in lines {
        match b {
            b' ' | b'\t' => pending_space = true,
            b'\r' => {
                pending_space = false;
                out.push(b);
            }
            _ => {
                if pending_space {
                    out.push(b' ');
                    pending_space = false;
                }
                out.push(b);
            }
        }
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, the usual DKIM `p=` form.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    fn der_len(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x03];
    der_len(pkcs1.len() + 1, &mut bit_string);
    bit_string.push(0);
    bit_string.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(ALGORITHM.len() + bit_string.len(), &mut out);
    out.extend_from_slice(&ALGORITHM);
    out.extend_from_slice(&bit_string);
    out
}

/// Decodes the first PEM block: (label, DER).
fn pem_decode(pem: &[u8]) -> Result<(String, Vec<u8>)> {
    let text = std::str::from_utf8(pem).context("the key file is not PEM text")?;
    let start = text
        .find("-----BEGIN ")
        .context("the key file holds no `-----BEGIN …-----` PEM block")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").context("malformed PEM header line")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body
        .find(&end_marker)
        .with_context(|| format!("the PEM block has no `{end_marker}` line"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(b64)
        .context("the PEM block is not valid base64")?;
    Ok((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header_unfolds_lowercases_and_squeezes_whitespace() {
        let mut out = Vec::new();
        relaxed_header(b"Subject :  Hello\r\n \t World  \r\n", &mut out);
        assert_eq!(out, b"subject:Hello World\r\n");
    }

    #[test]
    fn relaxed_body_squeezes_runs_and_drops_trailing_whitespace() {
        let mut out = Vec::new();
        relaxed_body(b"a  \tb \r\n  c\t\r\n", &mut out);
        assert_eq!(out, b"a b\r\n c\r\n");
    }

    #[test]
    fn bad_pem_is_refused_with_advice() {
        let err = DkimSigner::from_pem("example.org", "s1", b"not a key").unwrap_err();
        assert!(format!("{err:#}").contains("PEM"), "{err:#}");
        let enc =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = DkimSigner::from_pem("example.org", "s1", enc).unwrap_err();
        assert!(format!("{err:#}").contains("openssl pkey"), "{err:#}");
        let err = DkimSigner::from_pem("bad domain", "s1", enc).unwrap_err();
        assert!(format!("{err:#}").contains("domain"), "{err:#}");
    }
}
