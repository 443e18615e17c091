//! Message: a rendered digest and a subscriber in, one standards-correct MIME message out.
//!
//! The digest comes in through the digest→message contract ([`crate::digest::contract`]:
//! parts as segments, or one rendered copy on request). A pure function of its inputs
//! (digest, subscriber, config, clock): multipart/alternative
//! (text then HTML, each quoted-printable or base64, whichever is shorter; CRLF only), encoded headers, a deterministic
//! Message-ID per (issue, subscriber), List-Id / List-Unsubscribe / List-Unsubscribe-Post,
//! Feedback-ID, X-Auto-Response-Suppress, optional DKIM. It opens no socket.
//!
//! The bytes are written here rather than by lettre's builder. Building 100,000 copies of a
//! ~25 KB digest is dominated by body encoding, and all copies share all but a few lines:
//! [`Composer::new`] encodes (and canonicalises for DKIM) everything shared once, and
//! [`Composer::compose`] only encodes the lines holding a subscriber field, fills the
//! headers and copies bytes into one buffer. The same path builds real deliveries, test
//! copies, dry-run files and the preview's sample, so what a preview shows is what is sent.
//! Correctness is checked against independent parsers and verifiers (mail-parser,
//! mail-auth) in the tests. lettre is still used to parse the configured addresses (once, in
//! `address`: `SenderAddress`) and, by callers, to transmit the bytes (its SMTP client
//! dot-stuffs on send). Also here: the deliverability findings `check` and `send` report
//! ([`deliverability_findings`]), the sample reader (`sample_subscriber`) and the one
//! unsubscribe-URL rule (`unsubscribe_url`).

mod address;
mod body;
mod checks;
mod dkim;
mod dns;
mod headers;
mod qp;
mod sample;
mod unsubscribe;

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::base::{hex, IssueDate};
use crate::config::{Config, UnsubscribeConfig};
use crate::digest::contract::{self, Escape, Field, Part, Personalise, Segment};
use crate::subscribers::{Subscriber, SubscriberEmail};
use crate::token::Keyring;

pub(crate) use address::SenderAddress;
pub use body::{choose_encoding, TransferEncoding};
use body::{BodyTemplate, PartSource};
pub(crate) use checks::HTML_CLIP_BYTES;
pub use checks::{deliverability_findings, Finding, FindingKind, Severity};
pub use dkim::DkimSigner;
pub use dns::{dns_records, DnsRecord};
pub(crate) use sample::{sample_subscriber, Sample};
pub(crate) use unsubscribe::unsubscribe_url;
use unsubscribe::{fill_url, parse_unsubscribe_url};
pub use unsubscribe::{parse_mailto, MailtoTarget};

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
    PerCopy(Part),
}

/// How the envelope sender is chosen.
#[derive(Debug, Clone)]
enum EnvelopeFrom {
    Fixed(String),
    /// `local+TOKEN@domain` ([bounces] verp), TOKEN in its lowercase form.
    Verp {
        local: String,
        domain: String,
    },
}

/// Builds the messages of one issue.
pub struct Composer {
    issue: IssueDate,
    now: DateTime<Utc>,
    digest: Arc<dyn Personalise>,
    keyring: Keyring,
    /// `[sender] list_id` exactly as configured: what tokens are minted over, as everywhere
    /// else (preview, serve, bounces, unsubscribe --token).
    list_id: String,
    from_domain: String,
    envelope: EnvelopeFrom,
    /// The unsubscribe URL template split at each `{token}`.
    url_parts: Vec<String>,
    /// `[unsubscribe] mailto`, when configured (each copy's entry carries its reader's tag).
    mailto: Option<MailtoTarget>,
    date: StaticField,
    from: StaticField,
    reply_to: Option<StaticField>,
    list_id_field: StaticField,
    post: StaticField,
    feedback_id: StaticField,
    /// `X-Auto-Response-Suppress: OOF, AutoReply` (not signed: it only asks Exchange not to
    /// answer).
    auto_suppress: StaticField,
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
    /// they are is rendered in full, as [`Personalise::render_for`] decides).
    used_fields: Vec<Field>,
    /// One signer per `[[dkim]]` key; every key signs the same fields.
    dkim: Vec<DkimSigner>,
    /// The `h=` list, in the order the fields are hashed.
    signed_headers: String,
    /// Message-IDs a journal recorded for this issue (subscriber key → ID): a copy sent
    /// again keeps the ID of its first attempt, whatever rule made it.
    recorded_ids: Option<Arc<HashMap<String, String>>>,
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

fn subject_field(text: &str) -> StaticField {
    StaticField::new("Subject", &headers::unstructured(text))
}

/// The `[unsubscribe]` URL template split at `{token}`, and the mailto address.
fn unsubscribe_parts(
    unsubscribe: Option<&UnsubscribeConfig>,
) -> Result<(Vec<String>, Option<MailtoTarget>)> {
    let unsubscribe = unsubscribe.context(
        "a bulk send needs an HTTPS unsubscribe URL: add [unsubscribe] url = \
         \"https://your.site/unsubscribe?t={token}\" to the config (RFC 8058 one-click)",
    )?;
    let url_parts = parse_unsubscribe_url(&unsubscribe.url)?;
    let mailto = unsubscribe
        .mailto
        .as_deref()
        .map(parse_mailto)
        .transpose()?;
    Ok((url_parts, mailto))
}

/// The envelope sender: `[sender] bounce` (else `from_address`), VERP-encoded when
/// `[bounces] verp = true` (refused when `local+TOKEN` would not fit in an address).
fn envelope_from(config: &Config, keyring: &Keyring, from_address: &str) -> Result<EnvelopeFrom> {
    let bounce = match SenderAddress::bounce_of(config)? {
        Some(b) => b.address,
        None => from_address.to_string(),
    };
    if !config.bounces.verp {
        return Ok(EnvelopeFrom::Fixed(bounce));
    }
    let (local, domain) = bounce.rsplit_once('@').expect("checked address");
    let probe = verp_token(&keyring.current().mint(
        &config.sender.list_id,
        &SubscriberEmail::parse("probe@example.org").expect("valid"),
    ));
    if local.len() + 1 + probe.len() > 64 {
        bail!(
            "[bounces] verp: `{local}+TOKEN` would be {} characters, over the 64 allowed in an address; \
             shorten the bounce address or the [unsubscribe] key_id",
            local.len() + 1 + probe.len()
        );
    }
    Ok(EnvelopeFrom::Verp {
        local: local.to_string(),
        domain: domain.to_string(),
    })
}

/// The `Feedback-ID` value: `[sender] feedback_id` with `{issue}` filled in, else
/// `ISSUE:LIST_ID:digest:fortnight` (campaign, list, mail type, sender: Gmail's feedback-loop
/// fields, the last the stable sender id). Nothing in it is per recipient.
fn feedback_id(config: &Config, issue: IssueDate, list_label: &str) -> Result<String> {
    use chrono::Datelike;
    let d = issue.date();
    let stamp = format!("{:04}{:02}{:02}", d.year(), d.month(), d.day());
    let value = match &config.sender.feedback_id {
        Some(template) => template.trim().replace("{issue}", &stamp),
        None => format!("{stamp}:{list_label}:digest:fortnight"),
    };
    if value.is_empty()
        || value.len() > 200
        || !value.bytes().all(|b| b.is_ascii_graphic())
        || value.contains("::")
    {
        bail!(
            "[sender] feedback_id `{value}` must be up to 200 printable ASCII characters without \
             spaces, fields separated by single colons (like `{{issue}}:digest:fortnight`)"
        );
    }
    Ok(value)
}

/// The token as the VERP envelope carries it: lowercase base32, since a relay may lowercase
/// the local part (docs/standards.md "Bounces").
fn verp_token(token: &str) -> String {
    crate::token::lowercase_form(token).expect("a minted token is base64url")
}

/// The subject and the shared body of the digest's fast path (a per-copy subject and no
/// shared body without one).
fn subject_and_body(
    parts: Option<&[Part; 3]>,
    boundary: &str,
) -> (SubjectSource, Option<BodyTemplate>) {
    let Some([subject, html, text]) = parts else {
        return (
            SubjectSource::PerCopy(Part {
                segments: Vec::new(),
                escape: Escape::None,
            }),
            None,
        );
    };
    let body = BodyTemplate::new(
        boundary,
        PartSource {
            segments: &text.segments,
            escape: text.escape,
        },
        PartSource {
            segments: &html.segments,
            escape: html.escape,
        },
    );
    let subject = match body::literal_text(&subject.segments) {
        Some(t) => {
            let text = headers::sanitize(&t);
            SubjectSource::Fixed {
                field: subject_field(&text),
                text,
            }
        }
        None => SubjectSource::PerCopy(subject.clone()),
    };
    (subject, Some(body))
}

/// The fields the parts hold, each once, in order of appearance.
fn used_fields(parts: Option<&[Part; 3]>) -> Vec<Field> {
    let mut used = Vec::new();
    for part in parts.into_iter().flatten() {
        for seg in &part.segments {
            if let Segment::Field(f) = seg {
                if !used.contains(f) {
                    used.push(f.clone());
                }
            }
        }
    }
    used
}

/// Header fields a message does not carry that an attacker could add in transit to change
/// what a reader sees or where replies and unsubscribes go; each is listed in `h=` (with
/// nothing hashed for it), so adding one breaks the signature. [RFC 6376 §5.4, §8.15]
const ABSENT_SIGNED: [&str; 12] = [
    "reply-to",
    "cc",
    "sender",
    "in-reply-to",
    "references",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
    "list-archive",
    "list-help",
    "list-post",
    "list-subscribe",
];

/// The DKIM `h=` list: the fields the message carries, in the order they are hashed, then
/// each of them once more and every [`ABSENT_SIGNED`] field the message lacks. An `h=` entry
/// with no instance left hashes nothing, so the extra entries do not change what is signed,
/// but a verifier fails the signature when a copy of one of them is added anywhere in the
/// header (oversigning). [RFC 6376 §5.4.2, §8.15]
fn signed_headers(reply_to: bool) -> String {
    let mut signed = vec!["from", "to", "subject", "date", "message-id"];
    if reply_to {
        signed.push("reply-to");
    }
    signed.extend([
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
        "mime-version",
        "content-type",
    ]);
    let present = signed.clone();
    signed.extend(present.iter().copied());
    signed.extend(ABSENT_SIGNED.iter().filter(|n| !present.contains(n)));
    signed.join(":")
}

impl Composer {
    /// Prepares what all copies share (encoded parts, headers, DKIM key from `[dkim]`).
    pub fn new(
        config: &Config,
        issue: IssueDate,
        digest: Arc<dyn Personalise>,
        keyring: Keyring,
        now: DateTime<Utc>,
    ) -> Result<Composer> {
        let sender = &config.sender;
        let (url_parts, mailto) = unsubscribe_parts(config.unsubscribe.as_ref())?;
        let from = SenderAddress::from_of(config)?;
        let from_domain = from.domain().to_ascii_lowercase();
        let list_label = sender.list_id.trim().to_ascii_lowercase();
        if !dkim::is_ldh_name(&list_label) || !list_label.contains('.') {
            bail!(
                "[sender] list_id `{}` must be a dotted name on your domain, like `digest.{from_domain}` (RFC 2919)",
                sender.list_id
            );
        }
        let envelope = envelope_from(config, &keyring, &from.address)?;
        let dkim = config
            .dkim
            .iter()
            .map(|d| DkimSigner::load(&d.domain, &d.selector, &config.resolve(&d.private_key)))
            .collect::<Result<Vec<_>>>()?;
        let boundary = {
            let h = Sha256::digest(format!("fortnight/boundary\0{list_label}\0{issue}"));
            format!("=_fn_{}", hex(&h[..12]))
        };
        let reply_to = SenderAddress::reply_to_of(config)?
            .map(|r| StaticField::new("Reply-To", &headers::mailbox(&r.name, &r.address)));
        let mut list_tokens = headers::phrase(&headers::sanitize(&config.publication.name));
        list_tokens.push(format!("<{list_label}>"));
        let feedback = feedback_id(config, issue, &list_label)?;
        let (subject, body) = subject_and_body(digest.fast_parts(), &boundary);
        let used_fields = used_fields(digest.fast_parts());

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
            from: StaticField::new("From", &headers::mailbox(&from.name, &from.address)),
            signed_headers: signed_headers(reply_to.is_some()),
            reply_to,
            list_id_field: StaticField::new("List-Id", &list_tokens),
            post: StaticField::new("List-Unsubscribe-Post", &["List-Unsubscribe=One-Click"]),
            feedback_id: StaticField::new("Feedback-ID", &[feedback]),
            auto_suppress: StaticField::new("X-Auto-Response-Suppress", &["OOF,", "AutoReply"]),
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
            list_id: sender.list_id.clone(),
            used_fields,
            recorded_ids: None,
        })
    }

    /// Copies of these subscribers (key → Message-ID, from the journal) keep the recorded
    /// Message-ID.
    pub fn with_recorded_ids(mut self, ids: Arc<HashMap<String, String>>) -> Composer {
        self.recorded_ids = Some(ids);
        self
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

    /// The first DKIM signer, when `[dkim]` is configured.
    pub fn dkim(&self) -> Option<&DkimSigner> {
        self.dkim.first()
    }

    /// Every DKIM signer, in `[[dkim]]` order (their signatures head the message in that order).
    pub fn dkim_signers(&self) -> &[DkimSigner] {
        &self.dkim
    }

    /// This subscriber's unsubscribe URL.
    pub fn unsubscribe_url(&self, email: &SubscriberEmail) -> String {
        self.url_with_token(&self.keyring.current().mint(&self.list_id, email))
    }

    fn url_with_token(&self, token: &str) -> String {
        fill_url(&self.url_parts, token)
    }

    fn message_id_for(&self, email: &SubscriberEmail) -> String {
        if self.test_prefix.is_none() {
            if let Some(id) = self.recorded_ids.as_ref().and_then(|m| m.get(&email.key())) {
                return id.clone();
            }
        }
        let id = message_id(
            self.issue,
            email,
            &self.from_domain,
            &self.list_id,
            &self.keyring,
        );
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

    /// This subscriber's message, dated when the composer was made.
    pub fn compose(&self, subscriber: &Subscriber) -> Result<Outgoing> {
        self.compose_at(subscriber, self.now)
    }

    /// This subscriber's message with `Date` (and DKIM `t=`) set to `now`: a send composes
    /// a copy again right before its transaction when it waited (docs/standards.md).
    pub fn compose_at(&self, subscriber: &Subscriber, now: DateTime<Utc>) -> Result<Outgoing> {
        let date = if now == self.now {
            Cow::Borrowed(&self.date)
        } else {
            Cow::Owned(StaticField::new("Date", &[headers::date(now)]))
        };
        let email = &subscriber.email;
        if !headers::is_header_safe_address(email.as_str()) {
            bail!("the address `{email}` cannot be written in a header (it must be plain ASCII)");
        }
        let token = self.keyring.current().mint(&self.list_id, email);
        let url = self.url_with_token(&token);
        let (body, rendered_subject) = self.body_for(subscriber, &url)?;
        let copy = body.personalise(subscriber, &url);
        let (subject_text, subject_field) = self.subject_for(rendered_subject, subscriber, &url);
        let message_id = self.message_id_for(email);
        let mailto = self.mailto.as_ref().and_then(|m| m.entry(&token));
        let fields = CopyFields::new(subscriber, &message_id, &url, mailto.as_deref());
        let mut dkim_fields = String::new();
        if !self.dkim.is_empty() {
            let canon = self.signed_canon(&fields, &subject_field, &date);
            let bh = body.body_hash(&copy);
            for signer in &self.dkim {
                dkim_fields.push_str(&signer.field(
                    &self.signed_headers,
                    now.timestamp(),
                    &canon,
                    &bh,
                )?);
            }
        }

        let header_parts: [&str; 14] = [
            &dkim_fields,
            &date.wire,
            &self.from.wire,
            fields.to(),
            &subject_field.wire,
            fields.message_id(),
            self.reply_to.as_ref().map_or("", |r| r.wire.as_str()),
            &self.list_id_field.wire,
            fields.list_unsubscribe(),
            &self.post.wire,
            &self.feedback_id.wire,
            &self.auto_suppress.wire,
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
            EnvelopeFrom::Verp { local, domain } => {
                format!("{local}+{}@{domain}", verp_token(&token))
            }
        };
        Ok(Outgoing {
            recipient: email.clone(),
            message_id,
            subject: subject_text.into_owned(),
            envelope_from,
            bytes,
        })
    }

    /// The body of this copy: the shared template, or a full render of this copy (no fast
    /// path, or a value that a template would not print as it is, e.g. with control
    /// characters), with the subject that render gave.
    fn body_for(
        &self,
        subscriber: &Subscriber,
        url: &str,
    ) -> Result<(Cow<'_, BodyTemplate>, Option<String>)> {
        let substitutable = self
            .used_fields
            .iter()
            .all(|f| contract::value_is_substitutable(&contract::field_value(f, subscriber, url)));
        if let Some(b) = self.body.as_ref().filter(|_| substitutable) {
            return Ok((Cow::Borrowed(b), None));
        }
        let r = self
            .digest
            .render_for(subscriber, url)
            .with_context(|| format!("cannot render the digest for {}", subscriber.email))?;
        let body = BodyTemplate::new(
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
        Ok((Cow::Owned(body), Some(r.subject)))
    }

    /// This copy's subject, as text and as a header field: the fixed one, or the one
    /// `rendered` for it or filled in for it, with the test-copy prefix.
    fn subject_for(
        &self,
        rendered: Option<String>,
        subscriber: &Subscriber,
        url: &str,
    ) -> (Cow<'_, str>, Cow<'_, StaticField>) {
        let raw = match (rendered, &self.subject) {
            (Some(r), _) => r,
            (None, SubjectSource::PerCopy(part)) => {
                let mut raw = String::new();
                contract::fill(part, subscriber, url, &mut raw);
                raw
            }
            (None, SubjectSource::Fixed { text, field }) => {
                return (Cow::Borrowed(text), Cow::Borrowed(field))
            }
        };
        let prefix = self.test_prefix.as_deref().unwrap_or("");
        let text = headers::sanitize(&format!("{prefix}{raw}"));
        let field = subject_field(&text);
        (Cow::Owned(text), Cow::Owned(field))
    }

    /// The relaxed canonical form of the signed header fields, in `h=` order.
    fn signed_canon(
        &self,
        fields: &CopyFields,
        subject: &StaticField,
        date: &StaticField,
    ) -> Vec<u8> {
        let mut canon = Vec::with_capacity(1024);
        canon_extend(&mut canon, &self.from.canon);
        dkim::relaxed_header(fields.to().as_bytes(), &mut canon);
        canon_extend(&mut canon, &subject.canon);
        canon_extend(&mut canon, &date.canon);
        dkim::relaxed_header(fields.message_id().as_bytes(), &mut canon);
        if let Some(r) = &self.reply_to {
            canon_extend(&mut canon, &r.canon);
        }
        canon_extend(&mut canon, &self.list_id_field.canon);
        dkim::relaxed_header(fields.list_unsubscribe().as_bytes(), &mut canon);
        canon_extend(&mut canon, &self.post.canon);
        canon_extend(&mut canon, &self.feedback_id.canon);
        canon_extend(&mut canon, &self.mime.canon);
        canon_extend(&mut canon, &self.content_type.canon);
        canon
    }
}

/// The header fields written per copy (To, Message-ID, List-Unsubscribe), in one buffer.
struct CopyFields {
    text: String,
    to_end: usize,
    id_end: usize,
}

impl CopyFields {
    fn new(subscriber: &Subscriber, message_id: &str, url: &str, mailto: Option<&str>) -> Self {
        let mut text = String::with_capacity(512);
        headers::write_field(
            &mut text,
            "To",
            &headers::mailbox(&subscriber.name, subscriber.email.as_str()),
        );
        let to_end = text.len();
        headers::write_field(&mut text, "Message-ID", &[message_id]);
        let id_end = text.len();
        let https = format!("<{url}>");
        match mailto {
            Some(m) => headers::write_field(
                &mut text,
                "List-Unsubscribe",
                &[format!("{https},"), m.to_string()],
            ),
            None => headers::write_field(&mut text, "List-Unsubscribe", &[https]),
        }
        CopyFields {
            text,
            to_end,
            id_end,
        }
    }

    fn to(&self) -> &str {
        &self.text[..self.to_end]
    }

    fn message_id(&self) -> &str {
        &self.text[self.to_end..self.id_end]
    }

    fn list_unsubscribe(&self) -> &str {
        &self.text[self.id_end..]
    }
}

fn canon_extend(canon: &mut Vec<u8>, bytes: &[u8]) {
    canon.extend_from_slice(bytes);
}

/// The deterministic Message-ID of (issue, list, subscriber) on the sender's domain:
/// `<YYYYMMDD.HASH@domain>` (the date prefix is what `bounces` reads the issue from), HASH
/// being 20 bytes of HMAC-SHA256 under the current unsubscribe key over (domain, issue,
/// `list_id`, lowercased address) in hex. Two lists on one domain give one reader two IDs;
/// without the key nobody can tell whose ID it is. Every retry carries the same ID (and a
/// resend the one its journal row recorded); 160 bits make collisions practically impossible.
pub fn message_id(
    issue: IssueDate,
    email: &SubscriberEmail,
    domain: &str,
    list_id: &str,
    keyring: &Keyring,
) -> String {
    use chrono::Datelike;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let d = issue.date();
    let (y, m, day) = (d.year(), d.month(), d.day());
    let scope = format!("{domain}\0{y:04}-{m:02}-{day:02}");
    let tag = keyring.current().message_id_tag(&scope, list_id, email);
    format!("<{y:04}{m:02}{day:02}.{}@{domain}>", hex(&tag))
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
}
