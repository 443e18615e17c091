//! Fuzz-style tests: arbitrary bytes, structured nonsense and mutations of real articles
//! go through the parsers and the loader, which must never panic (any verdict is fine).
//!
//! A small deterministic xorshift generator keeps every run reproducible: a failure names
//! its seed and case number.

use std::path::Path;

use super::load::{parse_file, FileOutcome};

/// xorshift64*: tiny, deterministic, good enough to shake a parser.
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
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const REAL_PAGE: &str = "Georgia Weighs the Cost of Guarding the Pipeline\r\n\r\nWednesday, 27 February 2002\r\n\r\n\r\nPublished in Analytical Articles\r\n\r\nBy Nino Kharadze and Rəşad Əliyev (2/27/2002 issue of the CACI Analyst)\r\n\r\nBACKGROUND: The pipeline has moved from the drawing board to the survey stage.\u{00A0}\r\n\r\nBACKGROUND: The pipeline has moved from the drawing board to the survey stage. Tbilisi has promised a force.\r\n\r\nIMPLICATIONS: The financing gap creates an \u{201C}opening\u{201D}.\r\n\r\nAUTHOR\u{2019}S BIO: Nino Kharadze is a researcher.\r\n\r\nNino Kharadze and Rəşad Əliyev\r\nRead 1,204 times\r\n\r\nVisit also\r\n\r\nStaff Publications\r\n";

const REAL_MARKDOWN: &str = "---\ntitle: \"Manas Air Base\"\nauthors: [Aida Bekova, Гульнара Исмаилова]\ndate: 2002-02-12\nissue: 2002-02-13\nsection: Analytical Articles\nurl: https://example.org/analyst/manas\n---\n\nThe arrival of **coalition** aircraft at [Manas](https://example.org) <b>x</b>.\n\n- a\n- b\n\n> quote\n";

/// Lines a page or front matter might hold, to build structured nonsense from.
const FRAGMENTS: &[&str] = &[
    "Wednesday, 27 February 2002",
    "Monday, 31 February 2002",
    "Sunday, 29 February 2000",
    "27 Feb 9999",
    "2002-02-27",
    "Published in Field Reports",
    "Published in ",
    "Published in.",
    "By ",
    "By (",
    "By )",
    "By A (",
    "By Nino Kharadze (2/27/2002 issue of the CACI Analyst)",
    "By Nino Kharadze (13/45/99999 issue of x)",
    "By Гульнара Исмаилова, Rəşad Əliyev and Aysel Məmmədova",
    "By and and and",
    "By , , ,",
    "Read 4474 times",
    "Read 1,204 times",
    "Read ,,, times",
    "Read 99999999999999999999999999 times",
    "Read times",
    "Nino Kharadze",
    "Visit also",
    "Staff Publications",
    "",
    "",
    "---",
    "+++",
    "title: x",
    "date: 2002-02-12",
    "date = 2002-02-12",
    "issue: 0000-00-00",
    "authors: [",
    "author: {a: b}",
    "draft: true",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "\u{00A0}\u{00A0}\u{200B}",
    "\u{FEFF}",
    "ə",
    "\r",
    "(",
    ")",
    "A body paragraph with some words in it and a curly \u{2019} quote.",
];

fn must_not_panic(rel: &str, bytes: &[u8], seed: u64, case: usize) {
    let outcome = std::panic::catch_unwind(|| parse_file(Path::new(rel), bytes));
    match outcome {
        Ok(FileOutcome::Article(d)) => {
            assert!(
                !d.paragraphs.is_empty(),
                "seed {seed} case {case}: article without body"
            );
        }
        Ok(FileOutcome::Skipped(reason) | FileOutcome::Invalid(reason)) => {
            assert!(!reason.is_empty(), "seed {seed} case {case}: empty reason");
        }
        Err(_) => panic!(
            "seed {seed} case {case}: parsing {rel} panicked on {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(4) {
        let len = b.len().max(1);
        match rng.below(6) {
            0 => {
                // flip a byte
                let i = rng.below(len);
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
            1 => {
                // insert random bytes
                let i = rng.below(len).min(b.len());
                let n = rng.below(8) + 1;
                let extra = rng.bytes(n);
                b.splice(i..i, extra);
            }
            2 => {
                // delete a range
                let i = rng.below(len).min(b.len());
                let j = (i + rng.below(40)).min(b.len());
                b.drain(i..j);
            }
            3 => {
                // insert a fragment line
                let i = rng.below(len).min(b.len());
                let frag = format!("\n{}\n", rng.pick(FRAGMENTS));
                b.splice(i..i, frag.into_bytes());
            }
            4 => b.truncate(rng.below(len)),
            _ => {
                // duplicate a slice
                let i = rng.below(len).min(b.len());
                let j = (i + rng.below(80)).min(b.len());
                let dup = b[i..j].to_vec();
                b.splice(i..i, dup);
            }
        }
    }
    b
}

#[test]
fn arbitrary_bytes_never_panic_the_parsers() {
    let seed = 0xF0F7_2002;
    let mut rng = Rng::new(seed);
    for case in 0..3000 {
        let len = rng.below(300);
        let mut bytes = rng.bytes(len);
        // Bias some cases towards text-like bytes so they get past decoding.
        if case % 2 == 0 {
            for b in &mut bytes {
                *b = b" \n\r\tabcdefgBRP()0123456789,:/-"
                    .get(usize::from(*b) % 31)
                    .copied()
                    .unwrap_or(b'a');
            }
        }
        let rel = rng.pick(&["a.txt", "b.md", "c.markdown"]);
        must_not_panic(rel, &bytes, seed, case);
    }
}

#[test]
fn structured_nonsense_never_panics_the_parsers() {
    let seed = 0x5EED_0001;
    let mut rng = Rng::new(seed);
    for case in 0..3000 {
        let lines = rng.below(16);
        let mut text = String::new();
        for _ in 0..lines {
            text.push_str(rng.pick(FRAGMENTS));
            text.push_str(rng.pick(&["\n", "\r\n", "\r", "\n\n"]));
        }
        let rel = rng.pick(&["a.txt", "b.md"]);
        must_not_panic(rel, text.as_bytes(), seed, case);
    }
}

#[test]
fn mutations_of_real_articles_never_panic_the_parsers() {
    let seed = 0xA271_C1E5;
    let mut rng = Rng::new(seed);
    for case in 0..3000 {
        let (rel, base) = if case % 3 == 0 {
            ("m.md", REAL_MARKDOWN)
        } else {
            ("p.txt", REAL_PAGE)
        };
        let bytes = mutate(&mut rng, base.as_bytes());
        must_not_panic(rel, &bytes, seed, case);
    }
}

#[test]
fn deeply_nested_front_matter_is_parsed_in_bounded_time() {
    // Front matter built from nesting characters (YAML and TOML flow collections, block
    // sequences, quotes): each case is refused or parsed, all of them well under a second
    // each even at tens of thousands of levels (the bounds check runs before the parser).
    let seed = 0xDEE9_0012;
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();
    for case in 0..200 {
        let fence = rng.pick(&["---", "+++"]);
        let mut front = String::from(rng.pick(&["title: ", "title = ", "authors:\n  "]));
        let len = if case % 10 == 0 {
            40_000
        } else {
            rng.below(400)
        };
        for _ in 0..len {
            front.push_str(rng.pick(&["[", "{", "{a: ", "- ", "\"", "'", "]", "}", ",", "a"]));
        }
        let text = format!("{fence}\n{front}\n{fence}\nBody text.\n");
        must_not_panic("n.md", text.as_bytes(), seed, case);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_unmutated_seeds_are_articles() {
    // Guards the mutation test: it must start from files that parse all the way through.
    for (rel, text) in [("p.txt", REAL_PAGE), ("m.md", REAL_MARKDOWN)] {
        match parse_file(Path::new(rel), text.as_bytes()) {
            FileOutcome::Article(d) => assert!(!d.paragraphs.is_empty()),
            _ => panic!("{rel} should parse"),
        }
    }
}

#[test]
fn folders_of_junk_never_panic_the_loader() {
    let seed = 0x10AD_E125;
    let mut rng = Rng::new(seed);
    let publication: crate::config::PublicationConfig =
        toml::from_str("name = \"T\"\nbase_url = \"https://t.example\"\ncadence_days = 14\n")
            .expect("publication config");
    for round in 0..12 {
        let dir = tempfile::tempdir().expect("temp dir");
        for i in 0..rng.below(24) {
            let name = format!(
                "{}{i}.{}",
                rng.pick(&["", ".", "x y ", "ə"]),
                rng.pick(&["txt", "md", "markdown", "TXT", "docx", ""])
            );
            let bytes = match rng.below(3) {
                0 => {
                    let n = rng.below(200);
                    rng.bytes(n)
                }
                1 => mutate(&mut rng, REAL_PAGE.as_bytes()),
                _ => mutate(&mut rng, REAL_MARKDOWN.as_bytes()),
            };
            std::fs::write(dir.path().join(name), bytes).expect("write junk");
        }
        let result = std::panic::catch_unwind(|| {
            super::load::load(dir.path(), &publication, Path::new("config.toml"))
        });
        match result {
            Ok(Ok(catalog)) => {
                assert!(!catalog.issues.is_empty(), "seed {seed} round {round}");
                for a in catalog.articles() {
                    assert!(
                        !a.title.trim().is_empty(),
                        "seed {seed} round {round}: empty title"
                    );
                }
            }
            Ok(Err(e)) => assert!(!format!("{e:#}").is_empty()),
            Err(_) => panic!("seed {seed} round {round}: the loader panicked"),
        }
    }
}
