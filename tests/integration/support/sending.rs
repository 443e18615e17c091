//! A project for `fortnight send` through the real binary: one article, a list of `n`
//! numbered readers, the test SMTP server's `[smtp]` section, and journal readers.

use std::collections::HashMap;

use fortnight::journal::{DeliveryRow, Journal, State};

use super::smtp::TestSmtpServer;
use super::{Run, TestProject, TEST_UNSUBSCRIBE_KEY};

pub const ISSUE: &str = "2026-11-04";
pub const ARTICLE: &str = "---\ntitle: \"Ferries Return to the Caspian\"\nauthor: Test Author\n\
    date: 2026-11-02\nissue: 2026-11-04\nsection: Field Reports\n---\n\n\
    The ferry between Baku and Aktau runs again after the autumn storms.\n";

/// The address of reader `i` of [`list_csv`].
pub fn addr(i: usize) -> String {
    format!("reader{i:05}@readers-mail.org")
}

/// A list of `n` subscribed readers.
pub fn list_csv(n: usize) -> String {
    let mut s = String::from("email,name,status,since,source,tags\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},Reader {i},subscribed,2024-01-01,test,\n",
            addr(i)
        ));
    }
    s
}

/// A project sending [`ARTICLE`] to `n` readers through `server`, with `throttle` appended.
pub fn project(server: &TestSmtpServer, n: usize, throttle: &str) -> TestProject {
    let mut p = TestProject::new();
    p.write("articles/ferries.md", ARTICLE);
    p.write("subscribers.csv", list_csv(n));
    p.config_append(&server.smtp_section());
    p.config_append(throttle);
    p
}

/// `fortnight send ARGS` with the test unsubscribe key, not yet started.
pub fn send_cmd(p: &TestProject, args: &[&str]) -> std::process::Command {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let mut c = p.cmd(&all);
    c.env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY);
    c
}

/// Runs `fortnight send ARGS` to the end.
pub fn send(p: &TestProject, args: &[&str]) -> Run {
    Run {
        out: send_cmd(p, args).output().expect("run fortnight send"),
    }
}

/// The project's journal (it must exist).
pub fn journal(p: &TestProject) -> Journal {
    Journal::open_existing(&p.path().join(".fortnight/journal.sqlite"))
        .unwrap()
        .expect("a journal")
}

/// The journal rows of [`ISSUE`].
pub fn rows(p: &TestProject) -> Vec<DeliveryRow> {
    journal(p).rows(ISSUE.parse().unwrap()).unwrap()
}

/// How many rows of [`ISSUE`] are in each state.
pub fn states(p: &TestProject) -> HashMap<State, usize> {
    let mut m = HashMap::new();
    for r in rows(p) {
        *m.entry(r.state).or_default() += 1;
    }
    m
}
