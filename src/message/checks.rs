//! Deliverability checks: what `check` and `send` report before any send.
//!
//! Each check names a rule of docs/standards.md that receivers (Gmail, Yahoo, Outlook) enforce
//! and says what to change. An [`Severity::Error`] is something a send refuses (no HTTPS
//! one-click unsubscribe URL, no visible unsubscribe link, an unusable DKIM key); a
//! [`Severity::Warning`] is something that hurts delivery or compliance but does not stop a
//! send (misaligned domains, no postal address, HTML that Gmail clips). Each finding says
//! which rule it is about ([`FindingKind`]), so a caller that checks a rule its own way
//! (`check` measures the HTML and looks for a *visible* link itself) leaves that kind out.
//! Pure: it reads the DKIM key file named in the config and this machine's host name
//! (for the EHLO check), nothing else.

use std::fmt;

use crate::config::Config;
use crate::digest::contract::Rendered;

use super::address::SenderAddress;
use super::dkim;
use super::unsubscribe::{parse_mailto, parse_unsubscribe_url};

/// An HTML part beyond this many octets *on the wire* (encoded) is warned about: Gmail clips
/// a message whose source passes about 102 KB ("[Message clipped]"), hiding the footer and
/// its unsubscribe link; the margin leaves room for the header and the text part.
pub const HTML_CLIP_BYTES: usize = 90 * 1024;

/// How serious a finding, or a line of a report, is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Checked and fine.
    Ok,
    /// Worth knowing; nothing to fix.
    Note,
    /// Hurts delivery or compliance; a send still goes out.
    Warning,
    /// A send is refused.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Ok => "ok",
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Which rule a finding is about, for callers that check some rules their own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// `[unsubscribe]`: the one-click URL or the mailto address.
    UnsubscribeConfig,
    /// A `[sender]` address or the List-Id.
    Sender,
    /// `[dkim]`: the key, or the signing domain's alignment with From.
    Dkim,
    /// The bounce domain's alignment with From.
    BounceAlignment,
    /// The postal address in both parts.
    PostalAddress,
    /// The size of the HTML part (Gmail clips it).
    HtmlSize,
    /// A visible unsubscribe link in both parts.
    UnsubscribeLink,
}

/// One deliverability problem found before any send.
#[derive(Debug, Clone)]
pub struct Finding {
    /// [`Severity::Error`] or [`Severity::Warning`].
    pub severity: Severity,
    pub kind: FindingKind,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

fn error(kind: FindingKind, message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Error,
        kind,
        message: message.into(),
    }
}

fn warning(kind: FindingKind, message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Warning,
        kind,
        message: message.into(),
    }
}

/// Whether two domains align in DMARC's relaxed mode, approximated as equal or one a
/// subdomain of the other (the public suffix list is not consulted).
fn domains_aligned(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// Undoes the HTML escapes a template engine may put into a URL.
fn unescape_url_entities(html: &str) -> String {
    html.replace("&#x2F;", "/")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#x3D;", "=")
        .replace("&#61;", "=")
        .replace("&#x3F;", "?")
        .replace("&amp;", "&")
}

/// Whether `text` holds the unsubscribe URL: the template's parts around `{token}` with a
/// token-like run (base64url, at least 16 characters) in each gap.
pub(crate) fn contains_unsubscribe_url(text: &str, parts: &[String]) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    'outer: for (start, _) in text.match_indices(first.as_str()) {
        let mut at = start + first.len();
        for part in rest {
            let run = text[at..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                .count();
            if run < 16 || !text[at + run..].starts_with(part.as_str()) {
                continue 'outer;
            }
            at += run + part.len();
        }
        return true;
    }
    false
}

/// Deliverability problems of this config and a sample rendered copy (used by `check`).
/// The sample should be rendered with a real unsubscribe URL (any subscriber's).
pub fn deliverability_findings(config: &Config, sample: &Rendered) -> Vec<Finding> {
    let mut out = Vec::new();
    let url_parts = unsubscribe_config(config, &mut out);
    domains(config, &mut out);
    postal_address(config, sample, &mut out);
    // Gmail clips long HTML, and hides the footer (unsubscribe link included) with it.
    let (encoding, wire) = super::choose_encoding(sample.html.as_bytes());
    if wire > HTML_CLIP_BYTES {
        out.push(warning(
            FindingKind::HtmlSize,
            format!(
                "the HTML part is {:.1} KB on the wire ({}); Gmail clips messages over about \
                 102 KB (hiding the footer and its unsubscribe link): use `body = \"lead\"` \
                 or fewer articles",
                wire as f64 / 1024.0,
                encoding.name()
            ),
        ));
    }
    if let Some(parts) = &url_parts {
        unsubscribe_links(sample, parts, &mut out);
    }
    out
}

/// One-click unsubscribe (RFC 8058, Gmail/Yahoo bulk sender rules): the `[unsubscribe]` URL
/// split at `{token}`, when it is usable.
fn unsubscribe_config(config: &Config, out: &mut Vec<Finding>) -> Option<Vec<String>> {
    let kind = FindingKind::UnsubscribeConfig;
    let Some(u) = &config.unsubscribe else {
        out.push(error(
            kind,
            "no [unsubscribe] url: a send is refused without one; add [unsubscribe] \
             url = \"https://your.site/unsubscribe?t={token}\" (answered by `fortnight serve`)",
        ));
        return None;
    };
    if let Some(m) = &u.mailto {
        match parse_mailto(m) {
            Err(e) => out.push(error(kind, format!("{e:#}"))),
            Ok(target) => {
                // Every token minted with this key id has the same length.
                let sample = crate::token::UnsubscribeKey::new(&u.key_id, &[0u8; 32])
                    .ok()
                    .map(|k| {
                        k.mint(
                            "list",
                            &crate::subscribers::SubscriberEmail::parse("a@b.org")
                                .expect("a valid address"),
                        )
                    });
                if sample.is_some_and(|t| target.entry(&t).is_none()) {
                    out.push(warning(
                        kind,
                        format!(
                            "[unsubscribe] mailto `{m}`: its local part leaves no room for the reader's token (`{}+TOKEN` must fit in 64 characters), so messages offer no mailto unsubscribe; use a shorter local part such as `unsubscribe`",
                            target.local
                        ),
                    ));
                }
            }
        }
    }
    match parse_unsubscribe_url(&u.url) {
        Ok(parts) => Some(parts),
        Err(e) => {
            out.push(error(kind, format!("{e:#}; a send is refused without one")));
            None
        }
    }
}

/// Domains: From, List-Id, DKIM d=, envelope sender (DMARC alignment).
fn domains(config: &Config, out: &mut Vec<Finding>) {
    let sender = &config.sender;
    let from_domain = match SenderAddress::from_of(config) {
        Ok(a) => Some(a.domain().to_ascii_lowercase()),
        Err(e) => {
            out.push(error(FindingKind::Sender, format!("{e:#}")));
            None
        }
    };
    let list_id = sender.list_id.trim();
    if !dkim::is_ldh_name(list_id) || !list_id.contains('.') {
        out.push(error(FindingKind::Sender, format!(
            "[sender] list_id `{list_id}` must be a dotted name on your domain, like `digest.example.org` (RFC 2919)"
        )));
    }
    dkim_keys(config, from_domain.as_deref(), out);
    if let (Some(smtp), Some(from)) = (&config.smtp, &from_domain) {
        if smtp.helo_name.is_none() && crate::base::host::system_fqdn().is_none() {
            let host = crate::base::host::host_name().unwrap_or_else(|| "unknown".into());
            out.push(warning(
                FindingKind::Sender,
                format!(
                    "this machine's name `{host}` is not fully qualified, so EHLO will greet \
                     with the From domain `{from}`; set [smtp] helo_name to this machine's \
                     public host name (the one its IP address resolves back to)"
                ),
            ));
        }
    }
    if let (Some(_), Some(from)) = (&sender.bounce, &from_domain) {
        match SenderAddress::bounce_of(config) {
            Ok(bounce) => {
                let bounce_domain = bounce.as_ref().map_or("", SenderAddress::domain);
                if !domains_aligned(from, bounce_domain) {
                    out.push(warning(
                        FindingKind::BounceAlignment,
                        format!(
                        "the bounce domain `{bounce_domain}` is not aligned with the From domain \
                         `{from}`: SPF then cannot count for DMARC; use a bounce address on {from} \
                         or one of its subdomains"
                    ),
                    ));
                }
            }
            Err(e) => out.push(error(FindingKind::Sender, format!("{e:#}"))),
        }
    }
}

/// `[[dkim]]`: each key loads and aligns with From; without a key the relay must sign, and
/// an Ed25519 key alone is not enough (large receivers are reported not to verify
/// ed25519-sha256 yet, so pair it with an RSA key). [RFC 8463 §1; RFC 8058 §4]
fn dkim_keys(config: &Config, from_domain: Option<&str>, out: &mut Vec<Finding>) {
    let kind = FindingKind::Dkim;
    if config.dkim.is_empty() {
        let from = from_domain.unwrap_or("your From domain");
        out.push(warning(
            kind,
            format!(
                "no [dkim] key: fortnight does not sign, so your relay must sign d={from} over \
                 List-Unsubscribe and List-Unsubscribe-Post (one-click is trusted only then); \
                 or add a [[dkim]] key"
            ),
        ));
        return;
    }
    let mut rsa = false;
    for d in &config.dkim {
        match dkim::DkimSigner::load(&d.domain, &d.selector, &config.resolve(&d.private_key)) {
            Ok(signer) => rsa |= signer.algorithm() == "rsa-sha256",
            Err(e) => {
                out.push(error(kind, format!("{e:#}")));
                // An unusable key says nothing about the algorithm: no Ed25519 warning.
                rsa = true;
            }
        }
        if let Some(from) = from_domain {
            if !domains_aligned(from, &d.domain) {
                out.push(warning(
                    kind,
                    format!(
                        "the From domain `{from}` is not aligned with the [dkim] domain `{}`: DMARC \
                         passes only when the signing domain is the From domain or shares its \
                         organisational domain; sign with d={from}",
                        d.domain
                    ),
                ));
            }
        }
    }
    if !rsa {
        out.push(warning(
            kind,
            "only Ed25519 DKIM keys: some large receivers are reported not to verify \
             ed25519-sha256, so their DMARC check sees no signature; add an RSA 2048 key as a \
             second [[dkim]] table (both sign every message)",
        ));
    }
}

/// CAN-SPAM: the sender's postal address in every message.
fn postal_address(config: &Config, sample: &Rendered, out: &mut Vec<Finding>) {
    let kind = FindingKind::PostalAddress;
    match config.sender.postal_address.as_deref().map(str::trim) {
        None | Some("") => out.push(warning(
            kind,
            "no [sender] postal_address: CAN-SPAM requires the sender's postal address in \
             every message; add it so the footer shows it",
        )),
        Some(address) => {
            let mut escaped = String::new();
            crate::base::escape_html_into(address, &mut escaped);
            let in_html = sample.html.contains(address) || sample.html.contains(&escaped);
            if !in_html || !sample.text.contains(address) {
                out.push(warning(
                    kind,
                    format!(
                        "the postal address is missing from the {} of the digest: show \
                     `{{{{ publication.postal_address }}}}` in the footer of both templates",
                        match (in_html, sample.text.contains(address)) {
                            (false, false) => "HTML and text parts",
                            (false, true) => "HTML part",
                            _ => "text part",
                        }
                    ),
                ));
            }
        }
    }
}

/// A visible unsubscribe link in both parts (`parts`: the URL template split at `{token}`).
fn unsubscribe_links(sample: &Rendered, parts: &[String], out: &mut Vec<Finding>) {
    let in_text = contains_unsubscribe_url(&sample.text, parts);
    let in_html = contains_unsubscribe_url(&unescape_url_entities(&sample.html), parts);
    for (present, part) in [(in_text, "text"), (in_html, "HTML")] {
        if !present {
            out.push(error(
                FindingKind::UnsubscribeLink,
                format!(
                    "the {part} template shows no unsubscribe link: put \
                 `{{{{ unsubscribe_url }}}}` in its footer (a send is refused without a \
                 visible unsubscribe link in both parts)"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_accepts_equal_and_nested_domains_only() {
        assert!(domains_aligned(
            "analyst.example.org",
            "Analyst.Example.org."
        ));
        assert!(domains_aligned(
            "news.analyst.example.org",
            "analyst.example.org"
        ));
        assert!(domains_aligned(
            "analyst.example.org",
            "mail.analyst.example.org"
        ));
        assert!(!domains_aligned("analyst.example.org", "example.net"));
        assert!(!domains_aligned(
            "analyst.example.org",
            "badanalyst.example.org"
        ));
    }

    #[test]
    fn unsubscribe_url_is_found_only_with_a_token_in_its_place() {
        let parts = vec!["https://x.org/u?t=".to_string(), "&l=1".to_string()];
        assert!(contains_unsubscribe_url(
            "see https://x.org/u?t=AQJrMQabcdefghijklmnop_-&l=1 now",
            &parts
        ));
        assert!(!contains_unsubscribe_url("https://x.org/u?t=&l=1", &parts));
        assert!(!contains_unsubscribe_url(
            "https://x.org/u?t=short&l=1",
            &parts
        ));
        assert!(!contains_unsubscribe_url("https://x.org/about", &parts));
    }
}
