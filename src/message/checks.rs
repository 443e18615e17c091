//! Deliverability checks: what `fortnight check` reports before any send.
//!
//! Each check names a rule of STANDARDS.md that receivers (Gmail, Yahoo, Outlook) enforce
//! and says what to change. An [`Severity::Error`] is something a send refuses (no HTTPS
//! one-click unsubscribe URL, no visible unsubscribe link, an unusable DKIM key); a
//! [`Severity::Warning`] is something that hurts delivery or compliance but does not stop a
//! send (misaligned domains, no postal address, HTML that Gmail clips). Pure: it reads the
//! DKIM key file named in the config, nothing else.

use std::fmt;

use crate::config::Config;
use crate::digest::Rendered;

use super::{config_mailbox, dkim, parse_mailto, parse_unsubscribe_url};

/// HTML beyond this many bytes is clipped by Gmail ("[Message clipped]", ~102 KB).
pub const HTML_CLIP_BYTES: usize = 100 * 1024;

/// How serious a deliverability finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A send is refused.
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One deliverability problem found before any send.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

fn error(message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Error,
        message: message.into(),
    }
}

fn warning(message: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Warning,
        message: message.into(),
    }
}

/// How to create the unsubscribe signing key.
pub fn key_advice() -> &'static str {
    "generate a key with `openssl rand -base64 48` and export it as FORTNIGHT_UNSUBSCRIBE_KEY \
     (keep it secret and keep it: a new key breaks the unsubscribe links of messages already \
     sent, unless the old one stays listed in [unsubscribe] retired_key_ids)"
}

/// The finding about `FORTNIGHT_UNSUBSCRIBE_KEY`, given its value (if set): a warning when it
/// is missing (previews work with a throwaway key, a real send refuses to start), an error
/// when it is too short, nothing when it is usable. The key itself is never shown.
pub fn unsubscribe_key_finding(key: Option<&[u8]>) -> Option<Finding> {
    let var = crate::config::ENV_UNSUBSCRIBE_KEY;
    match key {
        None => Some(warning(format!(
            "{var} is not set: previews and dry-runs use a throwaway key and a real send \
             refuses to start; {}",
            key_advice()
        ))),
        Some(k) if k.len() < crate::token::MIN_KEY_LEN => Some(error(format!(
            "{var} is {} bytes long; it must be at least {} bytes: {}",
            k.len(),
            crate::token::MIN_KEY_LEN,
            key_advice()
        ))),
        Some(_) => None,
    }
}

/// Whether two domains align in DMARC's relaxed mode, approximated as equal or one a
/// subdomain of the other (the public suffix list is not consulted).
pub fn domains_aligned(a: &str, b: &str) -> bool {
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
    let sender = &config.sender;

    // One-click unsubscribe (RFC 8058, Gmail/Yahoo bulk sender rules).
    let url_parts = match &config.unsubscribe {
        None => {
            out.push(error(
                "no [unsubscribe] url: a send is refused without one; add [unsubscribe] \
                 url = \"https://your.site/unsubscribe?t={token}\" (answered by `fortnight serve`)",
            ));
            None
        }
        Some(u) => {
            if let Some(m) = &u.mailto {
                if let Err(e) = parse_mailto(m) {
                    out.push(error(format!("{e:#}")));
                }
            }
            match parse_unsubscribe_url(&u.url) {
                Ok(parts) => Some(parts),
                Err(e) => {
                    out.push(error(format!("{e:#}; a send is refused without one")));
                    None
                }
            }
        }
    };

    // Domains: From, DKIM d=, envelope sender (DMARC alignment).
    let from_domain = match config_mailbox("[sender] from", &sender.from) {
        Ok((_, address)) => address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase()),
        Err(e) => {
            out.push(error(format!("{e:#}")));
            None
        }
    };
    let list_id = sender.list_id.trim();
    if !dkim::is_ldh_name(list_id) || !list_id.contains('.') {
        out.push(error(format!(
            "[sender] list_id `{list_id}` must be a dotted name on your domain, like `digest.example.org` (RFC 2919)"
        )));
    }
    if let Some(d) = &config.dkim {
        if let Err(e) =
            dkim::DkimSigner::load(&d.domain, &d.selector, &config.resolve(&d.private_key))
        {
            out.push(error(format!("{e:#}")));
        }
        if let Some(from) = &from_domain {
            if !domains_aligned(from, &d.domain) {
                out.push(warning(format!(
                    "the From domain `{from}` is not aligned with the [dkim] domain `{}`: DMARC \
                     passes only when the signing domain is the From domain or shares its \
                     organisational domain; sign with d={from}",
                    d.domain
                )));
            }
        }
    }
    if let (Some(bounce), Some(from)) = (&sender.bounce, &from_domain) {
        match config_mailbox("[sender] bounce", bounce) {
            Ok((_, address)) => {
                let bounce_domain = address.rsplit_once('@').map_or("", |(_, d)| d);
                if !domains_aligned(from, bounce_domain) {
                    out.push(warning(format!(
                        "the bounce domain `{bounce_domain}` is not aligned with the From domain \
                         `{from}`: SPF then cannot count for DMARC; use a bounce address on {from} \
                         or one of its subdomains"
                    )));
                }
            }
            Err(e) => out.push(error(format!("{e:#}"))),
        }
    }

    // CAN-SPAM: the sender's postal address in every message.
    match sender.postal_address.as_deref().map(str::trim) {
        None | Some("") => out.push(warning(
            "no [sender] postal_address: CAN-SPAM requires the sender's postal address in \
             every message; add it so the footer shows it",
        )),
        Some(address) => {
            let mut escaped = String::new();
            crate::base::escape_html_into(address, &mut escaped);
            let in_html = sample.html.contains(address) || sample.html.contains(&escaped);
            if !in_html || !sample.text.contains(address) {
                out.push(warning(format!(
                    "the postal address is missing from the {} of the digest: show \
                     `{{{{ sender.postal_address }}}}` in the footer of both templates",
                    match (in_html, sample.text.contains(address)) {
                        (false, false) => "HTML and text parts",
                        (false, true) => "HTML part",
                        _ => "text part",
                    }
                )));
            }
        }
    }

    // Gmail clips long HTML, and hides the footer (unsubscribe link included) with it.
    if sample.html.len() > HTML_CLIP_BYTES {
        out.push(warning(format!(
            "the HTML part is {:.1} KB; Gmail clips messages over about 102 KB (hiding the \
             footer and its unsubscribe link): use `body = \"lead\"` or fewer articles",
            sample.html.len() as f64 / 1024.0
        )));
    }

    // A visible unsubscribe link in both parts.
    if let Some(parts) = &url_parts {
        let in_text = contains_unsubscribe_url(&sample.text, parts);
        let in_html = contains_unsubscribe_url(&unescape_url_entities(&sample.html), parts);
        for (present, part) in [(in_text, "text"), (in_html, "HTML")] {
            if !present {
                out.push(error(format!(
                    "the {part} template shows no unsubscribe link: put \
                     `{{{{ unsubscribe_url }}}}` in its footer (a send is refused without a \
                     visible unsubscribe link in both parts)"
                )));
            }
        }
    }
    out
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

    #[test]
    fn a_missing_key_gets_advice_and_a_short_one_is_an_error() {
        let missing = unsubscribe_key_finding(None).unwrap();
        assert_eq!(missing.severity, Severity::Warning);
        assert!(missing.message.contains("openssl rand -base64 48"));
        let short = unsubscribe_key_finding(Some(b"short")).unwrap();
        assert_eq!(short.severity, Severity::Error);
        assert!(
            !short.message.contains("short"),
            "the key itself is never shown"
        );
        assert!(unsubscribe_key_finding(Some(&[7u8; 48])).is_none());
    }
}
