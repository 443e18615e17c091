//! Message: a rendered digest and a subscriber in, one standards-correct MIME message out.
//!
//! A pure function of its inputs (digest, subscriber, config, clock): multipart/alternative
//! (text then HTML, quoted-printable, CRLF only), encoded headers, a deterministic
//! Message-ID per (issue, subscriber), List-Id / List-Unsubscribe / List-Unsubscribe-Post,
//! optional DKIM. It opens no socket.
//!
//! The bytes are written here rather than by lettre's builder. Building 100,000 copies of a
//! ~25 KB digest is dominated by body encoding, and all copies share all but a few lines:
//! [`Composer::new`] encodes (and canonicalises for DKIM) everything shared once, and
//! [`Composer::compose`] only encodes the lines holding a subscriber field, fills the
//! headers and copies bytes into one buffer. The same path builds real deliveries, test
//! copies, dry-run files and the preview's sample, so what a preview shows is what is sent.
//! Correctness is checked against independent parsers and verifiers (mail-parser,
//! mail-auth) in the tests. lettre is still used to parse the configured addresses and, by
//! callers, to transmit the bytes (its SMTP client dot-stuffs on send).

mod body;
pub mod checks;
pub mod dkim;
pub mod headers;
pub mod qp;
mod sample;

use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::base::{hex, IssueDate};
use crate::config::Config;
use crate::digest::{Digest, Escape, Segment};
use crate::subscribers::{Subscriber, SubscriberEmail};
use crate::token::Keyring;

use body::{BodyTemplate, PartSource, Values};
pub use checks::{deliverability_findings, key_advice, unsubscribe_key_finding, Finding, Severity};
pub use dkim::DkimSigner;
pub use sample::{sample_subscriber, unsubscribe_url, Sample};

/// One finished message, ready for SMTP or a file.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub recipient: SubscriberEmail,
    /// With angle brackets, e.g. `<20020227.3f9a…@analyst.example.org>`.
    pub message_id: String,
    pub subject: String,
    /// Envelope MAIL FROM.
    pub envelope_from: String,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
}

impl Outgoing {
    /// The SMTP envelope: MAIL FROM the bounce address, one RCPT (this subscriber).
    pub fn envelope(&self) -> Result<lettre::address::Envelope> {
        let from = lettre::Address::from_str(&self.envelope_from)
            .with_context(|| format!("bad envelope sender `{}`", self.envelope_from))?;
        let to = lettre::Address::from_str(self.recipient.as_str())
            .with_context(|| format!("bad recipient `{}`", self.recipient))?;
        lettre::address::Envelope::new(Some(from), vec![to])
            .context("cannot build the SMTP envelope")
    }
}

/// A header field written the same for every copy, with its DKIM canonical form.
#[derive(Debug, Clone)]
struct StaticField {
    wire: String,
    canon: Vec<u8>,
}

impl StaticField {
    fn new(name: &str, tokens: &[impl AsRef<str>]) -> StaticField {
        let mut wire = String::new();
        headers::write_field(&mut wire, name, tokens);
        let mut canon = Vec::new();
        dkim::relaxed_header(wire.as_bytes(), &mut canon);
        StaticField { wire, canon }
    }
}

/// The subject: fixed for the issue, or a template with fields.
#[derive(Debug, Clone)]
enum SubjectSource {
    Fixed { text: String, field: StaticField },
    PerCopy(Vec<Segment>),
}

/// How the envelope sender is chosen.
#[derive(Debug, Clone)]
enum EnvelopeFrom {
    Fixed(String),
    /// `local+TOKEN@domain` ([bounces] verp).
    Verp {
        local: String,
        domain: String,
    },
}

/// Builds the messages of one issue.
pub struct Composer {
    issue: IssueDate,
    now: DateTime<Utc>,
    digest: Arc<Digest>,
    keyring: Keyring,
    /// `[sender] list_id` exactly as configured: what tokens are minted over, as everywhere
    /// else (preview, serve, bounces, unsubscribe --token).
    list_id: String,
    from_domain: String,
    envelope: EnvelopeFrom,
    /// The unsubscribe URL template split at each `{token}`.
    url_parts: Vec<String>,
    /// `<mailto:…?subject=unsubscribe>`, when configured.
    mailto: Option<String>,
    date: StaticField,
    from: StaticField,
    reply_to: Option<StaticField>,
    list_id_field: StaticField,
    post: StaticField,
    mime: StaticField,
    content_type: StaticField,
    subject: SubjectSource,
    /// Set for test copies: the subject prefix.
    test_prefix: Option<String>,
    /// `[digest] test_subject_prefix`.
    configured_test_prefix: String,
    boundary: String,
    /// Present when the digest has a fast path.
    body: Option<BodyTemplate>,
    /// The fields the fast path substitutes (a copy whose values cannot be substituted as
    /// they are is rendered in full, as [`Digest::render_for`] decides).
    used_fields: Vec<crate::digest::Field>,
    dkim: Option<DkimSigner>,
    /// The `h=` list, in the order the fields are hashed.
    signed_headers: String,
}

impl std::fmt::Debug for Composer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composer")
            .field("issue", &self.issue)
            .field("list_id", &self.list_id)
            .field("fast_path", &self.body.is_some())
            .field("dkim", &self.dkim)
            .field("test_copies", &self.test_prefix.is_some())
            .finish_non_exhaustive()
    }
}

/// Parses `Name <address>` or a bare address from the config.
fn config_mailbox(key: &str, value: &str) -> Result<(String, String)> {
    let mbox = lettre::message::Mailbox::from_str(value.trim()).with_context(|| {
        format!("{key} `{value}` is not an address like `Name <address@example.org>`")
    })?;
    let address = mbox.email.to_string();
    if !headers::is_header_safe_address(&address) {
        bail!("{key} `{value}`: the address must be plain ASCII without quotes or comments");
    }
    Ok((mbox.name.unwrap_or_default(), address))
}

/// `Fixed` parts of a segment list: the whole text when no field is present.
fn fixed_text(segments: &[Segment]) -> Option<String> {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Lit(t) => out.push_str(t),
            Segment::Field(_) => return None,
        }
    }
    Some(out)
}

fn subject_field(text: &str) -> StaticField {
    StaticField::new("Subject", &headers::unstructured(text))
}

impl Composer {
    /// Prepares what all copies share (encoded parts, headers, DKIM key from `[dkim]`).
    pub fn new(
        config: &Config,
        issue: IssueDate,
        digest: Arc<Digest>,
        keyring: Keyring,
        now: DateTime<Utc>,
    ) -> Result<Composer> {
        let sender = &config.sender;
        let unsubscribe = config.unsubscribe.as_ref().context(
            "a bulk send needs an HTTPS unsubscribe URL: add [unsubscribe] url = \
             \"https://your.site/unsubscribe?t={token}\" to the config (RFC 8058 one-click)",
        )?;
        let url_parts = parse_unsubscribe_url(&unsubscribe.url)?;
        let mailto = unsubscribe
            .mailto
            .as_deref()
            .map(parse_mailto)
            .transpose()?;

        let (from_name, from_address) = config_mailbox("[sender] from", &sender.from)?;
        let from_domain = from_address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .expect("a header-safe address holds an @");
        let list_label = sender.list_id.trim().to_ascii_lowercase();
        if !dkim::is_ldh_name(&list_label) || !list_label.contains('.') {
            bail!(
                "[sender] list_id `{}` must be a dotted name on your domain, like `digest.{from_domain}` (RFC 2919)",
                sender.list_id
            );
        }
        let bounce = match &sender.bounce {
            Some(b) => config_mailbox("[sender] bounce", b)?.1,
            None => from_address.clone(),
        };
        let envelope = if config.bounces.verp {
            let (local, domain) = bounce.rsplit_once('@').expect("checked address");
            let probe = keyring.current().mint(
                &sender.list_id,
                &SubscriberEmail::parse("probe@example.org").expect("valid"),
            );
            if local.len() + 1 + probe.len() > 64 {
                bail!(
                    "[bounces] verp: `{local}+TOKEN` would be {} characters, over the 64 allowed in an address; \
                     shorten the bounce address or the [unsubscribe] key_id",
                    local.len() + 1 + probe.len()
                );
            }
            EnvelopeFrom::Verp {
                local: local.to_string(),
                domain: domain.to_string(),
            }
        } else {
            EnvelopeFrom::Fixed(bounce)
        };

        let dkim = match &config.dkim {
            Some(d) => Some(DkimSigner::load(
                &d.domain,
                &d.selector,
                &config.resolve(&d.private_key),
            )?),
            None => None,
        };

        let boundary = {
            let h = Sha256::digest(format!("fortnight/boundary\0{list_label}\0{issue}"));
            format!("=_fn_{}", hex(&h[..12]))
        };
        let reply_to = match &sender.reply_to {
            Some(r) => {
                let (name, address) = config_mailbox("[sender] reply_to", r)?;
                Some(StaticField::new(
                    "Reply-To",
                    &headers::mailbox(&name, &address),
                ))
            }
            None => None,
        };
        let mut list_tokens = headers::phrase(&headers::sanitize(&config.publication.name));
        list_tokens.push(format!("<{list_label}>"));

        let (subject, body) = match &digest.fast {
            Some([subject, html, text]) => {
                let body = BodyTemplate::new(
                    &boundary,
                    PartSource {
                        segments: &text.segments,
                        escape: text.escape,
                    },
                    PartSource {
                        segments: &html.segments,
                        escape: html.escape,
                    },
                );
                let subject = match fixed_text(&subject.segments) {
                    Some(t) => {
                        let text = headers::sanitize(&t);
                        SubjectSource::Fixed {
                            field: subject_field(&text),
                            text,
                        }
                    }
                    None => SubjectSource::PerCopy(subject.segments.clone()),
                };
                (subject, Some(body))
            }
            None => (SubjectSource::PerCopy(Vec::new()), None),
        };

        let mut used_fields = Vec::new();
        for part in digest.fast.iter().flatten() {
            for seg in &part.segments {
                if let Segment::Field(f) = seg {
                    if !used_fields.contains(f) {
                        used_fields.push(f.clone());
                    }
                }
            }
        }

        let mut signed = vec!["from", "to", "subject", "date", "message-id"];
        if reply_to.is_some() {
            signed.push("reply-to");
        }
        signed.extend([
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "mime-version",
            "content-type",
        ]);

        Ok(Composer {
            issue,
            now,
            digest,
            keyring,
            from_domain,
            envelope,
            url_parts,
            mailto,
            date: StaticField::new("Date", &[headers::date(now)]),
            from: StaticField::new("From", &headers::mailbox(&from_name, &from_address)),
            reply_to,
            list_id_field: StaticField::new("List-Id", &list_tokens),
            post: StaticField::new("List-Unsubscribe-Post", &["List-Unsubscribe=One-Click"]),
            mime: StaticField::new("MIME-Version", &["1.0"]),
            content_type: StaticField::new(
                "Content-Type",
                &[
                    "multipart/alternative;",
                    &format!("boundary=\"{boundary}\""),
                ],
            ),
            subject,
            test_prefix: None,
            configured_test_prefix: config.digest.test_subject_prefix.clone(),
            boundary,
            body,
            dkim,
            signed_headers: signed.join(":"),
            list_id: sender.list_id.clone(),
            used_fields,
        })
    }

    /// A composer for `send --to` test copies: subject prefixed with `[digest] test_subject_prefix`,
    /// and a Message-ID of its own (`<YYYYMMDD.test.MILLIS.HASH@domain>`) so a test copy never
    /// shares the ID of the real delivery to the same address (receivers drop duplicates).
    pub fn for_test_copies(mut self) -> Composer {
        let prefix = self.configured_test_prefix.clone();
        if let SubjectSource::Fixed { text, .. } = &self.subject {
            let text = headers::sanitize(&format!("{prefix}{text}"));
            self.subject = SubjectSource::Fixed {
                field: subject_field(&text),
                text,
            };
        }
        self.test_prefix = Some(prefix);
        self
    }

    /// Whether shared parts are encoded once (the digest's fast path) or per copy.
    pub fn uses_fast_path(&self) -> bool {
        self.body.is_some()
    }

    /// The DKIM signer, when `[dkim]` is configured.
    pub fn dkim(&self) -> Option<&DkimSigner> {
        self.dkim.as_ref()
    }

    /// This subscriber's unsubscribe URL.
    pub fn unsubscribe_url(&self, email: &SubscriberEmail) -> String {
        self.url_with_token(&self.keyring.current().mint(&self.list_id, email))
    }

    fn url_with_token(&self, token: &str) -> String {
        fill_url(&self.url_parts, token)
    }

    fn message_id_for(&self, email: &SubscriberEmail) -> String {
        let id = message_id(self.issue, email, &self.from_domain);
        if self.test_prefix.is_some() {
            // <YYYYMMDD.HASH@domain> -> <YYYYMMDD.test.MILLIS.HASH@domain>
            let dot = id.find('.').expect("message ids hold a dot");
            format!(
                "{}.test.{}{}",
                &id[..dot],
                self.now.timestamp_millis(),
                &id[dot..]
            )
        } else {
            id
        }
    }

    pub fn compose(&self, subscriber: &Subscriber) -> Result<Outgoing> {
        let email = &subscriber.email;
        if !headers::is_header_safe_address(email.as_str()) {
            bail!("the address `{email}` cannot be written in a header (it must be plain ASCII)");
        }
        let token = self.keyring.current().mint(&self.list_id, email);
        let url = self.url_with_token(&token);
        let values = Values {
            email: email.as_str(),
            name: &subscriber.name,
            unsubscribe_url: &url,
            attrs: &subscriber.attrs,
        };

        // The body: the shared template, or a full render of this copy (no fast path, or a
        // value that a template would not print as it is, e.g. with control characters).
        let substitutable = self.used_fields.iter().all(|f| {
            crate::digest::fast::value_is_substitutable(crate::digest::fast::field_value(
                f, subscriber, &url,
            ))
        });
        let rendered_body;
        let (body, rendered_subject) = match &self.body {
            Some(b) if substitutable => (b, None),
            _ => {
                let r = self
                    .digest
                    .render_for(subscriber, &url)
                    .with_context(|| format!("cannot render the digest for {email}"))?;
                rendered_body = BodyTemplate::new(
                    &self.boundary,
                    PartSource {
                        segments: &[Segment::Lit(r.text)],
                        escape: Escape::None,
                    },
                    PartSource {
                        segments: &[Segment::Lit(r.html)],
                        escape: Escape::Html,
                    },
                );
                (&rendered_body, Some(r.subject))
            }
        };
        let copy = body.personalise(&values);

        // Per-copy header fields.
        let prefix = self.test_prefix.as_deref().unwrap_or("");
        let raw_subject = match (rendered_subject, &self.subject) {
            (Some(r), _) => Some(r),
            (None, SubjectSource::PerCopy(segments)) => Some(values.fill(segments)),
            (None, SubjectSource::Fixed { .. }) => None,
        };
        let owned_subject = raw_subject.map(|raw| {
            let text = headers::sanitize(&format!("{prefix}{raw}"));
            let field = subject_field(&text);
            (text, field)
        });
        let (subject_text, subject_field) = match (&owned_subject, &self.subject) {
            (Some((text, field)), _) => (text.as_str(), field),
            (None, SubjectSource::Fixed { text, field }) => (text.as_str(), field),
            (None, SubjectSource::PerCopy(_)) => unreachable!("per-copy subjects are filled above"),
        };

        let message_id = self.message_id_for(email);
        let mut fields = String::with_capacity(512);
        headers::write_field(
            &mut fields,
            "To",
            &headers::mailbox(&subscriber.name, email.as_str()),
        );
        let to_end = fields.len();
        headers::write_field(&mut fields, "Message-ID", &[&message_id]);
        let id_end = fields.len();
        let https = format!("<{url}>");
        match &self.mailto {
            Some(m) => headers::write_field(
                &mut fields,
                "List-Unsubscribe",
                &[format!("{https},"), m.clone()],
            ),
            None => headers::write_field(&mut fields, "List-Unsubscribe", &[https]),
        }
        let to = &fields[..to_end];
        let mid = &fields[to_end..id_end];
        let unsub = &fields[id_end..];

        let dkim_field = match &self.dkim {
            Some(signer) => {
                let mut canon = Vec::with_capacity(1024);
                canon_extend(&mut canon, &self.from.canon);
                dkim::relaxed_header(to.as_bytes(), &mut canon);
                canon_extend(&mut canon, &subject_field.canon);
                canon_extend(&mut canon, &self.date.canon);
                dkim::relaxed_header(mid.as_bytes(), &mut canon);
                if let Some(r) = &self.reply_to {
                    canon_extend(&mut canon, &r.canon);
                }
                canon_extend(&mut canon, &self.list_id_field.canon);
                dkim::relaxed_header(unsub.as_bytes(), &mut canon);
                canon_extend(&mut canon, &self.post.canon);
                canon_extend(&mut canon, &self.mime.canon);
                canon_extend(&mut canon, &self.content_type.canon);
                let bh = body.body_hash(&copy);
                Some(signer.field(&self.signed_headers, self.now.timestamp(), &canon, &bh)?)
            }
            None => None,
        };

        let header_parts: [&str; 12] = [
            dkim_field.as_deref().unwrap_or(""),
            &self.date.wire,
            &self.from.wire,
            to,
            &subject_field.wire,
            mid,
            self.reply_to.as_ref().map_or("", |r| r.wire.as_str()),
            &self.list_id_field.wire,
            unsub,
            &self.post.wire,
            &self.mime.wire,
            &self.content_type.wire,
        ];
        let head_len: usize = header_parts.iter().map(|p| p.len()).sum::<usize>() + 2;
        let mut bytes = Vec::with_capacity(head_len + body.len(&copy));
        for p in header_parts {
            bytes.extend_from_slice(p.as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        body.write(&copy, &mut bytes);

        let envelope_from = match &self.envelope {
            EnvelopeFrom::Fixed(a) => a.clone(),
            EnvelopeFrom::Verp { local, domain } => format!("{local}+{token}@{domain}"),
        };
        Ok(Outgoing {
            recipient: email.clone(),
            message_id,
            subject: subject_text.to_string(),
            envelope_from,
            bytes,
        })
    }
}

fn canon_extend(canon: &mut Vec<u8>, bytes: &[u8]) {
    canon.extend_from_slice(bytes);
}

/// The deterministic Message-ID of (issue, subscriber) on the sender's domain:
/// `<YYYYMMDD.HASH@domain>`, HASH being 20 bytes of SHA-256 over (domain, issue, lowercased
/// address) in hex. Every retry of a message carries the same ID; 160 bits make a collision
/// between two subscribers practically impossible.
pub fn message_id(issue: IssueDate, email: &SubscriberEmail, domain: &str) -> String {
    use chrono::Datelike;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let d = issue.date();
    let (y, m, day) = (d.year(), d.month(), d.day());
    let mut h = Sha256::new();
    h.update(b"fortnight/message-id\0");
    h.update(domain.as_bytes());
    h.update(format!("\0{y:04}-{m:02}-{day:02}\0").as_bytes());
    h.update(email.key().as_bytes());
    let digest = h.finalize();
    format!("<{y:04}{m:02}{day:02}.{}@{domain}>", hex(&digest[..20]))
}

/// Whether `c` may appear in a URL inside `<…>` of a List-Unsubscribe field.
fn is_url_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\' | ',')
}

/// Splits the `[unsubscribe] url` template at each `{token}`, after checking it is HTTPS
/// and can be written in a header.
fn parse_unsubscribe_url(url: &str) -> Result<Vec<String>> {
    let url = url.trim();
    let scheme_ok = url.len() > 8 && url[..8].eq_ignore_ascii_case("https://");
    if !scheme_ok {
        bail!(
            "[unsubscribe] url `{url}` must be an https:// URL: a bulk send needs an HTTPS \
             one-click unsubscribe link (RFC 8058; Gmail and Yahoo require it)"
        );
    }
    if !url.contains("{token}") {
        bail!("[unsubscribe] url `{url}` must hold `{{token}}` where the subscriber's token goes");
    }
    if let Some(c) = url.chars().find(|&c| !is_url_char(c)) {
        bail!(
            "[unsubscribe] url `{url}` holds {c:?}, which cannot go into a List-Unsubscribe header: \
             percent-encode it (and write an international host name as xn--…)"
        );
    }
    if url.len() > 800 {
        bail!(
            "[unsubscribe] url is {} characters long; keep it under 800",
            url.len()
        );
    }
    Ok(split_url(url))
}

/// The unsubscribe URL template split at each `{token}`, unchecked (see
/// [`parse_unsubscribe_url`] for the checks a send needs).
fn split_url(url: &str) -> Vec<String> {
    url.trim().split("{token}").map(str::to_string).collect()
}

/// A reader's unsubscribe URL: the template's parts with the token between them. The one
/// place a URL is built from a token.
fn fill_url(parts: &[String], token: &str) -> String {
    let mut url = String::with_capacity(parts.iter().map(String::len).sum::<usize>() + 64);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            url.push_str(token);
        }
        url.push_str(part);
    }
    url
}

/// `[unsubscribe] mailto` (`addr`, `mailto:addr` or `mailto:addr?subject=…`) as `<mailto:…>`.
fn parse_mailto(mailto: &str) -> Result<String> {
    let m = mailto.trim();
    let m = if m.len() >= 7 && m[..7].eq_ignore_ascii_case("mailto:") {
        &m[7..]
    } else {
        m
    };
    let (address, query) = match m.split_once('?') {
        Some((a, q)) => (a, q),
        None => (m, "subject=unsubscribe"),
    };
    if !headers::is_header_safe_address(address) {
        bail!(
            "[unsubscribe] mailto `{mailto}` is not a plain address like `unsubscribe@example.org`"
        );
    }
    if let Some(c) = query.chars().find(|&c| !is_url_char(c)) {
        bail!("[unsubscribe] mailto `{mailto}` holds {c:?}: percent-encode it");
    }
    Ok(format!("<mailto:{address}?{query}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composer_can_be_shared_by_sending_workers() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Composer>();
        send_sync::<Outgoing>();
    }

    #[test]
    fn unsubscribe_urls_must_be_https_with_a_token_and_header_safe() {
        assert_eq!(
            parse_unsubscribe_url("https://x.org/u?t={token}&l={token}").unwrap(),
            vec!["https://x.org/u?t=", "&l=", ""]
        );
        for bad in [
            "http://x.org/u?t={token}",
            "https://x.org/u",
            "https://x.org/u?t={token} x",
            "https://x.org/u?t={token}>",
            "https://x.org/ü?t={token}",
        ] {
            assert!(parse_unsubscribe_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mailto_gets_a_subject_unless_it_has_a_query() {
        assert_eq!(
            parse_mailto("unsub@x.org").unwrap(),
            "<mailto:unsub@x.org?subject=unsubscribe>"
        );
        assert_eq!(
            parse_mailto("MAILTO:unsub@x.org?subject=leave").unwrap(),
            "<mailto:unsub@x.org?subject=leave>"
        );
        assert!(parse_mailto("not an address").is_err());
        assert!(parse_mailto("u@x.org?subject=a b").is_err());
    }
}
