//! The few small HTML pages the endpoint answers with.
//!
//! Plain, self-contained (no scripts, no external resources), every dynamic value escaped,
//! and sent with headers that keep them out of caches, search engines and frames and keep
//! the token in the URL from leaking through a `Referer`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::base::lang::Words;

/// Whose pages these are: the publication's name, and the language its pages speak
/// (`[publication] language`, with `[words]` applied).
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub lang: &'static str,
    pub words: Words,
}

impl Site {
    pub fn of(config: &crate::config::Config) -> Site {
        Site {
            name: config.publication.name.clone(),
            lang: config.language().code(),
            words: config.words(),
        }
    }

    /// The word `key`, escaped, with `{publication}` and `{address}` filled in (escaped).
    fn say(&self, key: &str, address: &str) -> String {
        escape(self.words.get(key))
            .replace("{publication}", &escape(&self.name))
            .replace(
                "{address}",
                &format!("<strong>{}</strong>", escape(&mask(address))),
            )
    }
}

/// What a request came to, for the log line (never a token or an address).
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

/// Escapes text for HTML element content and attribute values; control characters are dropped.
pub fn escape(s: &str) -> String {
    let visible: String = s.chars().filter(|c| !c.is_control()).collect();
    crate::base::escape_html(&visible)
}

/// `anna@example.org` → `a***@example.org`: enough for the reader to recognise their
/// address, not enough for whoever else opens the link.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:34em;margin:4em auto;padding:0 1em;color:#222;line-height:1.5}h1{font-size:1.4em}button{font-size:1em;padding:.6em 1.4em;border:0;border-radius:4px;background:#1a4f8b;color:#fff;cursor:pointer}.small{color:#666;font-size:.9em}";

/// A whole page: `title` and the site's name are escaped here; `body` is trusted HTML.
pub fn page(
    status: StatusCode,
    outcome: &'static str,
    site: &Site,
    title: &str,
    body: &str,
) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{title} - {publication}</title><style>{STYLE}</style></head><body><h1>{title}</h1>{body}<p class=\"small\">{publication}</p></body></html>\n",
        title = escape(title),
        publication = escape(&site.name),
        lang = site.lang,
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp.extensions_mut().insert(Outcome(outcome));
    resp
}

pub fn confirm(site: &Site, address: &str) -> Response {
    let body = format!(
        "<p>{question}</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">{button}</button></form>\
         <p class=\"small\">{mistake}</p>",
        question = site.say("page_confirm", address),
        button = escape(site.words.get("unsubscribe")),
        mistake = site.say("page_mistake", address),
    );
    let title = site.words.get("page_unsubscribe_title").to_string();
    page(StatusCode::OK, "confirm-page", site, &title, &body)
}

pub fn done(site: &Site, address: &str, outcome: &'static str, already: bool) -> Response {
    let key = if already { "page_already" } else { "page_done" };
    let body = format!("<p>{}</p>", site.say(key, address));
    let title = site.words.get("page_done_title").to_string();
    page(StatusCode::OK, outcome, site, &title, &body)
}

pub fn invalid_link(site: &Site) -> Response {
    let body = format!("<p>{}</p>", site.say("page_invalid", ""));
    let title = site.words.get("page_invalid_title").to_string();
    page(
        StatusCode::BAD_REQUEST,
        "invalid-token",
        site,
        &title,
        &body,
    )
}

pub fn missing_token(site: &Site) -> Response {
    let body = format!("<p>{}</p>", site.say("page_incomplete", ""));
    let title = site.words.get("page_incomplete_title").to_string();
    page(StatusCode::BAD_REQUEST, "no-token", site, &title, &body)
}

pub fn not_confirmed(site: &Site) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "not-one-click",
        site,
        "Nothing was changed",
        "<p>This request did not say <code>List-Unsubscribe=One-Click</code>. Open the \
         unsubscribe link and press the button.</p>",
    )
}

pub fn error(site: &Site, status: StatusCode, outcome: &'static str, what: &str) -> Response {
    let body = format!("<p>{}</p>", escape(what));
    page(
        status,
        outcome,
        site,
        status.canonical_reason().unwrap_or("Error"),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn masked_address_keeps_first_letter_and_domain() {
        assert_eq!(mask("anna@example.org"), "a***@example.org");
        assert_eq!(mask("nodomain"), "***");
    }
}
