//! The unsubscribe URL and mailto of the List-Unsubscribe field: the checks a bulk send
//! needs (`https://`, a `{token}`, header-safe characters) and the one rule that turns a
//! reader's address into the URL the messages carry (the `[unsubscribe] url` template with
//! the reader's token in place of each `{token}`).

use anyhow::{bail, Result};

use super::headers;
use crate::config::Config;
use crate::subscribers::SubscriberEmail;
use crate::token::Keyring;

/// The unsubscribe URL `email` gets in its messages: the `[unsubscribe] url` template with
/// the reader's token (current key) in place of `{token}`; `None` without `[unsubscribe]`.
pub fn unsubscribe_url(
    config: &Config,
    keyring: &Keyring,
    email: &SubscriberEmail,
) -> Option<String> {
    let template = &config.unsubscribe.as_ref()?.url;
    let token = keyring.current().mint(&config.sender.list_id, email);
    Some(fill_url(&split_url(template), &token))
}

/// Whether `c` may appear in a URL inside `<…>` of a List-Unsubscribe field.
fn is_url_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\' | ',')
}

/// Splits the `[unsubscribe] url` template at each `{token}`, after checking it is HTTPS
/// and can be written in a header.
pub(crate) fn parse_unsubscribe_url(url: &str) -> Result<Vec<String>> {
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
pub(crate) fn fill_url(parts: &[String], token: &str) -> String {
    let mut url = String::with_capacity(parts.iter().map(String::len).sum::<usize>() + 64);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            url.push_str(token);
        }
        url.push_str(part);
    }
    url
}

/// The longest local part of an address (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;

/// `[unsubscribe] mailto`, parsed: each reader's messages offer `local+TAG@domain`, where
/// TAG is the reader's token in lower-case base32 (`crate::token::lowercase_form`), so that a
/// mail sent there names its reader (`fortnight bounces` acts on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailtoTarget {
    pub local: String,
    pub domain: String,
    /// The query after `?` (default `subject=unsubscribe`).
    pub query: String,
}

impl MailtoTarget {
    /// The List-Unsubscribe entry for the reader with `token`: `<mailto:local+TAG@domain?…>`,
    /// or `None` when `local+TAG` would be longer than an address's local part may be.
    pub fn entry(&self, token: &str) -> Option<String> {
        let tag = crate::token::lowercase_form(token)?;
        (self.local.len() + 1 + tag.len() <= MAX_LOCAL_PART).then(|| {
            format!(
                "<mailto:{}+{tag}@{}?{}>",
                self.local, self.domain, self.query
            )
        })
    }

    /// The reader's tag when `address` is `local+TAG@domain` (local part and domain compared
    /// ignoring case); `Some(None)` for the plain address or an empty tag; `None` when the
    /// address is not this one.
    pub fn tag_of<'a>(&self, address: &'a str) -> Option<Option<&'a str>> {
        let (local, domain) = address.trim().rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        if local.eq_ignore_ascii_case(&self.local) {
            return Some(None);
        }
        let (base, tag) = local.split_once('+')?;
        base.eq_ignore_ascii_case(&self.local)
            .then_some((!tag.is_empty()).then_some(tag))
    }
}

/// `[unsubscribe] mailto` (`addr`, `mailto:addr` or `mailto:addr?subject=…`), checked.
pub fn parse_mailto(mailto: &str) -> Result<MailtoTarget> {
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
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    if local.contains('+') {
        bail!(
            "[unsubscribe] mailto `{mailto}` holds `+`: fortnight adds `+TOKEN` to the local part itself; write the plain address"
        );
    }
    Ok(MailtoTarget {
        local: local.to_string(),
        domain: domain.to_string(),
        query: query.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn mailto_gets_a_subject_unless_it_has_a_query_and_each_reader_a_tag() {
        let key = crate::token::UnsubscribeKey::new("k1", &[3u8; 32]).unwrap();
        let token = key.mint("l", &SubscriberEmail::parse("a@b.org").unwrap());
        let tag = crate::token::lowercase_form(&token).unwrap();
        let m = parse_mailto("unsub@x.org").unwrap();
        assert_eq!(
            m.entry(&token).unwrap(),
            format!("<mailto:unsub+{tag}@x.org?subject=unsubscribe>")
        );
        assert_eq!(
            m.tag_of(&format!("UNSUB+{}@X.org", tag.to_uppercase())),
            Some(Some(tag.to_uppercase().as_str()))
        );
        assert_eq!(m.tag_of("unsub@x.org"), Some(None));
        assert_eq!(m.tag_of("other+x@x.org"), None);
        assert_eq!(m.tag_of("unsub+x@y.org"), None);
        assert_eq!(
            parse_mailto("MAILTO:unsub@x.org?subject=leave")
                .unwrap()
                .entry(&token)
                .unwrap(),
            format!("<mailto:unsub+{tag}@x.org?subject=leave>")
        );
        // A local part that leaves no room for the tag gets no mailto entry.
        let long = format!("{}@x.org", "u".repeat(20));
        assert!(parse_mailto(&long).unwrap().entry(&token).is_none());
        assert!(parse_mailto("u+x@x.org").is_err());
        assert!(parse_mailto("not an address").is_err());
        assert!(parse_mailto("u@x.org?subject=a b").is_err());
    }
}
