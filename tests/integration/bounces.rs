//! Integration tests for `bounces`: fixture mailboxes (tests/fixtures/bounces/) with the
//! shapes real mailers write, read by the real binary.

use std::path::{Path, PathBuf};

use fortnight::subscribers::{Status, SubscriberEmail, SubscriberList};
use fortnight::token::UnsubscribeKey;

use crate::support::{TestProject, TEST_UNSUBSCRIBE_KEY};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

const LIST: &[(&str, &str)] = &[
    ("reader.gone@example.org", "subscribed"),
    ("exim.gone@example.net", "subscribed"),
    ("missing.reader@gmail.com", "subscribed"),
    ("former.staff@contoso.com", "subscribed"),
    ("full.box@example.org", "subscribed"),
    ("angry.reader@example.com", "subscribed"),
    ("careful.reader@example.org", "subscribed"),
    ("slow.server@example.org", "subscribed"),
    ("happy.reader@example.org", "subscribed"),
    ("anna@example.org", "subscribed"),
    ("busy.reader@example.org", "subscribed"),
    ("customer@example.org", "subscribed"),
    ("colleague@example.org", "subscribed"),
];

fn project() -> TestProject {
    let p = TestProject::new();
    let mut csv = String::from("email,name,status,since,source,tags\n");
    for (email, status) in LIST {
        csv.push_str(&format!("{email},,{status},2026-01-01,manual,\n"));
    }
    p.write("subscribers.csv", csv);
    p
}

fn status(p: &TestProject, address: &str) -> Status {
    let list = SubscriberList::load(&p.path().join("subscribers.csv")).expect("list loads");
    let wanted = SubscriberEmail::parse(address).expect("address");
    list.subscribers
        .iter()
        .find(|s| s.email == wanted)
        .map(|s| s.status)
        .unwrap_or_else(|| panic!("{address} not in the list"))
}

fn statuses(p: &TestProject) -> Vec<(String, Status)> {
    let list = SubscriberList::load(&p.path().join("subscribers.csv")).expect("list loads");
    list.subscribers
        .iter()
        .map(|s| (s.email.to_string(), s.status))
        .collect()
}

/// The number on the summary line `  LABEL:   N` of a bounces report.
#[track_caller]
fn count(out: &str, label: &str) -> usize {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{label}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}:` line in:\n{out}"))
}

#[test]
fn an_mbox_of_real_world_bounces_marks_hard_bounces_and_complaints_only() {
    let p = project();
    let r = p.run(&["bounces", &fixture("mixed.mbox")]);
    r.success();
    let out = r.stdout();
    assert!(out.contains("read 8 messages"), "{out}");
    // Postfix DSN and Exim text: hard bounces
    assert_eq!(status(&p, "reader.gone@example.org"), Status::Bounced);
    assert_eq!(status(&p, "exim.gone@example.net"), Status::Bounced);
    // ARF abuse report
    assert_eq!(status(&p, "angry.reader@example.com"), Status::Complained);
    // a 5.7.1 blocklist rejection and a delay are not the address's fault
    assert_eq!(status(&p, "careful.reader@example.org"), Status::Subscribed);
    assert_eq!(status(&p, "slow.server@example.org"), Status::Subscribed);
    // a success report and a reader's reply are not bounces
    assert_eq!(status(&p, "happy.reader@example.org"), Status::Subscribed);
    assert_eq!(status(&p, "anna@example.org"), Status::Subscribed);
    assert_eq!(status(&p, "colleague@example.org"), Status::Subscribed);
    assert_eq!(count(&out, "hard bounces"), 2);
    assert_eq!(count(&out, "complaints"), 1);
    assert_eq!(count(&out, "policy rejections"), 1);
    assert_eq!(count(&out, "delays"), 1);
    assert_eq!(count(&out, "unrecognised"), 2);
    assert_eq!(count(&out, "not in the list"), 1);
    assert_eq!(count(&out, "changed"), 3);
    assert!(out.contains("stranger@elsewhere.org"), "{out}");
}

#[test]
fn a_maildir_with_gmail_and_exchange_bounces_and_junk_is_read() {
    let p = project();
    let r = p.run(&["bounces", &fixture("maildir")]);
    r.success();
    let out = r.stdout();
    assert!(out.contains("read 5 messages"), "{out}");
    assert_eq!(status(&p, "missing.reader@gmail.com"), Status::Bounced);
    assert_eq!(status(&p, "former.staff@contoso.com"), Status::Bounced);
    // the auto-reply, the phishing "delivery failure" and the binary junk change nothing
    assert_eq!(status(&p, "busy.reader@example.org"), Status::Subscribed);
    assert_eq!(status(&p, "customer@example.org"), Status::Subscribed);
    assert_eq!(count(&out, "unrecognised"), 3);
    assert!(out.contains("5.1.10"), "{out}");
}

#[test]
fn junk_messages_are_ignored_without_error() {
    let p = project();
    let before = p.read("subscribers.csv");
    let r = p.run(&[
        "bounces",
        &fixture("junk-reader-reply.eml"),
        &fixture("junk-auto-reply.eml"),
        &fixture("junk-phishing.eml"),
        &fixture("junk-delivered-dsn.eml"),
        &fixture("junk-binary.bin"),
    ]);
    r.success();
    assert_eq!(count(&r.stdout(), "unrecognised"), 5);
    assert_eq!(count(&r.stdout(), "changed"), 0);
    assert_eq!(p.read("subscribers.csv"), before);
}

#[test]
fn a_mailbox_full_bounce_is_soft_until_three_consecutive_issues() {
    let p = project();
    let first = p.run(&["bounces", &fixture("mailbox-full-2002-01-30.eml")]);
    first.success();
    assert_eq!(count(&first.stdout(), "soft bounces"), 1);
    assert!(
        first.stdout().contains("1 of 3 consecutive"),
        "{}",
        first.stdout()
    );
    assert_eq!(status(&p, "full.box@example.org"), Status::Subscribed);

    // Reading the same mailbox again does not count the same bounce twice.
    p.run(&["bounces", &fixture("mailbox-full-2002-01-30.eml")])
        .success();
    let second = p.run(&["bounces", &fixture("mailbox-full-2002-02-13.eml")]);
    second.success();
    assert!(
        second.stdout().contains("2 of 3 consecutive"),
        "{}",
        second.stdout()
    );
    assert_eq!(status(&p, "full.box@example.org"), Status::Subscribed);

    let third = p.run(&["bounces", &fixture("mailbox-full-2002-02-27.eml")]);
    third.success();
    assert!(
        third.stdout().contains("3 of 3 consecutive"),
        "{}",
        third.stdout()
    );
    assert!(
        third
            .stdout()
            .contains("soft bounces in 3 consecutive issues"),
        "{}",
        third.stdout()
    );
    assert_eq!(status(&p, "full.box@example.org"), Status::Bounced);
    assert!(p.path().join(".fortnight/journal.sqlite").exists());
}

#[test]
fn soft_bounces_with_a_delivered_issue_between_them_are_not_consecutive() {
    let p = project();
    // issues of 2002-01-30 and 2002-02-27 bounced; 2002-02-13 (between) did not
    let r = p.run(&[
        "bounces",
        &fixture("mailbox-full-2002-01-30.eml"),
        &fixture("mailbox-full-2002-02-27.eml"),
    ]);
    r.success();
    assert!(r.stdout().contains("1 of 3 consecutive"), "{}", r.stdout());
    assert_eq!(status(&p, "full.box@example.org"), Status::Subscribed);
}

#[test]
fn a_lower_soft_bounce_limit_in_the_config_applies() {
    let mut p = project();
    p.config_append("[bounces]\nsoft_bounce_limit = 1\n");
    p.run(&["bounces", &fixture("mailbox-full-2002-01-30.eml")])
        .success();
    assert_eq!(status(&p, "full.box@example.org"), Status::Bounced);
}

#[test]
fn dry_run_reports_but_changes_nothing() {
    let p = project();
    let before = p.read("subscribers.csv");
    let r = p.run(&[
        "bounces",
        "--dry-run",
        &fixture("mixed.mbox"),
        &fixture("maildir"),
        &fixture("mailbox-full-2002-01-30.eml"),
    ]);
    r.success();
    let out = r.stdout();
    assert_eq!(count(&out, "would change"), 5);
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(p.read("subscribers.csv"), before);
    assert!(!p.path().join(".fortnight/journal.sqlite").exists());
}

#[test]
fn hard_bounces_of_unsubscribed_addresses_leave_them_unsubscribed() {
    let p = TestProject::new();
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags\nreader.gone@example.org,,unsubscribed,2026-01-01,manual,\nangry.reader@example.com,,bounced,2026-01-01,manual,\n",
    );
    let r = p.run(&[
        "bounces",
        &fixture("postfix-user-unknown.eml"),
        &fixture("arf-abuse.eml"),
    ]);
    r.success();
    assert_eq!(status(&p, "reader.gone@example.org"), Status::Unsubscribed);
    // a complaint is the strongest signal and replaces `bounced`
    assert_eq!(status(&p, "angry.reader@example.com"), Status::Complained);
    assert!(r.stdout().contains("already suppressed"), "{}", r.stdout());
}

#[test]
fn a_missing_source_is_an_error_naming_it() {
    let p = project();
    let r = p.run(&["bounces", "no-such-mailbox"]);
    r.code_is(2);
    assert!(r.stderr().contains("no-such-mailbox"), "{}", r.stderr());
}

fn token(address: &str) -> String {
    UnsubscribeKey::new("k1", TEST_UNSUBSCRIBE_KEY.as_bytes())
        .unwrap()
        .mint(
            "digest.analyst.example.org",
            &SubscriberEmail::parse(address).unwrap(),
        )
}

/// A qmail-style bounce that names no recipient at all: only the VERP address it was sent
/// to says whose copy it was.
fn verp_bounce(token: &str) -> String {
    format!(
        "Return-Path: <>\nDelivered-To: bounces+{token}@analyst.example.org\nFrom: MAILER-DAEMON@mx.example.net\nTo: bounces+{token}@analyst.example.org\nSubject: failure notice\nMessage-ID: <verp-1@mx.example.net>\nDate: Wed, 27 Feb 2002 10:30:00 +0000\n\nHi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\nRemote host said: 550 5.1.1 mailbox unavailable\n"
    )
}

#[test]
fn a_verp_bounce_that_names_nobody_is_resolved_with_the_key() {
    let mut p = project();
    p.config_append("[bounces]\nverp = true\n");
    p.write("verp.eml", verp_bounce(&token("anna@example.org")));
    let r = p
        .cmd(&["bounces", "verp.eml"])
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(status(&p, "anna@example.org"), Status::Bounced);
}

#[test]
fn without_the_key_a_verp_bounce_is_left_alone_with_a_warning() {
    let mut p = project();
    p.config_append("[bounces]\nverp = true\n");
    p.write("verp.eml", verp_bounce(&token("anna@example.org")));
    let before = statuses(&p);
    let r = p.run(&["bounces", "verp.eml"]);
    r.success();
    assert!(
        r.stderr().contains("FORTNIGHT_UNSUBSCRIBE_KEY"),
        "{}",
        r.stderr()
    );
    assert_eq!(count(&r.stdout(), "no recipient found"), 1);
    assert_eq!(statuses(&p), before);
}

#[test]
fn a_complaint_with_a_redacted_recipient_is_resolved_through_the_quoted_unsubscribe_link() {
    let p = project();
    let t = token("anna@example.org");
    p.write(
        "arf.eml",
        format!(
            "From: fbl@isp.example.com\nTo: fbl@analyst.example.org\nSubject: Complaint\nMessage-ID: <fbl-2@isp.example.com>\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nA complaint.\n\n--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\nUser-Agent: ISP-FBL/2.0\n\n--b\nContent-Type: text/rfc822-headers\n\nFrom: The Test Analyst <digest@analyst.example.org>\nTo: redacted@isp.example.com\nMessage-ID: <20020227.77aa@analyst.example.org>\nList-Unsubscribe: <https://analyst.example.org/unsubscribe?t={t}>\n\n--b--\n"
        ),
    );
    let r = p
        .cmd(&["bounces", "arf.eml"])
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(status(&p, "anna@example.org"), Status::Complained);
}

/// The loop closed end to end: send an issue to a fixture list through the test SMTP
/// server, feed back a bounce for one recipient (made from the very message the server
/// received, VERP envelope and all) and a one-click unsubscribe for another (from the
/// List-Unsubscribe URL of the message it received, POSTed to the running `serve`), then
/// send the next issue: neither of them receives it.
mod end_to_end {
    use crate::serve::{one_click, Server};
    use crate::support::smtp::{Policy, Received, TestSmtpServer};
    use crate::support::{TestProject, TEST_UNSUBSCRIBE_KEY};
    use fortnight::subscribers::Status;

    const FIRST: &str = "---\ntitle: \"Ferries Return to the Caspian\"\nauthor: Test Author\n\
        date: 2026-11-02\nissue: 2026-11-04\nsection: Field Reports\n---\n\n\
        The ferry between Baku and Aktau runs again after the autumn storms.\n";
    const SECOND: &str = "---\ntitle: \"Rail Freight Doubles at Khorgos\"\nauthor: Test Author\n\
        date: 2026-11-16\nissue: 2026-11-18\nsection: Field Reports\n---\n\n\
        Container trains crossed the border twice as often as a year ago.\n";

    fn send(p: &TestProject) {
        let out = p
            .cmd(&["send", "--yes"])
            .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
            .output()
            .expect("run fortnight send");
        assert!(
            out.status.success(),
            "send failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn copy_to<'a>(received: &'a [Received], address: &str) -> &'a Received {
        received
            .iter()
            .find(|r| r.rcpt_to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .unwrap_or_else(|| panic!("no copy for {address}"))
    }

    /// A Postfix DSN for `copy`, quoting its headers the way Postfix does.
    fn postfix_dsn(copy: &Received, address: &str) -> String {
        let text = copy.text();
        let headers = text
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .replace("\r\n", "\n");
        format!(
            "From MAILER-DAEMON  Wed Nov  4 10:15:02 2026\n\
             Return-Path: <>\n\
             Delivered-To: {verp}\n\
             Date: Wed, 4 Nov 2026 10:15:02 +0000 (UTC)\n\
             From: MAILER-DAEMON@mx.readers-mail.org (Mail Delivery System)\n\
             Subject: Undelivered Mail Returned to Sender\n\
             To: {verp}\n\
             Auto-Submitted: auto-replied\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\n\
             Message-Id: <20261104101502.4F1C83E@mx.readers-mail.org>\n\
             \n\
             --B1\n\
             Content-Type: text/plain; charset=us-ascii\n\
             \n\
             This is the mail system at host mx.readers-mail.org.\n\
             \n\
             <{address}>: host mx.readers-mail.org[192.0.2.25] said: 550 5.1.1\n    <{address}>: Recipient address rejected: User unknown (in reply to RCPT TO command)\n\
             \n\
             --B1\n\
             Content-Type: message/delivery-status\n\
             \n\
             Reporting-MTA: dns; mx.readers-mail.org\n\
             Arrival-Date: Wed, 4 Nov 2026 10:14:58 +0000 (UTC)\n\
             \n\
             Final-Recipient: rfc822; {address}\n\
             Original-Recipient: rfc822;{address}\n\
             Action: failed\n\
             Status: 5.1.1\n\
             Diagnostic-Code: smtp; 550 5.1.1 <{address}>: Recipient address rejected: User unknown\n\
             \n\
             --B1\n\
             Content-Type: text/rfc822-headers\n\
             \n\
             {headers}\n\
             \n\
             --B1--\n\n",
            verp = copy.mail_from,
        )
    }

    #[test]
    fn a_bounce_to_the_lowercased_verp_address_marks_the_right_subscriber() {
        let server = TestSmtpServer::start(Policy::default());
        let mut p = TestProject::new();
        p.config_append(&server.smtp_section());
        p.config_append("[bounces]\nverp = true\n");
        p.write("articles/ferries.md", FIRST);
        p.write(
            "subscribers.csv",
            "email,name,status,since,source,tags\n\
             anna@readers-mail.org,Anna,subscribed,2026-01-01,test,\n\
             boris@readers-mail.org,Boris,subscribed,2026-01-01,test,\n",
        );
        send(&p);
        let boris = copy_to(&server.accepted(), "boris@readers-mail.org")
            .mail_from
            .clone();
        // A hop that lowercases the envelope address, then a qmail-style bounce that names
        // nobody but that address.
        let lowered = boris.to_ascii_lowercase();
        assert!(lowered.starts_with("bounces+"), "{boris}");
        p.write(
            "bounce.eml",
            format!(
                "Return-Path: <>\nDelivered-To: {lowered}\nFrom: MAILER-DAEMON@mx.readers-mail.org\n\
                 To: {lowered}\nSubject: failure notice\nMessage-ID: <verp-2@mx.readers-mail.org>\n\
                 Date: Wed, 4 Nov 2026 10:30:00 +0000\n\nHi. This is the qmail-send program.\n\
                 I'm afraid I wasn't able to deliver your message.\n\
                 This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
                 Remote host said: 550 5.1.1 mailbox unavailable\n"
            ),
        );
        let out = p
            .cmd(&["bounces", "bounce.eml"])
            .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            crate::serve::status_of(&p, "boris@readers-mail.org"),
            Some(Status::Bounced)
        );
        assert_eq!(
            crate::serve::status_of(&p, "anna@readers-mail.org"),
            Some(Status::Subscribed)
        );
    }

    #[test]
    fn a_bounced_and_a_one_click_unsubscribed_reader_do_not_get_the_next_issue() {
        let server = TestSmtpServer::start(Policy::default());
        let mut p = TestProject::new();
        p.config_append(&server.smtp_section());
        p.config_append("[bounces]\nverp = true\n");
        p.write("articles/ferries.md", FIRST);
        p.write(
            "subscribers.csv",
            "email,name,status,since,source,tags\n\
             anna@readers-mail.org,Anna,subscribed,2026-01-01,test,\n\
             boris@readers-mail.org,Boris,subscribed,2026-01-01,test,\n\
             clara@readers-mail.org,Clara,subscribed,2026-01-01,test,\n",
        );

        send(&p);
        let first = server.accepted();
        assert_eq!(first.len(), 3);

        // Boris's mailbox is gone: his copy comes back as a DSN to its VERP address.
        let boris = copy_to(&first, "boris@readers-mail.org");
        assert!(
            boris.mail_from.starts_with("bounces+"),
            "{}",
            boris.mail_from
        );
        p.write("bounces.mbox", postfix_dsn(boris, "boris@readers-mail.org"));
        let out = p
            .cmd(&["bounces", "bounces.mbox"])
            .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            crate::serve::status_of(&p, "boris@readers-mail.org"),
            Some(Status::Bounced)
        );

        // Clara presses her mail client's one-click unsubscribe: a POST to the URL of her
        // copy's List-Unsubscribe header.
        let clara = copy_to(&first, "clara@readers-mail.org");
        let header = clara.header("List-Unsubscribe").expect("List-Unsubscribe");
        let url = header
            .split(['<', '>'])
            .find(|part| part.starts_with("https://"))
            .expect("an https URL");
        let token = url.split("?t=").nth(1).expect("a token in the URL");
        {
            let endpoint = Server::start(&p);
            let r = one_click(endpoint.addr, token);
            assert_eq!(r.status, 200, "{r:?}");
        }
        assert_eq!(
            crate::serve::status_of(&p, "clara@readers-mail.org"),
            Some(Status::Unsubscribed)
        );

        // The next issue goes to Anna only.
        p.write("articles/rail.md", SECOND);
        send(&p);
        let second: Vec<Received> = server.accepted().into_iter().skip(3).collect();
        let recipients: Vec<String> = second.iter().flat_map(|r| r.rcpt_to.clone()).collect();
        assert_eq!(recipients, vec!["anna@readers-mail.org".to_string()]);
        assert!(
            second[0]
                .header("Subject")
                .is_some_and(|s| s.contains("2026-11-18")),
            "{:?}",
            second[0].header("Subject")
        );
    }
}

#[test]
fn with_verp_forged_dsn_and_arf_reports_without_a_token_change_nothing() {
    let mut p = project();
    p.config_append("[bounces]\nverp = true\n");
    // Anyone can mail the bounce address these: they name subscribers but carry no token.
    let forged = [
        fixture("postfix-user-unknown.eml"),
        fixture("arf-abuse.eml"),
    ];
    p.write("verp.eml", verp_bounce(&token("anna@example.org")));
    let before = statuses(&p);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "bounces",
            forged[0].as_str(),
            forged[1].as_str(),
            "verp.eml",
        ];
        args.extend_from_slice(extra);
        let r = p
            .cmd(&args)
            .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
            .output()
            .unwrap();
        crate::support::Run { out: r }
    };
    let r = run(&[]);
    r.success();
    assert_eq!(count(&r.stdout(), "untrusted"), 2, "{}", r.stdout());
    assert!(
        r.stdout().contains("untrusted, not applied"),
        "{}",
        r.stdout()
    );
    assert!(r.stderr().contains("--trust-unsigned"), "{}", r.stderr());
    // The signed VERP bounce applies; the forged two do not.
    let mut expected = before.clone();
    for (a, s) in &mut expected {
        if a == "anna@example.org" {
            *s = Status::Bounced;
        }
    }
    assert_eq!(statuses(&p), expected);

    let r = run(&["--trust-unsigned"]);
    r.success();
    assert!(!r.stdout().contains("untrusted"), "{}", r.stdout());
    assert_eq!(status(&p, "reader.gone@example.org"), Status::Bounced);
    assert_eq!(status(&p, "angry.reader@example.com"), Status::Complained);
}
