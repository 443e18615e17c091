//! Integration tests for `digest`: `init`, `preview` and `check` through the real binary.

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
    assert!(run.stdout().contains("fortnight preview"), "{}", run.stdout());
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
    assert!(run.stderr().contains("never overwrites"), "{}", run.stderr());
    assert!(!p.path().join("starter/config.toml").exists());
    assert_eq!(p.read("starter/subscribers.csv"), "email\nmine@example.org\n");
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
    assert!(err.contains("caused by:"), "the cause chain is printed: {err}");
    assert!(!p.path().join("out").exists(), "nothing is written");
}
