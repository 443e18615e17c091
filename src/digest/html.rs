//! The HTML part after Tera: CSS inlined, then one pass that makes it safe and canonical.
//!
//! css-inline parses the rendered document, moves the layout CSS into `style=""` attributes
//! and drops the `<style>` blocks, keeping only the one marked `data-css-inline="keep"` (the
//! media queries). Its serializer writes well-formed HTML with double-quoted attributes,
//! which a small tokenizer can then read reliably. That pass:
//! - keeps links only to `http(s):` and `mailto:` (images: `http(s):`/`cid:`), drops event
//!   handler attributes and `<script>`, `<iframe>`, `<object>`… with their content, and any
//!   `<style>` outside `<head>`;
//! - rewrites every text node and attribute value with [`crate::base::escape_html`], so that
//!   the output has one escaping convention and a value substituted by the fast path is
//!   written exactly as a full render writes it;
//! - reports what a checker wants to know: the links (and whether each is visible), the size
//!   of the `<style>` kept in `<head>`, and what it removed.
//!
//! It is not a general HTML sanitizer for hostile documents; it is the last step of our own
//! renderer, which starts from the editor's templates and escaped article data.

use super::contract::{Field, MARK_START};
use crate::base::escape_html_into;

/// What the final pass found in the HTML part.
#[derive(Debug, Clone, Default)]
pub struct HtmlReport {
    /// Every kept link, in document order.
    pub links: Vec<Link>,
    /// Bytes of CSS kept in `<style>` blocks inside `<head>`.
    pub head_style_bytes: usize,
    /// What was removed, one line each (for `check`).
    pub removed: Vec<String>,
    /// A link address starts with a per-subscriber value other than the unsubscribe URL.
    pub personal_link: bool,
}

/// One `<a href>` of the HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The address, entities decoded.
    pub href: String,
    /// The visible text of the link, whitespace collapsed.
    pub text: String,
    /// False when the link or an ancestor is hidden (`display:none`, `hidden`).
    pub visible: bool,
}

const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
];
const RAW_TEXT: &[&str] = &[
    "style",
    "script",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "plaintext",
];
/// Elements removed together with their content.
const DROPPED: &[&str] = &[
    "script", "iframe", "object", "applet", "embed", "frame", "frameset", "base", "form",
];

/// Inlines the CSS and runs the final pass. `unsubscribe_marker` is the marker that stands
/// for the unsubscribe URL in a marker render (allowed as a link address).
pub fn finish(rendered: &str, unsubscribe_marker: &str) -> anyhow::Result<(String, HtmlReport)> {
    let inliner = css_inline::CSSInliner::options()
        .load_remote_stylesheets(false)
        .build();
    let inlined = inliner
        .inline(rendered)
        .map_err(|e| anyhow::anyhow!("could not inline the CSS of the HTML template: {e}"))?;
    Ok(canonicalize(&inlined, unsubscribe_marker))
}

/// Decodes the character references a serializer or Markdown renderer writes.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug)]
enum Token<'a> {
    /// A comment, doctype or processing instruction, verbatim.
    Verbatim(&'a str),
    Start {
        name: String,
        attrs: Vec<(String, String)>,
    },
    End(String),
    /// Character data, entities decoded.
    Text(String),
    /// The content of a raw-text element (`<style>`, `<script>`…), verbatim.
    Raw(&'a str),
}

struct Tokenizer<'a> {
    s: &'a str,
    pos: usize,
    raw_until: Option<String>,
}

impl<'a> Tokenizer<'a> {
    fn new(s: &'a str) -> Self {
        Tokenizer {
            s,
            pos: 0,
            raw_until: None,
        }
    }

    fn find_from(&self, pat: &str) -> Option<usize> {
        self.s[self.pos..].find(pat).map(|i| i + self.pos)
    }

    fn start_tag(&mut self) -> Option<Token<'a>> {
        let b = self.s.as_bytes();
        let mut i = self.pos + 1;
        let name_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b':') {
            i += 1;
        }
        if i == name_start {
            return None;
        }
        let name = self.s[name_start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            if b[i] == b'>' {
                i += 1;
                break;
            }
            let an_start = i;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && b[i] != b'='
                && b[i] != b'>'
                && !(b[i] == b'/' && b.get(i + 1) == Some(&b'>'))
            {
                i += 1;
            }
            let aname = self.s[an_start..i].to_ascii_lowercase();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    let vs = i + 1;
                    let ve = self.s[vs..]
                        .bytes()
                        .position(|c| c == q)
                        .map_or(b.len(), |p| vs + p);
                    value = decode_entities(&self.s[vs..ve]);
                    i = (ve + 1).min(b.len());
                } else {
                    let vs = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&self.s[vs..i]);
                }
            }
            if !aname.is_empty() {
                attrs.push((aname, value));
            }
        }
        self.pos = i;
        if RAW_TEXT.contains(&name.as_str()) {
            self.raw_until = Some(name.clone());
        }
        Some(Token::Start { name, attrs })
    }
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if self.pos >= self.s.len() {
            return None;
        }
        if let Some(name) = self.raw_until.take() {
            let close = format!("</{name}");
            let lower_rest = self.s[self.pos..].to_ascii_lowercase();
            let end = lower_rest
                .find(&close)
                .map_or(self.s.len(), |i| self.pos + i);
            let raw = &self.s[self.pos..end];
            self.pos = end;
            if !raw.is_empty() {
                return Some(Token::Raw(raw));
            }
        }
        let rest = &self.s[self.pos..];
        if rest.starts_with("<!--") {
            let end = self.s[self.pos + 4..]
                .find("-->")
                .map_or(self.s.len(), |i| self.pos + 4 + i + 3);
            let tok = Token::Verbatim(&self.s[self.pos..end]);
            self.pos = end;
            return Some(tok);
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            let end = self.find_from(">").map_or(self.s.len(), |i| i + 1);
            let tok = Token::Verbatim(&self.s[self.pos..end]);
            self.pos = end;
            return Some(tok);
        }
        if rest.starts_with("</") {
            let b = rest.as_bytes();
            let mut i = 2;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b':') {
                i += 1;
            }
            if i > 2 {
                let name = rest[2..i].to_ascii_lowercase();
                let end = self.find_from(">").map_or(self.s.len(), |e| e + 1);
                self.pos = end;
                return Some(Token::End(name));
            }
        }
        if rest.starts_with('<') {
            if let Some(tok) = self.start_tag() {
                return Some(tok);
            }
        }
        // Text up to the next tag-like `<` (always at least one byte, so a stray `<` is text).
        let bytes = self.s.as_bytes();
        let mut end = self.pos + 1;
        loop {
            match bytes[end..].iter().position(|&c| c == b'<') {
                None => {
                    end = bytes.len();
                    break;
                }
                Some(i) => {
                    let at = end + i;
                    let next = bytes.get(at + 1).copied().unwrap_or(b' ');
                    if next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?') {
                        end = at;
                        break;
                    }
                    end = at + 1;
                }
            }
        }
        while !self.s.is_char_boundary(end) {
            end += 1;
        }
        let tok = Token::Text(decode_entities(&self.s[self.pos..end]));
        self.pos = end;
        Some(tok)
    }
}

fn is_hidden(attrs: &[(String, String)]) -> bool {
    attrs.iter().any(|(n, v)| {
        n == "hidden"
            || (n == "style" && {
                let s: String = v
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_ascii_lowercase();
                s.contains("display:none") || s.contains("visibility:hidden")
            })
    })
}

/// Which URL schemes an attribute may hold; `None` when it is not a URL attribute.
fn allowed_schemes(attr: &str) -> Option<&'static [&'static str]> {
    match attr {
        "href" | "xlink:href" | "action" | "formaction" | "cite" | "longdesc" => {
            Some(&["http://", "https://", "mailto:"])
        }
        "src" | "background" | "poster" | "srcset" => Some(&["http://", "https://", "cid:"]),
        _ => None,
    }
}

/// Whether `value` may stay in a URL attribute. Leading blanks and control characters are
/// ignored when reading the scheme (browsers ignore them too).
fn url_allowed(value: &str, schemes: &[&str]) -> bool {
    let v: String = value
        .trim_start_matches(|c: char| c.is_whitespace() || c.is_control())
        .chars()
        .filter(|c| !c.is_control() && *c != '\t')
        .take(10)
        .collect::<String>()
        .to_ascii_lowercase();
    schemes.iter().any(|s| v.starts_with(s))
}

fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_html_into(value, out);
    out.push('"');
}

/// The state of the final pass over one document.
struct Pass<'a> {
    out: String,
    report: HtmlReport,
    /// The marker allowed as a link address (the unsubscribe URL in a marker render).
    unsubscribe_marker: &'a str,
    /// Open elements: (name, hidden).
    stack: Vec<(String, bool)>,
    /// While removing an element with its content: (name, nesting depth).
    dropping: Option<(String, usize)>,
    /// An open <a>: index into report.links.
    open_link: Option<usize>,
    in_kept_style: bool,
}

impl Pass<'_> {
    fn start(&mut self, name: String, attrs: Vec<(String, String)>) {
        let void = VOID.contains(&name.as_str());
        if let Some((dn, depth)) = &mut self.dropping {
            if *dn == name && !void {
                *depth += 1;
            }
            return;
        }
        let in_head = self.stack.iter().any(|(n, _)| n == "head");
        if DROPPED.contains(&name.as_str()) || (name == "style" && !in_head) {
            self.report.removed.push(if name == "style" {
                "a <style> block outside <head> (put styles in the <head>)".to_string()
            } else {
                format!("a <{name}> element (not allowed in email)")
            });
            if !void {
                self.dropping = Some((name, 1));
            }
            return;
        }
        self.out.push('<');
        self.out.push_str(&name);
        let href = self.attributes(&name, &attrs);
        self.out.push('>');
        if name == "style" {
            self.in_kept_style = true;
        }
        let hidden = is_hidden(&attrs) || self.stack.iter().any(|(_, h)| *h);
        if let Some(h) = href {
            self.report.links.push(Link {
                href: h,
                text: String::new(),
                visible: !hidden,
            });
            self.open_link = Some(self.report.links.len() - 1);
        }
        if !void {
            self.stack.push((name, hidden));
        }
    }

    /// Writes the attributes that may stay (no event handlers, only allowed URL schemes);
    /// returns the `href` of an `<a>`.
    fn attributes(&mut self, name: &str, attrs: &[(String, String)]) -> Option<String> {
        let mut href = None;
        for (an, av) in attrs {
            if an.starts_with("on")
                || an == "srcdoc"
                || an == "formaction"
                || an == "data-css-inline"
            {
                if an.starts_with("on") {
                    self.report
                        .removed
                        .push(format!("an event handler attribute `{an}` on <{name}>"));
                }
                continue;
            }
            if let Some(schemes) = allowed_schemes(an) {
                let trimmed = av.trim_start();
                if trimmed.starts_with(MARK_START) {
                    if !trimmed.starts_with(self.unsubscribe_marker) {
                        self.report.personal_link = true;
                    }
                } else if !url_allowed(av, schemes) {
                    self.report.removed.push(format!(
                        "a link to `{}` on <{name}> (only {} are allowed)",
                        av.chars().take(60).collect::<String>(),
                        schemes.join(" ")
                    ));
                    continue;
                }
                if an == "href" && name == "a" {
                    href = Some(av.clone());
                }
            }
            push_attr(&mut self.out, an, av);
        }
        href
    }

    fn end(&mut self, name: String) {
        if let Some((dn, depth)) = &mut self.dropping {
            if *dn == name {
                *depth -= 1;
                if *depth == 0 {
                    self.dropping = None;
                }
            }
            return;
        }
        if VOID.contains(&name.as_str()) {
            return;
        }
        if let Some(pos) = self.stack.iter().rposition(|(n, _)| *n == name) {
            self.stack.truncate(pos);
        }
        if name == "a" {
            if let Some(i) = self.open_link.take() {
                let link = &mut self.report.links[i];
                link.text = link.text.split_whitespace().collect::<Vec<_>>().join(" ");
            }
        }
        if name == "style" {
            self.in_kept_style = false;
        }
        self.out.push_str("</");
        self.out.push_str(&name);
        self.out.push('>');
    }

    fn text(&mut self, t: &str) {
        if self.dropping.is_some() {
            return;
        }
        if let Some(i) = self.open_link {
            self.report.links[i].text.push_str(t);
        }
        escape_html_into(t, &mut self.out);
    }
}

/// The final pass over serialized HTML (see the module docs).
pub fn canonicalize(input: &str, unsubscribe_marker: &str) -> (String, HtmlReport) {
    let mut pass = Pass {
        out: String::with_capacity(input.len() + input.len() / 20),
        report: HtmlReport::default(),
        unsubscribe_marker,
        stack: Vec::new(),
        dropping: None,
        open_link: None,
        in_kept_style: false,
    };
    for tok in Tokenizer::new(input) {
        match tok {
            Token::Verbatim(v) => {
                if pass.dropping.is_none() {
                    pass.out.push_str(v);
                }
            }
            Token::Raw(raw) => {
                if pass.dropping.is_none() {
                    pass.out.push_str(raw);
                    if pass.in_kept_style {
                        pass.report.head_style_bytes += raw.len();
                    }
                }
            }
            Token::Start { name, attrs } => pass.start(name, attrs),
            Token::End(name) => pass.end(name),
            Token::Text(t) => pass.text(&t),
        }
    }
    (pass.out, pass.report)
}

/// The `http(s)`/`mailto` link addresses in an HTML fragment (an article body), in order,
/// without duplicates.
pub fn links_in_fragment(html: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tok in Tokenizer::new(html) {
        if let Token::Start { name, attrs } = tok {
            if name != "a" {
                continue;
            }
            for (an, av) in attrs {
                if an == "href"
                    && url_allowed(&av, &["http://", "https://", "mailto:"])
                    && !out.contains(&av)
                {
                    out.push(av.trim().to_string());
                }
            }
        }
    }
    out
}

/// Whether the final HTML has a visible `<a>` with text pointing at `url`.
pub fn digest_links_visible_to(html: &str, url: &str) -> bool {
    let (_, report) = canonicalize(html, &super::fast::marker(&Field::UnsubscribeUrl));
    report
        .links
        .iter()
        .any(|l| l.href == url && l.visible && !l.text.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> (String, HtmlReport) {
        canonicalize(s, "\u{E000}unsubscribe_url\u{E001}")
    }

    #[test]
    fn scripts_handlers_and_foreign_schemes_are_removed() {
        let (out, rep) = canon(
            "<html><head></head><body><p onclick=\"x()\">a<script>alert(1)</script>b</p>\
             <a href=\"javascript:alert(1)\">j</a><a href=\" JaVa&#x09;script:x\">k</a>\
             <a href=\"https://ok.example.org/?a=1&amp;b=2\">ok</a><a href=\"mailto:x@y.org\">m</a>\
             <iframe src=\"https://x.org\">inner</iframe><style>p{}</style></body></html>",
        );
        assert!(!out.contains("script"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("iframe") && !out.contains("inner"), "{out}");
        assert!(!out.contains("<style"), "{out}");
        assert!(out.contains("<p>ab</p>"), "{out}");
        assert!(out.contains("<a>j</a><a>k</a>"), "{out}");
        assert!(
            out.contains("href=\"https://ok.example.org/?a=1&amp;b=2\""),
            "{out}"
        );
        let hrefs: Vec<&str> = rep.links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(hrefs, ["https://ok.example.org/?a=1&b=2", "mailto:x@y.org"]);
        assert!(rep.removed.len() >= 5, "{:?}", rep.removed);
    }

    #[test]
    fn text_and_attributes_are_written_with_the_one_escaper() {
        let (out, _) = canon(
            "<html><head><title>A &amp; \"B\"</title></head><body><p title=\"it's &quot;x&quot;\">O'Hara &lt;tag&gt;&nbsp;</p></body></html>",
        );
        assert!(
            out.contains("<title>A &amp; &quot;B&quot;</title>"),
            "{out}"
        );
        assert!(
            out.contains("<p title=\"it&#39;s &quot;x&quot;\">O&#39;Hara &lt;tag&gt;&nbsp;</p>"),
            "{out}"
        );
    }

    #[test]
    fn style_in_head_is_kept_and_counted_and_comments_survive() {
        let (out, rep) = canon(
            "<!DOCTYPE html><html><head><style>@media (max-width:600px){a>b{x:y}}</style></head><body><!--[if mso]><table><![endif]--><p>x</p></body></html>",
        );
        assert!(
            out.contains("<style>@media (max-width:600px){a>b{x:y}}</style>"),
            "{out}"
        );
        assert_eq!(
            rep.head_style_bytes,
            "@media (max-width:600px){a>b{x:y}}".len()
        );
        assert!(out.starts_with("<!DOCTYPE html>"));
        assert!(out.contains("<!--[if mso]><table><![endif]-->"));
    }

    #[test]
    fn hidden_links_are_reported_as_invisible() {
        let (_, rep) = canon(
            "<body><div style=\"display: none\"><a href=\"https://a.org\">a</a></div><a href=\"https://b.org\"> b  c </a></body>",
        );
        assert_eq!(rep.links.len(), 2);
        assert!(!rep.links[0].visible);
        assert!(rep.links[1].visible);
        assert_eq!(rep.links[1].text, "b c");
    }

    #[test]
    fn marker_links_are_allowed_and_personal_ones_flagged() {
        let (out, rep) = canon("<body><a href=\"\u{E000}unsubscribe_url\u{E001}\">u</a></body>");
        assert!(out.contains("href=\"\u{E000}unsubscribe_url\u{E001}\""));
        assert!(!rep.personal_link);
        let (_, rep) = canon("<body><a href=\"\u{E000}attr:site\u{E001}\">u</a></body>");
        assert!(rep.personal_link);
    }

    #[test]
    fn fragment_links_are_found_in_markdown_html() {
        let links = links_in_fragment(
            "<p>See <a href=\"https://a.org/x?y=1&amp;z=2\">this</a> and <a href='mailto:e@x.org'>me</a> \
             and <a href=\"javascript:void(0)\">no</a> and <a href=\"https://a.org/x?y=1&amp;z=2\">again</a></p>",
        );
        assert_eq!(links, ["https://a.org/x?y=1&z=2", "mailto:e@x.org"]);
    }

    #[test]
    fn entity_decoding_handles_numeric_and_unknown_references() {
        assert_eq!(
            decode_entities("a&amp;b&#39;c&#x2F;d&bogus;e&"),
            "a&b'c/d&bogus;e&"
        );
    }
}
