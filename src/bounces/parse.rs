//! Recognising one message: a delivery status notification, a complaint, or neither.
//!
//! Three shapes are understood, most trustworthy first:
//! 1. RFC 3464 DSNs (`multipart/report; report-type=delivery-status`): one notice per
//!    recipient block (`Original-Recipient` / `Final-Recipient`, `Action`, `Status`,
//!    `Diagnostic-Code`). Postfix, Exim 4.9x, Gmail and Exchange Online all send these.
//! 2. RFC 5965 ARF feedback reports (`report-type=feedback-report`): `Feedback-Type: abuse`
//!    is a complaint about the recipient named by `Original-Rcpt-To` or the embedded
//!    original's `To`.
//! 3. Human-readable bounces from mailer daemons (older Exim and Postfix, qmail, sendmail,
//!    Gmail, Exchange NDRs): failed addresses are found on their own lines (`  a@b.org`,
//!    `<a@b.org>: host … said: 550 5.1.1 …`, `a@b.org (a@b.org)`) or in sentences
//!    (`wasn't delivered to a@b.org`), with the status code found in the text after each.
//!
//! Besides the addresses, a bounce often carries what identifies our copy exactly: the
//! VERP envelope recipient `bounces+TOKEN@domain` and the `List-Unsubscribe` URL of the
//! quoted original hold the subscriber's token, and the original's Message-ID starts with
//! the issue date. This module collects them; resolving tokens and deciding what changes
//! is the caller's job. It does no I/O and never fails: anything it cannot read is
//! [`ReportKind::Unrecognised`].

use std::sync::OnceLock;

use chrono::NaiveDate;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use sha2::{Digest as _, Sha256};

use super::status::{self, BounceClass, StatusCode};
use crate::base::IssueDate;
use crate::config::Config;
use crate::message::SenderAddress;

/// The longest text of one part that is searched (a quoted original can be big).
const MAX_SCAN: usize = 512 * 1024;

/// What kind of report a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportKind {
    /// An RFC 3464 delivery status notification.
    DeliveryStatus,
    /// A human-readable bounce; the string names the recognised flavour.
    TextBounce(&'static str),
    /// An RFC 5965 feedback report.
    Feedback,
    /// Not a bounce or a complaint (or nothing could be made of it).
    Unrecognised,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Delivery failed for good; the class says whose fault it is.
    Failed(BounceClass),
    /// Delivery is delayed; the server keeps trying (not a bounce yet).
    Delayed,
    /// The recipient reported the message as abuse (ARF `Feedback-Type: abuse`).
    Complaint,
    /// A feedback report of another type (`not-spam`, `virus`, …), never acted on.
    OtherFeedback(String),
}

/// One recipient's fate as a report tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The addresses the report names for this recipient, most trustworthy first
    /// (`Original-Recipient` before `Final-Recipient`). May be empty when the report
    /// names nobody (then only a token can tell who it was).
    pub addresses: Vec<String>,
    pub event: Event,
    pub status: Option<StatusCode>,
    /// The server's words, on one line (at most 200 characters).
    pub diagnostic: String,
}

/// Everything learnt from one message.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub kind: ReportKind,
    pub notices: Vec<Notice>,
    /// Unsubscribe tokens found (VERP recipient, List-Unsubscribe URL of the original).
    pub tokens: Vec<String>,
    /// The issue of the original message, from its Message-ID.
    pub original_issue: Option<IssueDate>,
    /// When the report was made (`Arrival-Date`, else `Date`).
    pub date: Option<NaiveDate>,
    /// The report's own identity: its Message-ID, or a hash of its bytes.
    pub id: String,
}

impl Analysis {
    /// Nothing learnt: neither a bounce nor a complaint.
    fn unrecognised(id: String) -> Analysis {
        Analysis {
            kind: ReportKind::Unrecognised,
            notices: vec![],
            tokens: vec![],
            original_issue: None,
            date: None,
            id,
        }
    }
}

/// Recognises bounces and complaints for one publication (its domains, token URL and
/// bounce address are what tie a report to our messages).
pub struct Recognizer {
    message_id: Option<Regex>,
    unsubscribe_url: Option<Regex>,
    verp: Option<Regex>,
    /// Our own addresses (From, bounce, reply-to), lowercased: never a failed recipient.
    own: Vec<String>,
}

/// The bare address of `Name <a@b>` or `a@b` (in the headers of incoming reports).
fn bare_address(s: &str) -> Option<&str> {
    let s = s.trim();
    let inner = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    let inner = inner.trim();
    (inner.contains('@') && !inner.contains(char::is_whitespace)).then_some(inner)
}

/// Our configured addresses, bare: `[sender] from`, `bounce` (else the From address) and
/// `reply_to`.
struct OwnAddresses {
    from: Option<String>,
    bounce: Option<String>,
    reply_to: Option<String>,
}

impl OwnAddresses {
    /// Our configured addresses, read by the same parser the composer uses (a value that
    /// does not parse is no address of ours: `check` and `send` report it).
    fn of(config: &Config) -> OwnAddresses {
        let address = |a: SenderAddress| a.address;
        let from = SenderAddress::from_of(config).ok().map(address);
        OwnAddresses {
            bounce: SenderAddress::bounce_of(config)
                .ok()
                .flatten()
                .map(address)
                .or_else(|| from.clone()),
            reply_to: SenderAddress::reply_to_of(config)
                .ok()
                .flatten()
                .map(address),
            from,
        }
    }
}

/// Our Message-IDs (`<YYYYMMDD.…@domain>`, see `message::message_id`) under any of `domains`.
fn message_id_regex(domains: &[String]) -> Option<Regex> {
    (!domains.is_empty()).then(|| {
        let alts: Vec<String> = domains.iter().map(|d| regex::escape(d)).collect();
        Regex::new(&format!(
            r"(?i)<([0-9]{{4}})-?([0-9]{{2}})-?([0-9]{{2}})\.[^\s<>@]{{1,200}}@(?:{})>",
            alts.join("|")
        ))
        .expect("message id regex compiles")
    })
}

/// A token in our unsubscribe URL, from its path on.
fn unsubscribe_url_regex(config: &Config) -> Option<Regex> {
    let prefix = token_url_prefix(&config.unsubscribe.as_ref()?.url)?;
    Some(
        Regex::new(&format!(
            "{}([A-Za-z0-9_-]{{16,128}})",
            regex::escape(&prefix)
        ))
        .expect("token url regex compiles"),
    )
}

/// A token in a VERP form of the bounce address (`bounces+TOKEN@domain`).
fn verp_regex(bounce: Option<&str>) -> Option<Regex> {
    let (l, d) = bounce?.rsplit_once('@')?;
    Some(
        Regex::new(&format!(
            r"(?i:{})\+([A-Za-z0-9_-]{{16,128}})@(?i:{})",
            regex::escape(l),
            regex::escape(d)
        ))
        .expect("verp regex compiles"),
    )
}

impl Recognizer {
    pub fn new(config: &Config) -> Recognizer {
        let own = OwnAddresses::of(config);
        let mut domains: Vec<String> = [own.from.as_deref(), own.bounce.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .collect();
        for d in &config.dkim {
            domains.push(d.domain.to_ascii_lowercase());
        }
        domains.sort();
        domains.dedup();
        let verp = verp_regex(own.bounce.as_deref());
        Recognizer {
            message_id: message_id_regex(&domains),
            unsubscribe_url: unsubscribe_url_regex(config),
            verp,
            own: [own.from, own.bounce, own.reply_to]
                .into_iter()
                .flatten()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Reads one message. Never fails: junk is [`ReportKind::Unrecognised`].
    pub fn analyse(&self, raw: &[u8]) -> Analysis {
        let id_fallback = || {
            let digest = Sha256::digest(raw);
            format!("sha256:{}", crate::base::hex(&digest[..16]))
        };
        let msg = match MessageParser::default().parse(raw) {
            Some(msg) if !msg.parts.is_empty() => msg,
            _ => return Analysis::unrecognised(id_fallback()),
        };
        let own_id = msg.message_id().map(|s| format!("<{}>", s.trim()));
        let parts = Parts::of(&msg);
        let haystack = parts.haystack(&msg);
        let mut analysis = Analysis {
            tokens: self.tokens(&haystack),
            original_issue: self.original_issue(&haystack, own_id.as_deref()),
            date: msg
                .date()
                .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
            ..Analysis::unrecognised(own_id.unwrap_or_else(id_fallback))
        };
        self.classify(&msg, &parts, &mut analysis);
        analysis
    }

    /// Sets the kind and the notices of `a`: from a machine-readable report when there is
    /// one, else from the text of what looks like a human-readable bounce.
    fn classify(&self, msg: &Message<'_>, parts: &Parts, a: &mut Analysis) {
        let report_type = msg
            .content_type()
            .filter(|ct| ct.ctype() == "multipart")
            .and_then(|ct| ct.attribute("report-type"))
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        if report_type == "feedback-report" || !parts.feedback.is_empty() {
            let (n, d) = feedback_notices(parts);
            if !n.is_empty() {
                a.kind = ReportKind::Feedback;
                a.notices = n;
                a.date = d.or(a.date);
            }
        } else if report_type == "delivery-status" || !parts.delivery_status.is_empty() {
            let (n, d) = dsn_notices(parts);
            a.date = d.or(a.date);
            if !n.is_empty() {
                a.kind = ReportKind::DeliveryStatus;
                a.notices = n;
            } else if parts.delivery_status.iter().any(|t| has_only_successes(t)) {
                // A delivery (or relay) notification: not a bounce.
                return;
            }
        }
        if a.kind == ReportKind::Unrecognised && self.looks_like_bounce(msg, &report_type) {
            let text = parts.human_text(msg);
            let (flavour, n) = self.text_notices(msg, &text);
            if !n.is_empty() {
                a.kind = ReportKind::TextBounce(flavour);
                a.notices = n;
            }
        }
    }

    fn tokens(&self, haystack: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for re in [&self.verp, &self.unsubscribe_url].into_iter().flatten() {
            for c in re.captures_iter(haystack) {
                if let Some(t) = c.get(1) {
                    let t = t.as_str().to_string();
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    fn original_issue(&self, haystack: &str, own_id: Option<&str>) -> Option<IssueDate> {
        let re = self.message_id.as_ref()?;
        re.captures_iter(haystack).find_map(|c| {
            let whole = c.get(0)?.as_str();
            if own_id.is_some_and(|own| own.eq_ignore_ascii_case(whole)) {
                return None;
            }
            let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
            let date = NaiveDate::from_ymd_opt(n(1)? as i32, n(2)?, n(3)?)?;
            Some(IssueDate::new(date))
        })
    }

    /// Whether a message without a machine-readable report still looks like a bounce.
    fn looks_like_bounce(&self, msg: &Message<'_>, report_type: &str) -> bool {
        if report_type == "delivery-status" || !header_values(msg, "x-failed-recipients").is_empty()
        {
            return true;
        }
        static SUBJECT: OnceLock<Regex> = OnceLock::new();
        static AUTO_REPLY: OnceLock<Regex> = OnceLock::new();
        let subject = msg.subject().unwrap_or("");
        let auto_reply = AUTO_REPLY
            .get_or_init(|| {
                Regex::new(r"(?i)^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|vacation|abwesenheit)")
                    .expect("auto reply regex compiles")
            })
            .is_match(subject);
        if auto_reply {
            return false;
        }
        let from_daemon = msg.from().and_then(|a| a.first()).is_some_and(|a| {
            let local = a
                .address
                .as_deref()
                .and_then(|x| x.rsplit_once('@'))
                .map(|(l, _)| l.to_ascii_lowercase())
                .unwrap_or_default();
            let name = a.name.as_deref().unwrap_or("").to_ascii_lowercase();
            matches!(
                local.as_str(),
                "mailer-daemon"
                    | "mailer_daemon"
                    | "mailerdaemon"
                    | "postmaster"
                    | "mail-daemon"
                    | "mdaemon"
            ) || name.contains("mail delivery")
                || name.contains("mailer-daemon")
        });
        from_daemon
            || SUBJECT
                .get_or_init(|| {
                    Regex::new(r"(?i)undeliver|returned mail|delivery status notification|delivery fail|failure notice|mail delivery failed|delivery has failed|non-?delivery|could ?n[o']t be delivered|returned to sender|delivery problem|mail system error|delivery notification")
                        .expect("bounce subject regex compiles")
                })
                .is_match(subject)
    }

    fn is_own(&self, addr: &str) -> bool {
        let lower = addr.to_ascii_lowercase();
        if self.own.contains(&lower) {
            return true;
        }
        if self.verp.as_ref().is_some_and(|re| re.is_match(addr)) {
            return true;
        }
        let local = lower.rsplit_once('@').map_or("", |(l, _)| l);
        matches!(local, "mailer-daemon" | "postmaster" | "mailerdaemon")
    }

    /// The addresses a human-readable bounce says failed, each with the text that follows
    /// its mention; `X-Failed-Recipients` (when present) decides which ones count.
    fn failed_mentions(&self, msg: &Message<'_>, text: &str) -> Vec<(String, String)> {
        let failed_header: Vec<String> = header_values(msg, "x-failed-recipients")
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(bare_address)
            .map(str::to_string)
            .collect();
        let mut mentions: Vec<(String, String)> = address_blocks(text)
            .into_iter()
            .filter(|(a, _)| !self.is_own(a))
            .collect();
        for (addr, rest) in sentence_mentions(text) {
            if !self.is_own(&addr) {
                mentions.push((addr, rest));
            }
        }
        if !failed_header.is_empty() {
            mentions.retain(|(a, _)| failed_header.iter().any(|f| f.eq_ignore_ascii_case(a)));
            for f in &failed_header {
                if !mentions.iter().any(|(a, _)| a.eq_ignore_ascii_case(f)) {
                    mentions.push((f.clone(), String::new()));
                }
            }
        }
        mentions
    }

    /// Failed recipients of a human-readable bounce, with their codes.
    fn text_notices(&self, msg: &Message<'_>, text: &str) -> (&'static str, Vec<Notice>) {
        let flavour = flavour(msg, text);
        let mentions = self.failed_mentions(msg, text);

        let subject = msg.subject().unwrap_or("");
        let delayed = is_delay(subject, text);
        let mut notices: Vec<Notice> = Vec::new();
        for (addr, block) in &mentions {
            let (status, diagnostic) = status_in(block);
            if let Some(existing) = notices
                .iter_mut()
                .find(|n| n.addresses[0].eq_ignore_ascii_case(addr))
            {
                if existing.status.is_none() && status.is_some() {
                    existing.status = status;
                    existing.diagnostic = diagnostic;
                }
                continue;
            }
            notices.push(Notice {
                addresses: vec![addr.clone()],
                event: Event::Delayed,
                status,
                diagnostic,
            });
        }
        let (message_status, message_diag) = status_in(text);
        if notices.is_empty() {
            // A bounce that names nobody we can read: keep it for a token to identify.
            let has_words = message_status.is_some()
                || status::mentions_unknown_address(text)
                || status::mentions_mailbox_full(text);
            if has_words {
                notices.push(Notice {
                    addresses: vec![],
                    event: Event::Delayed,
                    status: message_status,
                    diagnostic: message_diag.clone(),
                });
            } else {
                return (flavour, vec![]);
            }
        }
        let mut kept = Vec::with_capacity(notices.len());
        for mut n in notices {
            if n.status.is_none() {
                n.status = message_status;
                if n.diagnostic.is_empty() {
                    n.diagnostic = message_diag.clone();
                }
            }
            if let Some(event) = text_event(n.status, &n.diagnostic, text, delayed) {
                n.event = event;
                kept.push(n);
            }
        }
        (flavour, kept)
    }
}

/// The prefix of the unsubscribe URL before `{token}`, from the path on (so the scheme
/// and host a proxy rewrites do not matter): `/unsubscribe?t=`.
fn token_url_prefix(template: &str) -> Option<String> {
    let before = template.split("{token}").next()?;
    if before.len() == template.len() {
        return None;
    }
    let after_scheme = before.split_once("://").map_or(before, |(_, r)| r);
    let path = after_scheme.find('/').map(|i| &after_scheme[i..])?;
    (!path.is_empty()).then(|| path.to_string())
}

/// The parts of a message that matter, decoded.
struct Parts {
    delivery_status: Vec<String>,
    feedback: Vec<String>,
    /// Header blocks of quoted originals (message/rfc822 or text/rfc822-headers).
    originals: Vec<String>,
    /// `To` addresses of quoted originals.
    original_to: Vec<String>,
    /// Decoded text of every other part.
    texts: Vec<String>,
}

fn bounded(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_SCAN)]).into_owned()
}

impl Parts {
    fn of(msg: &Message<'_>) -> Parts {
        let mut p = Parts {
            delivery_status: vec![],
            feedback: vec![],
            originals: vec![],
            original_to: vec![],
            texts: vec![],
        };
        for part in msg.parts.iter().skip(1).chain(
            // a single-part message: its body is part 0
            msg.parts
                .iter()
                .take(if msg.parts.len() == 1 { 1 } else { 0 }),
        ) {
            let (ctype, sub) = part
                .content_type()
                .map(|ct| {
                    (
                        ct.ctype().to_ascii_lowercase(),
                        ct.subtype().unwrap_or("").to_ascii_lowercase(),
                    )
                })
                .unwrap_or_else(|| ("text".into(), "plain".into()));
            match (ctype.as_str(), sub.as_str()) {
                ("message", "delivery-status") | ("message", "global-delivery-status") => {
                    p.delivery_status.push(bounded(part.contents()))
                }
                ("message", "feedback-report") => p.feedback.push(bounded(part.contents())),
                ("message", "rfc822") | ("message", "global") => match &part.body {
                    PartType::Message(inner) => {
                        p.original_to.extend(addresses_of(inner.to()));
                        p.originals.push(bounded(inner.raw_message()));
                    }
                    _ => p.add_header_block(part.contents()),
                },
                ("text", "rfc822-headers") | ("text", "rfc822-header") => {
                    p.add_header_block(part.contents())
                }
                ("multipart", _) => {}
                _ => p.texts.push(bounded(part.contents())),
            }
        }
        p
    }

    fn add_header_block(&mut self, bytes: &[u8]) {
        if let Some(h) = MessageParser::default().parse_headers(bytes) {
            if !h.parts.is_empty() {
                self.original_to.extend(addresses_of(h.to()));
            }
        }
        self.originals.push(bounded(bytes));
    }

    /// Everything a token or our Message-ID may hide in: quoted originals first, then the
    /// report's own headers, then its parts.
    fn haystack(&self, msg: &Message<'_>) -> String {
        let mut s = String::new();
        for o in &self.originals {
            s.push_str(o);
            s.push('\n');
        }
        for (name, value) in msg.headers_raw() {
            s.push_str(name);
            s.push(':');
            s.push_str(value);
        }
        s.push('\n');
        for t in self.texts.iter().chain(&self.delivery_status) {
            s.push_str(t);
            s.push('\n');
        }
        s
    }

    /// The human-readable text of the report, without the quoted original.
    fn human_text(&self, msg: &Message<'_>) -> String {
        let mut text = String::new();
        for i in 0..msg.text_body_count() {
            if let Some(t) = msg.body_text(i) {
                text.push_str(&t[..floor_char_boundary(&t, MAX_SCAN)]);
                text.push('\n');
            }
        }
        if text.trim().is_empty() {
            for i in 0..msg.html_body_count() {
                if let Some(t) = msg.body_text(i) {
                    text.push_str(&t[..floor_char_boundary(&t, MAX_SCAN)]);
                    text.push('\n');
                }
            }
        }
        cut_quoted_original(&text).replace("\r\n", "\n")
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn addresses_of(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address.as_deref())
            .filter(|x| x.contains('@'))
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Raw values of a header (any case), unfolded and trimmed.
fn header_values(msg: &Message<'_>, name: &str) -> Vec<String> {
    msg.headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| unfold(v).trim().to_string())
        .collect()
}

fn unfold(s: &str) -> String {
    s.replace("\r\n", "\n")
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `Name: value` blocks separated by empty lines (the body of a
/// message/delivery-status or message/feedback-report part). Names are lowercased.
pub fn parse_field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                current.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822; <a@b.org>` → `a@b.org`.
fn typed_address(value: &str) -> Option<String> {
    let v = value.split_once(';').map_or(value, |(_, r)| r).trim();
    let v = v.split_whitespace().next().unwrap_or("");
    let v = v.trim_start_matches('<').trim_end_matches('>');
    (v.contains('@') && v.len() <= 320).then(|| v.to_string())
}

fn parse_date(value: &str) -> Option<NaiveDate> {
    let v = value.trim();
    chrono::DateTime::parse_from_rfc2822(v)
        .ok()
        .map(|d| d.date_naive())
        .or_else(|| {
            // tolerate a trailing comment such as `(UTC)` or a missing weekday
            let cut = v.split(" (").next().unwrap_or(v);
            chrono::DateTime::parse_from_rfc2822(cut)
                .ok()
                .map(|d| d.date_naive())
        })
}

fn one_line(s: &str) -> String {
    let mut out: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > 200 {
        let cut = floor_char_boundary(&out, 197);
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

fn has_only_successes(text: &str) -> bool {
    let groups = parse_field_groups(text);
    let actions: Vec<String> = groups
        .iter()
        .filter_map(|g| field(g, "action"))
        .map(|a| a.to_ascii_lowercase())
        .collect();
    !actions.is_empty()
        && actions.iter().all(|a| {
            a.starts_with("delivered") || a.starts_with("relayed") || a.starts_with("expanded")
        })
}

/// Notices of an RFC 3464 report, and its `Arrival-Date`.
fn dsn_notices(parts: &Parts) -> (Vec<Notice>, Option<NaiveDate>) {
    let mut notices = Vec::new();
    let mut date = None;
    for text in &parts.delivery_status {
        for group in parse_field_groups(text) {
            if let Some(d) = field(&group, "arrival-date").and_then(parse_date) {
                date.get_or_insert(d);
            }
            let mut addresses: Vec<String> = Vec::new();
            for name in [
                "original-recipient",
                "final-recipient",
                "x-actual-recipient",
            ] {
                if let Some(a) = field(&group, name).and_then(typed_address) {
                    if !addresses.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                        addresses.push(a);
                    }
                }
            }
            let action = field(&group, "action").map(|a| a.to_ascii_lowercase());
            if addresses.is_empty() && action.is_none() {
                continue; // the per-message block
            }
            let diagnostic_raw = field(&group, "diagnostic-code").unwrap_or("");
            let diagnostic = one_line(
                diagnostic_raw
                    .split_once(';')
                    .map_or(diagnostic_raw, |(_, r)| r),
            );
            let status = field(&group, "status")
                .and_then(StatusCode::parse)
                .or_else(|| StatusCode::find_in(diagnostic_raw))
                .or_else(|| StatusCode::find_basic_in(&diagnostic));
            let event = match action
                .as_deref()
                .map(|a| a.split_whitespace().next().unwrap_or(""))
            {
                Some("failed") => match status {
                    Some(s) => match status::classify(s, &diagnostic) {
                        Some(c) => Event::Failed(c),
                        None => continue,
                    },
                    None => Event::Failed(failed_without_code(&diagnostic)),
                },
                Some("delayed") => Event::Delayed,
                Some("delivered" | "relayed" | "expanded") => continue,
                _ => match status.and_then(|s| status::classify(s, &diagnostic)) {
                    Some(c) => Event::Failed(c),
                    None => continue,
                },
            };
            notices.push(Notice {
                addresses,
                event,
                status,
                diagnostic: if diagnostic.is_empty() {
                    status.map(|s| s.to_string()).unwrap_or_default()
                } else {
                    diagnostic
                },
            });
        }
    }
    (notices, date)
}

/// A failure the server gave no code for: what its words say, else soft (never suppress
/// an address on a guess).
fn failed_without_code(diagnostic: &str) -> BounceClass {
    if status::mentions_mailbox_full(diagnostic) {
        BounceClass::Soft
    } else if status::mentions_unknown_address(diagnostic) {
        BounceClass::Hard
    } else {
        BounceClass::Soft
    }
}

/// Notices of an RFC 5965 report, and its `Arrival-Date`.
fn feedback_notices(parts: &Parts) -> (Vec<Notice>, Option<NaiveDate>) {
    let mut notices = Vec::new();
    let mut date = None;
    for text in &parts.feedback {
        let fields: Vec<(String, String)> =
            parse_field_groups(text).into_iter().flatten().collect();
        let Some(feedback_type) = field(&fields, "feedback-type") else {
            continue;
        };
        let feedback_type = feedback_type
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        date = field(&fields, "arrival-date")
            .or_else(|| field(&fields, "received-date"))
            .and_then(parse_date)
            .or(date);
        let mut addresses: Vec<String> = fields
            .iter()
            .filter(|(n, _)| n == "original-rcpt-to")
            .filter_map(|(_, v)| typed_address(v))
            .collect();
        for a in &parts.original_to {
            if !addresses.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                addresses.push(a.clone());
            }
        }
        let event = if feedback_type == "abuse" {
            Event::Complaint
        } else {
            Event::OtherFeedback(feedback_type.clone())
        };
        notices.push(Notice {
            addresses,
            event,
            status: None,
            diagnostic: format!("feedback report: {feedback_type}"),
        });
    }
    (notices, date)
}

/// Cuts a bounce's text where the copy of the original message starts.
fn cut_quoted_original(text: &str) -> &str {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"(?im)^\s*(-{2,}\s*(this is a copy of|original message|below this line is a copy|undelivered message (headers )?follows|returned message follows|message headers? follows)|original message headers:|\s*-{5,} ?original message ?-{5,})",
        )
        .expect("quoted original regex compiles")
    });
    match re.find(text) {
        Some(m) => &text[..m.start()],
        None => text,
    }
}

const ADDR: &str = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+";

/// Addresses alone on a line (the way Exim, Postfix, qmail, sendmail and Exchange list
/// failed recipients), each with the text up to the next such line.
fn address_blocks(text: &str) -> Vec<(String, String)> {
    static LINE: OnceLock<Regex> = OnceLock::new();
    static NAMED: OnceLock<Regex> = OnceLock::new();
    let line_re = LINE.get_or_init(|| {
        Regex::new(&format!(
            r"^<?({ADDR})>?(?:\s*:.*|\s*\.{{3}}.*|\s*\(\s*(?:mailto:)?{ADDR}\s*\)|\s*[<\[]mailto:[^>\]]*[>\]])?$"
        ))
        .expect("address line regex compiles")
    });
    let named_re = NAMED.get_or_init(|| {
        Regex::new(&format!(
            r"^[^:<>()\[\]@]{{1,80}}[(<\[](?:mailto:)?({ADDR})[)>\]]$"
        ))
        .expect("named address line regex compiles")
    });
    let lines: Vec<&str> = text.lines().collect();
    let mut heads: Vec<(usize, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.len() > 400 {
            continue;
        }
        let cap = line_re.captures(t).or_else(|| named_re.captures(t));
        if let Some(a) = cap.and_then(|c| c.get(1)) {
            heads.push((i, a.as_str().trim_end_matches('.').to_string()));
        }
    }
    let mut out = Vec::new();
    for (k, (i, addr)) in heads.iter().enumerate() {
        let end = heads.get(k + 1).map_or(lines.len(), |(j, _)| *j);
        let end = end.min(i + 40);
        // the head line itself may carry the reply (`<a@b>: host … said: 550 …`)
        let head_rest = lines[*i]
            .trim()
            .split_once(&format!("{addr}>:"))
            .or_else(|| lines[*i].trim().split_once(&format!("{addr}:")))
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
        let mut block = head_rest;
        for l in &lines[i + 1..end] {
            block.push('\n');
            block.push_str(l);
        }
        out.push((addr.clone(), block));
    }
    out
}

/// Addresses mentioned in a sentence (`wasn't delivered to a@b.org because …`).
fn sentence_mentions(text: &str) -> Vec<(String, String)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(&format!(
            r"(?i)(?:wasn't|was not|couldn't be|could not be|isn't|cannot be|can't be|has not been|hasn't been) delivered to\s+<?({ADDR})>?"
        ))
        .expect("sentence regex compiles")
    });
    re.captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            let addr = c.get(1)?.as_str().trim_end_matches('.').to_string();
            let rest_end = floor_char_boundary(text, (m.end() + 2000).min(text.len()));
            Some((addr, text[m.end()..rest_end].to_string()))
        })
        .collect()
}

/// The first status code in a block of text and the line it is on.
fn status_in(block: &str) -> (Option<StatusCode>, String) {
    for line in block.lines() {
        if let Some(s) = StatusCode::find_in(line) {
            return (Some(s), one_line(line));
        }
    }
    for line in block.lines() {
        if let Some(s) = StatusCode::find_basic_in(line) {
            return (Some(s), one_line(line));
        }
    }
    let first = block
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    (None, one_line(first))
}

fn is_delay(subject: &str, text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    static SUBJECT: OnceLock<Regex> = OnceLock::new();
    SUBJECT
        .get_or_init(|| {
            Regex::new(r"(?i)\bdelay|warning|still being retried|not yet (been )?delivered")
                .expect("delay subject regex compiles")
        })
        .is_match(subject)
        || RE
            .get_or_init(|| {
                Regex::new(r"(?i)has not yet been delivered|not been delivered yet|still being retried|will (continue to )?(retry|try|keep trying)|will be retried|warning: could not send message")
                    .expect("delay regex compiles")
            })
            .is_match(text)
}

/// The event of a human-readable bounce for one recipient; `None` when the text gives
/// no evidence of a failure (no code, no words for one): such a message is not counted.
fn text_event(
    status: Option<StatusCode>,
    diagnostic: &str,
    text: &str,
    delayed: bool,
) -> Option<Event> {
    Some(match status {
        Some(s) if s.class == 5 => {
            Event::Failed(status::classify(s, diagnostic).unwrap_or(BounceClass::Soft))
        }
        _ if delayed => Event::Delayed,
        Some(s) => Event::Failed(status::classify(s, diagnostic).unwrap_or(BounceClass::Soft)),
        None => {
            if status::mentions_mailbox_full(diagnostic) || status::mentions_mailbox_full(text) {
                Event::Failed(BounceClass::Soft)
            } else if status::mentions_unknown_address(diagnostic)
                || status::mentions_unknown_address(text)
            {
                Event::Failed(BounceClass::Hard)
            } else {
                return None;
            }
        }
    })
}

/// Which mailer wrote a human-readable bounce (for the report only).
fn flavour(msg: &Message<'_>, text: &str) -> &'static str {
    let lower = text.to_ascii_lowercase();
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address.as_deref())
        .unwrap_or("")
        .to_ascii_lowercase();
    if lower.contains("created automatically by mail delivery software") {
        "Exim"
    } else if lower.contains("this is the mail system at host") {
        "Postfix"
    } else if lower.contains("qmail-send program") {
        "qmail"
    } else if lower.contains("delivery has failed to these recipients")
        || lower.contains("remote server returned")
    {
        "Exchange"
    } else if from.ends_with("google.com") || from.ends_with("googlemail.com") {
        "Gmail"
    } else if lower.contains("permanent fatal errors") {
        "sendmail"
    } else {
        "text"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_groups_unfold_continuations_and_split_on_blank_lines() {
        let g = parse_field_groups(
            "Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Wed, 27 Feb 2002 10:00:00 +0000\r\n\r\nFinal-Recipient: rfc822; a@example.org\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n  user unknown\r\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!(
            field(&g[1], "diagnostic-code"),
            Some("smtp; 550 5.1.1 user unknown")
        );
        assert_eq!(
            typed_address("rfc822; <A@Example.org>").as_deref(),
            Some("A@Example.org")
        );
        assert_eq!(
            parse_date("Wed, 27 Feb 2002 10:00:00 +0000 (UTC)"),
            NaiveDate::from_ymd_opt(2002, 2, 27)
        );
    }

    #[test]
    fn address_lines_in_the_shapes_mailers_write_are_found() {
        let text = "The following address(es) failed:\n\n  one@example.org\n    SMTP error from remote mail server after RCPT TO:<one@example.org>:\n    550 5.1.1 <one@example.org>: User unknown\n\n<two@example.org>: host mx[1.2.3.4] said: 552 5.2.2 Mailbox full\n\nthree@example.org (three@example.org)\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'\nTo: notme@example.org\n";
        let blocks = address_blocks(text);
        let addrs: Vec<&str> = blocks.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            addrs,
            ["one@example.org", "two@example.org", "three@example.org"]
        );
        assert_eq!(status_in(&blocks[0].1).0.unwrap().to_string(), "5.1.1");
        assert_eq!(status_in(&blocks[1].1).0.unwrap().to_string(), "5.2.2");
        assert_eq!(status_in(&blocks[2].1).0.unwrap().to_string(), "5.1.10");
    }

    #[test]
    fn the_quoted_original_is_cut_off() {
        let t = "failed:\n  a@example.org\n\n------ This is a copy of the message, including all the headers. ------\nTo: b@example.org\n";
        assert!(!cut_quoted_original(t).contains("b@example.org"));
    }

    #[test]
    fn token_prefix_is_the_path_and_query_before_the_token() {
        assert_eq!(
            token_url_prefix("https://a.example.org/unsubscribe?t={token}").as_deref(),
            Some("/unsubscribe?t=")
        );
        assert_eq!(
            token_url_prefix("https://a.example.org/u/{token}").as_deref(),
            Some("/u/")
        );
        assert_eq!(token_url_prefix("https://a.example.org/u"), None);
    }

    #[test]
    fn junk_never_panics() {
        let config = Config::parse(
            "[publication]\nname='x'\nbase_url='https://x.example.org'\n[sender]\nfrom='X <d@x.example.org>'\nlist_id='l.x.example.org'\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let r = Recognizer::new(&config);
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut junk = Vec::new();
        for round in 0..200 {
            junk.clear();
            for _ in 0..(round * 7) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                junk.push((seed & 0xff) as u8);
            }
            let a = r.analyse(&junk);
            assert_eq!(a.kind, ReportKind::Unrecognised);
        }
        for text in [
            "",
            "\r\n\r\n",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n",
            "Content-Type: multipart/report; report-type=feedback-report\r\n\r\n",
            "From: MAILER-DAEMON@x.org\r\nSubject: Undelivered\r\n\r\n\u{0}\u{1}<@>:\n",
        ] {
            let _ = r.analyse(text.as_bytes());
        }
    }

    fn analyst() -> Recognizer {
        let config = Config::parse(
            r#"
[publication]
name = "Test Analyst"
base_url = "https://analyst.example.org"
[sender]
from = "The Test Analyst <digest@analyst.example.org>"
bounce = "bounces@analyst.example.org"
list_id = "digest.analyst.example.org"
[unsubscribe]
url = "https://analyst.example.org/unsubscribe?t={token}"
"#,
            std::path::Path::new("config.toml"),
        )
        .unwrap();
        Recognizer::new(&config)
    }

    fn fixture(name: &str) -> Analysis {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bounces")
            .join(name);
        analyst().analyse(&std::fs::read(&path).unwrap())
    }

    fn one(a: &Analysis) -> (&str, &Event, String) {
        assert_eq!(a.notices.len(), 1, "{a:#?}");
        let n = &a.notices[0];
        (
            n.addresses.first().map(String::as_str).unwrap_or(""),
            &n.event,
            n.status.map(|s| s.to_string()).unwrap_or_default(),
        )
    }

    #[test]
    fn postfix_dsn_is_a_hard_bounce_of_the_issue_in_the_original_message_id() {
        let a = fixture("postfix-user-unknown.eml");
        assert_eq!(a.kind, ReportKind::DeliveryStatus);
        assert_eq!(
            one(&a),
            (
                "reader.gone@example.org",
                &Event::Failed(BounceClass::Hard),
                "5.1.1".into()
            )
        );
        assert_eq!(a.original_issue.unwrap().to_string(), "2002-02-27");
        assert_eq!(a.date, NaiveDate::from_ymd_opt(2002, 2, 27));
        assert_eq!(a.id, "<20020227101502.4F1C83E@mail.analyst.example.org>");
    }

    #[test]
    fn exim_text_bounce_names_the_indented_address_and_its_smtp_reply() {
        let a = fixture("exim-user-unknown.eml");
        assert_eq!(a.kind, ReportKind::TextBounce("Exim"));
        assert_eq!(
            one(&a),
            (
                "exim.gone@example.net",
                &Event::Failed(BounceClass::Hard),
                "5.1.1".into()
            )
        );
        assert_eq!(a.original_issue.unwrap().to_string(), "2002-02-27");
    }

    #[test]
    fn gmail_address_not_found_is_a_hard_bounce() {
        let a = fixture("gmail-address-not-found.eml");
        assert_eq!(a.kind, ReportKind::TextBounce("Gmail"));
        assert_eq!(
            one(&a),
            (
                "missing.reader@gmail.com",
                &Event::Failed(BounceClass::Hard),
                "5.1.1".into()
            )
        );
    }

    #[test]
    fn exchange_ndr_recipient_not_found_is_a_hard_bounce() {
        let a = fixture("exchange-recipient-not-found.eml");
        assert_eq!(a.kind, ReportKind::TextBounce("Exchange"));
        assert_eq!(
            one(&a),
            (
                "former.staff@contoso.com",
                &Event::Failed(BounceClass::Hard),
                "5.1.10".into()
            )
        );
        assert_eq!(a.original_issue.unwrap().to_string(), "2002-02-27");
    }

    #[test]
    fn mailbox_full_is_a_soft_bounce() {
        let a = fixture("mailbox-full-2002-02-13.eml");
        assert_eq!(
            one(&a),
            (
                "full.box@example.org",
                &Event::Failed(BounceClass::Soft),
                "5.2.2".into()
            )
        );
        assert_eq!(a.original_issue.unwrap().to_string(), "2002-02-13");
    }

    #[test]
    fn arf_abuse_report_is_a_complaint_about_the_original_recipient() {
        let a = fixture("arf-abuse.eml");
        assert_eq!(a.kind, ReportKind::Feedback);
        assert_eq!(one(&a).0, "angry.reader@example.com");
        assert_eq!(one(&a).1, &Event::Complaint);
    }

    #[test]
    fn policy_rejections_and_delays_are_told_apart_from_bounces() {
        let a = fixture("policy-blocked.eml");
        assert_eq!(one(&a).1, &Event::Failed(BounceClass::Policy));
        let a = fixture("delayed.eml");
        assert_eq!(one(&a).1, &Event::Delayed);
    }

    #[test]
    fn replies_auto_replies_phishing_success_reports_and_binary_junk_are_unrecognised() {
        for name in [
            "junk-reader-reply.eml",
            "junk-auto-reply.eml",
            "junk-phishing.eml",
            "junk-delivered-dsn.eml",
            "junk-binary.bin",
        ] {
            let a = fixture(name);
            assert_eq!(a.kind, ReportKind::Unrecognised, "{name}: {a:#?}");
        }
    }

    #[test]
    fn tokens_are_found_in_verp_recipients_and_quoted_list_unsubscribe_urls() {
        let token = "AQJrMQ0123456789abcdefghij_-xyz";
        let raw = format!(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+{token}@analyst.example.org\r\nSubject: failure notice\r\nMessage-ID: <q1@mx.example.net>\r\n\r\nSorry, 550 5.1.1 mailbox unavailable.\r\n"
        );
        let a = analyst().analyse(raw.as_bytes());
        assert_eq!(a.tokens, vec![token.to_string()]);
        assert_eq!(a.notices.len(), 1);
        assert!(a.notices[0].addresses.is_empty());
        assert_eq!(a.notices[0].event, Event::Failed(BounceClass::Hard));

        let raw = format!(
            "From: abuse@isp.example.com\r\nSubject: report\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: redacted@isp.example.com\r\nList-Unsubscribe: <https://analyst.example.org/unsubscribe?t={token}>\r\n\r\n--b--\r\n"
        );
        let a = analyst().analyse(raw.as_bytes());
        assert_eq!(a.kind, ReportKind::Feedback);
        assert_eq!(a.tokens, vec![token.to_string()]);
        assert_eq!(
            a.notices[0].addresses,
            vec!["redacted@isp.example.com".to_string()]
        );
    }

    #[test]
    fn the_issue_is_read_from_the_message_id_the_composer_writes() {
        let email = crate::subscribers::SubscriberEmail::parse("reader@example.org").unwrap();
        let issue = IssueDate::parse("2002-02-13").unwrap();
        let keyring = crate::token::Keyring::new(
            crate::token::UnsubscribeKey::new("k1", &[7u8; 32]).unwrap(),
            vec![],
        );
        let id = crate::message::message_id(
            issue,
            &email,
            "analyst.example.org",
            "digest.analyst.example.org",
            &keyring,
        );
        let raw = format!(
            "From: MAILER-DAEMON@mx.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-9@mx.example.org>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; reader@example.org\r\nAction: failed\r\nStatus: 4.2.2\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {id}\r\n\r\n--b--\r\n"
        );
        let a = analyst().analyse(raw.as_bytes());
        assert_eq!(a.original_issue, Some(issue), "{id}");
        assert_eq!(a.notices[0].event, Event::Failed(BounceClass::Soft));
    }
}
