//! Integration tests for `articles`: `fortnight issues [--json]` driven through the real
//! binary over fixture folders.
//!
//! `tests/fixtures/corpus-like/` has the shape of the shared corpus (our own texts): a
//! title-less page with a repeated lead, no-break spaces and a long trailer; a titled
//! analysis; a news item without byline or issue marker; a Markdown article with an
//! explicit issue; a field report published the day after the issue its byline names.
//! `tests/fixtures/expected-corpus-like.json` is EXPECTED.md's table for it, in the shape
//! `scripts/check-corpus-articles` checks (that script compares the real shared corpus
//! against `tests/fixtures/expected-corpus.json` the same way).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::{TestProject, BASE_CONFIG};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(rel: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures").join(rel)
}

/// A project whose `articles/` holds a copy of `tests/fixtures/<name>/`.
fn project_with_fixture_folder(name: &str) -> TestProject {
    let p = TestProject::new();
    for entry in std::fs::read_dir(fixture(name)).expect("fixture folder") {
        let entry = entry.expect("dir entry");
        let bytes = std::fs::read(entry.path()).expect("read fixture");
        p.write(
            &format!("articles/{}", entry.file_name().to_string_lossy()),
            bytes,
        );
    }
    p
}

fn issues_json(p: &TestProject) -> Value {
    let run = p.run(&["issues", "--json"]);
    run.success();
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout()))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// The same projection as `scripts/check-corpus-articles`: what EXPECTED.md promises per
/// article, plus the problems found in its body (trailer, signature, repeated lead, bad title).
fn project(issues: &Value) -> Value {
    let mut out = Vec::new();
    for issue in issues.as_array().expect("array of issues") {
        let mut articles = Vec::new();
        for a in issue["articles"].as_array().expect("articles") {
            let paragraphs: Vec<&str> = a["paragraphs"]
                .as_array()
                .expect("paragraphs")
                .iter()
                .map(str_of)
                .collect();
            let body = paragraphs.join("\n");
            let mut problems: Vec<String> = Vec::new();
            for marker in [
                "Visit also",
                "Staff Publications",
                "Sign up for upcoming events",
            ] {
                if body.contains(marker) {
                    problems.push(format!("trailer text {marker:?} in the body"));
                }
            }
            if paragraphs
                .iter()
                .any(|p| p.starts_with("Read ") && p.ends_with(" times"))
            {
                problems.push("a `Read N times` line in the body".into());
            }
            let names: Vec<&str> = a["authors"]
                .as_array()
                .expect("authors")
                .iter()
                .map(str_of)
                .collect();
            if let Some(last) = paragraphs.last() {
                if !names.is_empty() && (names.contains(last) || *last == names.join(" and ")) {
                    problems.push("the signature line is kept as the last paragraph".into());
                }
            }
            let lead = str_of(&a["lead"]);
            if paragraphs.first() != Some(&lead) {
                problems.push("the lead is not the first paragraph".into());
            }
            let head: String = lead.chars().take(80).collect();
            if !head.is_empty() && body.matches(head.as_str()).count() != 1 {
                problems.push(format!(
                    "the lead's opening appears {} times in the body",
                    body.matches(head.as_str()).count()
                ));
            }
            let title = str_of(&a["title"]);
            let file = str_of(&a["file"]);
            let stem = Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            if title.trim().is_empty() {
                problems.push("empty title".into());
            }
            if !stem.is_empty() && title.contains(stem) {
                problems.push("the title is the file name".into());
            }
            let lead_start: Vec<&str> = lead.split_whitespace().take(8).collect();
            articles.push(json!({
                "file": file,
                "title": title,
                "title_is_fallback": a["title_is_fallback"],
                "authors": names,
                "section": a["section"],
                "date": a["date"],
                "issue": a["issue"],
                "read_count": a["read_count"],
                "lead_start": lead_start.join(" "),
                "problems": problems,
            }));
        }
        articles.sort_by(|x, y| str_of(&x["file"]).cmp(str_of(&y["file"])));
        out.push(json!({"date": issue["date"], "articles": articles}));
    }
    Value::Array(out)
}

#[test]
fn corpus_like_folder_gives_exactly_the_issues_and_articles_of_the_expected_table() {
    let p = project_with_fixture_folder("corpus-like");
    let actual = project(&issues_json(&p));
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("expected-corpus-like.json")).expect("expected fixture"),
    )
    .expect("expected fixture is JSON");
    assert!(
        actual == expected,
        "mismatch\nexpected:\n{}\nactual:\n{}",
        serde_json::to_string_pretty(&expected).unwrap(),
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

#[test]
fn real_page_shape_keeps_the_repeated_lead_once_and_no_trailer_or_signature() {
    let p = project_with_fixture_folder("corpus-like");
    let issues = issues_json(&p);
    let page = issues[0]["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file"] == "002_a1b2c3d4e5f60718.txt")
        .expect("the page-like article is in the newest issue");
    let body: Vec<&str> = page["paragraphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    let all = body.join("\n");
    assert_eq!(
        all.matches("In the mid-1990s, the countries").count(),
        1,
        "{all}"
    );
    assert!(str_of(&page["lead"]).ends_with("had little use for what they had learned."));
    for junk in [
        "Elnur Hasanov",
        "Read 3",
        "Visit also",
        "Staff Publications",
        "Silk Road Paper",
        "Sign up",
        "biweekly publication",
    ] {
        assert!(!all.contains(junk), "{junk:?} reached the body:\n{all}");
    }
    assert!(!all.contains('\u{00A0}'), "no-break spaces are normalised");
    assert_eq!(body.len(), 3);
    assert!(
        body[1].contains("country\u{2019}s defence ministry"),
        "curly quotes are kept"
    );
}

#[test]
fn titles_missing_from_files_get_a_fallback_and_one_warning_each() {
    let p = project_with_fixture_folder("corpus-like");
    let run = p.run(&["issues", "--json"]);
    run.success();
    let stderr = run.stderr();
    for (file, title) in [
        ("002_a1b2c3d4e5f60718.txt", "Field Report by Elnur Hasanov"),
        ("turkmen-border.txt", "News Digest item of 25 February 2002"),
        ("kyrgyz-trade.txt", "Field Report by Ainura Sadykova"),
        ("tajik-cotton.txt", "Field Report by Jamshed Nazarov"),
    ] {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(file)).collect();
        assert_eq!(lines.len(), 1, "one warning for {file}:\n{stderr}");
        assert!(
            lines[0].starts_with("warning: ") && lines[0].contains(title),
            "{}",
            lines[0]
        );
    }
}

#[test]
fn check_corpus_script_passes_on_a_match_and_prints_a_diff_on_a_mismatch() {
    let script = manifest_dir().join("scripts/check-corpus-articles");
    let bin = env!("CARGO_BIN_EXE_fortnight");
    let corpus = fixture("corpus-like");
    let expected = fixture("expected-corpus-like.json");
    let ok = std::process::Command::new("bash")
        .arg(&script)
        .args([Path::new(bin), &corpus, &expected])
        .output()
        .expect("run the script");
    assert!(
        ok.status.success(),
        "script failed:\n{}\n{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok: "));

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.json");
    let text = std::fs::read_to_string(&expected).unwrap().replace(
        "Field Report by Jamshed Nazarov",
        "Cotton Debts in Tajikistan",
    );
    std::fs::write(&wrong, text).unwrap();
    let bad = std::process::Command::new("bash")
        .arg(&script)
        .args([Path::new(bin), &corpus, &wrong])
        .output()
        .expect("run the script");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("-        \"title\": \"Cotton Debts in Tajikistan\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+        \"title\": \"Field Report by Jamshed Nazarov\""),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MISMATCH"));
}

#[test]
fn json_articles_carry_every_documented_field() {
    let p = project_with_fixture_folder("corpus-like");
    let issues = issues_json(&p);
    let issue = &issues[1];
    let mut issue_keys: Vec<&str> = issue
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    issue_keys.sort_unstable();
    assert_eq!(issue_keys, ["article_count", "articles", "date"]);
    assert_eq!(issue["article_count"], 2);
    let md = issue["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file"] == "caspian-summit.md")
        .unwrap();
    let mut keys: Vec<&str> = md.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "authors",
            "body_html",
            "date",
            "file",
            "issue",
            "lead",
            "paragraphs",
            "read_count",
            "section",
            "summary",
            "title",
            "title_is_fallback",
            "url",
            "word_count"
        ]
    );
    assert_eq!(md["url"], "https://example.org/analyst/caspian-seabed");
    assert_eq!(md["body_html"].as_str().unwrap().matches("<p>").count(), 2);
    assert!(md["body_html"]
        .as_str()
        .unwrap()
        .contains("<em>unresolved</em>"));
    assert_eq!(md["word_count"], 68, "the words of the two body paragraphs");
    // Without a front matter url, the link is base_url + the file stem.
    let grain = issue["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file"] == "kyrgyz-trade.txt")
        .unwrap();
    assert_eq!(grain["url"], "https://analyst.example.org/kyrgyz-trade");
    assert_eq!(grain["summary"], Value::Null);
}

#[test]
fn issues_table_lists_issues_newest_first_with_counts_titles_authors_and_sections() {
    let p = project_with_fixture_folder("corpus-like");
    let run = p.run(&["issues"]);
    run.success();
    let out = run.stdout();
    let pos = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing from:\n{out}"))
    };
    assert!(pos("2002-02-27 (current)  3 articles") < pos("2002-02-13  2 articles"));
    assert!(pos("2002-02-13  2 articles") < pos("2002-01-30  1 article\n"));
    assert!(pos("• Armenia Bets on Interconnection to Keep the Lights On") > pos("2002-02-27"));
    pos(
        "Analytical Articles · Anahit Sargsyan · 2002-02-27 · read 1,942 · armenia-energy-grid.txt",
    );
    pos("News Digest · no byline · 2002-02-25 · read 388 · turkmen-border.txt");
    pos("• Field Report by Elnur Hasanov  [no title in file]");
    pos("3 issues, 6 articles");
}

#[test]
fn junk_files_are_skipped_with_one_warning_each_naming_file_and_reason() {
    let p = project_with_fixture_folder("corpus-like");
    p.write("articles/empty.txt", "");
    p.write("articles/blank.md", "  \n\n");
    p.write("articles/binary.txt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0");
    p.write(
        "articles/notes.txt",
        "Ideas for the next issue: water, rail, ports.\n",
    );
    p.write(
        "articles/dateless.txt",
        "Published in Field Reports\n\nBy Nino Kharadze\n\nBody.\n",
    );
    p.write(
        "articles/readme.md",
        "# About this folder\n\nOne file per article.\n",
    );
    p.write(
        "articles/draft.md",
        "---\ndate: 2002-02-20\ndraft: true\n---\nNot yet.\n",
    );
    p.write("articles/photo.jpg", b"\xFF\xD8\xFF\xE0");
    p.write(
        "articles/.hidden.txt",
        "Wednesday, 27 February 2002\nPublished in News Digest\n\nx\n",
    );
    p.write("articles/.DS_Store", b"\0\0\0\x01Bud1");
    let run = p.run(&["issues", "--json"]);
    run.success();
    let stderr = run.stderr();
    for (file, why) in [
        ("empty.txt", "empty file"),
        ("blank.md", "empty file"),
        ("binary.txt", "binary"),
        ("notes.txt", "no date line"),
        ("dateless.txt", "no date line"),
        ("readme.md", "did you forget to add `---`"),
        ("draft.md", "draft"),
        ("photo.jpg", "unknown extension `.jpg`"),
        (".hidden.txt", "hidden"),
        (".DS_Store", "hidden"),
    ] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&format!("/{file}`")))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {file}:\n{stderr}");
        assert!(lines[0].starts_with("warning: skipped `"), "{}", lines[0]);
        assert!(lines[0].contains(why), "{file}: {}", lines[0]);
    }
    // The articles themselves are unaffected.
    assert_eq!(project(&issues_json(&p)).as_array().unwrap().len(), 3);
}

#[test]
fn folder_without_articles_is_an_error_saying_where_it_looked() {
    let p = TestProject::new();
    p.write("articles/notes.txt", "just a note\n");
    p.write("articles/empty.md", "");
    let run = p.run(&["issues"]);
    run.code_is(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("no articles in `") && stderr.contains("articles`"),
        "{stderr}"
    );
    assert!(stderr.contains("looked at 2 files"), "{stderr}");
    assert!(
        stderr.contains("notes.txt") && stderr.contains("no date line"),
        "{stderr}"
    );
    assert!(run.stdout().is_empty());
}

#[test]
fn empty_folder_is_an_error_too() {
    let p = TestProject::new();
    p.run(&["issues", "--json"]).code_is(2);
}

#[test]
fn missing_folder_is_an_error_naming_the_folder_and_the_config_key() {
    let mut p = TestProject::new();
    p.config_replace(&BASE_CONFIG.replace(
        "articles_dir = \"articles\"",
        "articles_dir = \"no-such-folder\"",
    ));
    let run = p.run(&["issues"]);
    run.code_is(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("no-such-folder") && stderr.contains("articles_dir"),
        "{stderr}"
    );
}

#[test]
fn invalid_front_matter_is_an_error_naming_the_file_the_field_and_the_fix() {
    let p = project_with_fixture_folder("corpus-like");
    p.write(
        "articles/bad-date.md",
        "---\ntitle: T\ndate: 02/12/2002\n---\nBody.\n",
    );
    p.write("articles/no-date.md", "+++\ntitle = \"T\"\n+++\nBody.\n");
    let run = p.run(&["issues"]);
    run.code_is(2);
    let stderr = run.stderr();
    assert!(stderr.contains("2 article files"), "{stderr}");
    assert!(
        stderr.contains("bad-date.md`: front matter field `date`: `02/12/2002` is not a date"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no-date.md`: front matter has no `date`")
            && stderr.contains("date = 2002-02-12"),
        "{stderr}"
    );
}

#[test]
fn configured_first_issue_sets_the_grid_and_an_off_grid_explicit_issue_is_kept_with_a_warning() {
    let mut p = TestProject::new();
    p.config_replace(&BASE_CONFIG.replace(
        "cadence_days = 14",
        "cadence_days = 14\nfirst_issue = \"2002-01-30\"",
    ));
    p.write(
        "articles/on-issue-day.txt",
        "On the Day\n\nWednesday, 13 February 2002\n\nPublished in News Digest\n\nBody.\n",
    );
    p.write(
        "articles/day-after.txt",
        "The Day After\n\nThursday, 14 February 2002\n\nPublished in News Digest\n\nBody.\n",
    );
    p.write(
        "articles/off-grid.md",
        "---\ntitle: Off Grid\ndate: 2002-02-18\nissue: 2002-02-20\n---\nBody.\n",
    );
    let run = p.run(&["issues", "--json"]);
    run.success();
    let issues: Value = serde_json::from_str(&run.stdout()).unwrap();
    let placed: Vec<(String, String)> = issues
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["articles"].as_array().unwrap().iter().map(move |a| {
                (
                    str_of(&i["date"]).to_string(),
                    str_of(&a["title"]).to_string(),
                )
            })
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("2002-02-27".to_string(), "The Day After".to_string()),
            ("2002-02-20".to_string(), "Off Grid".to_string()),
            ("2002-02-13".to_string(), "On the Day".to_string()),
        ]
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("off-grid.md`: its issue date 2002-02-20 is not on the 14-day issue grid")
            && stderr.contains("kept as given"),
        "{stderr}"
    );
}

#[test]
fn without_any_explicit_issue_the_grid_is_anchored_at_the_newest_article_with_a_warning() {
    let p = TestProject::new();
    p.write(
        "articles/a.txt",
        "A\n\nMonday, 25 February 2002\n\nPublished in News Digest\n\nBody.\n",
    );
    p.write(
        "articles/b.txt",
        "B\n\nMonday, 11 February 2002\n\nPublished in News Digest\n\nBody.\n",
    );
    p.write(
        "articles/c.txt",
        "C\n\nSunday, 10 February 2002\n\nPublished in News Digest\n\nBody.\n",
    );
    let run = p.run(&["issues", "--json"]);
    run.success();
    let issues: Value = serde_json::from_str(&run.stdout()).unwrap();
    let dates: Vec<&str> = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| str_of(&i["date"]))
        .collect();
    assert_eq!(dates, ["2002-02-25", "2002-02-11"]);
    assert_eq!(issues[1]["article_count"], 2);
    assert!(
        run.stderr()
            .contains("anchored at the newest article's date, 2002-02-25; set `first_issue`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn sample_articles_make_a_rich_newest_issue_and_two_older_ones() {
    let p = TestProject::new();
    p.with_sample_articles();
    let run = p.run(&["issues", "--json"]);
    run.success();
    let issues: Value = serde_json::from_str(&run.stdout()).unwrap();
    let issues = issues.as_array().unwrap();
    assert_eq!(issues.len(), 3, "the newest issue and two older ones");
    let newest = issues[0]["articles"].as_array().unwrap();
    assert!((6..=8).contains(&newest.len()), "{} articles", newest.len());
    let sections: std::collections::BTreeSet<&str> =
        newest.iter().map(|a| str_of(&a["section"])).collect();
    assert_eq!(
        sections.into_iter().collect::<Vec<_>>(),
        ["Analytical Articles", "Field Reports", "News Digest"]
    );
    assert!(
        newest.iter().any(|a| str_of(&a["file"]).ends_with(".md")),
        "a Markdown article"
    );
    assert!(
        newest
            .iter()
            .any(|a| a["authors"].as_array().unwrap().len() == 2),
        "two authors"
    );
    assert!(
        newest
            .iter()
            .flat_map(|a| a["authors"].as_array().unwrap())
            .any(|n| str_of(n)
                .chars()
                .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c))),
        "a Cyrillic name"
    );
    assert!(
        newest
            .iter()
            .flat_map(|a| a["authors"].as_array().unwrap())
            .any(|n| str_of(n).contains('ə')),
        "an Azerbaijani name"
    );
    assert!(
        newest
            .iter()
            .any(|a| a["read_count"].as_u64().is_some_and(|n| n >= 1000)),
        "a read count in the thousands"
    );
    for a in newest {
        assert_eq!(
            a["title_is_fallback"], false,
            "the newest issue has real titles: {}",
            a["file"]
        );
    }
    // No copy of the real page from the shared corpus in the repository.
    assert!(!manifest_dir()
        .join("articles/000_16d5349bd501d7dc.txt")
        .exists());
    for issue in issues {
        for a in issue["articles"].as_array().unwrap() {
            assert_eq!(
                project(&json!([{"date": issue["date"], "articles": [a]}]))[0]["articles"][0]
                    ["problems"],
                json!([]),
                "{}",
                a["file"]
            );
        }
    }
}
