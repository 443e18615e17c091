//! Hostile input (issue 12): templates, front matter, files and requests an attacker or a
//! mistake can produce never crash fortnight, hang it, leak a secret or write through a link.
//! Every test runs the real binary and asserts its exit code (2, never a signal).

use std::os::unix::process::ExitStatusExt;

use crate::support::{Run, TestProject, TEST_UNSUBSCRIBE_KEY};

const ARTICLE: &str = "---\ntitle: \"Ferries Return to the Caspian\"\nauthor: Test Author\n\
    date: 2026-11-02\nissue: 2026-11-04\nsection: Field Reports\n---\n\n\
    The ferry between Baku and Aktau runs again after the autumn storms.\n";

fn project() -> TestProject {
    let p = TestProject::new();
    p.write("articles/ferries.md", ARTICLE);
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags\nann@readers-mail.org,Ann,subscribed,2024-01-01,test,\n",
    );
    p
}

fn run_with_key(p: &TestProject, args: &[&str]) -> Run {
    let out = p
        .cmd(args)
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .output()
        .expect("run fortnight");
    Run { out }
}

/// Exit 2 (not a signal), with stderr naming `needle`.
#[track_caller]
fn refused(run: &Run, needle: &str) {
    assert_eq!(
        run.out.status.signal(),
        None,
        "killed by a signal\nstderr:\n{}",
        run.stderr()
    );
    run.code_is(2);
    let all = run.stdout() + &run.stderr();
    assert!(all.contains(needle), "{all}");
}

#[test]
fn recursive_and_deeply_nested_templates_exit_2_with_file_and_line() {
    let deep = format!(
        "{}x{}\n{{{{ unsubscribe_url }}}}\n",
        "{% if true %}\n".repeat(3000),
        "{% endif %}".repeat(3000)
    );
    let cases: [(&str, String, &str); 4] = [
        (
            "partials/footer.txt.tera",
            "before\n{% include \"partials/footer.txt.tera\" %}\n{{ unsubscribe_url }}\n".into(),
            "templates/partials/footer.txt.tera line 2",
        ),
        (
            "digest.txt.tera",
            "{% macro m(n) %}\n{{ self::m(n=n) }}\n{% endmacro m %}\n{{ self::m(n=1) }}\n{{ unsubscribe_url }}\n".into(),
            "templates/digest.txt.tera line 2",
        ),
        (
            "digest.txt.tera",
            deep,
            "templates/digest.txt.tera line 33",
        ),
        (
            "digest.txt.tera",
            format!("{{{{ {}1{} }}}}\n{{{{ unsubscribe_url }}}}\n", "(".repeat(5000), ")".repeat(5000)),
            "templates/digest.txt.tera line 1",
        ),
    ];
    for (file, text, needle) in cases {
        let p = project();
        p.write(&format!("templates/{file}"), &text);
        refused(&run_with_key(&p, &["check"]), needle);
        refused(&run_with_key(&p, &["preview", "--out", "out"]), needle);
        assert!(!p.path().join("out").exists(), "preview wrote files");
        refused(
            &run_with_key(&p, &["send", "--dry-run", "--out", "files"]),
            needle,
        );
        assert!(!p.path().join("files").exists(), "the dry-run wrote files");
    }
}

#[test]
fn get_env_in_any_template_fails_check_naming_that_template() {
    let p = project();
    p.write(
        "templates/partials/footer.txt.tera",
        "{{ unsubscribe_url }}\n{% if false %}\n{{ get_env(name=\"FORTNIGHT_UNSUBSCRIBE_KEY\") }}\n{% endif %}\n",
    );
    let run = run_with_key(&p, &["check"]);
    refused(&run, "templates/partials/footer.txt.tera line 3");
    assert!(
        run.stdout().contains("`get_env` is not available"),
        "{}",
        run.stdout()
    );
    assert!(!run.stderr().contains(TEST_UNSUBSCRIBE_KEY));
    assert!(!run.stdout().contains(TEST_UNSUBSCRIBE_KEY));
}

#[test]
fn a_relay_echoing_the_password_in_its_reply_never_gets_it_printed() {
    use crate::support::smtp::{Policy, TestSmtpServer};
    let pass = "hunter2-Secret";
    // base64("\0digest\0hunter2-Secret"), as AUTH PLAIN sends it.
    let plain = "AGRpZ2VzdABodW50ZXIyLVNlY3JldA==";
    let mut policy = Policy::default().auth("digest", "right");
    policy.auth_reply = Some(format!(
        "535 5.7.8 Bad credentials {pass} (you sent {plain})"
    ));
    let server = TestSmtpServer::start(policy);
    let mut p = project();
    p.config_append(&format!("{}username = \"digest\"\n", server.smtp_section()));
    let out = p
        .cmd(&["send", "--yes"])
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .env("FORTNIGHT_SMTP_PASSWORD", pass)
        .output()
        .unwrap();
    let run = Run { out };
    refused(&run, "535");
    let all = run.stdout() + &run.stderr();
    assert!(all.contains("<password>"), "{all}");
    assert!(!all.contains(pass) && !all.contains(plain), "{all}");
    let journal = std::fs::read(p.path().join(".fortnight/journal.sqlite")).unwrap_or_default();
    let journal = String::from_utf8_lossy(&journal);
    assert!(!journal.contains(pass) && !journal.contains(plain));
}

fn mkfifo(path: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

/// Runs with a deadline: a hang fails the test instead of blocking it.
fn run_within(p: &TestProject, args: &[&str], secs: u64) -> Run {
    let mut child = p
        .cmd(args)
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fortnight");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("`fortnight {}` hung", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Run {
        out: child.wait_with_output().expect("output"),
    }
}

#[test]
fn fifos_given_or_found_are_skipped_with_a_warning_not_waited_on() {
    let p = project();
    mkfifo(&p.path().join("bounces.mbox"));
    mkfifo(&p.path().join("articles/pipe.md"));
    std::fs::create_dir_all(p.path().join("maildir/new")).unwrap();
    mkfifo(&p.path().join("maildir/new/1.eml"));

    let run = run_within(&p, &["bounces", "bounces.mbox", "maildir"], 10);
    let all = run.stdout() + &run.stderr();
    assert!(run.code() <= 2, "{all}");
    assert!(
        all.contains("bounces.mbox`: not a regular file but a FIFO"),
        "{all}"
    );
    assert!(
        all.contains("1.eml`: not a regular file but a FIFO"),
        "{all}"
    );

    let run = run_within(&p, &["issues"], 10);
    run.success();
    assert!(
        run.stderr()
            .contains("pipe.md`: not a regular file but a FIFO"),
        "{}",
        run.stderr()
    );
    run_within(&p, &["check"], 10);

    mkfifo(&p.path().join("pipe.toml"));
    let run = run_within(&p, &["--config", "pipe.toml", "check"], 10);
    refused(&run, "not a regular file");
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    mkfifo(&p.path().join("templates/digest.txt.tera"));
    refused(&run_within(&p, &["check"], 10), "not a regular file");
    std::fs::remove_file(p.path().join("templates/digest.txt.tera")).unwrap();

    // Key and certificate files named by the config.
    let mut p = project();
    mkfifo(&p.path().join("key.pem"));
    p.config_append(
        "[dkim]\ndomain = \"analyst.example.org\"\nselector = \"s1\"\nprivate_key = \"key.pem\"\n",
    );
    refused(
        &run_within(&p, &["send", "--dry-run", "--out", "files"], 10),
        "not a regular file",
    );
}

#[test]
fn a_2_gb_sparse_article_is_skipped_in_under_a_second_without_reading_it() {
    let p = project();
    let f = std::fs::File::create(p.path().join("articles/huge.md")).unwrap();
    f.set_len(2 << 30).unwrap();
    let start = std::time::Instant::now();
    let run = run_within(&p, &["issues"], 10);
    let took = start.elapsed();
    run.success();
    assert!(
        run.stderr().contains("huge.md`: it is larger than 8 MB"),
        "{}",
        run.stderr()
    );
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn symlinks_planted_in_an_output_folder_are_refused_and_their_targets_untouched() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    for (args, out) in [
        (vec!["preview", "--out", "out"], "out"),
        (vec!["send", "--dry-run", "--out", "out"], "out"),
    ] {
        for link in [
            "digest.html",
            "digest.txt",
            "manifest.jsonl",
            "000001-ann-readers-mail.org.eml",
            "sample.eml",
        ] {
            let p = project();
            let victim = p.write("victim.txt", "precious\n");
            std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::create_dir_all(p.path().join(out)).unwrap();
            symlink(&victim, p.path().join(out).join(link)).unwrap();
            symlink(
                p.path().join("dangling-target"),
                p.path().join(out).join("zz-dangling"),
            )
            .unwrap();
            let run = run_with_key(&p, &args);
            refused(&run, "is a symbolic link");
            assert_eq!(p.read("victim.txt"), "precious\n", "{args:?} {link}");
            assert_eq!(mode(&victim), 0o644, "{args:?} {link}");
            assert!(!p.path().join("dangling-target").exists());
        }
    }
}

#[test]
fn output_folders_and_the_journal_are_private_and_loose_modes_are_tightened() {
    use crate::support::smtp::{Policy, TestSmtpServer};
    use std::os::unix::fs::PermissionsExt;
    let loose = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let mut p = project();
    for out in ["pv", "dry"] {
        std::fs::create_dir_all(p.path().join(out)).unwrap();
        loose(&p.path().join(out), 0o777);
    }
    let run = run_with_key(&p, &["preview", "--out", "pv"]);
    run.success();
    assert!(run.stdout().contains("made it private"), "{}", run.stdout());
    run_with_key(&p, &["send", "--dry-run", "--out", "dry"]).success();
    for dir in ["pv", "dry", "outbox"] {
        let dir = p.path().join(dir);
        if !dir.exists() {
            continue;
        }
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap().path();
            assert_eq!(mode(&e), 0o600, "{}", e.display());
        }
    }

    // A real send: .fortnight/ and the journal, even when an older run left them loose.
    let server = TestSmtpServer::start(Policy::default());
    p.config_append(&server.smtp_section());
    std::fs::create_dir_all(p.path().join(".fortnight")).unwrap();
    loose(&p.path().join(".fortnight"), 0o755);
    run_with_key(&p, &["send", "--yes"]).success();
    assert_eq!(server.accepted().len(), 1);
    assert_eq!(mode(&p.path().join(".fortnight")), 0o700);
    for e in std::fs::read_dir(p.path().join(".fortnight")).unwrap() {
        let e = e.unwrap().path();
        assert_eq!(mode(&e), 0o600, "{}", e.display());
    }
    loose(&p.path().join(".fortnight/journal.sqlite"), 0o644);
    run_with_key(&p, &["send", "--yes"]).success();
    assert_eq!(mode(&p.path().join(".fortnight/journal.sqlite")), 0o600);
}

#[test]
fn init_writes_the_list_owner_only() {
    let p = TestProject::new();
    p.run(&["init", "starter"]).success();
    assert_eq!(mode(&p.path().join("starter/subscribers.csv")), 0o600);
}

#[test]
fn check_refuses_nonsense_config_values_with_line_key_and_fix() {
    let base = crate::support::BASE_CONFIG;
    let with = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    let cases: Vec<(String, &str)> = vec![
        (
            with("?t={token}\"", "?t={token}&u={token}\""),
            "[unsubscribe] url must hold `{token}` exactly once",
        ),
        (
            with("https://analyst.example.org\"", "javascript:alert(1)\""),
            "[publication] base_url must be an http or https URL",
        ),
        (
            format!("{base}\n[serve]\nmax_connections = 0\n"),
            "[serve] max_connections is 0, must be 1 to 100000",
        ),
        (
            format!("{base}\n[serve]\nlisten = \"nonsense\"\n"),
            "[serve] listen must be HOST:PORT",
        ),
        (
            format!("{base}\n[serve]\nclient_ip_header = \"X Forwarded\"\n"),
            "[serve] client_ip_header must be an HTTP header name",
        ),
        (
            format!("{base}\n[smtp]\nhost = \"\"\nport = 0\n"),
            "[smtp] port must be 1 to 65535",
        ),
        (
            format!("{base}\n[throttle]\nconcurrency = 1000000\nretries = 4294967295\n"),
            "[throttle] retries is 4294967295, must be 0 to 100",
        ),
    ];
    for (config, needle) in cases {
        let mut p = project();
        p.config_replace(&config);
        let run = run_with_key(&p, &["check"]);
        refused(&run, needle);
        let err = run.stderr();
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("line "), "{err}");
        assert!(err.contains("; write"), "{err}");
    }
    // Control characters from the file are shown escaped, never sent to the terminal.
    let mut p = project();
    p.config_replace(&with(
        "https://analyst.example.org\"",
        "https://analyst\\u001b[31m.example\\r.org\"",
    ));
    let run = run_with_key(&p, &["check"]);
    refused(&run, "\\u{1b}[31m");
    assert!(!run.stderr().contains('\u{1b}') && !run.stderr().contains('\r'));
}
