//! Tests of the use cases on the fixed sample issue (fixed clock, no network).

use super::check::check_report;
use super::init::init_dir;
use super::preview::{preview_issue, PLACEHOLDER_UNSUBSCRIBE};
use crate::config::Config;
use crate::digest::fixture::{self, fixture_template_with, project};
use crate::digest::{templates, Digest};
use crate::message::Severity;
use crate::subscribers::SubscriberList;

const URL: &str = "https://analyst.example.org/unsubscribe?t=AQJrMQ-sample&list=x";

#[test]
fn preview_writes_html_and_text_and_nothing_when_a_template_is_broken() {
    let out = tempfile::tempdir().unwrap();
    let sample = fixture::subscriber("reader@example.org", "Sample Reader");
    let config = fixture::config();
    let p = preview_issue(
        &config,
        &fixture::issue(3),
        &out.path().join("p"),
        fixture::now(),
        &sample,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&p.html_path).unwrap(),
        p.rendered.html
    );
    assert_eq!(
        std::fs::read_to_string(&p.text_path).unwrap(),
        p.rendered.text
    );
    assert!(p
        .rendered
        .text
        .contains("https://analyst.example.org/unsubscribe?t="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p.html_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "preview files hold tokens: owner-only");
    }

    let (_dir, broken) = project(&[("digest.html.tera", "{% if %}")], "");
    let target = out.path().join("q");
    assert!(preview_issue(
        &broken,
        &fixture::issue(3),
        &target,
        fixture::now(),
        &sample
    )
    .is_err());
    assert!(!target.exists(), "nothing is written for a broken template");
}

#[test]
fn preview_without_unsubscribe_config_uses_a_placeholder_and_says_so() {
    let out = tempfile::tempdir().unwrap();
    let mut config = fixture::config();
    config.unsubscribe = None;
    let sample = fixture::subscriber("reader@example.org", "Sample Reader");
    let p = preview_issue(
        &config,
        &fixture::issue(1),
        out.path(),
        fixture::now(),
        &sample,
    )
    .unwrap();
    assert!(p.rendered.text.contains(PLACEHOLDER_UNSUBSCRIBE));
    assert!(p.notes.iter().any(|n| n.contains("placeholder")));
}

fn empty_list() -> SubscriberList {
    SubscriberList::default()
}

#[test]
fn check_passes_on_the_sample_and_says_which_path_applies() {
    let config = fixture::config();
    let issue = fixture::issue(3);
    let list = empty_list();
    let r = check_report(&config, Ok(&issue), Ok(&list), fixture::now());
    assert_eq!(r.errors(), 0, "{:#?}", r.lines);
    assert!(r.has(Severity::Ok, "fast path"));
    assert!(r.has(Severity::Ok, "the default templates render"));
    assert!(r.has(Severity::Ok, "visible unsubscribe link"));
    assert!(r.has(Severity::Ok, "text part shows the unsubscribe URL"));
    assert!(r.has(Severity::Ok, "on the wire (quoted-printable"));
}

#[test]
fn check_measures_the_html_part_as_encoded_on_the_wire() {
    let mut config = fixture::config();
    config.digest.body = crate::config::BodyMode::Full;
    let issue = fixture::russian_issue();
    let r = check_report(&config, Ok(&issue), Ok(&empty_list()), fixture::now());
    assert_eq!(r.errors(), 0, "{:#?}", r.lines);
    let line = r
        .lines
        .iter()
        .find(|(_, m)| m.starts_with("the HTML part is"))
        .map(|(_, m)| m.clone())
        .unwrap();
    // "the HTML part is W KB on the wire (base64, D KB decoded; …)": W is 4/3 of D or so,
    // not the decoded size (quoted-printable would have been about 2.1 times it).
    assert!(line.contains("on the wire (base64, "), "{line}");
    let kb = |s: &str| s.split(' ').next().unwrap().parse::<f64>().unwrap();
    let wire = kb(line.strip_prefix("the HTML part is ").unwrap());
    let decoded = kb(line.split("base64, ").nth(1).unwrap());
    assert!(wire > decoded * 1.3 && wire < decoded * 1.4, "{line}");
}

#[test]
fn check_reports_template_errors_missing_unsubscribe_and_full_path() {
    let issue = fixture::issue(2);
    let list = empty_list();
    let (_dir, broken) = project(&[("digest.txt.tera", "{{ artcle.title }}")], "");
    let r = check_report(&broken, Ok(&issue), Ok(&list), fixture::now());
    assert!(r.has(
        Severity::Error,
        "unknown variable `artcle.title` in templates/digest.txt.tera line 1"
    ));
    assert!(r.has(Severity::Error, "caused by:"));

    let mut no_unsub = fixture::config();
    no_unsub.unsubscribe = None;
    let r = check_report(&no_unsub, Ok(&issue), Ok(&list), fixture::now());
    assert!(
        r.has(Severity::Error, "no [unsubscribe] url"),
        "{:#?}",
        r.lines
    );

    let upper = fixture_template_with(
        "<title>{{ subject }}</title>",
        "<title>{{ subject }}</title>",
    )
    .replace(
        "<title>{{ subject }}</title>",
        "<title>{{ subject }} {{ subscriber.name | wordcount }}</title>",
    );
    let (_dir2, c) = project(
        &[
            ("partials/footer.html.tera", "<tr><td>no link</td></tr>"),
            ("digest.html.tera", &upper),
        ],
        "",
    );
    let r = check_report(&c, Ok(&issue), Ok(&list), fixture::now());
    assert!(
        r.has(Severity::Note, "full render for every copy"),
        "{:#?}",
        r.lines
    );
    assert!(r.has(Severity::Error, "no visible link"), "{:#?}", r.lines);

    let r = check_report(
        &fixture::config(),
        Err("no articles".into()),
        Err("bad list".into()),
        fixture::now(),
    );
    assert!(r.has(Severity::Error, "articles: no articles"));
    assert!(r.has(Severity::Error, "bad list"));
    assert!(r.has(Severity::Note, "built-in sample issue"));
}

#[test]
fn init_writes_a_working_project_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
    let written = init_dir(dir.path(), date).unwrap();
    assert!(written.len() >= 9);
    let config = Config::load(&dir.path().join("config.toml")).unwrap();
    assert_eq!(config.templates_dir(), dir.path().join("templates"));
    assert!(config.unsubscribe.is_some());
    let article = std::fs::read_to_string(dir.path().join("articles/welcome.md")).unwrap();
    assert!(article.contains("date: 2026-03-04"));
    // The written templates are the built-ins, and they render.
    for (name, text) in templates::BUILTIN {
        assert_eq!(
            &std::fs::read_to_string(dir.path().join("templates").join(name)).unwrap(),
            text
        );
    }
    let d = Digest::prepare(&config, &fixture::issue(2), fixture::now()).unwrap();
    let r = d
        .render_for(
            &fixture::subscriber("anna.petrova@example.org", "Anna Petrova"),
            URL,
        )
        .unwrap();
    assert!(d
        .templates_in_use()
        .iter()
        .any(|(_, s)| s.ends_with("templates/digest.html.tera")));
    assert!(
        r.subject.starts_with("My Publication: Issue"),
        "{}",
        r.subject
    );

    // A second init refuses, naming the files, and writes nothing.
    let again = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(again.path().join("templates")).unwrap();
    std::fs::write(again.path().join("templates/digest.txt.tera"), "mine").unwrap();
    let err = init_dir(again.path(), date).unwrap_err().to_string();
    assert!(
        err.contains("digest.txt.tera") && err.contains("never overwrites"),
        "{err}"
    );
    assert!(!again.path().join("config.toml").exists());
    assert_eq!(
        std::fs::read_to_string(again.path().join("templates/digest.txt.tera")).unwrap(),
        "mine"
    );
}
