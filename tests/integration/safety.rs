//! Integration tests for issue 13, the editor's safety net: the mistakes an editor makes
//! (a future-dated article, a missing list, a misnamed template, a relative link, …) are
//! caught or handled the way the README says, through the real binary.

use crate::support::TestProject;

/// The date the commands take as today in these tests.
const TODAY: &str = "2026-03-10";

fn article(title: &str, date: &str, issue: Option<&str>) -> String {
    let issue = issue.map(|i| format!("issue: {i}\n")).unwrap_or_default();
    format!(
        "---\ntitle: \"{title}\"\nauthor: Test Author\ndate: {date}\n{issue}section: Field Reports\n---\n\n\
         The ferry between Baku and Aktau runs again after the autumn storms.\n"
    )
}

fn list_csv(n: usize) -> String {
    let mut s = String::from("email,name,status,since,source,tags\n");
    for i in 0..n {
        s.push_str(&format!(
            "reader{i}@readers-mail.org,Reader {i},subscribed,2024-01-01,test,\n"
        ));
    }
    s
}

/// A project with the issue of 2026-03-04 (current on [`TODAY`]) and `extra` articles.
fn project_with(extra: &[(&str, String)]) -> TestProject {
    let p = TestProject::new();
    p.write(
        "articles/current.md",
        article("Ferries Return", "2026-03-02", Some("2026-03-04")),
    );
    for (name, text) in extra {
        p.write(&format!("articles/{name}"), text);
    }
    p.write("subscribers.csv", list_csv(3));
    p
}

fn run_today(p: &TestProject, args: &[&str]) -> crate::support::Run {
    let out = p
        .cmd(args)
        .env("FORTNIGHT_TODAY", TODAY)
        .output()
        .expect("run fortnight");
    crate::support::Run { out }
}

#[test]
fn an_article_dated_ten_days_ahead_does_not_hijack_the_dry_run() {
    // today + 10 = 2026-03-20, on the grid of 2026-03-04: the issue of 2026-04-01.
    let p = project_with(&[("early.md", article("Prepared Early", "2026-03-20", None))]);
    let run = run_today(&p, &["send", "--dry-run"]);
    run.success();
    assert!(
        p.path().join("outbox/2026-03-04").is_dir(),
        "the current issue was written"
    );
    assert!(
        !p.path().join("outbox/2026-04-01").exists(),
        "the upcoming issue was not"
    );
    let out = run.stdout();
    assert!(out.contains("Upcoming"), "{out}");
    assert!(out.contains("2026-04-01"), "{out}");

    // `--issue DATE` sends the upcoming one.
    run_today(&p, &["send", "--dry-run", "--issue", "2026-04-01"]).success();
    assert!(p.path().join("outbox/2026-04-01").is_dir());
}

#[test]
fn issues_and_preview_mark_the_current_and_the_upcoming_issues() {
    let p = project_with(&[("early.md", article("Prepared Early", "2026-03-20", None))]);
    let issues = run_today(&p, &["issues"]);
    issues.success();
    let out = issues.stdout();
    assert!(out.contains("2026-04-01 (upcoming)  1 article\n"), "{out}");
    assert!(out.contains("2026-03-04 (current)  1 article\n"), "{out}");
    let preview = run_today(&p, &["preview"]);
    preview.success();
    let out = preview.stdout();
    assert!(out.contains("issue:   2026-03-04"), "{out}");
    assert!(out.contains("upcoming: 2026-04-01"), "{out}");
}

#[test]
fn check_notes_upcoming_issues_and_warns_about_one_more_than_a_cadence_away() {
    let p = project_with(&[
        ("next.md", article("Next Time", "2026-03-12", None)),
        ("typo.md", article("Year Typo", "2027-03-16", None)),
    ]);
    let run = run_today(&p, &["check"]);
    let out = run.stdout();
    assert!(
        out.contains("ok: articles: the current issue is 2026-03-04 with 1 article\n"),
        "{out}"
    );
    assert!(
        out.contains("note: articles: upcoming issue 2026-03-18 (1 article)"),
        "{out}"
    );
    let far: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("more than one cadence"))
        .collect();
    assert_eq!(far.len(), 1, "{out}");
    assert!(far[0].contains("typo.md"), "{}", far[0]);
    assert!(!far[0].contains("next.md"), "{}", far[0]);
}

#[test]
fn with_every_issue_in_the_future_send_names_them_and_sends_nothing() {
    let p = TestProject::new();
    p.write(
        "articles/early.md",
        article("Prepared Early", "2026-03-20", None),
    );
    p.write("subscribers.csv", list_csv(1));
    let run = run_today(&p, &["send", "--dry-run"]);
    run.code_is(2);
    assert!(
        run.stderr().contains("dated after today (2026-03-10)"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("--issue"), "{}", run.stderr());
    assert!(!p.path().join("outbox").exists());
    let bad = p
        .cmd(&["issues"])
        .env("FORTNIGHT_TODAY", "tomorrow")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("FORTNIGHT_TODAY"));
}

#[test]
fn a_missing_list_is_an_error_everywhere() {
    let mut p = project_with(&[]);
    p.config_replace(&crate::support::BASE_CONFIG.replace("subscribers.csv", "subscribrs.csv"));
    for args in [
        &["send", "--dry-run"][..],
        &["check"],
        &["subscribers", "stats"],
        &["subscribers", "export"],
        &["unsubscribe", "reader1@readers-mail.org"],
    ] {
        let run = run_today(&p, args);
        run.code_is(2);
        let all = run.stdout() + &run.stderr();
        assert!(all.contains("subscribrs.csv"), "{args:?}: {all}");
        assert!(all.contains("does not exist"), "{args:?}: {all}");
    }
    assert!(!p.path().join("outbox").exists());
    assert!(
        !p.path().join("subscribrs.csv").exists(),
        "nothing was created"
    );
}

#[test]
fn an_empty_list_or_one_without_subscribers_is_a_check_warning_and_a_failed_send() {
    for list in [
        "email,name,status,since,source,tags\n",
        "email,name,status,since,source,tags\ngone@readers-mail.org,Gone,unsubscribed,2024-01-01,test,\n",
    ] {
        let p = project_with(&[]);
        p.write("subscribers.csv", list);
        let check = run_today(&p, &["check"]);
        let out = check.stdout();
        assert!(
            out.lines().any(|l| l.starts_with("warning: subscriber list")
                && l.contains("0 subscribed")
                && l.contains("send nothing")),
            "{out}"
        );
        let send = run_today(&p, &["send", "--dry-run"]);
        send.code_is(1);
        assert!(
            send.stdout().contains("has no subscribed address"),
            "{}",
            send.stdout()
        );
    }
}

/// The built-in text template with `line` added at its top.
fn text_template_with(line: &str) -> String {
    let builtin = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/digest.txt.tera"),
    )
    .unwrap();
    format!("{line}\n{builtin}")
}

/// The text part and subject of the dry-run message for `file_part` (e.g. `noname_at`).
fn dry_run_message(p: &TestProject, issue: &str, file_part: &str) -> (String, String) {
    let dir = p.path().join("outbox").join(issue);
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.to_string_lossy().contains(file_part))
        .unwrap_or_else(|| panic!("no message for {file_part} in {}", dir.display()));
    let bytes = std::fs::read(file).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    (
        msg.subject().unwrap_or("").to_string(),
        msg.body_text(0).unwrap().into_owned(),
    )
}

#[test]
fn default_for_a_subscriber_without_a_name_renders_the_fallback_in_the_real_message() {
    let mut p = project_with(&[]);
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags,city\n\
         anna@readers-mail.org,anna bekova,subscribed,2024-01-01,test,,ust-kut\n\
         noname@readers-mail.org,,subscribed,2024-01-01,test,,\n",
    );
    p.write(
        "templates/digest.txt.tera",
        text_template_with(
            "Dear {{ subscriber.name | default(value=\"reader\") }}, {{ subscriber.name | default(value=\"friend\") | title }} of {{ subscriber.attrs.city | replace(from=\"-\", to=\" \") | upper | default(value=\"nowhere\") }}, {{ subscriber.name | truncate(length=4) }}.",
        ),
    );
    p.config_append("[digest]\nsubject = \"{{ subscriber.name | default(value='Reader') | upper }}: {{ issue.title }}\"\n");
    let check = run_today(&p, &["check"]);
    check.success();
    assert!(
        check.stdout().contains("personalisation: fast path"),
        "{}",
        check.stdout()
    );
    run_today(&p, &["send", "--dry-run"]).success();
    let (subject, text) = dry_run_message(&p, "2026-03-04", "noname_at");
    assert!(text.contains("Dear reader, Friend of nowhere, ."), "{text}");
    assert!(subject.starts_with("READER: "), "{subject}");
    let (subject, text) = dry_run_message(&p, "2026-03-04", "anna_at");
    assert!(
        text.contains("Dear anna bekova, Anna Bekova of UST KUT, anna…."),
        "{text}"
    );
    assert!(subject.starts_with("ANNA BEKOVA: "), "{subject}");
}

#[test]
fn a_condition_on_subscriber_data_renders_every_copy_in_full_with_a_note_not_an_error() {
    let p = project_with(&[]);
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags\n\
         anna@readers-mail.org,Anna,subscribed,2024-01-01,test,\n\
         noname@readers-mail.org,,subscribed,2024-01-01,test,\n",
    );
    p.write(
        "templates/digest.txt.tera",
        text_template_with(
            "{% if subscriber.name %}Dear {{ subscriber.name | lower }},{% else %}Dear reader,{% endif %}",
        ),
    );
    let check = run_today(&p, &["check"]);
    check.success();
    assert!(
        check
            .stdout()
            .contains("note: personalisation: full render for every copy"),
        "{}",
        check.stdout()
    );
    run_today(&p, &["send", "--dry-run"]).success();
    assert!(dry_run_message(&p, "2026-03-04", "noname_at")
        .1
        .contains("Dear reader,"));
    assert!(dry_run_message(&p, "2026-03-04", "anna_at")
        .1
        .contains("Dear anna,"));
}

#[test]
fn cards_show_the_summary_else_the_lead_without_a_dangling_colon() {
    let p = project_with(&[]);
    p.write(
        "articles/current.md",
        "---\ntitle: \"Ferries Return\"\nauthor: Test Author\ndate: 2026-03-02\nissue: 2026-03-04\n\
         section: Field Reports\nsummary: The Baku–Aktau ferry is back, and so are the queues.\n---\n\n\
         The ferry between Baku and Aktau runs again after the autumn storms.\n",
    );
    p.write(
        "articles/quote.md",
        "---\ntitle: \"Minister Speaks\"\nauthor: Test Author\ndate: 2026-03-03\nissue: 2026-03-04\n\
         section: Field Reports\n---\n\n\
         The port reopened on Monday. The minister said:\n\n\"We are open for business.\"\n",
    );
    run_today(&p, &["send", "--dry-run"]).success();
    let (_, text) = dry_run_message(&p, "2026-03-04", "reader0_at");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("The Baku–Aktau ferry is back, and so are the queues."),
        "{text}"
    );
    assert!(
        !flat.contains("runs again after the autumn storms"),
        "{text}"
    );
    assert!(
        flat.contains("The port reopened on Monday. Read: [2]"),
        "{text}"
    );
    assert!(!flat.contains("The minister said:"), "{text}");
    let html = std::fs::read_to_string(p.path().join("outbox/2026-03-04/digest.html")).unwrap();
    assert!(html.contains("The Baku–Aktau ferry is back, and so are the queues."));
    assert!(html.contains(">The port reopened on Monday.</p>"), "{html}");
    assert!(!html.contains("The minister said:"), "{html}");
}

#[test]
fn the_postal_address_hint_names_a_variable_that_exists() {
    let p = project_with(&[]);
    p.write("templates/digest.txt.tera", "{{ unsubscribe_url }}\n");
    let out = run_today(&p, &["check"]).stdout();
    let hint = out
        .lines()
        .find(|l| l.contains("postal address is missing from the text part"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(hint.contains("{{ publication.postal_address }}"), "{hint}");
    // What it names renders the configured address.
    p.write(
        "templates/digest.txt.tera",
        "{{ publication.postal_address }}\n{{ unsubscribe_url }}\n",
    );
    let out = run_today(&p, &["check"]).stdout();
    assert!(!out.contains("postal address is missing"), "{out}");
}

#[test]
fn relative_markdown_links_and_images_resolve_against_the_articles_url() {
    let p = project_with(&[]);
    p.write(
        "articles/2002/summary-carrier.md",
        "---\ntitle: \"Summary Carrier\"\nauthor: Test Author\ndate: 2026-03-03\nissue: 2026-03-04\n\
         section: Field Reports\n---\n\n\
         See [the earlier piece](earlier-piece) and [the index](/archive#2002).\n\n\
         ![Chart](images/chart.png)\n\n\
         A [broken one](<//[oops>) and [a full one](https://example.org/x).\n",
    );
    p.write(
        "articles/elsewhere.md",
        "---\ntitle: \"Elsewhere\"\nauthor: Test Author\ndate: 2026-03-03\nissue: 2026-03-04\n\
         url: https://other.example.net/notes/piece.html\nsection: Field Reports\n---\n\n\
         Compare [the budget](budget.html).\n",
    );
    let issues = run_today(&p, &["issues", "--json"]);
    issues.success();
    let json: serde_json::Value = serde_json::from_str(&issues.stdout()).unwrap();
    let body = |file: &str| -> String {
        json[0]["articles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["file"] == file)
            .unwrap_or_else(|| panic!("{file} missing"))["body_html"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let carrier = body("2002/summary-carrier.md");
    assert!(
        carrier.contains("href=\"https://analyst.example.org/2002/earlier-piece\""),
        "{carrier}"
    );
    assert!(
        carrier.contains("href=\"https://analyst.example.org/archive#2002\""),
        "{carrier}"
    );
    assert!(
        carrier.contains("src=\"https://analyst.example.org/2002/images/chart.png\""),
        "{carrier}"
    );
    assert!(
        carrier.contains("href=\"https://example.org/x\""),
        "{carrier}"
    );
    assert!(body("elsewhere.md").contains("href=\"https://other.example.net/notes/budget.html\""));
    // The one that cannot be resolved: a warning naming the file and line.
    let warn = issues.stderr();
    assert!(
        warn.lines()
            .any(|l| l.contains("summary-carrier.md` line 13") && l.contains("`//[oops`")),
        "{warn}"
    );
    assert_eq!(warn.matches("cannot be resolved").count(), 1, "{warn}");

    // And the links survive into the sent message.
    p.write(
        "config.toml",
        crate::support::BASE_CONFIG.to_string() + "[digest]\nbody = \"full\"\n",
    );
    run_today(&p, &["send", "--dry-run"]).success();
    let html = std::fs::read_to_string(p.path().join("outbox/2026-03-04/digest.html")).unwrap();
    assert!(
        html.contains("href=\"https://analyst.example.org/2002/earlier-piece\""),
        "{html}"
    );
}

#[test]
fn a_repeated_lead_on_the_next_line_is_kept_once() {
    let p = project_with(&[]);
    p.write(
        "articles/pipeline.txt",
        "Georgia Weighs the Cost of Guarding the Pipeline Corridor\n\n\
         Wednesday, 4 March 2026\n\n\
         Published in Field Reports\n\n\
         By Nino Kharadze (3/4/2026 issue of the CACI Analyst)\n\n\
         BACKGROUND: The construction of the Baku-Tbilisi-Ceyhan pipeline has begun in earnest.\n\
         BACKGROUND: The construction of the Baku-Tbilisi-Ceyhan pipeline has begun in earnest. The survey is done.\n\n\
         A second paragraph.\n\n\
         Read 12 times\n",
    );
    let issues = run_today(&p, &["issues", "--json"]);
    issues.success();
    let json: serde_json::Value = serde_json::from_str(&issues.stdout()).unwrap();
    let a = json[0]["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file"] == "pipeline.txt")
        .unwrap();
    assert_eq!(
        a["lead"],
        "BACKGROUND: The construction of the Baku-Tbilisi-Ceyhan pipeline has begun in earnest. The survey is done."
    );
    assert_eq!(a["paragraphs"].as_array().unwrap().len(), 2, "{a}");
}

#[test]
fn check_warns_about_no_smtp_a_misnamed_override_and_a_misspelt_section() {
    let p = project_with(&[(
        "newz.md",
        article("Misfiled", "2026-03-03", Some("2026-03-04"))
            .replace("Field Reports", "Feild Reports"),
    )]);
    p.write("templates/digst.txt.tera", "{{ unsubscribe_url }}\n");
    let run = run_today(&p, &["check"]);
    run.success();
    let out = run.stdout();
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning:")).collect();
    let has = |needle: &[&str]| {
        warnings
            .iter()
            .any(|w| needle.iter().all(|n| w.contains(n)))
    };
    assert!(
        has(&["no [smtp] section", "ready to preview, not to send"]),
        "{out}"
    );
    assert!(
        has(&[
            "digst.txt.tera` is not used",
            "did you mean `digest.txt.tera`?"
        ]),
        "{out}"
    );
    assert!(
        !out.contains("(customised)"),
        "a misnamed file is not a customisation: {out}"
    );
    assert!(
        has(&[
            "newz.md",
            "`Feild Reports` is not in [publication] sections",
            "did you mean `Field Reports`?"
        ]),
        "{out}"
    );
    // Each finding once.
    for w in &warnings {
        assert_eq!(out.matches(w).count(), 1, "{w} printed twice:\n{out}");
    }
}

#[test]
fn a_configured_templates_folder_that_does_not_exist_is_an_error() {
    let mut p = project_with(&[]);
    p.config_append("[digest]\ntemplates_dir = \"my-templates\"\n");
    let run = run_today(&p, &["check"]);
    run.code_is(2);
    assert!(
        run.stdout()
            .lines()
            .any(|l| l.starts_with("error: templates:")
                && l.contains("my-templates")
                && l.contains("does not exist")),
        "{}",
        run.stdout()
    );
    let send = run_today(&p, &["send", "--dry-run"]);
    send.code_is(2);
    assert!(send.stderr().contains("my-templates"), "{}", send.stderr());
}

#[test]
fn imports_keep_valid_addresses_name_every_change_once_and_normalise_since() {
    let p = project_with(&[]);
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags\n\
         stays@readers-mail.org,Stays,subscribed,2024-01-01,test,\n\
         left.us@readers-mail.org,,unsubscribed,2024-01-01,test,\n",
    );
    p.write(
        "buttondown.csv",
        "id,email,notes,metadata,tags,referrer_url,creation_date,subscriber_type,unsubscription_date\n\
         1,bd.reader@readers-mail.org,,{'name': 'BD Reader'},,,2023-05-06,regular,\n\
         2,stays@readers-mail.org,,,,,2023-01-01,unsubscribed,2024-02-02\n\
         3,left.us@readers-mail.org,,,,,2023-01-01,regular,\n\
         4,left.us@readers-mail.org,,,,,2023-01-01,regular,\n",
    );
    p.write(
        "mailchimp.csv",
        "Email Address,First Name,Last Name,OPTIN_TIME,NOTES,TAGS\n\
         mc@readers-mail.org,Q,R,2021-03-02 10:11:12,met in Baku,\"\"\"Board\"\"\"\n\
         \"quoted\"\"local\"\"@readers-mail.org\",,,,,\n",
    );
    let run = run_today(
        &p,
        &["subscribers", "import", "buttondown.csv", "mailchimp.csv"],
    );
    let out = run.stdout();
    run.code_is(1);
    // An invalid address is printed as written.
    assert!(
        out.contains("`quoted\"local\"@readers-mail.org`: quoted local parts"),
        "{out}"
    );
    // The unreadable metadata cell costs the cell, not the reader.
    assert!(
        out.contains("`bd.reader@readers-mail.org`: the `metadata` cell is not valid JSON"),
        "{out}"
    );
    let list = p.read("subscribers.csv");
    assert!(
        list.contains("bd.reader@readers-mail.org,,subscribed,2023-05-06T00:00:00Z,"),
        "{list}"
    );
    // The address that left is named (and counted) as changed.
    assert!(out.contains("updated:     1\n"), "{out}");
    assert!(
        out.contains("`stays@readers-mail.org`: subscribed → unsubscribed"),
        "{out}"
    );
    // left.us is named once, under one heading.
    assert_eq!(out.matches("left.us@readers-mail.org").count(), 1, "{out}");
    // Mailchimp: NOTES and tags kept, since in RFC 3339, the address as written.
    assert!(
        list.contains("mc@readers-mail.org,Q R,subscribed,2021-03-02T10:11:12Z,import:mailchimp,Board,met in Baku"),
        "{list}"
    );
    assert!(list.lines().next().unwrap().ends_with(",notes"), "{list}");
    assert!(!out.contains("\\\""), "no Rust escapes in: {out}");
}

#[test]
fn a_mail_to_the_messages_own_mailto_address_unsubscribes_that_reader() {
    let key = crate::support::TEST_UNSUBSCRIBE_KEY;
    let p = project_with(&[]);
    let dry = p
        .cmd(&["send", "--dry-run"])
        .env("FORTNIGHT_TODAY", TODAY)
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", key)
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0));
    let dir = p.path().join("outbox/2026-03-04");
    let eml = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.to_string_lossy().contains("reader1_at"))
        .unwrap();
    let text = std::fs::read_to_string(eml).unwrap().replace("\r\n ", " ");
    let header = text
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe:"))
        .unwrap();
    let start = header.find("<mailto:").unwrap() + "<mailto:".len();
    let address = &header[start..start + header[start..].find('?').unwrap()];
    assert!(address.starts_with("unsubscribe+"), "{header}");
    assert!(address.split('@').next().unwrap().len() <= 64);
    assert_eq!(address, address.to_lowercase());
    let mbox = format!(
        "From reader1@readers-mail.org Thu Mar  5 08:00:00 2026\n\
         From: Reader 1 <reader1@readers-mail.org>\nTo: {}\nSubject: stop\n\nplease\n\n\
         From x@readers-mail.org Thu Mar  5 08:00:00 2026\n\
         From: x@readers-mail.org\nTo: unsubscribe+aaaabbbbcccc@analyst.example.org\nSubject: stop\n\nplease\n",
        address.to_uppercase()
    );
    p.write("requests.mbox", mbox);
    let run = p
        .cmd(&["bounces", "requests.mbox"])
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", key)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(0), "{out}");
    let list = p.read("subscribers.csv");
    assert!(
        list.contains("reader1@readers-mail.org,Reader 1,unsubscribed"),
        "{list}"
    );
    assert!(
        list.contains("reader0@readers-mail.org,Reader 0,subscribed"),
        "{list}"
    );
    assert!(out.contains("unsubscribe requests by mail:"), "{out}");
    assert!(out.contains("names no subscriber of this list"), "{out}");
}
