//! Seeded fuzz tests through the real binary, one per parser: config, articles and front
//! matter, the subscriber CSV, mailboxes and HTTP requests to `serve`. Each runs a fixed
//! number of cases (a few seconds in CI) and asserts what every hostile input must get: no
//! panic or signal, an exit code of at most 2, an error that names the input, and nothing
//! written when the command fails. A failure names its seed and case. (The parsers' own
//! in-process fuzzing of article text is in `src/articles/fuzz_tests.rs`.)

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use crate::serve::{exchange_with, one_click, status_of, token_for, Server};
use crate::support::{Run, TestProject, BASE_CONFIG, TEST_UNSUBSCRIBE_KEY};

/// xorshift64*: deterministic, so a failure is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Bytes hostile input likes: structure characters, controls, quotes, UTF-8 fragments.
const NASTY: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b"'",
    b"=",
    b":",
    b",",
    b"\n",
    b"\r",
    b"\r\n",
    b"\0",
    b"\x1b[31m",
    b"\xff",
    b"\xc3",
    b"{token}",
    b"{{",
    b"}}",
    b"{%",
    b"%}",
    b"-",
    b"#",
    b"\\",
    b"---\n",
    b"+++\n",
    b"%0A",
    b"\t",
    b"9999999999999999999999",
    b"-1",
    b"0",
    b"nan",
    b"@",
    b"<",
    b">",
    b";",
    b"\xef\xbb\xbf",
    b"From ",
    b"\n\n",
    b"Content-Type: ",
];

/// `seed` text with a few random edits: deletions, duplications, nasty insertions, flips.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let end = (at + rng.below(40)).min(v.len());
                v.drain(at.min(end)..end);
            }
            1 => {
                let n = rng.pick(NASTY);
                let times = if rng.below(8) == 0 { 2000 } else { 1 };
                let ins: Vec<u8> = n.repeat(times);
                v.splice(at..at, ins);
            }
            2 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = rng.next() as u8;
            }
            3 => {
                let start = rng.below(v.len() + 1);
                let end = (start + rng.below(200)).min(v.len());
                let piece = v[start..end].to_vec();
                v.splice(at..at, piece);
            }
            _ => v.truncate(at),
        }
    }
    v
}

/// Every file under `dir` with its bytes (to prove a failed command wrote nothing).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn run(p: &TestProject, args: &[&str]) -> Run {
    let out = p
        .cmd(args)
        .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
        .output()
        .expect("run fortnight");
    Run { out }
}

/// No signal, exit ≤ 2; when it is 2, stderr names `input` and nothing changed.
#[track_caller]
fn survived(run: &Run, case: &str, input: &str, before: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    assert_eq!(
        run.out.status.signal(),
        None,
        "{case}: killed\n{}",
        run.stderr()
    );
    let code = run.code();
    assert!(
        (0..=2).contains(&code),
        "{case}: exit {code}\n{}",
        run.stderr()
    );
    if code == 2 {
        assert!(
            run.stderr().contains(input),
            "{case}: error does not name {input}\n{}",
            run.stderr()
        );
        assert_eq!(&snapshot(dir), before, "{case}: a failed run wrote files");
    }
}

const ARTICLE: &str =
    "---\ntitle: \"Ferries Return to the Caspian\"\nauthors: [Test Author, 'B. O''Neil']\n\
    date: 2026-11-02\nissue: 2026-11-04\nsection: Field Reports\n---\n\n\
    The ferry between Baku and Aktau runs again after the autumn storms.\n";

const LIST: &str = "email,name,status,since,source,tags\nann@readers-mail.org,Ann,subscribed,2024-01-01,test,a;b\nbo@readers-mail.org,\"Bo, Jr.\",unsubscribed,2024-01-02,test,\n";

fn project() -> TestProject {
    let p = TestProject::new();
    p.write("articles/ferries.md", ARTICLE);
    p.write("subscribers.csv", LIST);
    p
}

#[test]
fn fuzzed_configs_exit_2_naming_the_config_and_write_nothing() {
    let mut rng = Rng::new(0xC0F16);
    let mut p = project();
    for case in 0..60 {
        let text = mutate(&mut rng, BASE_CONFIG.as_bytes());
        p.config_replace(&String::from_utf8_lossy(&text));
        // (invalid UTF-8 too: written raw)
        if case % 7 == 0 {
            p.write("config.toml", &text);
        }
        let before = snapshot(p.path());
        let r = run(&p, &["check"]);
        survived(
            &r,
            &format!("config seed 0xC0F16 case {case}"),
            "config.toml",
            &before,
            p.path(),
        );
    }
}

#[test]
fn fuzzed_articles_and_front_matter_never_crash_and_name_the_file() {
    let mut rng = Rng::new(0xA871C1E);
    let p = project();
    for case in 0..60 {
        let text = mutate(&mut rng, ARTICLE.as_bytes());
        p.write("articles/ferries.md", &text);
        let before = snapshot(p.path());
        let r = run(&p, &["issues"]);
        survived(
            &r,
            &format!("article seed 0xA871C1E case {case}"),
            "articles",
            &before,
            p.path(),
        );
        if r.code() == 2 && r.stderr().contains("cannot be read as articles") {
            assert!(
                r.stderr().contains("ferries.md"),
                "case {case}: {}",
                r.stderr()
            );
        }
    }
}

#[test]
fn fuzzed_subscriber_csv_imports_exit_2_naming_the_file_and_leave_the_list() {
    let mut rng = Rng::new(0xC57);
    let p = project();
    for case in 0..50 {
        let text = mutate(&mut rng, LIST.as_bytes());
        p.write("incoming.csv", &text);
        let before = snapshot(p.path());
        let r = run(&p, &["subscribers", "import", "incoming.csv"]);
        survived(
            &r,
            &format!("csv seed 0xC57 case {case}"),
            "incoming.csv",
            &before,
            p.path(),
        );
        // Restore the list for the next case.
        p.write("subscribers.csv", LIST);
        // And the list itself mutated: every reader of it fails cleanly.
        p.write("subscribers.csv", mutate(&mut rng, LIST.as_bytes()));
        let before = snapshot(p.path());
        let r = run(&p, &["subscribers", "stats"]);
        survived(
            &r,
            &format!("list seed 0xC57 case {case}"),
            "subscribers.csv",
            &before,
            p.path(),
        );
        p.write("subscribers.csv", LIST);
    }
}

#[test]
fn fuzzed_mailboxes_never_crash_bounces() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces");
    let seeds: Vec<Vec<u8>> = ["mixed.mbox", "arf-abuse.eml", "postfix-user-unknown.eml"]
        .iter()
        .map(|f| std::fs::read(fixtures.join(f)).unwrap())
        .collect();
    let mut rng = Rng::new(0xB00CE);
    let p = project();
    for case in 0..45 {
        let seed = &seeds[case % seeds.len()];
        p.write("in.mbox", mutate(&mut rng, seed));
        let before = snapshot(p.path());
        let r = run(&p, &["bounces", "--dry-run", "in.mbox"]);
        survived(
            &r,
            &format!("mailbox seed 0xB00CE case {case}"),
            "in.mbox",
            &before,
            p.path(),
        );
        assert_eq!(
            snapshot(p.path()),
            before,
            "case {case}: a dry run wrote files"
        );
    }
}

#[test]
fn fuzzed_http_requests_never_crash_serve_or_change_the_list() {
    let p = TestProject::new();
    p.write(
        "subscribers.csv",
        "email,name,status,since,source,tags\nanna@example.org,,subscribed,2026-01-01,manual,\n",
    );
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    let seeds = [
        format!("GET /unsubscribe?t={token} HTTP/1.1\r\nHost: analyst.example.org\r\nConnection: close\r\n\r\n"),
        format!("POST /unsubscribe?t=x{token} HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\nConnection: close\r\n\r\nList-Unsubscribe=One-Click"),
        "POST /unsubscribe?t=AAAA HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 90\r\nConnection: close\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n".to_string(),
    ];
    let mut rng = Rng::new(0x47779);
    let list_before = std::fs::read(p.path().join("subscribers.csv")).unwrap();
    for case in 0..150 {
        let seed = &seeds[case % seeds.len()];
        let mut raw = mutate(&mut rng, seed.as_bytes());
        // Never the exact valid one-click POST: the list must stay as it was.
        if raw.windows(token.len()).any(|w| w == token.as_bytes()) && raw.starts_with(b"POST") {
            raw.splice(5..5, b"x".iter().copied());
        }
        if let Some(r) = exchange_with(server.addr, &raw, true) {
            assert!(
                (200..600).contains(&r.status),
                "case {case}: status {}",
                r.status
            );
        }
    }
    assert_eq!(
        std::fs::read(p.path().join("subscribers.csv")).unwrap(),
        list_before,
        "a junk request changed the list"
    );
    // Still alive and correct.
    assert_eq!(one_click(server.addr, &token).status, 200);
    assert_eq!(
        status_of(&p, "anna@example.org"),
        Some(fortnight::subscribers::Status::Unsubscribed)
    );
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains(&token), "{log}");
}
