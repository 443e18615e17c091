//! Integration tests for `message`: generated messages are parsed with independent tools
//! (mail-parser for MIME, mail-auth for DKIM) and checked against every rule of
//! docs/standards.md "Every message" and "List headers and one-click unsubscribe".

#[path = "../fixtures/sample_digest.rs"]
mod sample_digest;
#[path = "../fixtures/sample_issue.rs"]
#[allow(dead_code)]
mod sample_issue;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fortnight::base::IssueDate;
use fortnight::config::Config;
use fortnight::digest::{Digest, Field, Personalise, Rendered, Segment};
use fortnight::message::{
    deliverability_findings, message_id, Composer, DkimSigner, Finding, Outgoing, Severity,
};
use fortnight::subscribers::{Status, Subscriber, SubscriberEmail};
use fortnight::token::{Keyring, TokenIndex, UnsubscribeKey};
use mail_parser::{MessageParser, MimeHeaders};

const CONFIG: &str = r#"[publication]
name = "Test Analyst"
base_url = "https://analyst.example.org"

[sender]
from = "The Test Analyst <digest@analyst.example.org>"
reply_to = "editors@analyst.example.org"
bounce = "bounces@analyst.example.org"
list_id = "digest.analyst.example.org"
postal_address = "Example Institute, 1 Example Row, Washington, DC 20000"

[unsubscribe]
url = "https://analyst.example.org/unsubscribe?t={token}"
mailto = "unsubscribe@analyst.example.org"
"#;

const LIST_ID: &str = "digest.analyst.example.org";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn config(text: &str) -> Config {
    Config::parse(text, Path::new("/srv/analyst/config.toml")).expect("test config parses")
}

fn dkim_config(key: &str, domain: &str) -> Config {
    config(&format!(
        "{CONFIG}\n[dkim]\ndomain = \"{domain}\"\nselector = \"fn2026\"\nprivate_key = \"{}\"\n",
        fixture(&format!("dkim/{key}")).display()
    ))
}

/// RSA and Ed25519 together, as `[[dkim]]` tables: the configuration `check` is silent about.
fn two_keys_config(domain: &str) -> Config {
    let key = |k: &str| fixture(&format!("dkim/{k}")).display().to_string();
    config(&format!(
        "{CONFIG}\n[[dkim]]\ndomain = \"{domain}\"\nselector = \"rsa2026\"\nprivate_key = \"{}\"\n\
         \n[[dkim]]\ndomain = \"{domain}\"\nselector = \"ed2026\"\nprivate_key = \"{}\"\n",
        key("rsa2048.pem"),
        key("ed25519.pem"),
    ))
}

/// The findings other than those about `[dkim]` (most test configs sign with one key or none).
fn beyond_dkim(findings: Vec<Finding>) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| f.kind != fortnight::message::FindingKind::Dkim)
        .collect()
}

/// The signing clock of tests that verify signatures: verifiers refuse a signature past its
/// `x=`, so these copies are signed now, not at the fixed test clock.
fn signing_now() -> DateTime<Utc> {
    Utc::now()
}

fn issue() -> IssueDate {
    IssueDate::parse("2002-02-27").unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2002-02-27T09:30:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn keyring() -> Keyring {
    Keyring::new(UnsubscribeKey::new("k1", &[7u8; 32]).unwrap(), vec![])
}

fn subscriber(email: &str, name: &str) -> Subscriber {
    Subscriber {
        email: SubscriberEmail::parse(email).unwrap(),
        name: name.to_string(),
        status: Status::Subscribed,
        since: "2020-01-01".into(),
        source: "manual".into(),
        tags: vec![],
        attrs: BTreeMap::new(),
    }
}

fn composer_with(config: &Config, digest: impl Personalise + 'static) -> Composer {
    Composer::new(config, issue(), Arc::new(digest), keyring(), now()).expect("composer")
}

fn composer(config: &Config) -> Composer {
    composer_with(config, sample_digest::digest(25_000))
}

fn compose(c: &Composer, email: &str, name: &str) -> Outgoing {
    c.compose(&subscriber(email, name)).expect("compose")
}

fn lit(s: &str) -> Segment {
    Segment::Lit(s.to_string())
}

use sample_digest::digest_of;

/// The header block (up to the empty line) and the body, as text.
fn split(bytes: &[u8]) -> (&str, &str) {
    let s = std::str::from_utf8(bytes).expect("messages are ASCII");
    let at = s.find("\r\n\r\n").expect("a header block");
    (&s[..at + 2], &s[at + 4..])
}

/// Unfolded header fields, in order: (name, value).
fn fields(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with(' ') || line.starts_with('\t') {
            out.last_mut()
                .expect("a field before a fold")
                .1
                .push_str(line);
        } else {
            let (n, v) = line.split_once(':').expect("name: value");
            out.push((n.to_string(), v.trim_start().to_string()));
        }
    }
    out
}

fn count(fields: &[(String, String)], name: &str) -> usize {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[track_caller]
fn assert_crlf_and_line_lengths(bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}"),
            b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            _ => {}
        }
    }
    let (head, body) = split(bytes);
    for line in head.split("\r\n") {
        assert!(line.len() <= 998, "header line of {} octets", line.len());
    }
    for line in body.split("\r\n") {
        assert!(
            line.len() <= 76,
            "encoded body line of {} octets: {line}",
            line.len()
        );
        assert_ne!(line, ".", "a lone dot line in the body");
    }
    assert!(bytes.is_ascii(), "8-bit bytes in the message");
}

#[test]
fn every_message_has_each_required_header_exactly_once() {
    let c = composer(&config(CONFIG));
    let out = compose(&c, "anna.petrova@example.org", "Anna Petrova");
    let (head, _) = split(&out.bytes);
    let f = fields(head);
    for name in [
        "Date",
        "From",
        "To",
        "Subject",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Feedback-ID",
        "X-Auto-Response-Suppress",
        "MIME-Version",
        "Content-Type",
        "Reply-To",
    ] {
        assert_eq!(count(&f, name), 1, "{name} in\n{head}");
    }
    // Gmail's feedback loop: campaign (issue), list, type, sender; nothing per recipient.
    assert_eq!(
        value(&f, "Feedback-ID"),
        "20020227:digest.analyst.example.org:digest:fortnight"
    );
    assert_eq!(value(&f, "X-Auto-Response-Suppress"), "OOF, AutoReply");
    let other = compose(&c, "boris@example.org", "Boris");
    let other_fields = fields(split(&other.bytes).0);
    assert_eq!(
        value(&other_fields, "Feedback-ID"),
        value(&f, "Feedback-ID")
    );
    let custom = config(&CONFIG.replace(
        "list_id = ",
        "feedback_id = \"{issue}:weekly:analyst\"\nlist_id = ",
    ));
    let out2 = compose(&composer(&custom), "anna.petrova@example.org", "Anna");
    assert_eq!(
        value(&fields(split(&out2.bytes).0), "Feedback-ID"),
        "20020227:weekly:analyst"
    );
    let bad = config(&CONFIG.replace("list_id = ", "feedback_id = \"a b\"\nlist_id = "));
    let err = Composer::new(
        &bad,
        issue(),
        Arc::new(sample_digest::digest(1000)),
        keyring(),
        now(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("[sender] feedback_id"),
        "{err:#}"
    );
    for absent in ["Precedence", "Bcc", "Cc", "DKIM-Signature"] {
        assert_eq!(count(&f, absent), 0, "{absent} in\n{head}");
    }
    assert_eq!(value(&f, "Date"), "Wed, 27 Feb 2002 09:30:00 +0000");
    assert_eq!(value(&f, "MIME-Version"), "1.0");
    assert_eq!(
        value(&f, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        value(&f, "List-Id"),
        "Test Analyst <digest.analyst.example.org>"
    );

    let m = MessageParser::default().parse(&out.bytes).expect("parses");
    let to = m.to().expect("To");
    assert_eq!(to.iter().count(), 1, "To holds only the recipient");
    let first = to.first().unwrap();
    assert_eq!(first.address(), Some("anna.petrova@example.org"));
    assert_eq!(first.name(), Some("Anna Petrova"));
    assert_eq!(
        m.from().unwrap().first().unwrap().address(),
        Some("digest@analyst.example.org")
    );
    assert_eq!(
        m.reply_to().unwrap().first().unwrap().address(),
        Some("editors@analyst.example.org")
    );
    assert_eq!(
        m.subject(),
        Some("Central Asia-Caucasus Analyst: issue of 27 February 2002")
    );
    assert_eq!(
        out.subject,
        "Central Asia-Caucasus Analyst: issue of 27 February 2002"
    );
    let date = m.date().expect("a parseable Date");
    assert_eq!(
        (
            date.year,
            date.month,
            date.day,
            date.tz_hour,
            date.tz_minute
        ),
        (2002, 2, 27, 0, 0)
    );
    let id = m.message_id().expect("Message-ID");
    assert!(id.ends_with("@analyst.example.org"), "{id}");
    assert_eq!(format!("<{id}>"), out.message_id);
    assert_eq!(out.envelope_from, "bounces@analyst.example.org");
    assert_eq!(out.recipient.as_str(), "anna.petrova@example.org");
    let env = out.envelope().unwrap();
    assert_eq!(env.to().len(), 1, "one RCPT per transaction");
}

#[test]
fn parts_are_text_then_html_both_utf8_and_decode_to_the_personalised_digest() {
    let c = composer(&config(CONFIG));
    let sub = subscriber("tom@example.org", "Tom & \"Jerry\" <T>");
    let out = c.compose(&sub).unwrap();
    let m = MessageParser::default().parse(&out.bytes).expect("parses");
    let root = m.root_part();
    let ct = root.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let kinds: Vec<(String, String, String)> = m.parts[1..]
        .iter()
        .map(|p| {
            let ct = p.content_type().unwrap();
            (
                ct.ctype().to_string(),
                ct.subtype().unwrap_or("").to_string(),
                ct.attribute("charset").unwrap_or("").to_ascii_lowercase(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("text".into(), "plain".into(), "utf-8".into()),
            ("text".into(), "html".into(), "utf-8".into())
        ]
    );
    for p in &m.parts[1..] {
        assert_eq!(p.content_transfer_encoding(), Some("quoted-printable"));
    }

    let url = c.unsubscribe_url(&sub.email);
    let (_, html, text) = sample_digest::parts(25_000);
    let want_text = sample_digest::fill(&text, &sub.name, sub.email.as_str(), &url, false);
    let want_html = sample_digest::fill(&html, &sub.name, sub.email.as_str(), &url, true);
    let got_text = m.body_text(0).unwrap().replace("\r\n", "\n");
    let got_html = m.body_html(0).unwrap().replace("\r\n", "\n");
    assert_eq!(got_text, want_text);
    assert_eq!(got_html, want_html);
    assert!(got_html.contains("Dear Tom &amp; &quot;Jerry&quot; &lt;T&gt;,"));
    assert!(got_text.contains("Dear Tom & \"Jerry\" <T>,"));
    assert!(got_text.contains(&url) && got_html.contains(&url));
}

#[test]
fn messages_are_crlf_only_with_short_lines_for_every_digest_size() {
    let long_line = "x".repeat(2_000) + " ünïcode " + &"y ".repeat(600);
    for digest in [
        sample_digest::digest(10_000),
        sample_digest::digest(100_000),
        digest_of(
            vec![lit("Long lines")],
            vec![
                lit("<p>"),
                lit(&long_line),
                lit("</p>\r\rlone CR\n"),
                Segment::Field(Field::UnsubscribeUrl),
            ],
            vec![
                lit(&long_line),
                lit("\n\tTabbed  line with trailing space \nbare CR\rend"),
                Segment::Field(Field::Name),
            ],
        ),
    ] {
        let c = composer_with(&config(CONFIG), digest);
        for (email, name) in [
            ("a@example.org", "Ann"),
            ("b@example.org", &"Ĳ".repeat(80) as &str),
        ] {
            let out = compose(&c, email, name);
            assert_crlf_and_line_lengths(&out.bytes);
            let m = MessageParser::default().parse(&out.bytes).unwrap();
            assert!(m.body_text(0).is_some() && m.body_html(0).is_some());
        }
    }
}

#[test]
fn fast_path_bytes_equal_those_of_the_same_copy_given_as_plain_text() {
    // Encoding only the personalised lines per copy must give exactly the bytes of encoding
    // the whole filled-in text (what a full render per subscriber would produce).
    let cfg = config(CONFIG);
    let fast = composer(&cfg);
    let sub = subscriber("zoe@example.org", "Zoë Özil");
    let url = fast.unsubscribe_url(&sub.email);
    let (subject, html, text) = sample_digest::parts(25_000);
    let flat = digest_of(
        subject,
        vec![Segment::Lit(sample_digest::fill(
            &html,
            &sub.name,
            sub.email.as_str(),
            &url,
            true,
        ))],
        vec![Segment::Lit(sample_digest::fill(
            &text,
            &sub.name,
            sub.email.as_str(),
            &url,
            false,
        ))],
    );
    let slow = composer_with(&cfg, flat);
    assert!(fast.uses_fast_path());
    assert_eq!(
        fast.compose(&sub).unwrap().bytes,
        slow.compose(&sub).unwrap().bytes
    );
}

#[test]
fn message_id_is_stable_across_builds_and_test_copies_get_their_own() {
    let cfg = config(CONFIG);
    let a = composer(&cfg);
    let later = Composer::new(
        &cfg,
        issue(),
        Arc::new(sample_digest::digest(25_000)),
        keyring(),
        now() + chrono::Duration::hours(30),
    )
    .unwrap();
    let one = compose(&a, "Reader@Example.org", "R");
    let two = compose(&later, "reader@example.org", "R");
    assert_eq!(
        one.message_id, two.message_id,
        "retries carry the same Message-ID"
    );
    assert_eq!(
        one.message_id,
        message_id(
            issue(),
            &SubscriberEmail::parse("reader@example.org").unwrap(),
            "analyst.example.org",
            &cfg.sender.list_id,
            &keyring()
        )
    );
    assert!(
        one.message_id.starts_with("<20020227."),
        "{}",
        one.message_id
    );
    let other_issue = message_id(
        IssueDate::parse("2002-03-13").unwrap(),
        &SubscriberEmail::parse("reader@example.org").unwrap(),
        "analyst.example.org",
        &cfg.sender.list_id,
        &keyring(),
    );
    assert_ne!(one.message_id, other_issue);

    let test = composer(&cfg).for_test_copies();
    let t = compose(&test, "reader@example.org", "R");
    assert_ne!(t.message_id, one.message_id);
    assert!(t.message_id.contains(".test."), "{}", t.message_id);
    assert!(t.message_id.ends_with("@analyst.example.org>"));
    assert_eq!(t.subject, format!("[TEST] {}", one.subject));
    let m = MessageParser::default().parse(&t.bytes).unwrap();
    assert_eq!(m.subject(), Some(t.subject.as_str()));
}

#[test]
fn message_ids_are_unique_across_100000_subscribers() {
    let mut seen = HashSet::with_capacity(100_000);
    for i in 0..100_000 {
        let email = SubscriberEmail::parse(&format!("reader{i}@example{}.org", i % 97)).unwrap();
        let id = message_id(
            issue(),
            &email,
            "analyst.example.org",
            "digest.analyst.example.org",
            &keyring(),
        );
        assert!(seen.insert(id), "duplicate Message-ID for {email}");
    }
}

#[test]
fn names_round_trip_through_rfc2047_and_specials_are_quoted() {
    let c = composer(&config(CONFIG));
    for name in [
        "Zoë Özil",
        "Мурат Аманов",
        "Doe, John",
        "O'Brien (Editor) \"Ed\"",
        &"Ünïcödé ".repeat(12),
    ] {
        let out = compose(&c, "reader@example.org", name);
        let (head, _) = split(&out.bytes);
        let to = value(&fields(head), "To").to_string();
        if name == "Doe, John" {
            assert_eq!(to, "\"Doe, John\" <reader@example.org>");
        }
        let m = MessageParser::default().parse(&out.bytes).unwrap();
        let addr = m.to().unwrap().first().unwrap();
        assert_eq!(addr.name(), Some(name.trim()), "To: {to}");
        assert_eq!(addr.address(), Some("reader@example.org"));
        assert_crlf_and_line_lengths(&out.bytes);
    }
}

#[test]
fn non_ascii_subjects_are_encoded_words_that_decode_back() {
    let subject = "Аналитик: выпуск от 27 февраля — Zoë’s «digest» ".repeat(3);
    let c = composer_with(
        &config(CONFIG),
        digest_of(vec![lit(&subject)], vec![lit("<p>x</p>")], vec![lit("x")]),
    );
    let out = compose(&c, "a@example.org", "A");
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    assert_eq!(m.subject(), Some(subject.trim()));
    assert_crlf_and_line_lengths(&out.bytes);
}

#[test]
fn a_line_break_in_a_name_or_subject_never_makes_a_header() {
    let evil = "Eve\r\nBcc: x@y";
    let c = composer_with(
        &config(CONFIG),
        digest_of(
            vec![
                lit("Issue\r\nBcc: x@y\nCc: z@y\r\n\r\nbody "),
                Segment::Field(Field::Name),
            ],
            vec![lit("<p>"), Segment::Field(Field::Name), lit("</p>")],
            vec![Segment::Field(Field::Name)],
        ),
    );
    for name in [
        evil,
        "Eve\nBcc: x@y",
        "Eve\rBcc: x@y",
        "Eve\0\r\n\r\nBcc: x@y",
    ] {
        let out = compose(&c, "eve@example.org", name);
        let (head, _) = split(&out.bytes);
        let f = fields(head);
        assert_eq!(count(&f, "Bcc"), 0, "{head}");
        assert_eq!(count(&f, "Cc"), 0, "{head}");
        let m = MessageParser::default().parse(&out.bytes).unwrap();
        assert!(m.bcc().is_none() && m.cc().is_none());
        assert_eq!(m.to().unwrap().iter().count(), 1);
        assert!(m
            .subject()
            .unwrap()
            .starts_with("Issue Bcc: x@y Cc: z@y body Eve"));
        assert_crlf_and_line_lengths(&out.bytes);
    }
}

#[test]
fn dot_lines_in_the_body_arrive_as_content() {
    let body = "first\n.\nsecond\n\n.\n\nthird\r\r\n.\r\nlast\n..\n.x\n";
    let c = composer_with(
        &config(CONFIG),
        digest_of(
            vec![lit("Dots")],
            vec![lit("<p>"), lit(body), lit("</p>")],
            vec![lit(body), Segment::Field(Field::Name), lit("\n.\n")],
        ),
    );
    let out = compose(&c, "a@example.org", "A");
    assert_crlf_and_line_lengths(&out.bytes);
    let (_, raw_body) = split(&out.bytes);
    assert!(
        raw_body.split("\r\n").all(|l| !l.starts_with('.')),
        "no line starts with a dot"
    );
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    let text = m.body_text(0).unwrap().into_owned();
    // bare CR and LF became CRLF; the dot lines are content
    assert_eq!(
        text,
        "first\r\n.\r\nsecond\r\n\r\n.\r\n\r\nthird\r\n\r\n.\r\nlast\r\n..\r\n.x\r\nA\r\n.\r\n"
    );
    assert!(m.body_html(0).unwrap().contains("\r\n.\r\n"));
}

#[test]
fn list_unsubscribe_is_one_unfolded_https_token_url_plus_mailto() {
    let c = composer(&config(CONFIG));
    let sub = subscriber("reader@example.org", "Reader");
    let out = c.compose(&sub).unwrap();
    let (head, _) = split(&out.bytes);
    let raw = head
        .split("\r\n")
        .find(|l| l.starts_with("List-Unsubscribe:"))
        .unwrap();
    let url = c.unsubscribe_url(&sub.email);
    // Folding is only allowed between the two entries, never inside <…>.
    let whole = value(&fields(head), "List-Unsubscribe").to_string();
    assert!(raw.contains(&format!("<{url}>")), "{raw}");
    let token = url
        .strip_prefix("https://analyst.example.org/unsubscribe?t=")
        .unwrap();
    // The mailto entry carries the reader's token too (lower-case base32).
    let tag = fortnight::token::lowercase_form(token).unwrap();
    assert_eq!(
        whole.replace(",  <", ", <").replace(", <", ",<"),
        format!("<{url}>,<mailto:unsubscribe+{tag}@analyst.example.org?subject=unsubscribe>")
    );
    let index = TokenIndex::build(keyring(), LIST_ID, [&sub.email]);
    assert_eq!(index.resolve(token).unwrap(), sub.email);
    assert!(!token.to_ascii_lowercase().contains("reader"));

    let no_mailto = composer(&config(
        &CONFIG.replace("mailto = \"unsubscribe@analyst.example.org\"\n", ""),
    ));
    let out = compose(&no_mailto, "reader@example.org", "Reader");
    let (head, _) = split(&out.bytes);
    assert_eq!(value(&fields(head), "List-Unsubscribe"), format!("<{url}>"));
}

#[test]
fn reply_to_and_bounce_follow_the_config() {
    let bare = CONFIG
        .replace("reply_to = \"editors@analyst.example.org\"\n", "")
        .replace("bounce = \"bounces@analyst.example.org\"\n", "");
    let out = compose(&composer(&config(&bare)), "a@example.org", "A");
    let (head, _) = split(&out.bytes);
    assert_eq!(count(&fields(head), "Reply-To"), 0);
    assert_eq!(
        out.envelope_from, "digest@analyst.example.org",
        "bounce defaults to From"
    );

    let verp = config(&format!("{CONFIG}\n[bounces]\nverp = true\n"));
    let c = composer(&verp);
    let sub = subscriber("a@example.org", "A");
    let out = c.compose(&sub).unwrap();
    let url = c.unsubscribe_url(&sub.email);
    let token = url.rsplit('=').next().unwrap();
    // The same token, in the lowercase form a relay that lowercases addresses cannot spoil.
    let lower = fortnight::token::lowercase_form(token).unwrap();
    assert_eq!(lower, lower.to_ascii_lowercase());
    assert_eq!(
        out.envelope_from,
        format!("bounces+{lower}@analyst.example.org")
    );
    assert!(out.envelope().is_ok());
}

#[test]
fn a_composer_without_an_https_unsubscribe_url_is_refused() {
    let none = CONFIG
        .replace("[unsubscribe]\n", "")
        .replace(
            "url = \"https://analyst.example.org/unsubscribe?t={token}\"\n",
            "",
        )
        .replace("mailto = \"unsubscribe@analyst.example.org\"\n", "");
    let err = Composer::new(
        &config(&none),
        issue(),
        Arc::new(sample_digest::digest(10_000)),
        keyring(),
        now(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("a bulk send needs an HTTPS unsubscribe URL: add [unsubscribe] url = "),
        "{err:#}"
    );
    for bad in [
        "http://analyst.example.org/u?t={token}",
        "https://analyst.example.org/u",
        "https://analyst.example.org/u?t={token}&x=<b>",
    ] {
        let cfg = config(&CONFIG.replace("https://analyst.example.org/unsubscribe?t={token}", bad));
        assert!(
            Composer::new(
                &cfg,
                issue(),
                Arc::new(sample_digest::digest(10_000)),
                keyring(),
                now()
            )
            .is_err(),
            "{bad} accepted"
        );
    }
}

#[test]
fn an_address_that_cannot_go_into_a_header_cannot_reach_the_composer() {
    // The address policy (SubscriberEmail's only constructor) rejects header specials, so
    // the composer never sees them.
    for bad in [
        "a>b@example.org",
        "a,b@example.org",
        "a\r\nBcc: x@example.org",
    ] {
        assert!(SubscriberEmail::parse(bad).is_err(), "{bad:?} accepted");
    }
}

// ---- DKIM, verified by mail-auth ----

mod verify {
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::Mutex;

    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{
        AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
    };

    /// A DNS cache holding just the test key: no network is ever asked.
    struct Dns(Mutex<HashMap<String, Txt>>);

    impl ResolverCache<String, Txt> for Dns {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            String: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            String: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }
        fn insert(&self, key: String, value: Txt, _: std::time::Instant) {
            self.0.lock().unwrap().insert(key, value);
        }
    }

    /// mail-auth's verdicts on every DKIM-Signature of `message`, given the TXT record.
    pub fn dkim(message: &[u8], dns_name: &str, record: &str) -> Vec<DkimResult> {
        dkim_keys(message, &[(dns_name.to_string(), record.to_string())])
    }

    /// mail-auth's verdicts on every DKIM-Signature of `message`, in header order, given
    /// the TXT record of every key it names (so no signature sends it to the network).
    pub fn dkim_keys(message: &[u8], records: &[(String, String)]) -> Vec<DkimResult> {
        let dns = Dns(Mutex::new(
            records
                .iter()
                .map(|(name, record)| {
                    let key = DomainKey::parse(record.as_bytes()).expect("the TXT record parses");
                    (format!("{name}."), Txt::from(key))
                })
                .collect(),
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let auth =
                MessageAuthenticator::new_cloudflare().expect("resolver object (never queried)");
            let msg = AuthenticatedMessage::parse(message).expect("mail-auth parses the message");
            auth.verify_dkim(Parameters::new(&msg).with_txt_cache(&dns))
                .await
                .into_iter()
                .map(|o| o.result().clone())
                .collect()
        })
    }
}

/// The `p=` value from an OpenSSL public key PEM (SPKI DER; Ed25519: its last 32 bytes).
fn openssl_public_key(pem_file: &str, ed25519: bool) -> String {
    use base64::Engine;
    let pem = std::fs::read_to_string(fixture(pem_file)).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let key = if ed25519 {
        &der[der.len() - 32..]
    } else {
        &der[..]
    };
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn check_dkim(key: &str, public: &str, algorithm: &str, ed25519: bool) {
    let c = Composer::new(
        &dkim_config(key, "analyst.example.org"),
        issue(),
        Arc::new(sample_digest::digest(25_000)),
        keyring(),
        signing_now(),
    )
    .unwrap();
    let signer = c.dkim().expect("dkim configured");
    assert_eq!(signer.algorithm(), algorithm);
    assert_eq!(signer.dns_name(), "fn2026._domainkey.analyst.example.org");
    // The record fortnight prints for DNS holds the same key as OpenSSL's public key file.
    let record = signer.dns_record();
    assert_eq!(
        record.rsplit("p=").next().unwrap(),
        openssl_public_key(public, ed25519)
    );
    let record = format!(
        "v=DKIM1; k={}; p={}",
        if ed25519 { "ed25519" } else { "rsa" },
        openssl_public_key(public, ed25519)
    );

    for (email, name) in [
        ("anna@example.org", "Anna Petrova"),
        ("zoe@example.org", "Zoë Özil"),
    ] {
        let out = compose(&c, email, name);
        assert_crlf_and_line_lengths(&out.bytes);
        let (head, _) = split(&out.bytes);
        let f = fields(head);
        assert_eq!(count(&f, "DKIM-Signature"), 1);
        let sig = value(&f, "DKIM-Signature");
        let h: String = sig
            .split(';')
            .map(str::trim)
            .find_map(|t| t.strip_prefix("h="))
            .unwrap()
            .split_whitespace()
            .collect();
        let signed: Vec<&str> = h.split(':').collect();
        for needed in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "mime-version",
            "content-type",
        ] {
            assert!(signed.contains(&needed), "h= lacks {needed}: {h}");
        }
        assert!(sig.contains("c=relaxed/relaxed") && sig.contains("d=analyst.example.org"));

        let results = verify::dkim(&out.bytes, signer.dns_name().as_str(), &record);
        assert_eq!(
            results,
            vec![mail_auth::DkimResult::Pass],
            "{key} signature of {email}"
        );

        // Changing List-Unsubscribe breaks the signature.
        let text = String::from_utf8(out.bytes.clone()).unwrap();
        let tampered = text.replacen(
            "List-Unsubscribe: <https://",
            "List-Unsubscribe: <https://evil.",
            1,
        );
        assert_ne!(tampered, text);
        let results = verify::dkim(tampered.as_bytes(), signer.dns_name().as_str(), &record);
        assert!(
            matches!(results.as_slice(), [mail_auth::DkimResult::Fail(_)]),
            "tampered List-Unsubscribe verified: {results:?}"
        );
        // So does changing a byte of the body.
        let tampered = text.replacen("Dostyk", "Dostik", 1);
        let results = verify::dkim(tampered.as_bytes(), signer.dns_name().as_str(), &record);
        assert!(
            !matches!(results.as_slice(), [mail_auth::DkimResult::Pass]),
            "{results:?}"
        );
    }
}

#[test]
fn rsa_2048_signature_verifies_with_mail_auth_and_fails_once_list_unsubscribe_changes() {
    check_dkim("rsa2048.pem", "dkim/rsa2048.pub.pem", "rsa-sha256", false);
}

#[test]
fn ed25519_signature_verifies_with_mail_auth_and_fails_once_list_unsubscribe_changes() {
    check_dkim(
        "ed25519.pem",
        "dkim/ed25519.pub.pem",
        "ed25519-sha256",
        true,
    );
}

/// The value of tag `name` in a DKIM-Signature value, folding whitespace removed.
fn dkim_tag(sig: &str, name: &str) -> String {
    sig.split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {sig}"))
        .split_whitespace()
        .collect()
}

#[test]
fn rsa_and_ed25519_keys_both_sign_and_oversigning_catches_prepended_headers() {
    for reply_to in [true, false] {
        let mut cfg = two_keys_config("analyst.example.org");
        if !reply_to {
            cfg.sender.reply_to = None;
        }
        let c = Composer::new(
            &cfg,
            issue(),
            Arc::new(sample_digest::digest(25_000)),
            keyring(),
            signing_now(),
        )
        .unwrap();
        let signers = c.dkim_signers();
        assert_eq!(signers.len(), 2);
        let out = compose(&c, "anna@example.org", "Anna Petrova");
        let (head, _) = split(&out.bytes);
        // RFC 5322 §2.1.1: header lines SHOULD stay within 78 octets; DKIM folds at colons.
        let mut in_dkim = false;
        for line in head.split("\r\n") {
            in_dkim = line.starts_with("DKIM-Signature:") || (in_dkim && line.starts_with(' '));
            assert!(
                !in_dkim || line.len() <= 78,
                "DKIM line of {}: {line}",
                line.len()
            );
        }
        let f = fields(head);
        assert_eq!(count(&f, "DKIM-Signature"), 2);
        for (_, sig) in f.iter().filter(|(n, _)| n == "DKIM-Signature") {
            let t: i64 = dkim_tag(sig, "t").parse().unwrap();
            let x: i64 = dkim_tag(sig, "x").parse().unwrap();
            assert_eq!(x - t, 7 * 24 * 3600, "x= a week after t=: {sig}");
            let h = dkim_tag(sig, "h");
            let names: Vec<&str> = h.split(':').collect();
            // Each present field once more than it occurs; absent ones an attacker could add.
            for present in [
                "from",
                "subject",
                "list-unsubscribe",
                "list-unsubscribe-post",
            ] {
                assert_eq!(names.iter().filter(|n| **n == present).count(), 2, "{h}");
            }
            for absent in [
                "cc",
                "sender",
                "in-reply-to",
                "references",
                "feedback-id",
                "reply-to",
            ] {
                assert!(names.contains(&absent), "{absent} not in h={h}");
            }
        }
        let keys: Vec<(String, String)> = signers
            .iter()
            .map(|s| (s.dns_name(), s.dns_record()))
            .collect();
        assert_eq!(
            verify::dkim_keys(&out.bytes, &keys),
            vec![mail_auth::DkimResult::Pass, mail_auth::DkimResult::Pass],
            "both signatures verify (reply_to: {reply_to})"
        );
        for added in [
            "Subject: Your account is suspended\r\n",
            "List-Unsubscribe: <https://evil.example.net/u>\r\n",
            "Reply-To: attacker@evil.example.net\r\n",
            "Cc: victim@example.org\r\n",
        ] {
            let mut tampered = added.as_bytes().to_vec();
            tampered.extend_from_slice(&out.bytes);
            let results = verify::dkim_keys(&tampered, &keys);
            assert_eq!(results.len(), 2);
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, mail_auth::DkimResult::Fail(_))),
                "a prepended {added:?} left a signature valid (reply_to: {reply_to}): {results:?}"
            );
        }
    }
}

#[test]
fn a_single_dkim_table_and_an_array_of_tables_both_configure_keys() {
    let one = dkim_config("ed25519.pem", "analyst.example.org");
    assert_eq!(one.dkim.len(), 1);
    let two = two_keys_config("analyst.example.org");
    assert_eq!(two.dkim.len(), 2);
    assert_eq!(two.dkim[1].selector, "ed2026");
    let err = Config::parse(
        &format!("{CONFIG}\n[[dkim]]\ndomain = \"a.example.org\"\nselektor = \"s\"\n"),
        Path::new("site/config.toml"),
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("selektor") && msg.contains("site/config.toml"),
        "{msg}"
    );
}

#[test]
fn check_warns_without_dkim_and_with_ed25519_alone() {
    let none = config(CONFIG);
    let f = deliverability_findings(&none, &good_sample(&none));
    assert_eq!(
        findings_about(
            &f,
            "your relay must sign d=analyst.example.org over List-Unsubscribe and List-Unsubscribe-Post"
        ),
        vec![Severity::Warning],
        "{f:?}"
    );
    let ed = dkim_config("ed25519.pem", "analyst.example.org");
    let f = deliverability_findings(&ed, &good_sample(&ed));
    assert_eq!(
        findings_about(&f, "only Ed25519"),
        vec![Severity::Warning],
        "{f:?}"
    );
    let rsa = dkim_config("rsa2048.pem", "analyst.example.org");
    assert!(deliverability_findings(&rsa, &good_sample(&rsa)).is_empty());
}

#[test]
fn the_dns_records_hold_each_key_and_spf_and_dmarc_examples() {
    let cfg = two_keys_config("analyst.example.org");
    let records = fortnight::message::dns_records(&cfg).unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rsa2026._domainkey.analyst.example.org",
            "ed2026._domainkey.analyst.example.org",
            "analyst.example.org",
            "_dmarc.analyst.example.org",
        ]
    );
    assert_eq!(
        records[0].value.rsplit("p=").next().unwrap(),
        openssl_public_key("dkim/rsa2048.pub.pem", false)
    );
    assert_eq!(
        records[1].value.rsplit("p=").next().unwrap(),
        openssl_public_key("dkim/ed25519.pub.pem", true)
    );
    assert!(records[2].value.starts_with("v=spf1 "));
    assert!(records[3].value.starts_with("v=DMARC1; p=none"));
    // An RSA record is longer than one DNS string: the zone line splits it.
    let zone = records[0].zone_line();
    assert!(zone.matches('"').count() >= 4, "{zone}");
    assert!(zone.split('"').all(|s| s.len() <= 255));
}

#[test]
fn dkim_signs_test_copies_and_subjects_with_fields_too() {
    let cfg = dkim_config("ed25519.pem", "analyst.example.org");
    let digest = digest_of(
        vec![
            lit("Hello "),
            Segment::Field(Field::Name),
            lit(", your    digest"),
        ],
        vec![
            lit("<p>  spaced   out  </p>\n"),
            Segment::Field(Field::UnsubscribeUrl),
        ],
        vec![
            lit("tabs\tand  spaces  \n"),
            Segment::Field(Field::UnsubscribeUrl),
        ],
    );
    let c = Composer::new(&cfg, issue(), Arc::new(digest), keyring(), signing_now())
        .unwrap()
        .for_test_copies();
    let signer = DkimSigner::load(
        "analyst.example.org",
        "fn2026",
        &fixture("dkim/ed25519.pem"),
    )
    .unwrap();
    let out = compose(&c, "a@example.org", "Мурат Аманов");
    let results = verify::dkim(&out.bytes, &signer.dns_name(), &signer.dns_record());
    assert_eq!(results, vec![mail_auth::DkimResult::Pass]);
}

#[test]
fn a_1024_bit_rsa_key_is_refused_with_advice() {
    let err =
        DkimSigner::load("analyst.example.org", "s", &fixture("dkim/rsa1024.pem")).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("2048") && msg.contains("rsa1024.pem"), "{msg}");
    let err = Composer::new(
        &dkim_config("missing.pem", "analyst.example.org"),
        issue(),
        Arc::new(sample_digest::digest(10_000)),
        keyring(),
        now(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
}

// ---- deliverability findings ----

fn good_sample(cfg: &Config) -> Rendered {
    let c = composer(cfg);
    let sub = subscriber("sample@example.org", "Sample Reader");
    let url = c.unsubscribe_url(&sub.email);
    let (subject, html, text) = sample_digest::parts(25_000);
    Rendered {
        subject: sample_digest::fill(&subject, "", "", "", false),
        html: sample_digest::fill(&html, &sub.name, sub.email.as_str(), &url, true),
        text: sample_digest::fill(&text, &sub.name, sub.email.as_str(), &url, false),
    }
}

fn findings_about(findings: &[Finding], needle: &str) -> Vec<Severity> {
    findings
        .iter()
        .filter(|f| f.message.contains(needle))
        .map(|f| f.severity)
        .collect()
}

#[test]
fn a_good_config_and_template_have_no_findings() {
    let cfg = two_keys_config("analyst.example.org");
    let findings = deliverability_findings(&cfg, &good_sample(&cfg));
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn no_or_plain_http_unsubscribe_url_is_an_error() {
    let cfg = config(CONFIG);
    let sample = good_sample(&cfg);
    let none = config(
        &CONFIG
            .replace("[unsubscribe]\n", "")
            .replace(
                "url = \"https://analyst.example.org/unsubscribe?t={token}\"\n",
                "",
            )
            .replace("mailto = \"unsubscribe@analyst.example.org\"\n", ""),
    );
    let f = deliverability_findings(&none, &sample);
    assert_eq!(
        findings_about(&f, "a send is refused without one"),
        vec![Severity::Error],
        "{f:?}"
    );
    let http = config(&CONFIG.replace(
        "https://analyst.example.org/unsubscribe",
        "http://analyst.example.org/unsubscribe",
    ));
    let f = deliverability_findings(&http, &sample);
    assert_eq!(
        findings_about(&f, "https://"),
        vec![Severity::Error],
        "{f:?}"
    );
}

#[test]
fn misaligned_dkim_and_bounce_domains_are_warnings() {
    let cfg = dkim_config("ed25519.pem", "mailer.example.net");
    let f = deliverability_findings(&cfg, &good_sample(&cfg));
    assert_eq!(
        findings_about(&f, "[dkim] domain `mailer.example.net`"),
        vec![Severity::Warning],
        "{f:?}"
    );
    let sub = two_keys_config("mail.analyst.example.org");
    assert!(deliverability_findings(&sub, &good_sample(&sub)).is_empty());

    let bounce = config(&CONFIG.replace("bounces@analyst.example.org", "bounces@esp.example.com"));
    let f = deliverability_findings(&bounce, &good_sample(&bounce));
    assert_eq!(
        findings_about(&f, "bounce domain `esp.example.com`"),
        vec![Severity::Warning],
        "{f:?}"
    );
}

#[test]
fn missing_postal_address_is_a_warning() {
    let cfg = config(&CONFIG.replace(
        "postal_address = \"Example Institute, 1 Example Row, Washington, DC 20000\"\n",
        "",
    ));
    let f = deliverability_findings(&cfg, &good_sample(&cfg));
    assert_eq!(
        findings_about(&f, "CAN-SPAM"),
        vec![Severity::Warning],
        "{f:?}"
    );

    let cfg = config(CONFIG);
    let mut sample = good_sample(&cfg);
    sample.text = sample
        .text
        .replace("Example Institute, 1 Example Row, Washington, DC 20000", "");
    let f = deliverability_findings(&cfg, &sample);
    assert_eq!(
        findings_about(&f, "postal address is missing from the text part"),
        vec![Severity::Warning],
        "{f:?}"
    );
}

#[test]
fn html_over_100_kb_is_a_warning() {
    let cfg = config(CONFIG);
    let mut sample = good_sample(&cfg);
    sample.html.push_str(&"<p>padding</p>\n".repeat(6_000));
    let f = deliverability_findings(&cfg, &sample);
    assert_eq!(
        findings_about(&f, "Gmail clips"),
        vec![Severity::Warning],
        "{f:?}"
    );
}

#[test]
fn a_template_without_a_visible_unsubscribe_link_is_an_error() {
    let cfg = config(CONFIG);
    let good = good_sample(&cfg);
    let url_start = "https://analyst.example.org/unsubscribe?t=";

    let mut no_text = good.clone();
    no_text.text = no_text
        .text
        .lines()
        .filter(|l| !l.contains(url_start))
        .collect::<Vec<_>>()
        .join("\n");
    let f = deliverability_findings(&cfg, &no_text);
    assert_eq!(
        findings_about(&f, "text template shows no unsubscribe link"),
        vec![Severity::Error],
        "{f:?}"
    );

    let mut no_html = good.clone();
    no_html.html = no_html
        .html
        .lines()
        .filter(|l| !l.contains(url_start))
        .collect::<Vec<_>>()
        .join("\n");
    let f = deliverability_findings(&cfg, &no_html);
    assert_eq!(
        findings_about(&f, "HTML template shows no unsubscribe link"),
        vec![Severity::Error],
        "{f:?}"
    );

    // Tera 1 autoescaping writes `/` as `&#x2F;`: still a visible link.
    let mut escaped = good;
    escaped.html = escaped.html.replace(
        "https://analyst.example.org/unsubscribe",
        "https:&#x2F;&#x2F;analyst.example.org&#x2F;unsubscribe",
    );
    assert!(beyond_dkim(deliverability_findings(&cfg, &escaped)).is_empty());
}

// ---- with the real digest (Tera templates) ----

/// Renders the digest fixture's issue with the built-in templates, or with `footer_txt`
/// overriding the text footer; returns the composer and the digest.
fn real_digest(footer_txt: Option<&str>) -> (tempfile::TempDir, Config, Arc<Digest>) {
    use sample_issue as fixture;
    let dir = tempfile::tempdir().unwrap();
    if let Some(footer) = footer_txt {
        let partials = dir.path().join("templates/partials");
        std::fs::create_dir_all(&partials).unwrap();
        std::fs::write(partials.join("footer.txt.tera"), footer).unwrap();
    }
    let cfg = fixture::config_in(dir.path());
    let digest = Digest::prepare(&cfg, &fixture::sample_issue(), fixture::now()).unwrap();
    (dir, cfg, Arc::new(digest))
}

/// The decoded parts of a message: (subject, text, html), CRLF turned back into LF.
fn decoded(bytes: &[u8]) -> (String, String, String) {
    let m = MessageParser::default().parse(bytes).expect("parses");
    (
        m.subject().unwrap_or("").to_string(),
        m.body_text(0).unwrap().replace("\r\n", "\n"),
        m.body_html(0).unwrap().replace("\r\n", "\n"),
    )
}

/// The octets between the blank line after a part's header and the next boundary, for the
/// part whose header holds `content_type`; and its Content-Transfer-Encoding.
fn wire_part<'a>(body: &'a str, content_type: &str) -> (&'a str, &'a str) {
    let start = body.find(content_type).expect("the part");
    let rest = &body[start..];
    let head_end = rest.find("\r\n\r\n").unwrap();
    let cte = rest[..head_end]
        .split("Content-Transfer-Encoding: ")
        .nth(1)
        .unwrap()
        .trim();
    let content = &rest[head_end + 4..];
    (&content[..content.find("\r\n--=_").unwrap()], cte)
}

#[test]
fn a_cyrillic_full_body_issue_goes_out_in_base64_at_most_1_45_times_its_size() {
    use sample_issue as fixture;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fixture::config_in(dir.path());
    cfg.digest.body = fortnight::config::BodyMode::Full;
    let digest =
        Arc::new(Digest::prepare(&cfg, &fixture::russian_issue(), fixture::now()).unwrap());
    let c = Composer::new(&cfg, issue(), digest.clone(), keyring(), now()).unwrap();
    assert!(c.uses_fast_path());
    let sub = subscriber("reader@example.org", "Мурат Аманов");
    let out = c.compose(&sub).unwrap();
    assert_crlf_and_line_lengths(&out.bytes);
    let want = digest
        .render_for(&sub, &c.unsubscribe_url(&sub.email))
        .unwrap();
    let (_, body) = split(&out.bytes);
    let (html_wire, cte) = wire_part(body, "Content-Type: text/html");
    assert_eq!(cte, "base64");
    let ratio = html_wire.len() as f64 / want.html.len() as f64;
    assert!(
        want.html.len() > 20_000 && ratio <= 1.45,
        "HTML part: {} octets on the wire for {} decoded ({ratio:.2})",
        html_wire.len(),
        want.html.len()
    );
    let (text_wire, _) = wire_part(body, "Content-Type: text/plain");
    assert!(text_wire.len() as f64 <= 1.45 * want.text.len() as f64);
    // An independent parser decodes exactly what the digest rendered.
    let (_, text, html) = decoded(&out.bytes);
    assert_eq!(text, want.text.replace("\r\n", "\n"));
    assert_eq!(html, want.html.replace("\r\n", "\n"));
    // The Latin sample stays quoted-printable.
    let (_dir, latin_cfg, latin) = real_digest(None);
    let c = Composer::new(&latin_cfg, issue(), latin, keyring(), now()).unwrap();
    let out = c.compose(&sub).unwrap();
    let (_, body) = split(&out.bytes);
    assert_eq!(
        wire_part(body, "Content-Type: text/html").1,
        "quoted-printable"
    );
}

#[test]
fn each_message_carries_exactly_what_the_digest_renders_for_its_subscriber() {
    let footer = "Dear {{ subscriber.name }},\n{{ subscriber.email }}\n\
                  {{ publication.postal_address }}\nUnsubscribe: {{ unsubscribe_url }}\n";
    let (_dir, cfg, digest) = real_digest(Some(footer));
    assert_eq!(digest.path(), fortnight::digest::RenderPath::Fast);
    let c = Composer::new(&cfg, issue(), digest.clone(), keyring(), now()).unwrap();
    assert!(c.uses_fast_path());
    // A plain name is substituted; a padded one or one with a control character is not
    // printed as is by Tera's output handling, so that copy is rendered in full.
    for name in [
        "Anna Petrova",
        "Zoë & <Özil>",
        "  padded  ",
        "tab\there",
        "",
        "a\n\n\n\nb",
    ] {
        let sub = subscriber("reader@example.org", name);
        let out = c.compose(&sub).unwrap();
        assert_crlf_and_line_lengths(&out.bytes);
        let want = digest
            .render_for(&sub, &c.unsubscribe_url(&sub.email))
            .unwrap();
        let (subject, text, html) = decoded(&out.bytes);
        assert_eq!(subject, want.subject);
        assert_eq!(text, want.text, "text part for {name:?}");
        assert_eq!(
            html,
            want.html.replace("\r\n", "\n"),
            "html part for {name:?}"
        );
        assert!(
            beyond_dkim(deliverability_findings(&cfg, &want)).is_empty(),
            "{:?}",
            deliverability_findings(&cfg, &want)
        );
    }
}

#[test]
fn templates_without_a_fast_path_are_rendered_per_copy_and_still_signed() {
    let footer = "{% if subscriber.email %}{{ subscriber.email | upper }}{% endif %}\nUnsubscribe: {{ unsubscribe_url }}\n";
    let (_dir, mut cfg, digest) = real_digest(Some(footer));
    assert!(matches!(
        digest.path(),
        fortnight::digest::RenderPath::Full(_)
    ));
    cfg.dkim = dkim_config("ed25519.pem", "analyst.example.org").dkim;
    let c = Composer::new(&cfg, issue(), digest.clone(), keyring(), signing_now()).unwrap();
    assert!(!c.uses_fast_path());
    let sub = subscriber("reader@example.org", "Reader");
    let out = c.compose(&sub).unwrap();
    assert_crlf_and_line_lengths(&out.bytes);
    let url = c.unsubscribe_url(&sub.email);
    let (_, text, html) = decoded(&out.bytes);
    assert!(
        text.contains("READER@EXAMPLE.ORG") && text.contains(&url),
        "{text}"
    );
    assert_eq!(text, digest.render_for(&sub, &url).unwrap().text);
    assert!(html.contains("reader@example.org"));
    let signer = c.dkim().unwrap();
    let results = verify::dkim(&out.bytes, &signer.dns_name(), &signer.dns_record());
    assert_eq!(results, vec![mail_auth::DkimResult::Pass]);
}
