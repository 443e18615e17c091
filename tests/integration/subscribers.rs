//! Integration tests for `subscribers`: the address policy against an external test set,
//! and the `subscribers` / `unsubscribe` commands driven through the real binary.

use std::path::Path;

use fortnight::subscribers::SubscriberEmail;

/// The ids of `tests/data/isemail/tests.xml` that the list's address policy accepts
/// (tests/data/isemail/README.md).
const ISEMAIL_ACCEPTED: &[u32] = &[
    8, 9, 10, 11, 12, 14, 19, 21, 22, 25, 27, 29, 32, 38, 100, 101, 167, 168,
];

/// `(id, address)` of every test, with U+2400+n mapped back to control character n and
/// the XML entities decoded.
fn isemail_tests() -> Vec<(u32, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/isemail/tests.xml");
    let xml = std::fs::read_to_string(&path).expect("tests.xml");
    let mut out = Vec::new();
    for chunk in xml.split("<test id=\"").skip(1) {
        let id: u32 = chunk[..chunk.find('"').expect("id quote")]
            .parse()
            .expect("numeric id");
        let address = if chunk.contains("<address/>") {
            String::new()
        } else {
            let start = chunk.find("<address>").expect("address") + "<address>".len();
            let end = chunk.find("</address>").expect("end of address");
            decode_entities(&chunk[start..end])
        };
        let address: String = address
            .chars()
            .map(|c| match c as u32 {
                n @ 0x2400..=0x241F => char::from_u32(n - 0x2400).expect("control char"),
                _ => c,
            })
            .collect();
        out.push((id, address));
    }
    out
}

/// Decodes the XML entities of a text node (`&lt;`, `&#x240A;`, `&#64;`, …).
fn decode_entities(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';').expect("entity ends with ;") + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "amp" => '&',
            e if e.starts_with("#x") => {
                char::from_u32(u32::from_str_radix(&e[2..], 16).expect("hex")).expect("char")
            }
            e if e.starts_with('#') => {
                char::from_u32(e[1..].parse().expect("decimal")).expect("char")
            }
            e => panic!("unknown entity &{e};"),
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn isemail_set_accepts_exactly_the_listed_ids() {
    let tests = isemail_tests();
    assert_eq!(tests.len(), 164, "tests.xml holds 164 tests");
    let mut wrongly_accepted = Vec::new();
    let mut wrongly_rejected = Vec::new();
    for (id, address) in &tests {
        let accepted = SubscriberEmail::parse(address).is_ok();
        let expected = ISEMAIL_ACCEPTED.contains(id);
        if accepted && !expected {
            wrongly_accepted.push((*id, address.clone()));
        }
        if !accepted && expected {
            wrongly_rejected.push((
                *id,
                address.clone(),
                SubscriberEmail::parse(address).unwrap_err().to_string(),
            ));
        }
    }
    assert!(
        wrongly_accepted.is_empty() && wrongly_rejected.is_empty(),
        "accepted but should not be: {wrongly_accepted:?}\nrejected but should not be: {wrongly_rejected:?}"
    );
    let rejected = tests
        .iter()
        .filter(|(_, a)| SubscriberEmail::parse(a).is_err())
        .count();
    assert_eq!(rejected, 146);
}

#[test]
fn isemail_address_with_trailing_line_feed_is_rejected_by_the_parser_itself() {
    let tests = isemail_tests();
    let (_, a99) = tests.iter().find(|(id, _)| *id == 99).expect("test 99");
    assert!(a99.ends_with('\n'));
    let err = SubscriberEmail::parse(a99).unwrap_err();
    assert!(err.to_string().contains("control character"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The commands, through the real binary.

use crate::support::{TestProject, TEST_UNSUBSCRIBE_KEY};
use fortnight::subscribers::{Status, SubscriberList};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
        .display()
        .to_string()
}

fn list_of(p: &TestProject) -> SubscriberList {
    SubscriberList::load(&p.path().join("subscribers.csv")).expect("list loads")
}

fn status_of(p: &TestProject, email: &str) -> Option<Status> {
    list_of(p)
        .subscribers
        .iter()
        .find(|s| s.email.as_str().eq_ignore_ascii_case(email))
        .map(|s| s.status)
}

const SMALL_LIST: &str = "email,name,status,since,source,tags,country\n\
    anna@example.org,Anna,subscribed,2024-01-01,manual,,GE\n\
    left@example.org,Left,unsubscribed,2024-01-01,manual,,\n\
    bob@example.com,Bob,subscribed,2024-01-01,manual,,AM\n";

#[test]
fn corpus_shaped_imports_give_seven_subscribed_and_one_unsubscribed() {
    let p = TestProject::new();
    let first = p.run(&[
        "subscribers",
        "import",
        &fixture("mailchimp_subscribed.csv"),
    ]);
    first.success();
    assert!(
        first.stdout().contains("added:       3"),
        "{}",
        first.stdout()
    );

    let second = p.run(&["subscribers", "import", &fixture("substack_emails.csv")]);
    second.success();
    let out = second.stdout();
    assert!(out.contains("added:       2"), "{out}");
    assert!(out.contains("suppressed:  1"), "{out}");
    assert!(out.contains("duplicates:  1"), "{out}");
    assert!(
        out.contains("substack_emails.csv:5: `NINO.KHARADZE@example.org` is already in the list as `nino.kharadze@example.org`"),
        "{out}"
    );

    let third = p.run(&["subscribers", "import", &fixture("excel_semicolon_bom.csv")]);
    third.code_is(1);
    let out = third.stdout();
    assert!(out.contains("added:       2"), "{out}");
    assert!(
        out.contains("excel_semicolon_bom.csv:3: `keine-adresse`: the address has no `@`"),
        "{out}"
    );

    let list = list_of(&p);
    let count = |s: Status| list.subscribers.iter().filter(|x| x.status == s).count();
    assert_eq!(count(Status::Subscribed), 7);
    assert_eq!(count(Status::Unsubscribed), 1);
    assert_eq!(list.subscribers.len(), 8);
    let get = |e: &str| {
        list.subscribers
            .iter()
            .find(|s| s.email.as_str() == e)
            .unwrap_or_else(|| panic!("{e} missing"))
    };
    assert_eq!(get("nino.kharadze@example.org").name, "Nino Kharadze");
    assert_eq!(
        get("nino.kharadze@example.org").tags,
        vec!["Authors", "Board"]
    );
    assert_eq!(
        get("Gulnara.Ismailova@example.net").name,
        "Gülnara İsmailova"
    );
    assert_eq!(get("left.reader@example.org").status, Status::Unsubscribed);
    assert_eq!(get("aida.bekova@example.de").name, "Bekova, Aida");
    assert_eq!(get("k.weber@example.de").attrs["notiz"], "drei Zeilen");

    let stats = p.run(&["subscribers", "stats"]);
    stats.success();
    let out = stats.stdout();
    assert!(out.contains("8 addresses"), "{out}");
    assert!(out.contains("subscribed    7"), "{out}");
    assert!(out.contains("unsubscribed  1"), "{out}");
}

#[test]
fn a_failed_import_leaves_the_list_byte_identical() {
    let p = TestProject::new();
    p.write("subscribers.csv", SMALL_LIST);
    let good = p.write("good.csv", "email,name\nnew@example.org,New\n");
    let legacy = p.write("legacy.csv", b"email;name\nm@example.de;M\xFCller\n");
    let before = std::fs::read(p.path().join("subscribers.csv")).unwrap();

    // A file that cannot be decoded as the encoding forced for all files.
    let run = p.run(&[
        "subscribers",
        "import",
        "--encoding",
        "utf-8",
        good.to_str().unwrap(),
        legacy.to_str().unwrap(),
    ]);
    run.code_is(2);
    assert!(run.stderr().contains("legacy.csv"), "{}", run.stderr());
    assert!(
        run.stderr().contains("--encoding windows-1252"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read(p.path().join("subscribers.csv")).unwrap(),
        before
    );

    // A file that does not exist, after one that would have changed the list.
    let run = p.run(&["subscribers", "import", "good.csv", "missing.csv"]);
    run.code_is(2);
    assert!(run.stderr().contains("missing.csv"), "{}", run.stderr());
    assert_eq!(
        std::fs::read(p.path().join("subscribers.csv")).unwrap(),
        before
    );

    // With the right encoding the same files import.
    let run = p.run(&[
        "subscribers",
        "import",
        "--encoding",
        "windows-1252",
        "legacy.csv",
    ]);
    run.success();
    assert_eq!(
        list_of(&p).subscribers.last().map(|s| s.name.clone()),
        Some("Müller".to_string())
    );
}

#[test]
fn a_malformed_list_stops_the_import_and_names_the_lines() {
    let p = TestProject::new();
    let bad =
        "email,name,status\nanna@example.org,A,subscribed\nANNA@example.org,B,subscribed\nx,y\n";
    p.write("subscribers.csv", bad);
    p.write("new.csv", "email\nnew@example.org\n");
    let run = p.run(&["subscribers", "import", "new.csv"]);
    run.code_is(2);
    let err = run.stderr();
    assert!(
        err.contains("line 3: `ANNA@example.org` is already in the list on line 2"),
        "{err}"
    );
    assert!(err.contains("line 4: the row has 2 fields"), "{err}");
    assert_eq!(p.read("subscribers.csv"), bad);

    // Nothing else reads a malformed list either, and export prints no partial CSV.
    let export = p.run(&["subscribers", "export"]);
    export.code_is(2);
    assert_eq!(export.stdout(), "");
    p.run(&["subscribers", "stats"]).code_is(2);
    p.run(&["unsubscribe", "anna@example.org"]).code_is(2);
    assert_eq!(p.read("subscribers.csv"), bad);
}

#[test]
fn dry_run_prints_the_report_and_writes_nothing() {
    let p = TestProject::new();
    p.write("new.csv", "email,name\nnew@example.org,New\n");
    let run = p.run(&["subscribers", "import", "--dry-run", "new.csv"]);
    run.success();
    assert!(run.stdout().contains("added:       1"), "{}", run.stdout());
    assert!(run.stdout().contains("dry run"), "{}", run.stdout());
    assert!(!p.path().join("subscribers.csv").exists());

    p.write("subscribers.csv", SMALL_LIST);
    p.run(&["subscribers", "import", "--dry-run", "new.csv"])
        .success();
    assert_eq!(p.read("subscribers.csv"), SMALL_LIST);
}

#[test]
fn import_keeps_suppressions_unless_resubscribe_is_given() {
    let p = TestProject::new();
    p.write("subscribers.csv", SMALL_LIST);
    p.write("back.csv", "email,name\nLEFT@example.org,Left\n");
    let run = p.run(&["subscribers", "import", "back.csv"]);
    run.success();
    assert!(
        run.stdout().contains("not resubscribed"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        status_of(&p, "left@example.org"),
        Some(Status::Unsubscribed)
    );

    let run = p.run(&["subscribers", "import", "--resubscribe", "back.csv"]);
    run.success();
    assert!(run.stdout().contains("resubscribed: 1"), "{}", run.stdout());
    assert_eq!(status_of(&p, "left@example.org"), Some(Status::Subscribed));
}

#[test]
fn excel_unicode_text_and_legacy_exports_import_cleanly() {
    let p = TestProject::new();
    let text = "Email Address\tFirst Name\tLast Name\r\nlena@example.de\tLena\tMüller\r\n";
    let mut utf16 = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    p.write("unicode.txt", utf16);
    p.write(
        "legacy.csv",
        b"email;name\r\nfr@example.fr;\xC7a Fran\xE7ois\r\n",
    );
    let run = p.run(&[
        "subscribers",
        "import",
        "unicode.txt",
        "legacy.csv",
        "--delimiter",
        "auto-not-valid",
    ]);
    run.code_is(2);
    assert!(run.stderr().contains("--delimiter"), "{}", run.stderr());
    let run = p.run(&["subscribers", "import", "unicode.txt", "legacy.csv"]);
    run.success();
    assert!(run.stdout().contains("UTF-16LE"), "{}", run.stdout());
    assert!(run.stdout().contains("(detected)"), "{}", run.stdout());
    let list = list_of(&p);
    let names: Vec<&str> = list.subscribers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["Lena Müller", "Ça François"]);
    assert!(!p.read("subscribers.csv").contains('\u{FFFD}'));
}

#[test]
fn unsubscribe_is_idempotent_and_reports_strangers() {
    let p = TestProject::new();
    p.write("subscribers.csv", SMALL_LIST);
    let run = p.run(&["unsubscribe", "Anna@Example.org"]);
    run.success();
    assert!(
        run.stdout()
            .contains("unsubscribed: Anna@example.org (was subscribed)"),
        "{}",
        run.stdout()
    );
    let after = p.read("subscribers.csv");
    assert!(
        after.contains("anna@example.org,Anna,unsubscribed,2024-01-01,manual,,GE"),
        "{after}"
    );

    let again = p.run(&["unsubscribe", "anna@example.org"]);
    again.success();
    assert!(
        again.stdout().contains("already unsubscribed"),
        "{}",
        again.stdout()
    );
    assert_eq!(p.read("subscribers.csv"), after);

    let stranger = p.run(&["unsubscribe", "nobody@example.org"]);
    stranger.code_is(1);
    assert!(
        stranger.stderr().contains("not in"),
        "{}",
        stranger.stderr()
    );

    let invalid = p.run(&["unsubscribe", "bob@example.com", "not an address"]);
    invalid.code_is(2);
    assert_eq!(status_of(&p, "bob@example.com"), Some(Status::Subscribed));
}

#[test]
fn unsubscribe_by_token_needs_the_key_and_marks_the_subscriber() {
    let p = TestProject::new();
    p.write("subscribers.csv", SMALL_LIST);
    let key = fortnight::token::UnsubscribeKey::new("k1", TEST_UNSUBSCRIBE_KEY.as_bytes()).unwrap();
    let bob = fortnight::subscribers::SubscriberEmail::parse("bob@example.com").unwrap();
    let token = key.mint("digest.analyst.example.org", &bob);

    let run = p.run(&["unsubscribe", "--token", &token]);
    run.code_is(2);
    assert!(
        run.stderr().contains("FORTNIGHT_UNSUBSCRIBE_KEY"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains(TEST_UNSUBSCRIBE_KEY));

    let run = p
        .cmd(&["unsubscribe", "--token", &token])
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(status_of(&p, "bob@example.com"), Some(Status::Unsubscribed));
    assert_eq!(status_of(&p, "anna@example.org"), Some(Status::Subscribed));

    let other_list = key.mint("other.example.org", &bob);
    let run = p
        .cmd(&["unsubscribe", "--token", &other_list])
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
}

#[test]
fn concurrent_unsubscribe_processes_lose_no_update() {
    let p = TestProject::new();
    let mut list = String::from("email,name,status,since,source,tags\n");
    for i in 0..12 {
        list.push_str(&format!("r{i}@example.org,R{i},subscribed,,,\n"));
    }
    p.write("subscribers.csv", &list);
    let children: Vec<_> = (0..12)
        .map(|i| {
            p.cmd(&["unsubscribe", &format!("r{i}@example.org")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = list_of(&p);
    assert_eq!(list.subscribers.len(), 12);
    assert!(list
        .subscribers
        .iter()
        .all(|s| s.status == Status::Unsubscribed));
}

#[test]
fn export_guards_formula_cells_and_filters_by_status() {
    let p = TestProject::new();
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags,note\n\
         -dash@example.org,=HYPERLINK(\"http://x\"),subscribed,,manual,@tag,+1\n\
         plain@example.org,Plain,unsubscribed,,manual,,\n",
    );
    let run = p.run(&["subscribers", "export"]);
    run.success();
    let out = run.stdout();
    assert_eq!(
        out,
        "email,name,status,since,source,tags,note\n\
         '-dash@example.org,\"'=HYPERLINK(\"\"http://x\"\")\",subscribed,,manual,'@tag,'+1\n\
         plain@example.org,Plain,unsubscribed,,manual,,\n"
    );
    let run = p.run(&["subscribers", "export", "--status", "unsubscribed"]);
    run.success();
    assert_eq!(
        run.stdout(),
        "email,name,status,since,source,tags,note\nplain@example.org,Plain,unsubscribed,,manual,,\n"
    );
    p.run(&["subscribers", "export", "--status", "gone"])
        .code_is(2);
}

#[test]
fn stats_count_by_status_and_top_domains() {
    let p = TestProject::new();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("subscribers.example.csv"),
    )
    .unwrap();
    p.write("subscribers.csv", &example);
    let run = p.run(&["subscribers", "stats"]);
    run.success();
    let out = run.stdout();
    assert!(out.contains("8 addresses"), "{out}");
    assert!(out.contains("subscribed    5"), "{out}");
    assert!(out.contains("bounced       1"), "{out}");
    assert!(out.contains("complained    1"), "{out}");
    let domains: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("top domains"))
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        domains,
        vec!["example.org", "example.com", "example.net", "example.de"]
    );
}

#[test]
fn the_example_list_loads_with_its_extra_column() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("subscribers.example.csv");
    let list = SubscriberList::load(&path).unwrap();
    assert_eq!(list.extra_columns, vec!["country"]);
    assert_eq!(list.subscribers.len(), 8);
    assert_eq!(list.subscribed().count(), 5);
    assert_eq!(list.subscribers[0].attrs["country"], "GE");
}
