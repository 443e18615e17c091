//! Integration tests for `send`: the delivery engine against the in-process SMTP server
//! (real TCP, real SQLite), and the `fortnight send` / `fortnight status` commands.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fortnight::base::IssueDate;
use fortnight::config::{JournalSync, SmtpConfig, ThrottleConfig};
use fortnight::journal::{AttemptKind, DeliveryRow, Journal, JournalKey, State};
use fortnight::message::Outgoing;
use fortnight::send::compose::ComposerFactory;
use fortnight::send::deliver::{Deliverer, DeliveryOptions, RunReport, Stats, StopReason, Stopper};
use fortnight::send::plan::Planned;
use fortnight::send::smtp::SmtpSettings;
use fortnight::send::throttle::{DailyBudget, Throttle};
use fortnight::subscribers::{Status, Subscriber, SubscriberEmail};

use crate::support::smtp::{Fault, Policy, TestSmtpServer};

const ISSUE: &str = "2002-02-27";

fn issue() -> IssueDate {
    IssueDate::parse(ISSUE).unwrap()
}

fn subscriber(addr: &str) -> Subscriber {
    Subscriber {
        email: SubscriberEmail::parse(addr).unwrap(),
        name: String::new(),
        status: Status::Subscribed,
        since: String::new(),
        source: String::new(),
        tags: vec![],
        attrs: Default::default(),
    }
}

fn addr(i: usize) -> String {
    format!("reader{i:05}@readers-mail.org")
}

fn planned(n: usize) -> Vec<Planned> {
    (0..n)
        .map(|i| Planned {
            subscriber: subscriber(&addr(i)),
            prior_attempts: 0,
        })
        .collect()
}

fn message_id_of(email: &SubscriberEmail) -> String {
    format!(
        "<{ISSUE}.{}@analyst.example.org>",
        email.key().replace('@', "=")
    )
}

/// A minimal, valid RFC 5322 message per subscriber with a deterministic Message-ID.
fn composer_with_body(body: &'static str) -> ComposerFactory {
    Box::new(move || {
        Ok(Box::new(move |s: &Subscriber| {
            let id = message_id_of(&s.email);
            let bytes = format!(
                "From: The Analyst <digest@analyst.example.org>\r\nTo: {to}\r\n\
                 Subject: Issue of {ISSUE}\r\nDate: Wed, 27 Feb 2002 08:00:00 +0000\r\n\
                 Message-ID: {id}\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
                to = s.email
            );
            Ok(Outgoing {
                recipient: s.email.clone(),
                message_id: id,
                subject: format!("Issue of {ISSUE}"),
                envelope_from: "bounces@analyst.example.org".into(),
                bytes: bytes.into_bytes(),
            })
        })
            as Box<dyn FnMut(&Subscriber) -> anyhow::Result<Outgoing>>)
    })
}

fn composer() -> ComposerFactory {
    composer_with_body("Hello, reader.")
}

/// A delivery run against a test server, with fast timeouts and backoff.
struct EngineRun {
    throttle: ThrottleConfig,
    smtp: SmtpSettings,
    kind: AttemptKind,
    budget: Option<Arc<DailyBudget>>,
    grace: Duration,
    stop: Stopper,
    limiter: Option<Arc<Throttle>>,
}

impl EngineRun {
    fn new(server: &TestSmtpServer) -> EngineRun {
        EngineRun::with_smtp(&server.smtp_section(), None)
    }

    fn with_smtp(section: &str, password: Option<&str>) -> EngineRun {
        let body = section.trim_start_matches("[smtp]\n");
        let cfg: SmtpConfig = toml::from_str(body).unwrap();
        let smtp = SmtpSettings::from_config(&cfg, password)
            .unwrap()
            .with_timeouts(
                Duration::from_secs(2),
                Duration::from_secs(2),
                Duration::from_secs(5),
            );
        EngineRun {
            throttle: ThrottleConfig {
                concurrency: 4,
                retries: 3,
                backoff_secs: 0.02,
                backoff_max_secs: 0.2,
                ..ThrottleConfig::default()
            },
            smtp,
            kind: AttemptKind::Delivery,
            budget: None,
            grace: Duration::from_secs(5),
            stop: Stopper::new(),
            limiter: None,
        }
    }

    /// Runs the engine the way `fortnight send` does: recover, plan as pending, deliver.
    async fn run(
        self,
        journal_path: &Path,
        recipients: Vec<Planned>,
        composer: ComposerFactory,
    ) -> (RunReport, Journal) {
        let mut journal = Journal::open(journal_path, JournalSync::Normal).unwrap();
        journal.recover_in_flight(chrono::Utc::now()).unwrap();
        if self.kind == AttemptKind::Delivery {
            let keys: Vec<JournalKey> = recipients
                .iter()
                .map(|p| JournalKey {
                    key: p.subscriber.email.key(),
                    address: p.subscriber.email.to_string(),
                })
                .collect();
            journal.ensure_pending(issue(), &keys).unwrap();
        }
        let (handle, writer) = journal.into_writer();
        let mut options = DeliveryOptions::from_config(issue(), self.kind, &self.throttle);
        options.interrupt_grace = self.grace;
        let deliverer = Deliverer {
            options,
            smtp: Arc::new(self.smtp),
            throttle: self
                .limiter
                .unwrap_or_else(|| Arc::new(Throttle::from_config(&self.throttle))),
            budget: self.budget,
            journal: handle,
            stop: self.stop,
            stats: Arc::new(Stats::default()),
            list_watch: None,
            restamp: None,
        };
        let report = deliverer.deliver(recipients, composer).await;
        let journal = writer.finish().await.unwrap();
        (report, journal)
    }
}

fn rows(journal: &Journal) -> Vec<DeliveryRow> {
    journal.rows(issue()).unwrap()
}

fn states(journal: &Journal) -> std::collections::BTreeMap<State, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in rows(journal) {
        *m.entry(r.state).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_exactly_one_message_and_the_journal_says_sent() {
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join(".fortnight/journal.sqlite");
    let (report, journal) = EngineRun::new(&server)
        .run(&journal_path, planned(1000), composer())
        .await;
    assert_eq!(report.sent, 1000, "{report:?}");
    assert_eq!(report.stopped, None);
    let copies = server.copies_per_recipient();
    assert_eq!(copies.len(), 1000);
    assert!(copies.values().all(|n| *n == 1));
    let rows = rows(&journal);
    assert_eq!(rows.len(), 1000);
    for r in &rows {
        assert_eq!(r.state, State::Sent, "{r:?}");
        assert_eq!(r.attempts, 1);
        assert!(r.sent_at.is_some() && r.first_attempt_at.is_some());
        assert!(
            r.last_reply.as_deref().unwrap().starts_with("250 2.0.0"),
            "{r:?}"
        );
        assert_eq!(
            r.message_id.as_deref(),
            Some(message_id_of(&SubscriberEmail::parse(&r.address).unwrap()).as_str())
        );
    }
    // The server holds exactly what was composed (the final CRLF included).
    let one = &server.accepted()[0];
    assert!(
        one.text().ends_with("Hello, reader.\r\n"),
        "{:?}",
        one.text()
    );
    assert_eq!(one.mail_from, "bounces@analyst.example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_over_one_connection_never_wait_for_a_delayed_ack() {
    // lettre's pooled transport waits ~44 ms per message (Nagle + delayed ACK): 200
    // messages would take about 9 s. With TCP_NODELAY they take a fraction of a second.
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 1;
    let started = Instant::now();
    let (report, _) = run
        .run(&dir.path().join("j.sqlite"), planned(200), composer())
        .await;
    let elapsed = started.elapsed();
    assert_eq!(report.sent, 200);
    assert_eq!(server.sessions(), 1, "one connection carries every message");
    assert!(
        elapsed < Duration::from_secs(5),
        "200 messages took {elapsed:?}: a per-message stall (Nagle?)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_are_retried_with_backoff_until_sent_and_attempts_are_recorded() {
    let greylisted: HashSet<String> = (0..20).map(|i| addr(i * 7)).collect();
    let g = greylisted.clone();
    let server = TestSmtpServer::start(Policy::default().on_rcpt(move |a| {
        (g.contains(&a.rcpt) && a.nth <= 2)
            .then(|| Fault::Reply("451 4.3.0 Try again later".into()))
    }));
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(200), composer())
        .await;
    assert_eq!(report.sent, 200, "{report:?}");
    assert_eq!(report.deferred, 0);
    assert!(server.accepted().len() == 200);
    for r in rows(&journal) {
        assert_eq!(r.state, State::Sent);
        let expected = if greylisted.contains(&r.address) {
            3
        } else {
            1
        };
        assert_eq!(r.attempts, expected, "{r:?}");
    }
    // Every SMTP transaction is in the attempts log.
    assert_eq!(report.attempts, 200 + 2 * 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_beyond_the_retries_stay_deferred_for_the_next_run() {
    let server = TestSmtpServer::start(Policy::default().on_rcpt(|a| {
        (a.rcpt == addr(3)).then(|| Fault::Reply("452 4.2.2 Mailbox over quota".into()))
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.retries = 2;
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(10), composer())
        .await;
    assert_eq!(report.sent, 9);
    assert_eq!(report.deferred, 1);
    let row = rows(&journal)
        .into_iter()
        .find(|r| r.address == addr(3))
        .unwrap();
    assert_eq!(row.state, State::Deferred);
    assert_eq!(row.attempts, 3, "first attempt and two retries");
    assert_eq!(
        row.last_reply.as_deref(),
        Some("452 4.2.2 Mailbox over quota")
    );
    assert!(row.next_attempt_at.is_some());
    assert_eq!(report.problems.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_mailboxes_fail_are_flagged_bounced_and_the_run_continues() {
    let bad: HashSet<String> = [addr(5), addr(50), addr(77)].into_iter().collect();
    let b = bad.clone();
    let server = TestSmtpServer::start(Policy::default().on_rcpt(move |a| {
        b.contains(&a.rcpt)
            .then(|| Fault::Reply("550 5.1.1 <x>: Recipient address rejected: User unknown".into()))
    }));
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(100), composer())
        .await;
    assert_eq!(report.sent, 97);
    assert_eq!(report.failed, 3);
    assert_eq!(report.bounced, 3);
    assert_eq!(report.stopped, None);
    let failed: HashSet<String> = rows(&journal)
        .into_iter()
        .filter(|r| r.state == State::Failed)
        .map(|r| {
            assert!(r.last_reply.as_deref().unwrap().starts_with("550 5.1.1"));
            assert_eq!(r.attempts, 1, "a permanent failure is not retried");
            r.address
        })
        .collect();
    assert_eq!(failed, bad);
    let updates = journal.pending_list_updates().unwrap();
    assert_eq!(updates.len(), 3);
    assert!(updates.iter().all(|u| u.status == Status::Bounced));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_fails_without_asking_for_suppression() {
    let server =
        TestSmtpServer::start(Policy::default().on_data(|a| {
            (a.rcpt == addr(1)).then(|| Fault::Reply("552 5.2.2 Mailbox full".into()))
        }));
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(5), composer())
        .await;
    assert_eq!((report.sent, report.failed, report.bounced), (4, 1, 0));
    assert!(journal.pending_list_updates().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_421_mid_run_slows_the_whole_run_down_and_loses_nothing() {
    let server = TestSmtpServer::start(Policy::default().on_rcpt(|a| {
        (40..44)
            .contains(&a.transaction)
            .then(|| Fault::ReplyAndClose("421 4.7.0 Too many messages, slow down".into()))
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    // Without a configured rate the slowdown halves the measured rate; give it a known one.
    run.throttle.per_second = Some(400);
    let limiter = Arc::new(Throttle::from_config(&run.throttle));
    run.limiter = Some(limiter.clone());
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(150), composer())
        .await;
    assert_eq!(report.sent, 150, "{report:?}");
    assert!(report.slowdowns >= 1, "{report:?}");
    assert!(
        limiter.slowed_rate().is_some_and(|r| r <= 200.0),
        "the rate is still halved at the end of the run: {:?}",
        limiter.slowed_rate()
    );
    assert_eq!(states(&journal).get(&State::Sent), Some(&150));
    let copies = server.copies_per_recipient();
    assert!(copies.values().all(|n| *n == 1));
    assert!(
        server.sessions() > 4,
        "the closed connections were reopened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authentication_failure_stops_the_run_before_any_mail_command() {
    let mut policy = Policy::default().auth("digest", "right");
    policy.auth_reply = Some("535 5.7.8 Authentication credentials invalid".into());
    let server = TestSmtpServer::start(policy);
    let dir = tempfile::tempdir().unwrap();
    let section = format!("{}username = \"digest\"\n", server.smtp_section());
    let run = EngineRun::with_smtp(&section, Some("wrong"));
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(50), composer())
        .await;
    let Some(StopReason::Fatal(msg)) = &report.stopped else {
        panic!("{report:?}")
    };
    assert!(
        msg.contains("535") && msg.contains("authentication"),
        "{msg}"
    );
    assert_eq!(report.sent, 0);
    assert!(!server.client_verbs().contains(&"MAIL".to_string()));
    assert_eq!(states(&journal).get(&State::Pending), Some(&50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_credentials_authenticate_and_send() {
    let server = TestSmtpServer::start(Policy::default().auth("digest", "s3cret"));
    let dir = tempfile::tempdir().unwrap();
    let section = format!("{}username = \"digest\"\n", server.smtp_section());
    let (report, _) = EngineRun::with_smtp(&section, Some("s3cret"))
        .run(&dir.path().join("j.sqlite"), planned(20), composer())
        .await;
    assert_eq!(report.sent, 20, "{report:?}");
    assert!(server.client_verbs().contains(&"AUTH".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_535_mid_run_stops_the_run_and_no_transaction_starts_after_it() {
    let server = TestSmtpServer::start(Policy::default().on_rcpt(|a| {
        (a.transaction == 30)
            .then(|| Fault::Reply("535 5.7.8 Authentication credentials no longer valid".into()))
    }));
    let dir = tempfile::tempdir().unwrap();
    // One connection makes "after" exact: the worker that got the 535 is the only one.
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 1;
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(300), composer())
        .await;
    assert!(
        matches!(&report.stopped, Some(StopReason::Fatal(m)) if m.contains("535")),
        "{report:?}"
    );
    let log = server.log();
    let refusal = log
        .iter()
        .find(|l| !l.from_client && l.line.starts_with("535"))
        .expect("the server refused")
        .seq;
    let mails_after = log
        .iter()
        .filter(|l| l.from_client && l.line.starts_with("MAIL") && l.seq > refusal)
        .count();
    assert_eq!(mails_after, 0, "no MAIL after the 535");
    assert_eq!(report.sent, 29, "{report:?}");
    let st = states(&journal);
    assert_eq!(st.get(&State::InFlight), None);
    assert_eq!(st.get(&State::Sent), Some(&29));
    assert_eq!(
        st.get(&State::Deferred),
        Some(&1),
        "the refused one is kept for the next run"
    );
    assert_eq!(st.get(&State::Pending), Some(&270));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_refusal_stops_the_run() {
    let server = TestSmtpServer::start(Policy::default().on_data(|a| {
        (a.transaction == 5).then(|| Fault::Reply("554 5.7.1 Message rejected as spam".into()))
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 1;
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(20), composer())
        .await;
    assert!(matches!(&report.stopped, Some(StopReason::Fatal(m)) if m.contains("5.7.1")));
    assert_eq!(report.sent, 4);
    // The refused row is kept for the next run, not failed.
    let row = rows(&journal)
        .into_iter()
        .find(|r| r.address == addr(4))
        .unwrap();
    assert_eq!(row.state, State::Deferred);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_after_the_final_dot_is_ambiguous_and_not_retried() {
    let server = TestSmtpServer::start(
        Policy::default().on_data(|a| (a.rcpt == addr(7) && a.nth == 1).then_some(Fault::Drop)),
    );
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(30), composer())
        .await;
    assert_eq!((report.sent, report.ambiguous), (29, 1), "{report:?}");
    let row = rows(&journal)
        .into_iter()
        .find(|r| r.address == addr(7))
        .unwrap();
    assert_eq!(row.state, State::Ambiguous);
    assert!(row.last_reply.unwrap().contains("after the final dot"));
    assert_eq!(
        server.copies_per_recipient()[&addr(7)],
        1,
        "never retried in the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_before_the_final_dot_is_retried() {
    let server = TestSmtpServer::start(
        Policy::default().on_rcpt(|a| (a.rcpt == addr(2) && a.nth == 1).then_some(Fault::Drop)),
    );
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(10), composer())
        .await;
    assert_eq!(report.sent, 10, "{report:?}");
    let row = rows(&journal)
        .into_iter()
        .find(|r| r.address == addr(2))
        .unwrap();
    assert_eq!((row.state, row.attempts), (State::Sent, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_reached_the_server_is_retried_not_ambiguous() {
    // The server resets the connection right after 354: writing the body fails, so the
    // final dot never left: a plain retry, no duplicate possible. The body (24 MB) is far
    // larger than loopback's socket buffers, so the write is still blocked when the reset
    // arrives, however the two processes are scheduled (a small body could be handed to the
    // kernel whole before the reset, which is rightly ambiguous).
    let server = TestSmtpServer::start(Policy::default().on_data_command(|a| {
        (a.rcpt == addr(3) && a.transaction <= 4)
            .then(|| Fault::ReplyAndReset("354 End data with <CR><LF>.<CR><LF>".into()))
    }));
    let body: &'static str = Box::leak(
        format!("{}\r\n", "x".repeat(998))
            .repeat(24_000)
            .into_boxed_str(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 1;
    let (report, journal) = run
        .run(
            &dir.path().join("j.sqlite"),
            planned(6),
            composer_with_body(body),
        )
        .await;
    assert_eq!((report.sent, report.ambiguous), (6, 0), "{report:?}");
    let row = rows(&journal)
        .into_iter()
        .find(|r| r.address == addr(3))
        .unwrap();
    assert_eq!((row.state, row.attempts), (State::Sent, 2));
    assert_eq!(server.copies_per_recipient()[&addr(3)], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_to_the_final_dot_within_the_data_timeout_is_ambiguous() {
    let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.smtp = run.smtp.with_timeouts(
        Duration::from_secs(2),
        Duration::from_secs(2),
        Duration::from_millis(300),
    );
    run.throttle.concurrency = 2;
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(2), composer())
        .await;
    assert_eq!(report.ambiguous, 2, "{report:?}");
    assert!(rows(&journal).iter().all(|r| r.state == State::Ambiguous
        && r.last_reply.as_deref().unwrap().contains("data_timeout")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_never_exceeded() {
    let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_millis(3)));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 3;
    let (report, _) = run
        .run(&dir.path().join("j.sqlite"), planned(150), composer())
        .await;
    assert_eq!(report.sent, 150);
    assert_eq!(
        server.max_sessions(),
        3,
        "three workers, three connections at most"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_per_second_spaces_one_hundred_messages_over_two_seconds() {
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.per_second = Some(50);
    let started = Instant::now();
    let (report, _) = run
        .run(&dir.path().join("j.sqlite"), planned(100), composer())
        .await;
    let elapsed = started.elapsed();
    assert_eq!(report.sent, 100);
    // 99 intervals of 20 ms.
    assert!(elapsed >= Duration::from_millis(1950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    // Seen from the server, no second holds many more than 50 messages (starts are spaced
    // exactly, see the throttle's unit tests; arrival times carry the latency jitter of a
    // loaded test machine). Unthrottled, all 100 would land within a few milliseconds.
    let mut at: Vec<Instant> = server.accepted().iter().map(|r| r.at).collect();
    at.sort();
    for (i, a) in at.iter().enumerate() {
        let n = at[i..]
            .iter()
            .take_while(|b| **b - *a < Duration::from_secs(1))
            .count();
        assert!(n <= 56, "{n} messages within one second");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cap_stops_the_run_cleanly_and_is_counted_across_runs() {
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let used = |p: &Path| {
        let j = Journal::open(p, JournalSync::Normal).unwrap();
        j.accepted_since(chrono::Utc::now() - chrono::Duration::hours(24))
            .unwrap()
    };
    let mut run = EngineRun::new(&server);
    run.budget = Some(Arc::new(DailyBudget::new(300, 0)));
    let (report, journal) = run.run(&path, planned(500), composer()).await;
    assert_eq!(report.stopped, Some(StopReason::DailyCap));
    assert_eq!(report.sent, 300);
    assert_eq!(server.accepted().len(), 300);
    assert_eq!(states(&journal).get(&State::Pending), Some(&200));
    drop(journal);

    // Same day: the journal says 300 went out, the cap leaves nothing.
    assert_eq!(used(&path), 300);
    let remaining: Vec<Planned> = planned(500).into_iter().skip(300).collect();
    let mut again = EngineRun::new(&server);
    again.budget = Some(Arc::new(DailyBudget::new(300, used(&path))));
    let (report, _) = again.run(&path, remaining.clone(), composer()).await;
    assert_eq!(
        (report.sent, report.stopped),
        (0, Some(StopReason::DailyCap))
    );
    assert_eq!(server.accepted().len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_but_not_offered_sends_no_auth_and_no_mail() {
    let server = TestSmtpServer::start(Policy::default().auth("digest", "pw"));
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"digest\"\n",
        server.port()
    );
    let (report, _) = EngineRun::with_smtp(&section, Some("pw"))
        .run(&dir.path().join("j.sqlite"), planned(10), composer())
        .await;
    let Some(StopReason::Fatal(msg)) = &report.stopped else {
        panic!("{report:?}")
    };
    assert!(msg.contains("does not offer STARTTLS"), "{msg}");
    let verbs = server.client_verbs();
    assert!(
        verbs.iter().all(|v| v == "EHLO" || v == "QUIT"),
        "{verbs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_starttls_upgrade_stops_before_auth() {
    let mut policy = Policy::default().auth("digest", "pw");
    policy.starttls = true;
    let server = TestSmtpServer::start(policy);
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"digest\"\n",
        server.port()
    );
    let (report, _) = EngineRun::with_smtp(&section, Some("pw"))
        .run(&dir.path().join("j.sqlite"), planned(10), composer())
        .await;
    let Some(StopReason::Fatal(msg)) = &report.stopped else {
        panic!("{report:?}")
    };
    assert!(msg.contains("STARTTLS") && msg.contains("454"), "{msg}");
    let verbs = server.client_verbs();
    assert!(
        !verbs.iter().any(|v| v == "AUTH" || v == "MAIL"),
        "{verbs:?}"
    );
}

fn test_ca() -> Vec<u8> {
    std::fs::read(crate::support::smtp::tls_fixtures().join("ca.pem")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_upgrades_the_connection_before_authenticating_and_sending() {
    let server = TestSmtpServer::start(Policy::default().with_starttls().auth("digest", "pw"));
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"digest\"\n",
        server.port()
    );
    let mut run = EngineRun::with_smtp(&section, Some("pw"));
    run.smtp = run.smtp.with_extra_roots(&test_ca(), "ca.pem").unwrap();
    let (report, _) = run
        .run(&dir.path().join("j.sqlite"), planned(20), composer())
        .await;
    assert_eq!(report.sent, 20, "{report:?}");
    assert!(
        server.accepted().iter().all(|m| m.tls),
        "every message went encrypted"
    );
    let verbs = server.client_verbs();
    let first = |v: &str| verbs.iter().position(|x| x == v).unwrap();
    assert!(first("STARTTLS") < first("AUTH") && first("AUTH") < first("MAIL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_stops_the_run_before_auth() {
    for (policy, mode) in [
        (Policy::default().with_starttls(), "starttls"),
        (Policy::default().with_implicit_tls(), "tls"),
    ] {
        let server = TestSmtpServer::start(policy.auth("digest", "pw"));
        let dir = tempfile::tempdir().unwrap();
        let section = format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{mode}\"\nusername = \"digest\"\n",
            server.port()
        );
        // The test CA is not trusted: the certificate does not verify.
        let (report, _) = EngineRun::with_smtp(&section, Some("pw"))
            .run(&dir.path().join("j.sqlite"), planned(5), composer())
            .await;
        let Some(StopReason::Fatal(msg)) = &report.stopped else {
            panic!("{mode}: {report:?}")
        };
        assert!(msg.contains("TLS"), "{mode}: {msg}");
        assert!(msg.to_lowercase().contains("certificate"), "{mode}: {msg}");
        let verbs = server.client_verbs();
        assert!(
            !verbs.iter().any(|v| v == "AUTH" || v == "MAIL"),
            "{mode}: {verbs:?}"
        );
        assert_eq!(report.sent, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_lines_and_bare_line_breaks_in_a_body_arrive_as_one_message() {
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let body = "line one\r\n.\r\nafter a dot line\n.\nafter bare LFs\r\r\n.\r\nend";
    let (report, _) = EngineRun::new(&server)
        .run(
            &dir.path().join("j.sqlite"),
            planned(1),
            composer_with_body(body),
        )
        .await;
    assert_eq!(report.sent, 1);
    let got = server.received();
    assert_eq!(got.len(), 1, "exactly one message, nothing smuggled");
    assert!(
        server
            .client_verbs()
            .iter()
            .filter(|v| *v == "MAIL")
            .count()
            == 1,
        "no second transaction hidden in the body"
    );
    let text = got[0].text();
    assert!(
        text.ends_with(
            "line one\r\n.\r\nafter a dot line\r\n.\r\nafter bare LFs\r\n\r\n.\r\nend\r\n"
        ),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupting_a_run_finishes_the_transactions_in_flight_and_journals_them() {
    let server = Arc::new(TestSmtpServer::start(
        Policy::default().data_delay(Duration::from_millis(20)),
    ));
    let dir = tempfile::tempdir().unwrap();
    let run = EngineRun::new(&server);
    let stop = run.stop.clone();
    let watched = server.clone();
    let handle = tokio::spawn(async move {
        while watched.received().len() < 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.stop(StopReason::Interrupted);
    });
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(1000), composer())
        .await;
    handle.await.unwrap();
    assert_eq!(report.stopped, Some(StopReason::Interrupted));
    assert!(report.sent >= 10 && report.sent < 1000, "{report:?}");
    let st = states(&journal);
    assert_eq!(st.get(&State::InFlight), None, "{st:?}");
    assert_eq!(
        st.get(&State::Ambiguous),
        None,
        "in-flight transactions finished: {st:?}"
    );
    assert_eq!(st[&State::Sent] as u64, report.sent);
    assert_eq!(st[&State::Sent] + st[&State::Pending], 1000);
    assert_eq!(server.accepted().len() as u64, report.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_interrupt_abandons_slow_transactions_as_ambiguous() {
    let server = Arc::new(TestSmtpServer::start(
        Policy::default().data_delay(Duration::from_secs(3)),
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 2;
    let stop = run.stop.clone();
    let watched = server.clone();
    tokio::spawn(async move {
        // Both connections got 354 and sent their body: they wait for the final reply.
        while watched
            .log()
            .iter()
            .filter(|l| !l.from_client && l.line.starts_with("354"))
            .count()
            < 2
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.stop(StopReason::Interrupted);
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.abandon();
    });
    let started = Instant::now();
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(10), composer())
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the server"
    );
    assert_eq!(report.ambiguous, 2, "{report:?}");
    let st = states(&journal);
    assert_eq!(st.get(&State::Ambiguous), Some(&2));
    assert_eq!(st.get(&State::Pending), Some(&8));
    assert_eq!(st.get(&State::InFlight), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_copies_are_logged_as_attempts_but_not_as_deliveries() {
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.kind = AttemptKind::Test;
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(2), composer())
        .await;
    assert_eq!(report.sent, 2);
    assert!(rows(&journal).is_empty());
    assert_eq!(journal.test_copies(issue()).unwrap().len(), 2);
    // Test copies count towards the daily cap: the relay counts them.
    assert_eq!(
        journal
            .accepted_since(chrono::Utc::now() - chrono::Duration::hours(1))
            .unwrap(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_left_in_flight_by_a_crash_become_ambiguous_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    {
        let j = Journal::open(&path, JournalSync::Normal).unwrap();
        let (h, w) = j.into_writer();
        h.begin(fortnight::journal::Begin {
            kind: AttemptKind::Delivery,
            issue: issue(),
            who: JournalKey {
                key: addr(1),
                address: addr(1),
            },
            message_id: "<x@y>".into(),
            at: chrono::Utc::now(),
        })
        .await
        .unwrap();
        drop(h);
        w.finish().await.unwrap();
    }
    let mut j = Journal::open(&path, JournalSync::Normal).unwrap();
    assert_eq!(states(&j).get(&State::InFlight), Some(&1));
    assert_eq!(j.recover_in_flight(chrono::Utc::now()).unwrap(), 1);
    assert_eq!(states(&j).get(&State::Ambiguous), Some(&1));
}

// ---------------------------------------------------------------------------------------
// The `fortnight send` and `fortnight status` commands, driving the real binary.

mod cli {
    use std::collections::{HashMap, HashSet};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use fortnight::journal::{Journal, State};
    use fortnight::subscribers::{Status, SubscriberList};

    use crate::support::sending::{
        addr, journal, list_csv, project, send, send_cmd, states, ARTICLE, ISSUE,
    };
    use crate::support::smtp::{Fault, Policy, TestSmtpServer};
    use crate::support::{Run, TestProject, TEST_UNSUBSCRIBE_KEY};

    const FAST_THROTTLE: &str =
        "[throttle]\nconcurrency = 4\nretries = 3\nbackoff_secs = 0.05\nbackoff_max_secs = 0.2\n";

    fn status_json(p: &TestProject) -> serde_json::Value {
        let r = p.run(&["status", "--json"]);
        r.success();
        serde_json::from_str(&r.stdout()).unwrap()
    }

    #[test]
    fn without_helo_name_ehlo_greets_with_a_fully_qualified_name() {
        let server = TestSmtpServer::start(Policy::default());
        let mut p = TestProject::new();
        p.write("articles/ferries.md", ARTICLE);
        p.write("subscribers.csv", list_csv(1));
        p.config_append(
            &server
                .smtp_section()
                .replace("helo_name = \"fortnight.test\"\n", ""),
        );
        let r = send(&p, &["--yes"]);
        r.success();
        let ehlo: Vec<String> = server
            .log()
            .into_iter()
            .filter(|l| l.from_client && l.line.starts_with("EHLO "))
            .map(|l| l.line[5..].to_string())
            .collect();
        assert!(!ehlo.is_empty());
        // This machine's FQDN when it has one, else the From domain; never a bare name.
        let want = fortnight::base::host::system_fqdn()
            .unwrap_or_else(|| "analyst.example.org".to_string());
        assert!(ehlo.iter().all(|h| *h == want), "{ehlo:?}, want {want}");
        assert!(want.contains('.'));
        if fortnight::base::host::system_fqdn().is_none() {
            // ... and check and send say so.
            assert!(r.stderr().contains("not fully qualified"), "{}", r.stderr());
        }
    }

    #[test]
    fn a_thousand_subscribers_each_get_exactly_one_message_and_the_journal_says_sent() {
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 1000, FAST_THROTTLE);
        send(&p, &["--yes"]).success();
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), 1000);
        assert!(copies.values().all(|n| *n == 1));
        let status = status_json(&p);
        assert_eq!(status["counts"]["sent"], 1000, "{status}");
        assert_eq!(status["counts"]["pending"], 0);
        // The journal holds each message's Message-ID; the message is the composed one.
        let ids: HashMap<String, String> = journal(&p)
            .rows(ISSUE.parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|r| (r.address, r.message_id.unwrap()))
            .collect();
        for m in server.accepted().iter().take(20) {
            assert_eq!(m.message_id(), Some(ids[&m.rcpt_to[0]].clone()));
            assert!(m.header("List-Unsubscribe").is_some());
            assert_eq!(m.mail_from, "bounces@analyst.example.org");
        }
        assert!(server.max_sessions() <= 4);
        // A rerun sends nothing more.
        let again = send(&p, &["--yes"]);
        again.success();
        assert!(
            again.stdout().contains("1000 already sent"),
            "{}",
            again.stdout()
        );
        assert_eq!(server.accepted().len(), 1000);
    }

    #[test]
    fn greylisted_addresses_are_retried_until_sent_with_their_attempts_recorded() {
        let grey: HashSet<String> = (0..10).map(|i| addr(i * 3)).collect();
        let g = grey.clone();
        let server = TestSmtpServer::start(Policy::default().on_rcpt(move |a| {
            (g.contains(&a.rcpt) && a.nth <= 2)
                .then(|| Fault::Reply("450 4.2.0 Recipient address rejected: Greylisted".into()))
        }));
        let p = project(&server, 40, FAST_THROTTLE);
        send(&p, &["--yes"]).success();
        for r in journal(&p).rows(ISSUE.parse().unwrap()).unwrap() {
            assert_eq!(r.state, State::Sent);
            assert_eq!(
                r.attempts,
                if grey.contains(&r.address) { 3 } else { 1 },
                "{r:?}"
            );
        }
        assert!(server.copies_per_recipient().values().all(|n| *n == 1));
    }

    #[test]
    fn unknown_mailboxes_fail_are_marked_bounced_in_the_list_and_the_run_exits_1() {
        let bad: HashSet<String> = [addr(2), addr(11)].into_iter().collect();
        let b = bad.clone();
        let server = TestSmtpServer::start(Policy::default().on_rcpt(move |a| {
            b.contains(&a.rcpt).then(|| {
                Fault::Reply("550 5.1.1 <x>: Recipient address rejected: User unknown".into())
            })
        }));
        let p = project(&server, 20, FAST_THROTTLE);
        let run = send(&p, &["--yes"]);
        run.code_is(1);
        assert!(run.stdout().contains("550 5.1.1"), "{}", run.stdout());
        assert!(run.stdout().contains("marked bounced"), "{}", run.stdout());
        assert_eq!(
            server.accepted().len(),
            18,
            "the run went on after the failures"
        );
        let list = SubscriberList::load(&p.path().join("subscribers.csv")).unwrap();
        for s in &list.subscribers {
            let expected = if bad.contains(s.email.as_str()) {
                Status::Bounced
            } else {
                Status::Subscribed
            };
            assert_eq!(s.status, expected, "{}", s.email);
        }
        let st = states(&p);
        assert_eq!((st[&State::Sent], st[&State::Failed]), (18, 2));
        let status = p.run(&["status"]);
        assert!(status.stdout().contains("550 5.1.1"), "{}", status.stdout());
        // The next run plans neither the bounced addresses nor anyone already served.
        let again = send(&p, &["--yes"]);
        again.success();
        assert!(again.stdout().contains("2 bounced"), "{}", again.stdout());
        assert_eq!(server.accepted().len(), 18);
    }

    #[test]
    fn a_bounce_the_journal_recorded_before_a_crash_reaches_the_list_on_the_next_run() {
        use fortnight::journal::{AttemptKind, End, JournalKey, Ticket};
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 6, FAST_THROTTLE);
        // A run died after the 5.1.1 reply was journaled, before the list was rewritten.
        let path = p.path().join(".fortnight/journal.sqlite");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let j = Journal::open(&path, fortnight::config::JournalSync::Normal).unwrap();
            let (h, w) = j.into_writer();
            let now = chrono::Utc::now();
            h.begin(fortnight::journal::Begin {
                kind: AttemptKind::Delivery,
                issue: ISSUE.parse().unwrap(),
                who: JournalKey {
                    key: addr(2),
                    address: addr(2),
                },
                message_id: "<m@analyst.example.org>".into(),
                at: now,
            })
            .await
            .unwrap();
            h.end(End {
                kind: AttemptKind::Delivery,
                ticket: Ticket {
                    started_at: now,
                    message_id: "<m@analyst.example.org>".into(),
                },
                issue: ISSUE.parse().unwrap(),
                who: JournalKey {
                    key: addr(2),
                    address: addr(2),
                },
                state: State::Failed,
                reply: Some("550 5.1.1 User unknown".into()),
                next_attempt_at: None,
                list_update: Some(Status::Bounced),
                at: now,
            })
            .unwrap();
            drop(h);
            w.finish().await.unwrap();
        });
        let run = send(&p, &["--yes"]);
        run.success();
        let list = SubscriberList::load(&p.path().join("subscribers.csv")).unwrap();
        let row = list
            .subscribers
            .iter()
            .find(|s| s.email.as_str() == addr(2))
            .unwrap();
        assert_eq!(row.status, Status::Bounced);
        assert!(!server.copies_per_recipient().contains_key(&addr(2)));
        assert_eq!(server.accepted().len(), 5);
        assert!(journal(&p).pending_list_updates().unwrap().is_empty());
    }

    #[test]
    fn a_421_mid_run_slows_down_and_every_subscriber_still_gets_one_message() {
        let server = TestSmtpServer::start(Policy::default().on_rcpt(|a| {
            (20..24)
                .contains(&a.transaction)
                .then(|| Fault::ReplyAndClose("421 4.7.0 Too many messages, slow down".into()))
        }));
        let p = project(&server, 80, FAST_THROTTLE);
        let run = send(&p, &["--yes", "--json"]);
        run.success();
        let summary: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        assert!(
            summary["run"]["slowdowns"].as_u64().unwrap() >= 1,
            "{summary}"
        );
        assert_eq!(summary["run"]["sent"], 80);
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), 80);
        assert!(copies.values().all(|n| *n == 1));
    }

    #[test]
    fn an_authentication_failure_stops_the_run_with_exit_2_and_sends_nothing() {
        let mut policy = Policy::default().auth("digest", "right");
        policy.auth_reply = Some("535 5.7.8 Authentication credentials invalid".into());
        let server = TestSmtpServer::start(policy);
        let mut p = project(&server, 30, FAST_THROTTLE);
        p.config_replace(&format!(
            "{}\nusername = \"digest\"\n",
            crate::support::BASE_CONFIG.to_string() + "\n" + &server.smtp_section()
        ));
        p.config_append(FAST_THROTTLE);
        let run = Run {
            out: send_cmd(&p, &["--yes"])
                .env("FORTNIGHT_SMTP_PASSWORD", "wrong")
                .output()
                .unwrap(),
        };
        run.code_is(2);
        assert!(run.stderr().contains("535"), "{}", run.stderr());
        assert!(
            !run.stderr().contains("wrong"),
            "the password is never printed"
        );
        assert!(!server.client_verbs().contains(&"MAIL".to_string()));
        assert_eq!(states(&p)[&State::Pending], 30);
    }

    #[test]
    fn a_connection_dropped_after_the_final_dot_is_ambiguous_and_resent_only_on_request() {
        let server = TestSmtpServer::start(
            Policy::default().on_data(|a| (a.rcpt == addr(4) && a.nth == 1).then_some(Fault::Drop)),
        );
        let p = project(&server, 10, FAST_THROTTLE);
        let first = send(&p, &["--yes"]);
        first.code_is(1);
        assert!(first.stdout().contains("ambiguous"), "{}", first.stdout());
        assert_eq!(states(&p)[&State::Ambiguous], 1);

        // Nothing to send, but the issue is not settled: exit 1, with the command to settle it.
        let plain = send(&p, &["--yes"]);
        plain.code_is(1);
        assert!(plain.stdout().contains("1 ambiguous"), "{}", plain.stdout());
        assert!(
            plain.stdout().contains("not settled") && plain.stdout().contains("--resend-ambiguous"),
            "{}",
            plain.stdout()
        );
        assert_eq!(
            server.copies_per_recipient()[&addr(4)],
            1,
            "not resent by a plain rerun"
        );

        send(&p, &["--yes", "--resend-ambiguous"]).success();
        let copies: Vec<_> = server
            .received()
            .into_iter()
            .filter(|m| m.rcpt_to[0] == addr(4))
            .collect();
        assert_eq!(copies.len(), 2);
        assert!(copies[0].message_id().is_some());
        assert_eq!(
            copies[0].message_id(),
            copies[1].message_id(),
            "same Message-ID"
        );
        assert_eq!(states(&p)[&State::Sent], 10);
        assert_eq!(
            server
                .copies_per_recipient()
                .values()
                .filter(|n| **n > 1)
                .count(),
            1
        );
    }

    #[test]
    fn killing_the_process_mid_send_never_duplicates_on_rerun_and_resend_ambiguous_completes_it() {
        const N: usize = 2000;
        const CONCURRENCY: usize = 4;
        let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_millis(3)));
        let p = project(
            &server,
            N,
            "[throttle]\nconcurrency = 4\nretries = 3\nbackoff_secs = 0.05\nbackoff_max_secs = 0.2\n",
        );
        let mut ambiguous_total = 0usize;
        for kill_at in [250usize, 800, 1400] {
            let mut child = send_cmd(&p, &["--yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while server.received().len() < kill_at {
                assert!(Instant::now() < deadline, "the send made no progress");
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the send ended before the kill"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            // Rows the crash left in flight are at most one per worker.
            let status = status_json(&p);
            let in_flight = status["counts"]["in_flight"].as_u64().unwrap() as usize;
            assert!(
                in_flight <= CONCURRENCY,
                "{in_flight} rows in flight after the kill"
            );
            ambiguous_total += in_flight;
            let copies = server.copies_per_recipient();
            assert!(
                copies.values().all(|n| *n == 1),
                "a plain rerun sent a duplicate"
            );
        }
        // A plain rerun finishes the issue without resending anything ambiguous (exit 1 while
        // ambiguous rows are left).
        let rerun = send(&p, &["--yes"]);
        rerun.code_is(if ambiguous_total > 0 { 1 } else { 0 });
        let copies = server.copies_per_recipient();
        assert!(
            copies.values().all(|n| *n == 1),
            "a plain rerun sent a duplicate"
        );
        let ambiguous: HashSet<String> = journal(&p)
            .rows(ISSUE.parse().unwrap())
            .unwrap()
            .into_iter()
            .filter(|r| r.state == State::Ambiguous)
            .map(|r| r.address)
            .collect();
        assert_eq!(ambiguous.len(), ambiguous_total);
        // Everyone not ambiguous has the issue exactly once.
        assert_eq!(
            copies.len()
                + ambiguous
                    .iter()
                    .filter(|a| !copies.contains_key(*a))
                    .count(),
            N
        );

        send(&p, &["--yes", "--resend-ambiguous"]).success();
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), N, "no subscriber is left without the issue");
        let duplicates: Vec<&String> = copies
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(a, _)| a)
            .collect();
        assert!(
            duplicates.iter().all(|a| ambiguous.contains(*a)),
            "only ambiguous rows repeat"
        );
        assert!(
            duplicates.len() <= 3 * CONCURRENCY,
            "{} duplicates",
            duplicates.len()
        );
        assert!(copies.values().all(|n| *n <= 2));
        let status = status_json(&p);
        assert_eq!(status["counts"]["sent"], N as u64, "{status}");
        assert_eq!(status["counts"]["in_flight"], 0);
        assert_eq!(status["counts"]["ambiguous"], 0);
        assert_eq!(status["counts"]["pending"], 0);
    }

    #[test]
    fn a_daily_cap_of_300_stops_at_300_and_the_next_day_sends_the_rest() {
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 500, &format!("{FAST_THROTTLE}per_day = 300\n"));
        let first = send(&p, &["--yes"]);
        first.success();
        assert!(
            first.stdout().contains("Daily cap reached"),
            "{}",
            first.stdout()
        );
        assert_eq!(server.accepted().len(), 300);
        assert_eq!(states(&p)[&State::Pending], 200);

        let same_day = send(&p, &["--yes"]);
        same_day.success();
        assert!(
            same_day.stdout().contains("Daily cap reached"),
            "{}",
            same_day.stdout()
        );
        assert_eq!(server.accepted().len(), 300);

        // A day passes: move every logged transaction 25 hours back.
        let db = rusqlite::Connection::open(p.path().join(".fortnight/journal.sqlite")).unwrap();
        db.execute(
            "UPDATE attempts SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '-25 hours')",
            [],
        )
        .unwrap();
        drop(db);
        send(&p, &["--yes"]).success();
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), 500);
        assert!(copies.values().all(|n| *n == 1));
    }

    #[test]
    fn starttls_required_against_a_server_without_it_sends_no_auth_or_mail() {
        let server = TestSmtpServer::start(Policy::default().auth("digest", "pw"));
        let mut p = TestProject::new();
        p.write("articles/ferries.md", ARTICLE);
        p.write("subscribers.csv", list_csv(5));
        p.config_append(&format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"digest\"\n",
            server.port()
        ));
        let run = Run {
            out: send_cmd(&p, &["--yes"])
                .env("FORTNIGHT_SMTP_PASSWORD", "pw")
                .output()
                .unwrap(),
        };
        run.code_is(2);
        assert!(
            run.stderr().contains("does not offer STARTTLS"),
            "{}",
            run.stderr()
        );
        let verbs = server.client_verbs();
        assert!(
            verbs.iter().all(|v| v == "EHLO" || v == "QUIT"),
            "{verbs:?}"
        );
    }

    #[test]
    fn implicit_tls_with_the_configured_ca_file_delivers() {
        let server = TestSmtpServer::start(Policy::default().with_implicit_tls());
        let mut p = TestProject::new();
        p.write("articles/ferries.md", ARTICLE);
        p.write("subscribers.csv", list_csv(5));
        p.write(
            "certs/relay-ca.pem",
            std::fs::read(crate::support::smtp::tls_fixtures().join("ca.pem")).unwrap(),
        );
        p.config_append(&format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"tls\"\nca_file = \"certs/relay-ca.pem\"\n",
            server.port()
        ));
        send(&p, &["--yes"]).success();
        let got = server.accepted();
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|m| m.tls));
    }

    #[test]
    fn a_dry_run_opens_no_connection_and_writes_private_files_and_a_manifest() {
        use sha2::Digest as _;
        use std::os::unix::fs::PermissionsExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut p = TestProject::new();
        p.write("articles/ferries.md", ARTICLE);
        let mut list = list_csv(30);
        list.push_str("gone@readers-mail.org,Gone,unsubscribed,2024-01-01,test,\n");
        p.write("subscribers.csv", list);
        p.config_append(&format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n[throttle]\nper_second = 10\n"
        ));
        let run = p.run(&["send", "--dry-run"]);
        run.success();
        listener.set_nonblocking(true).unwrap();
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the dry-run connected to the SMTP port"
        );
        let out = run.stdout();
        assert!(out.contains("30 message(s)"), "{out}");
        assert!(out.contains("1 unsubscribed"), "{out}");
        assert!(out.contains("takes about 3 s"), "{out}");
        assert!(run.stdout().contains("throwaway") || run.stderr().contains("throwaway"));

        let dir = p.path().join("outbox").join(ISSUE);
        let manifest = std::fs::read_to_string(dir.join("manifest.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = manifest
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 30);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(l["n"], i + 1);
            assert_eq!(l["recipient"], addr(i), "plan order");
            let file = dir.join(l["file"].as_str().unwrap());
            assert_eq!(file.parent(), Some(dir.as_path()));
            let bytes = std::fs::read(&file).unwrap();
            assert_eq!(l["size"], bytes.len());
            let sha: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(l["sha256"], sha);
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains(l["message_id"].as_str().unwrap()));
        }
        assert_eq!(
            lines[0]["file"],
            "000001-reader00000_at_readers-mail.org.eml"
        );
        assert!(dir.join("digest.html").exists() && dir.join("digest.txt").exists());
        assert!(
            !p.path().join(".fortnight/journal.sqlite").exists(),
            "no journal written"
        );
    }

    #[test]
    fn a_dry_run_builds_the_same_messages_a_real_send_sends() {
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 5, FAST_THROTTLE);
        send(&p, &["--dry-run", "--out", "files"]).success();
        send(&p, &["--yes"]).success();
        let manifest = std::fs::read_to_string(p.path().join("files/manifest.jsonl")).unwrap();
        let sent: Vec<_> = server.accepted();
        for line in manifest.lines() {
            let l: serde_json::Value = serde_json::from_str(line).unwrap();
            let m = sent
                .iter()
                .find(|m| m.rcpt_to[0] == l["recipient"].as_str().unwrap())
                .unwrap();
            assert_eq!(m.message_id().as_deref(), l["message_id"].as_str());
            assert_eq!(m.header("Subject").as_deref(), l["subject"].as_str());
        }
    }

    #[test]
    fn test_copies_go_only_to_the_given_addresses_and_are_not_journaled_as_deliveries() {
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 10, FAST_THROTTLE);
        send(
            &p,
            &[
                "--yes",
                "--to",
                "editor@newsroom-mail.org",
                "--to",
                &addr(3),
            ],
        )
        .success();
        let got = server.accepted();
        assert_eq!(got.len(), 2);
        let rcpts: HashSet<String> = got.iter().map(|m| m.rcpt_to[0].clone()).collect();
        assert_eq!(
            rcpts,
            HashSet::from(["editor@newsroom-mail.org".to_string(), addr(3)])
        );
        assert!(got
            .iter()
            .all(|m| m.header("Subject").unwrap().starts_with("[TEST]")));
        let status = status_json(&p);
        assert_eq!(status["counts"]["sent"], 0, "{status}");
        // The real send afterwards still reaches everyone, including the tested address.
        send(&p, &["--yes"]).success();
        assert_eq!(server.copies_per_recipient()[&addr(3)], 2);
        assert_eq!(status_json(&p)["counts"]["sent"], 10);
    }

    #[test]
    fn an_address_unsubscribed_between_two_runs_gets_nothing_more() {
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 10, FAST_THROTTLE);
        send(&p, &["--yes", "--limit", "4"]).success();
        assert_eq!(server.accepted().len(), 4);
        p.run(&["unsubscribe", &addr(7)]).success();
        let second = send(&p, &["--yes"]);
        second.success();
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), 9);
        assert!(!copies.contains_key(&addr(7)));
        assert!(copies.values().all(|n| *n == 1));
    }

    #[test]
    fn an_address_unsubscribed_during_the_run_is_skipped() {
        let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_millis(25)));
        let p = project(&server, 80, "[throttle]\nconcurrency = 1\n");
        let mut child = send_cmd(&p, &["--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while server.received().len() < 5 {
            assert!(child.try_wait().unwrap().is_none());
            std::thread::sleep(Duration::from_millis(5));
        }
        p.run(&["unsubscribe", &addr(79)]).success();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), 79);
        assert!(!copies.contains_key(&addr(79)));
        let st = states(&p);
        assert_eq!(st[&State::Suppressed], 1);
    }

    #[test]
    fn ctrl_c_finishes_the_transactions_in_flight_journals_them_and_exits_130() {
        let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_millis(10)));
        let p = project(&server, 400, FAST_THROTTLE);
        let mut child = send_cmd(&p, &["--yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while server.received().len() < 20 {
            assert!(child.try_wait().unwrap().is_none());
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let st = states(&p);
        assert_eq!(st.get(&State::InFlight), None);
        assert_eq!(st.get(&State::Ambiguous), None, "{st:?}");
        let sent = st[&State::Sent];
        assert_eq!(sent, server.accepted().len());
        assert!(sent < 400);
        send(&p, &["--yes"]).success();
        let copies = server.copies_per_recipient();
        assert_eq!(copies.len(), 400);
        assert!(copies.values().all(|n| *n == 1));
    }

    #[test]
    fn a_real_send_refuses_to_start_without_confirmation_key_or_password() {
        let server = TestSmtpServer::start(Policy::default());
        let mut p = project(&server, 3, FAST_THROTTLE);
        // No terminal and no --yes.
        let r = send(&p, &[]);
        r.code_is(2);
        assert!(r.stderr().contains("--yes"), "{}", r.stderr());
        // No unsubscribe key.
        let r = p.run(&["send", "--yes"]);
        r.code_is(2);
        assert!(
            r.stderr().contains("FORTNIGHT_UNSUBSCRIBE_KEY"),
            "{}",
            r.stderr()
        );
        // A username without the password.
        p.config_replace(&format!(
            "{}\n{}username = \"digest\"\n",
            crate::support::BASE_CONFIG,
            server.smtp_section()
        ));
        let r = send(&p, &["--yes"]);
        r.code_is(2);
        assert!(
            r.stderr().contains("FORTNIGHT_SMTP_PASSWORD"),
            "{}",
            r.stderr()
        );
        // Plain SMTP to a remote host.
        p.config_replace(&format!(
            "{}\n[smtp]\nhost = \"smtp.readers-mail.org\"\ntls = \"none\"\n",
            crate::support::BASE_CONFIG
        ));
        let r = send(&p, &["--yes"]);
        r.code_is(2);
        assert!(r.stderr().contains("loopback"), "{}", r.stderr());
        assert_eq!(server.sessions(), 0, "nothing connected");
    }

    #[test]
    fn a_deliverability_error_refuses_the_send_before_any_connection() {
        let server = TestSmtpServer::start(Policy::default());
        let mut p = project(&server, 3, FAST_THROTTLE);
        let config = p.read("config.toml").replace(
            "url = \"https://analyst.example.org/unsubscribe?t={token}\"",
            "url = \"http://analyst.example.org/unsubscribe?t={token}\"",
        );
        p.config_replace(&config);
        let r = send(&p, &["--yes"]);
        r.code_is(2);
        assert!(r.stderr().contains("deliverability"), "{}", r.stderr());
        assert_eq!(server.sessions(), 0, "nothing connected");
        // The dry-run says so too (the message builder refuses such a URL as well).
        let dry = send(&p, &["--dry-run"]);
        assert!(dry.stderr().contains("https://"), "{}", dry.stderr());
    }

    /// Runs `fortnight send ARGS` on a pseudo-terminal (util-linux `script`, part of every
    /// Debian system), typing `answer`.
    fn send_on_a_terminal(p: &TestProject, args: &str, answer: &str) -> Run {
        use std::io::Write;
        let bin = env!("CARGO_BIN_EXE_fortnight").replace('\'', "'\\''");
        let mut child = std::process::Command::new("script")
            .args(["-qec", &format!("'{bin}' send {args}"), "/dev/null"])
            .current_dir(p.path())
            .env_remove("FORTNIGHT_SMTP_PASSWORD")
            .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux `script`");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        Run {
            out: child.wait_with_output().unwrap(),
        }
    }

    #[test]
    fn on_a_terminal_a_send_asks_first_and_only_yes_sends() {
        let server = TestSmtpServer::start(Policy::default());
        let p = project(&server, 3, FAST_THROTTLE);
        let no = send_on_a_terminal(&p, "", "n\n");
        no.code_is(2);
        let shown = no.stdout();
        assert!(
            shown.contains("3 recipient(s)") && shown.contains("[y/N]"),
            "{shown}"
        );
        assert!(
            shown.contains("127.0.0.1"),
            "the question names the server: {shown}"
        );
        assert!(shown.contains("not confirmed"), "{shown}");
        assert_eq!(server.sessions(), 0);

        let yes = send_on_a_terminal(&p, "", "y\n");
        yes.success();
        assert_eq!(server.accepted().len(), 3);
        assert!(
            yes.stdout().contains("0/3"),
            "a progress bar was drawn: {}",
            yes.stdout()
        );
        // --yes does not ask.
        let again = send_on_a_terminal(&p, "--yes --to editor@newsroom-mail.org", "");
        again.success();
        assert!(!again.stdout().contains("[y/N]"));
    }

    #[test]
    fn status_without_a_journal_says_nothing_was_sent() {
        let p = TestProject::new();
        let r = p.run(&["status"]);
        r.success();
        assert!(
            r.stdout().contains("Nothing has been sent yet"),
            "{}",
            r.stdout()
        );
        assert!(
            !p.path().join(".fortnight").exists(),
            "status never creates the journal"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_server_sees_mail_rcpt_and_data_in_one_packet() {
    let server = TestSmtpServer::start(Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(30), composer())
        .await;
    assert_eq!(report.sent, 30, "{report:?}");
    let envelopes = server.envelope_packets();
    assert_eq!(envelopes.len(), 30);
    for e in &envelopes {
        assert_eq!(e.len(), 3, "{envelopes:?}");
        assert!(e.iter().all(|p| *p == e[0]), "one read each: {envelopes:?}");
    }
    assert!(server
        .accepted()
        .iter()
        .all(|m| m.text().ends_with("Hello, reader.\r\n")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_pipelining_gets_each_command_after_the_previous_reply() {
    let server = TestSmtpServer::start(Policy::default().without_pipelining());
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(30), composer())
        .await;
    assert_eq!(report.sent, 30, "{report:?}");
    assert!(rows(&journal).iter().all(|r| r.state == State::Sent));
    let envelopes = server.envelope_packets();
    assert_eq!(envelopes.len(), 30);
    for e in &envelopes {
        assert_eq!(e.len(), 3, "{envelopes:?}");
        assert!(e[0] < e[1] && e[1] < e[2], "three reads: {envelopes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_inside_a_pipelined_envelope_is_classified_as_its_own_command_and_sends_no_body()
{
    let server = TestSmtpServer::start(
        Policy::default()
            .on_rcpt(|a| {
                (a.rcpt == addr(3)).then(|| {
                    Fault::Reply("550 5.1.1 <x>: Recipient address rejected: User unknown".into())
                })
            })
            .on_data_command(|a| {
                (a.rcpt == addr(6)).then(|| Fault::Reply("451 4.3.0 Try again later".into()))
            }),
    );
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = EngineRun::new(&server)
        .run(&dir.path().join("j.sqlite"), planned(10), composer())
        .await;
    // addr(3): refused at RCPT, failed and bounced; addr(6): DATA deferred every time.
    assert_eq!(
        (report.sent, report.failed, report.bounced),
        (8, 1, 1),
        "{report:?}"
    );
    let by_addr: HashMap<String, DeliveryRow> = rows(&journal)
        .into_iter()
        .map(|r| (r.address.clone(), r))
        .collect();
    let refused = &by_addr[&addr(3)];
    assert_eq!(refused.state, State::Failed);
    assert!(refused
        .last_reply
        .as_deref()
        .unwrap()
        .starts_with("550 5.1.1"));
    let deferred = &by_addr[&addr(6)];
    assert_eq!(deferred.state, State::Deferred, "{deferred:?}");
    assert!(deferred
        .last_reply
        .as_deref()
        .unwrap()
        .starts_with("451 4.3.0"));
    // No body for either, and each refusal was followed by RSET before the next MAIL.
    let copies = server.copies_per_recipient();
    assert!(!copies.contains_key(&addr(3)) && !copies.contains_key(&addr(6)));
    assert!(copies.values().all(|n| *n == 1));
    let log = server.log();
    let mut resets = 0;
    for (i, l) in log.iter().enumerate() {
        if l.from_client && l.line == "RSET" {
            resets += 1;
            let before = log[..i]
                .iter()
                .rev()
                .find(|b| b.from_client && b.session == l.session)
                .unwrap();
            assert_eq!(before.line, "DATA", "{log:?}");
        }
    }
    assert!(resets >= 2, "{log:?}");
    assert!(server
        .envelope_packets()
        .iter()
        .all(|e| e.iter().all(|p| *p == e[0])));
}
