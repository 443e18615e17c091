//! The command-line surface as users and scripts see it: every command's `--help` and every
//! `--json` output, captured as snapshots. Refactors must leave them byte-identical; a
//! deliberate change to the surface updates the snapshot in the same commit.

use crate::support::smtp::{Policy, TestSmtpServer};
use crate::support::{TestProject, TEST_UNSUBSCRIBE_KEY};

/// Every command path, as typed after `fortnight`.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["issues"],
    &["preview"],
    &["send"],
    &["status"],
    &["subscribers"],
    &["subscribers", "import"],
    &["subscribers", "stats"],
    &["subscribers", "export"],
    &["unsubscribe"],
    &["init"],
    &["serve"],
    &["bounces"],
    &["check"],
];

#[test]
fn every_commands_help_is_unchanged() {
    let p = TestProject::new();
    for path in COMMANDS {
        let mut args: Vec<&str> = path.to_vec();
        args.push("--help");
        let run = p.run(&args);
        run.success();
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        insta::assert_snapshot!(name, run.stdout());
    }
}

const ISSUE: &str = "2026-11-04";
const ARTICLE: &str = "---\ntitle: \"Ferries Return to the Caspian\"\nauthor: Test Author\n\
    date: 2026-11-02\nissue: 2026-11-04\nsection: Field Reports\n---\n\n\
    The ferry between Baku and Aktau runs again after the autumn storms.\n";

fn list_csv(n: usize) -> String {
    let mut s = String::from("email,name,status,since,source,tags\n");
    for i in 0..n {
        s.push_str(&format!(
            "reader{i:02}@readers-mail.org,Reader {i},subscribed,2024-01-01,test,\n"
        ));
    }
    s.push_str("gone@readers-mail.org,Gone Reader,unsubscribed,2024-01-01,test,\n");
    s
}

/// Replaces the values that differ from run to run (times, rates, temp paths, queue ids)
/// with placeholders, keeping the shape and every other value.
fn stable(v: &mut serde_json::Value, root: &str, port: u16) {
    const VOLATILE: &[&str] = &[
        "elapsed_secs",
        "duration_secs",
        "rate_per_sec",
        "messages_per_sec",
        "started",
        "finished",
        "first_at",
        "last_at",
        "at",
        "next_slot",
        "reply",
        "last_reply",
        "bytes",
    ];
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if VOLATILE.contains(&k.as_str()) && !val.is_null() {
                    *val = serde_json::Value::String(format!("<{k}>"));
                } else {
                    stable(val, root, port);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| stable(i, root, port)),
        serde_json::Value::String(s) => {
            *s = s
                .replace(root, "<project>")
                .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:<port>");
        }
        _ => {}
    }
}

fn json_snapshot(name: &str, p: &TestProject, port: u16, stdout: &str) {
    let mut v: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}):\n{stdout}"));
    let root = p.path().to_string_lossy().into_owned();
    stable(&mut v, &root, port);
    insta::assert_snapshot!(name, serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn every_json_output_is_unchanged() {
    let server = TestSmtpServer::start(Policy::default());
    let port = server.port();
    let mut p = TestProject::new();
    p.write("articles/ferries.md", ARTICLE);
    p.write("subscribers.csv", list_csv(3));
    p.config_append(&server.smtp_section());
    p.config_append("[throttle]\nconcurrency = 1\nretries = 1\n");

    let issues = p.run(&["issues", "--json"]);
    issues.success();
    json_snapshot("json_issues", &p, port, &issues.stdout());

    let status_empty = p.run(&["status", "--json"]);
    json_snapshot(
        "json_status_before_any_send",
        &p,
        port,
        &status_empty.stdout(),
    );

    let with_key = |args: &[&str]| {
        let mut c = p.cmd(args);
        c.env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY);
        c.output().expect("run fortnight")
    };
    let dry = with_key(&["send", "--dry-run", "--json", "--out", "dry"]);
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    json_snapshot(
        "json_send_dry_run",
        &p,
        port,
        &String::from_utf8_lossy(&dry.stdout),
    );

    let test = with_key(&["send", "--to", "editor@readers-mail.org", "--yes", "--json"]);
    assert_eq!(test.status.code(), Some(0), "{test:?}");
    json_snapshot(
        "json_send_test_copy",
        &p,
        port,
        &String::from_utf8_lossy(&test.stdout),
    );

    let real = with_key(&["send", "--yes", "--json"]);
    assert_eq!(real.status.code(), Some(0), "{real:?}");
    json_snapshot(
        "json_send",
        &p,
        port,
        &String::from_utf8_lossy(&real.stdout),
    );

    let rerun = with_key(&["send", "--yes", "--json"]);
    assert_eq!(rerun.status.code(), Some(0), "{rerun:?}");
    json_snapshot(
        "json_send_rerun",
        &p,
        port,
        &String::from_utf8_lossy(&rerun.stdout),
    );

    let status = p.run(&["status", "--json", "--issue", ISSUE]);
    status.success();
    json_snapshot("json_status", &p, port, &status.stdout());
}

/// The human-readable output of the commands that print reports (stdout and stderr), so that
/// moving the printing into the command layer keeps every line.
#[test]
fn human_readable_reports_are_unchanged() {
    let server = TestSmtpServer::start(Policy::default());
    let port = server.port();
    let mut p = TestProject::new();
    p.write("articles/ferries.md", ARTICLE);
    p.write("subscribers.csv", list_csv(3));
    p.write(
        "import.csv",
        "Email Address,First Name,Last Name\nnew@readers-mail.org,New,Reader\nbad-address,X,Y\n",
    );
    p.config_append(&server.smtp_section());
    p.config_append("[throttle]\nconcurrency = 1\nretries = 1\n");
    let root = p.path().to_string_lossy().into_owned();
    let timing = regex::Regex::new(r"in [^,()]+, [0-9.]+ messages/s").unwrap();
    let clean = |s: String| {
        let s = s
            .replace(&root, "<project>")
            .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:<port>");
        timing
            .replace_all(&s, "in <time>, <rate> messages/s")
            .into_owned()
    };
    let runs: &[&[&str]] = &[
        &["issues"],
        &["check"],
        &["preview", "--out", "pv"],
        &["subscribers", "stats"],
        &["subscribers", "export"],
        &["subscribers", "import", "import.csv", "--dry-run"],
        &["unsubscribe", "reader01@readers-mail.org"],
        &["status"],
        &["send", "--yes"],
        &["status"],
        &["bounces", "--dry-run", "import.csv"],
        &["init", "starter"],
    ];
    for (i, args) in runs.iter().enumerate() {
        let mut c = p.cmd(args);
        c.env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY);
        let out = c.output().expect("run fortnight");
        let text = format!(
            "$ fortnight {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            out.status.code(),
            clean(String::from_utf8_lossy(&out.stdout).into_owned()),
            clean(String::from_utf8_lossy(&out.stderr).into_owned()),
        );
        let name = format!("text_{i:02}_{}", args[0]);
        insta::assert_snapshot!(name, text);
    }
}
