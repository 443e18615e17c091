//! Integration tests of the use cases (`ops`): `init`, `preview` and `check` through the real
//! binary.

use crate::support::TestProject;

#[test]
fn init_writes_a_starter_project_and_prints_the_next_steps() {
    let p = TestProject::new();
    let run = p.run(&["init", "starter"]);
    run.success();
    for f in [
        "config.toml",
        "subscribers.csv",
        "articles/welcome.md",
        "templates/digest.html.tera",
        "templates/digest.txt.tera",
        "templates/partials/article.html.tera",
        "templates/partials/footer.txt.tera",
    ] {
        assert!(p.path().join("starter").join(f).is_file(), "{f} missing");
    }
    assert!(
        run.stdout().contains("fortnight preview"),
        "{}",
        run.stdout()
    );
    let config = p.read("starter/config.toml");
    assert!(config.contains("articles_dir = \"articles\""));
    assert!(config.contains("templates_dir = \"templates\""));
    assert!(config.contains("file = \"subscribers.csv\""));
}

#[test]
fn init_refuses_to_overwrite_existing_files_and_writes_nothing() {
    let p = TestProject::new();
    p.write("starter/subscribers.csv", "email\nmine@example.org\n");
    let run = p.run(&["init", "starter"]);
    run.code_is(2);
    assert!(run.stderr().contains("subscribers.csv"), "{}", run.stderr());
    assert!(
        run.stderr().contains("never overwrites"),
        "{}",
        run.stderr()
    );
    assert!(!p.path().join("starter/config.toml").exists());
    assert_eq!(
        p.read("starter/subscribers.csv"),
        "email\nmine@example.org\n"
    );
}

#[test]
fn broken_template_exits_2_naming_file_and_line_and_writes_nothing() {
    let p = TestProject::new();
    p.write(
        "templates/digest.html.tera",
        "<html>\n<body>\n{% for article in articles %}\n{{ article.title }\n{% endfor %}\n</body></html>\n",
    );
    let run = p.run(&["preview", "--out", "out"]);
    run.code_is(2);
    let err = run.stderr();
    assert!(err.contains("syntax error"), "{err}");
    assert!(err.contains("templates/digest.html.tera line 4"), "{err}");
    assert!(
        err.contains("caused by:"),
        "the cause chain is printed: {err}"
    );
    assert!(!p.path().join("out").exists(), "nothing is written");
}

#[test]
fn init_then_issues_preview_and_check_work_in_the_new_folder() {
    let p = TestProject::new();
    p.run(&["init", "starter"]).success();
    let cfg = "starter/config.toml";
    let issues = p.run(&["--config", cfg, "issues"]);
    issues.success();
    assert!(
        issues.stdout().contains("Welcome to My Publication"),
        "{}",
        issues.stdout()
    );
    let preview = p.run(&["--config", cfg, "preview", "--out", "starter/preview"]);
    preview.success();
    assert!(
        preview
            .stdout()
            .contains("subject: My Publication: Issue 1"),
        "{}",
        preview.stdout()
    );
    for f in ["digest.html", "digest.txt", "sample.eml"] {
        assert!(p.path().join("starter/preview").join(f).is_file(), "{f}");
    }
    let check = p.run(&["--config", cfg, "check"]);
    check.success();
    assert!(check.stdout().contains("fast path"), "{}", check.stdout());
}

#[test]
fn preview_writes_the_three_files_and_prints_paths_subject_and_sizes() {
    let p = TestProject::new();
    p.with_sample_articles();
    let run = p.run(&["preview"]);
    run.success();
    let out = run.stdout();
    assert!(out.contains("subject: Test Analyst: issue of"), "{out}");
    assert!(out.contains("preview/digest.html ("), "{out}");
    assert!(out.contains("preview/digest.txt ("), "{out}");
    assert!(out.contains("preview/sample.eml ("), "{out}");
    assert!(out.contains("KB)"), "{out}");
    assert!(
        out.contains("throwaway key"),
        "the throwaway key is announced: {out}"
    );
    let html = p.read("preview/digest.html");
    let text = p.read("preview/digest.txt");
    let eml = p.read("preview/sample.eml");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!text.contains('\r'));
    // The sample message is the real one: headers, both parts, the same unsubscribe link.
    let msg = mail_parser::MessageParser::default()
        .parse(eml.as_bytes())
        .expect("sample.eml parses");
    assert!(msg
        .subject()
        .unwrap_or("")
        .starts_with("Test Analyst: issue of"));
    let body_text = msg.body_text(0).expect("a text part");
    let unsub_line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("https://analyst.example.org/unsubscribe?t="))
        .expect("the unsubscribe URL ends the text part");
    assert!(
        body_text.contains(unsub_line),
        "the message carries the preview's link"
    );
    assert!(eml.contains("List-Unsubscribe:"));
}

#[test]
fn unknown_variable_in_a_template_exits_2_with_an_actionable_message() {
    let p = TestProject::new();
    p.with_sample_articles();
    p.write(
        "templates/digest.txt.tera",
        "{{ publication.name }}\n{% for article in articles %}\n{{ artcle.title }}\n{% endfor %}\n{{ unsubscribe_url }}\n",
    );
    let run = p.run(&["preview", "--out", "out"]);
    run.code_is(2);
    let err = run.stderr();
    assert!(
        err.contains("unknown variable `artcle.title` in templates/digest.txt.tera line 3"),
        "{err}"
    );
    assert!(err.contains("did you mean `article.title`?"), "{err}");
    assert!(!p.path().join("out").exists(), "nothing is written");

    let check = p.run(&["check"]);
    check.code_is(2);
    assert!(
        check
            .stdout()
            .contains("error: templates: unknown variable `artcle.title`"),
        "{}",
        check.stdout()
    );
}

#[test]
fn check_says_when_templates_need_full_rendering() {
    let p = TestProject::new();
    p.with_sample_articles();
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags\nanna@readers-mail.org,Anna,subscribed,2024-01-01,test,\n",
    );
    p.write(
        "templates/digest.txt.tera",
        "Hello {{ subscriber.name | wordcount }}\n{{ unsubscribe_url }}\n",
    );
    let run = p.run(&["check"]);
    run.success();
    assert!(
        run.stdout()
            .contains("full render for every copy (slower), because the templates transform subscriber data: `subscriber.name` goes through the filter `wordcount` in digest.txt.tera"),
        "{}",
        run.stdout()
    );
}
