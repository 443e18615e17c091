//! Delivery guarantees at the edges (issue 11): verdicts that survive a SIGKILL while the
//! run waits, exit codes while an issue is unsettled, ownership of a send in the database,
//! a list that breaks mid-run, the content lock, per-copy `Date`, list-keyed Message-IDs and
//! the connection policy. Every test drives the real binary against the in-process SMTP
//! server (real TCP on 127.0.0.1:0) and reads the real SQLite journal.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use fortnight::journal::{DeliveryRow, State};
use fortnight::subscribers::{Status, SubscriberList};

use crate::support::sending::{
    addr, list_csv, project, rows, send, send_cmd, states, ARTICLE, ISSUE,
};
use crate::support::smtp::{Fault, Policy, TestSmtpServer};
use crate::support::TestProject;

fn spawn_send(p: &TestProject, args: &[&str]) -> Child {
    send_cmd(p, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fortnight send")
}

fn row(p: &TestProject, address: &str) -> DeliveryRow {
    rows(p)
        .into_iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("no journal row for {address}"))
}

/// Waits (at most `secs`) until `cond` holds, failing if the child exits first.
#[track_caller]
fn wait_until(child: &mut Child, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the send ended before {what}"
        );
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL, and reap.
fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Whether the server replied a line starting with `prefix`.
fn server_replied(server: &TestSmtpServer, prefix: &str) -> bool {
    server
        .log()
        .iter()
        .any(|l| !l.from_client && l.line.starts_with(prefix))
}

// 1. Verdict durability ------------------------------------------------------------------

#[test]
fn a_kill_while_idle_after_a_550_keeps_the_verdict_and_the_rerun_marks_the_address_bounced() {
    let bad = addr(0);
    let b = bad.clone();
    let server = TestSmtpServer::start(Policy::default().on_rcpt(move |a| {
        (a.rcpt == b)
            .then(|| Fault::Reply("550 5.1.1 <x>: Recipient address rejected: User unknown".into()))
    }));
    // One message every 10 s: after the 550 the only worker waits in the throttle.
    let p = project(
        &server,
        2,
        "[throttle]\nconcurrency = 1\nper_minute = 6\nretries = 1\nbackoff_secs = 0.05\n",
    );
    let mut child = spawn_send(&p, &["--yes"]);
    wait_until(&mut child, 20, "the 550", || {
        server_replied(&server, "550 5.1.1")
    });
    std::thread::sleep(Duration::from_millis(300));
    kill(child);
    // The journal already holds the verdict: failed, with the bounce to apply.
    let r = row(&p, &bad);
    assert_eq!(r.state, State::Failed, "{r:?}");
    assert_eq!(states(&p).get(&State::InFlight), None);

    let rerun = send(&p, &["--yes"]);
    rerun.success();
    let list = SubscriberList::load(&p.path().join("subscribers.csv")).unwrap();
    let s = list
        .subscribers
        .iter()
        .find(|s| s.email.as_str() == bad)
        .unwrap();
    assert_eq!(s.status, Status::Bounced);
    let st = states(&p);
    assert_eq!(st.get(&State::Ambiguous), None, "{st:?}");
    assert_eq!((st[&State::Sent], st[&State::Failed]), (1, 1));
    assert_eq!(server.accepted().len(), 1);
    assert_eq!(server.copies_per_recipient()[&addr(1)], 1);
}

#[test]
fn a_kill_during_a_451_backoff_leaves_the_row_deferred_and_the_rerun_delivers_it_once() {
    let server = TestSmtpServer::start(
        Policy::default()
            .on_rcpt(|a| (a.nth == 1).then(|| Fault::Reply("451 4.3.0 Try again later".into()))),
    );
    let p = project(
        &server,
        1,
        "[throttle]\nconcurrency = 1\nretries = 3\nbackoff_secs = 2\nbackoff_max_secs = 2\n",
    );
    let mut child = spawn_send(&p, &["--yes"]);
    wait_until(&mut child, 20, "the 451", || {
        server_replied(&server, "451 4.3.0")
    });
    std::thread::sleep(Duration::from_millis(200));
    kill(child);
    let r = row(&p, &addr(0));
    assert_eq!(r.state, State::Deferred, "{r:?}");
    assert!(r.next_attempt_at.is_some());

    // Once its backoff has passed, a plain rerun retries it.
    std::thread::sleep(Duration::from_millis(2100));
    send(&p, &["--yes"]).success();
    assert_eq!(row(&p, &addr(0)).state, State::Sent);
    assert_eq!(server.accepted().len(), 1);
    assert_eq!(server.copies_per_recipient()[&addr(0)], 1);
}

// 2. Exit 1 while the issue is not settled -------------------------------------------------

#[test]
fn a_rerun_that_sends_nothing_exits_1_while_ambiguous_rows_are_left_and_0_once_settled() {
    let server = TestSmtpServer::start(
        Policy::default().on_data(|a| (a.rcpt == addr(1) && a.nth == 1).then_some(Fault::Drop)),
    );
    let p = project(
        &server,
        3,
        "[throttle]\nconcurrency = 1\nretries = 1\nbackoff_secs = 0.05\n",
    );
    send(&p, &["--yes"]).code_is(1);
    assert_eq!(states(&p)[&State::Ambiguous], 1);
    for args in [&["--yes"][..], &["--yes", "--json"][..]] {
        let rerun = send(&p, args);
        rerun.code_is(1);
        assert!(
            rerun.stdout().contains("not settled")
                && rerun.stdout().contains(&format!(
                    "fortnight send --issue {ISSUE} --resend-ambiguous"
                )),
            "{}",
            rerun.stdout()
        );
    }
    assert_eq!(server.received().len(), 3, "the reruns sent nothing");
    send(&p, &["--yes", "--resend-ambiguous"]).success();
    send(&p, &["--yes"]).success();
}

// 3. Ownership in the database ---------------------------------------------------------------

#[test]
fn with_the_lock_file_deleted_a_second_send_is_refused_and_nothing_goes_out_twice() {
    const N: usize = 60;
    let server = TestSmtpServer::start(Policy::default());
    let p = project(
        &server,
        N,
        "[throttle]\nconcurrency = 2\nper_second = 20\nretries = 1\nbackoff_secs = 0.05\n",
    );
    let mut first = spawn_send(&p, &["--yes"]);
    wait_until(&mut first, 20, "the first messages", || {
        server.received().len() >= 5
    });
    let lock = p.path().join(".fortnight/journal.sqlite.lock");
    std::fs::remove_file(&lock).expect("the run lock file exists during a send");
    let second = send(&p, &["--yes"]);
    second.code_is(2);
    assert!(
        second.stderr().contains("owns the issue"),
        "{}",
        second.stderr()
    );
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let copies = server.copies_per_recipient();
    assert_eq!(copies.len(), N);
    assert!(copies.values().all(|n| *n == 1), "a message went out twice");
    assert_eq!(states(&p)[&State::Sent], N);
    // The finished run gave the issue up: a rerun starts at once (and has nothing to send).
    send(&p, &["--yes"]).success();
}

// 4. A list that breaks mid-run -------------------------------------------------------------

#[test]
fn a_list_that_turns_malformed_mid_run_stops_it_with_exit_2_and_nobody_who_left_is_mailed() {
    const N: usize = 120;
    let server = TestSmtpServer::start(Policy::default());
    let p = project(
        &server,
        N,
        "[throttle]\nconcurrency = 2\nper_second = 20\nretries = 1\nbackoff_secs = 0.05\n",
    );
    let mut child = send_cmd(&p, &["--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(&mut child, 20, "the first messages", || {
        server.received().len() >= 10
    });
    // An editor saves the list: the second half unsubscribed, and a broken last line.
    let mut edited = String::from("email,name,status,since,source,tags\n");
    for i in 0..N {
        let status = if i >= N / 2 {
            "unsubscribed"
        } else {
            "subscribed"
        };
        edited.push_str(&format!(
            "{},Reader {i},{status},2024-01-01,test,\n",
            addr(i)
        ));
    }
    edited.push_str("this is not an address,Broken,subscribed,2024-01-01,test,\n");
    p.write("subscribers.csv", edited);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("subscribers.csv") && stderr.contains(&format!("line {}", N + 2)),
        "{stderr}"
    );
    let copies = server.copies_per_recipient();
    assert!(copies.len() < N / 2, "{} mailed", copies.len());
    for i in N / 2..N {
        assert!(!copies.contains_key(&addr(i)), "{} was mailed", addr(i));
    }
    // The journal is consistent: what the server accepted is sent, the rest pending.
    let st = states(&p);
    assert_eq!(st.get(&State::InFlight), None, "{st:?}");
    assert_eq!(st[&State::Sent], server.accepted().len());
    assert_eq!(st[&State::Sent] + st[&State::Pending], N, "{st:?}");
}

// 5. Content lock ----------------------------------------------------------------------------

#[test]
fn a_changed_issue_is_refused_after_its_first_copies_and_allow_changed_goes_on_and_is_journaled() {
    let server = TestSmtpServer::start(Policy::default());
    let p = project(
        &server,
        6,
        "[throttle]\nconcurrency = 1\nretries = 1\nbackoff_secs = 0.05\n",
    );
    send(&p, &["--yes", "--limit", "2"]).success();
    // Unchanged: the next run goes on.
    send(&p, &["--yes", "--limit", "1"]).success();
    assert_eq!(server.accepted().len(), 3);

    // The editor fixes a title and adds an article.
    p.write(
        "articles/ferries.md",
        ARTICLE.replace("Ferries Return", "Ferries Come Back"),
    );
    p.write(
        "articles/late.md",
        ARTICLE
            .replace("Ferries Return to the Caspian", "A Late Addition")
            .replace("The ferry", "A late article: the ferry"),
    );
    let refused = send(&p, &["--yes"]);
    refused.code_is(2);
    let err = refused.stderr();
    assert!(
        err.contains("changed since its first copies went out")
            && err.contains("article edited: ferries.md")
            && err.contains("article added: late.md")
            && err.contains("--allow-changed"),
        "{err}"
    );
    assert_eq!(server.received().len(), 3, "nothing sent");

    // Test copies are exempt.
    send(&p, &["--yes", "--to", "editor@analyst.example.org"]).success();
    assert_eq!(server.received().len(), 4);

    let allowed = send(&p, &["--yes", "--allow-changed"]);
    allowed.success();
    assert!(
        allowed.stdout().contains("--allow-changed"),
        "{}",
        allowed.stdout()
    );
    assert_eq!(states(&p)[&State::Sent], 6);
    let db = rusqlite::Connection::open(p.path().join(".fortnight/journal.sqlite")).unwrap();
    let what: String = db
        .query_row(
            "SELECT what FROM content_changes WHERE issue = ?1",
            [ISSUE],
            |r| r.get(0),
        )
        .unwrap();
    assert!(what.contains("article edited: ferries.md"), "{what}");
    // The changed issue is the recorded one now: a rerun is not refused.
    send(&p, &["--yes"]).success();
}

// 6. Date when the copy enters SMTP; Message-IDs keyed by the list ---------------------------

/// The wall-clock time the server took a message in.
fn received_wall(m: &crate::support::smtp::Received) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::from_std(m.at.elapsed()).unwrap()
}

#[test]
fn each_copy_is_dated_and_dkim_stamped_when_it_enters_smtp_in_a_throttled_run() {
    let server = TestSmtpServer::start(Policy::default());
    let mut p = project(
        &server,
        4,
        "[throttle]\nconcurrency = 1\nper_minute = 30\nretries = 1\nbackoff_secs = 0.05\n",
    );
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim/ed25519.pem");
    p.config_append(&format!(
        "[dkim]\ndomain = \"analyst.example.org\"\nselector = \"fn2026\"\nprivate_key = \"{}\"\n",
        key.display()
    ));
    send(&p, &["--yes"]).success();
    let got = server.accepted();
    assert_eq!(got.len(), 4);
    // One every 2 s: the last copy enters SMTP about 6 s after the run started.
    let span = got[3].at - got[0].at;
    assert!(span >= Duration::from_secs(5), "{span:?}");
    for m in &got {
        let at = received_wall(m);
        let date = chrono::DateTime::parse_from_rfc2822(&m.header("Date").unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        let off = (at - date).num_milliseconds().abs();
        assert!(
            off <= 2000,
            "Date {date} is {off} ms from the receive time {at}"
        );
        let sig = m.header("DKIM-Signature").unwrap();
        let t: i64 = sig
            .split(';')
            .find_map(|tag| tag.trim().strip_prefix("t="))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(t, date.timestamp(), "DKIM t= is the Date");
    }
}

#[test]
fn two_lists_on_one_domain_give_one_reader_two_message_ids_and_a_resend_keeps_the_recorded_one() {
    let server = TestSmtpServer::start(
        Policy::default().on_data(|a| (a.rcpt == addr(1) && a.nth == 1).then_some(Fault::Drop)),
    );
    let throttle = "[throttle]\nconcurrency = 1\nretries = 1\nbackoff_secs = 0.05\n";
    let english = project(&server, 1, throttle);
    let mut russian = project(&server, 1, throttle);
    russian.config_replace(&crate::support::BASE_CONFIG.replace(
        "digest.analyst.example.org",
        "ru.digest.analyst.example.org",
    ));
    russian.config_append(&server.smtp_section());
    russian.config_append(throttle);
    send(&english, &["--yes"]).success();
    send(&russian, &["--yes"]).success();
    let ids: Vec<String> = server
        .accepted()
        .iter()
        .map(|m| m.message_id().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "one reader, two lists: two Message-IDs");
    assert!(ids.iter().all(|id| id.starts_with("<20261104.")), "{ids:?}");
    assert!(
        ids.iter().all(|id| !id.contains("reader")),
        "the ID does not show the address: {ids:?}"
    );

    // A row journaled with an older ID keeps it when resent.
    let p = project(&server, 2, throttle);
    send(&p, &["--yes"]).code_is(1);
    assert_eq!(row(&p, &addr(1)).state, State::Ambiguous);
    let db = rusqlite::Connection::open(p.path().join(".fortnight/journal.sqlite")).unwrap();
    db.execute(
        "UPDATE deliveries SET message_id = '<20261104.recorded-before@analyst.example.org>' \
         WHERE address = ?1",
        [addr(1)],
    )
    .unwrap();
    send(&p, &["--yes", "--resend-ambiguous"]).success();
    let resent = server
        .received()
        .into_iter()
        .rfind(|m| m.rcpt_to[0] == addr(1))
        .unwrap();
    assert_eq!(
        resent.message_id().as_deref(),
        Some("<20261104.recorded-before@analyst.example.org>")
    );
}

// 7. Connection policy -------------------------------------------------------------------------

#[test]
fn a_relay_allowing_two_connections_at_concurrency_6_lowers_the_connections_not_the_rate() {
    const N: usize = 60;
    let server = TestSmtpServer::start(Policy {
        max_sessions: Some(2),
        ..Policy::default()
    });
    let p = project(
        &server,
        N,
        "[throttle]\nconcurrency = 6\nper_second = 30\nretries = 3\nbackoff_secs = 0.05\nbackoff_max_secs = 0.2\n",
    );
    let started = Instant::now();
    let run = send(&p, &["--yes", "--json"]);
    let took = started.elapsed();
    run.success();
    let summary: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(summary["run"]["sent"], N as u64, "{summary}");
    assert_eq!(summary["run"]["slowdowns"], 0, "{summary}");
    assert_eq!(summary["run"]["fewer_connections"], 4, "{summary}");
    // Full rate: 60 messages at 30/s take 2 s (plus start-up).
    assert!(took < Duration::from_millis(3500), "{took:?}");
    assert!(server.copies_per_recipient().values().all(|n| *n == 1));
}

#[test]
fn a_relay_that_takes_connections_and_never_answers_stops_the_run_within_three_timeouts() {
    let server = TestSmtpServer::start(Policy {
        silent: true,
        ..Policy::default()
    });
    let mut p = TestProject::new();
    p.write("articles/ferries.md", ARTICLE);
    p.write("subscribers.csv", list_csv(10));
    p.config_append(&format!(
        "{}connect_timeout_secs = 1\ncommand_timeout_secs = 1\n",
        server.smtp_section()
    ));
    p.config_append("[throttle]\nconcurrency = 4\nretries = 3\nbackoff_secs = 0.05\n");
    let started = Instant::now();
    let run = send(&p, &["--yes"]);
    let took = started.elapsed();
    run.code_is(2);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        run.stderr().contains("did not answer 3 times in a row"),
        "{}",
        run.stderr()
    );
    assert!(server.received().is_empty());
    assert_eq!(states(&p)[&State::Pending], 10);
}

#[test]
fn one_recipient_refused_by_policy_at_rcpt_fails_alone_and_the_others_are_delivered() {
    let server = TestSmtpServer::start(Policy::default().on_rcpt(|a| {
        (a.rcpt == addr(0) || a.rcpt == addr(4)).then(|| {
            Fault::Reply("550 5.7.1 <x>: Recipient address rejected: Access denied".into())
        })
    }));
    let p = project(
        &server,
        10,
        "[throttle]\nconcurrency = 1\nretries = 2\nbackoff_secs = 0.05\nbackoff_max_secs = 0.1\n",
    );
    let run = send(&p, &["--yes"]);
    run.code_is(1);
    assert_eq!(server.accepted().len(), 8);
    let st = states(&p);
    assert_eq!((st[&State::Sent], st[&State::Failed]), (8, 2), "{st:?}");
    // Refused once: deferred; refused again while the others are accepted: failed.
    assert_eq!(row(&p, &addr(0)).state, State::Failed);
    assert_eq!(row(&p, &addr(4)).state, State::Failed);
    // A rerun does not retry them (and so is not stopped by them).
    send(&p, &["--yes"]).success();
    assert_eq!(server.received().len(), 8);
}

#[test]
fn policy_refusals_of_many_recipients_in_a_row_still_stop_the_run() {
    let server = TestSmtpServer::start(Policy::default().on_rcpt(|a| {
        (a.transaction > 3)
            .then(|| Fault::Reply("554 5.7.1 Service unavailable; client host blocked".into()))
    }));
    let p = project(
        &server,
        20,
        "[throttle]\nconcurrency = 1\nretries = 2\nbackoff_secs = 0.05\nbackoff_max_secs = 0.1\n",
    );
    let run = send(&p, &["--yes"]);
    run.code_is(2);
    assert!(
        run.stderr().contains("3 recipients in a row"),
        "{}",
        run.stderr()
    );
    assert_eq!(server.accepted().len(), 3);
    let st = states(&p);
    assert_eq!(st[&State::Sent], 3);
    assert_eq!(
        st.get(&State::Failed),
        None,
        "nobody failed for our refusal: {st:?}"
    );
    assert!(st[&State::Pending] >= 14, "{st:?}");
}

// 8. Randomized crashes ------------------------------------------------------------------------

/// A number from (seed, address, attempt), the same on every run of the test with that seed.
fn dice(seed: u64, rcpt: &str, nth: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, rcpt, nth).hash(&mut h);
    h.finish()
}

/// Many SIGKILLs at random moments of a send with injected 451s, 550s and connections
/// dropped after the final dot, then plain reruns until the issue is settled: no address
/// gets a second copy, no row is lost, and every message the server accepted is `sent`
/// unless its transaction was open at a kill (then `ambiguous`, "interrupted").
fn crash_at_random(concurrency: usize) {
    use rand::{Rng, SeedableRng};
    // About two seconds of sending, so most of the kills land mid-run.
    let n = 240 * concurrency.min(4);
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let bounced: Vec<String> = (0..n).step_by(23).map(addr).collect();
    let b = bounced.clone();
    let server = TestSmtpServer::start(
        Policy::default()
            .data_delay(Duration::from_millis(5))
            .on_rcpt(move |a| {
                if b.contains(&a.rcpt) {
                    return Some(Fault::Reply("550 5.1.1 <x>: User unknown".into()));
                }
                (a.nth <= 2 && dice(seed, &a.rcpt, a.nth).is_multiple_of(8))
                    .then(|| Fault::Reply("451 4.3.0 Try again later".into()))
            })
            .on_data(move |a| {
                (a.nth == 1 && dice(seed ^ 1, &a.rcpt, a.nth).is_multiple_of(30))
                    .then_some(Fault::Drop)
            }),
    );
    let p = project(
        &server,
        n,
        &format!(
            "[throttle]\nconcurrency = {concurrency}\nretries = 3\nbackoff_secs = 0.02\n\
             backoff_max_secs = 0.05\n"
        ),
    );
    let ctx = format!("seed {seed}, concurrency {concurrency}");
    let mut kills = 0;
    let mut killed_at: Vec<Instant> = Vec::new();
    for _ in 0..8 {
        let mut child = spawn_send(&p, &["--yes"]);
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..250)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        killed_at.push(Instant::now());
        kill(child);
        kills += 1;
        let copies = server.copies_per_recipient();
        assert!(copies.values().all(|n| *n == 1), "a duplicate ({ctx})");
    }
    // Plain reruns settle the issue (deferred rows need their short backoff to pass).
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        let r = send(&p, &["--yes"]);
        assert!(
            matches!(r.code(), 0 | 1),
            "{ctx}: {}\n{}",
            r.stdout(),
            r.stderr()
        );
        let st = states(&p);
        if !st.contains_key(&State::Pending) && !st.contains_key(&State::Deferred) {
            break;
        }
    }
    let copies = server.copies_per_recipient();
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "duplicates {twice:?} ({ctx})");
    let rows = rows(&p);
    assert_eq!(rows.len(), n, "no row lost ({ctx})");
    let by_address: HashMap<&str, &DeliveryRow> =
        rows.iter().map(|r| (r.address.as_str(), r)).collect();
    let mut interrupted = 0;
    for r in &rows {
        assert!(
            matches!(r.state, State::Sent | State::Failed | State::Ambiguous),
            "{r:?} ({ctx})"
        );
    }
    for m in server.accepted() {
        let r = by_address[m.rcpt_to[0].as_str()];
        if r.state == State::Sent {
            continue;
        }
        assert_eq!(r.state, State::Ambiguous, "{r:?} ({ctx})");
        // Its transaction was open at a kill: the server took it in (after its 5 ms delay)
        // around the moment of a kill.
        let open_at_a_kill = killed_at.iter().any(|k| {
            let gap = if *k >= m.at { *k - m.at } else { m.at - *k };
            gap < Duration::from_millis(200)
        });
        assert!(
            open_at_a_kill
                && r.last_reply
                    .as_deref()
                    .unwrap_or("")
                    .contains("interrupted"),
            "an accepted message is ambiguous without a kill during its transaction: {r:?} \
             ({ctx})"
        );
        interrupted += 1;
    }
    assert!(kills >= 3, "only {kills} kills landed mid-run ({ctx})");
    assert!(
        interrupted <= kills * concurrency,
        "{interrupted} interrupted rows after {kills} kills ({ctx})"
    );
    eprintln!("{ctx}: {kills} kills, {interrupted} accepted-but-interrupted rows");
    // A 550 is failed and bounced in the list, unless a kill hit its transaction.
    let list = SubscriberList::load(&p.path().join("subscribers.csv")).unwrap();
    for s in &list.subscribers {
        let r = by_address[s.email.as_str()];
        if bounced.contains(&s.email.as_str().to_string()) {
            let interrupted = r.state == State::Ambiguous
                && r.last_reply
                    .as_deref()
                    .unwrap_or("")
                    .contains("interrupted");
            assert!(r.state == State::Failed || interrupted, "{r:?} ({ctx})");
        }
        assert_eq!(
            s.status == Status::Bounced,
            r.state == State::Failed,
            "{} {r:?} ({ctx})",
            s.email
        );
    }
}

#[test]
fn random_kills_at_concurrency_1_never_duplicate_never_lose_a_row_or_an_accepted_verdict() {
    crash_at_random(1);
}

#[test]
fn random_kills_at_concurrency_8_never_duplicate_never_lose_a_row_or_an_accepted_verdict() {
    crash_at_random(8);
}
