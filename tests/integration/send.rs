//! Integration tests for `send`: the delivery engine against the in-process SMTP server
//! (real TCP, real SQLite), and the `fortnight send` / `fortnight status` commands.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fortnight::articles::IssueDate;
use fortnight::config::{JournalSync, SmtpConfig, ThrottleConfig};
use fortnight::journal::{AttemptKind, DeliveryRow, Journal, JournalKey, State};
use fortnight::message::Outgoing;
use fortnight::send::deliver::{
    ComposerFactory, Deliverer, DeliveryOptions, Planned, RunReport, Stats, StopReason, Stopper,
};
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
        };
        let report = deliverer.deliver(recipients, composer).await;
        let journal = writer.finish().unwrap();
        (report, journal)
    }
}

fn rows(journal: &Journal) -> Vec<DeliveryRow> {
    journal.rows(ISSUE).unwrap()
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
        elapsed < Duration::from_secs(3),
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
    assert!(updates.iter().all(|u| u.status == "bounced"));
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
    let (report, journal) = EngineRun::new(&server)
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
    // Transactions already past MAIL finish; none starts after the refusal is seen (a MAIL
    // another worker had written before the reply reached us is the only tolerance).
    assert!(
        mails_after <= 3,
        "{mails_after} MAIL commands after the 535"
    );
    assert!(report.sent < 40, "{report:?}");
    let st = states(&journal);
    assert_eq!(st.get(&State::InFlight), None);
    assert_eq!(
        st.values().sum::<usize>(),
        300,
        "every planned row is still in the journal: {st:?}"
    );
    assert!(
        st.get(&State::Pending).copied().unwrap_or(0) > 250,
        "{st:?}"
    );
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
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
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
    let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_millis(20)));
    let dir = tempfile::tempdir().unwrap();
    let run = EngineRun::new(&server);
    let stop = run.stop.clone();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.stop(StopReason::Interrupted);
    });
    let (report, journal) = run
        .run(&dir.path().join("j.sqlite"), planned(1000), composer())
        .await;
    handle.await.unwrap();
    assert_eq!(report.stopped, Some(StopReason::Interrupted));
    assert!(report.sent > 0 && report.sent < 1000, "{report:?}");
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
    let server = TestSmtpServer::start(Policy::default().data_delay(Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    let mut run = EngineRun::new(&server);
    run.throttle.concurrency = 2;
    let stop = run.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
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
    assert_eq!(journal.test_copies(ISSUE).unwrap().len(), 2);
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
            issue: ISSUE.into(),
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
        w.finish().unwrap();
    }
    let mut j = Journal::open(&path, JournalSync::Normal).unwrap();
    assert_eq!(states(&j).get(&State::InFlight), Some(&1));
    assert_eq!(j.recover_in_flight(chrono::Utc::now()).unwrap(), 1);
    assert_eq!(states(&j).get(&State::Ambiguous), Some(&1));
}
