//! Loading and grouping an articles folder: 1,000 and 5,000 files (twenty years of a
//! biweekly publication at ~10 articles an issue), written once into a temporary folder.
//!
//! Files are realistic in shape and size: 4 in 5 are page text (title, date line,
//! section, byline with an issue marker on most, 5–9 paragraphs with a repeated lead,
//! signature, a trailer with the site navigation), 1 in 5 Markdown with YAML or TOML front
//! matter. What is measured is `Catalog::load` end to end: walk, read, parse, assign, group.
//! The files sit in the page cache after the first iteration (as on an editor's machine).
//!
//! Run: `cargo bench --bench articles`; figures are in BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{Datelike, NaiveDate, TimeDelta};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use fortnight::articles::Catalog;
use fortnight::config::Config;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "government",
    "pipeline",
    "Caspian",
    "reform",
    "border",
    "trade",
    "of",
    "and",
    "in",
    "security",
    "Baku",
    "Tashkent",
    "Astana",
    "Bishkek",
    "Dushanbe",
    "Tbilisi",
    "Yerevan",
    "energy",
    "water",
    "railway",
    "corridor",
    "investment",
    "officials",
    "said",
    "that",
    "regional",
    "cooperation",
    "exports",
    "market",
    "policy",
    "ministry",
    "parliament",
    "to",
    "a",
    "with",
    "for",
    "is",
    "has",
    "new",
    "agreement",
    "transit",
    "customs",
    "port",
];
const SECTIONS: [&str; 3] = ["Analytical Articles", "Field Reports", "News Digest"];
const AUTHORS: &[&str] = &[
    "Nino Kharadze",
    "Aida Bekova",
    "Timur Rakhimov",
    "Rəşad Məmmədov",
    "Гульнара Токтогулова",
    "Aigerim Dzhaksybekova and Tomas Lindqvist",
];

fn sentence(rng: &mut Rng) -> String {
    let n = 12 + rng.below(16);
    let mut s = String::new();
    for i in 0..n {
        let w = WORDS[rng.below(WORDS.len())];
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s.push('.');
    s
}

fn paragraph(rng: &mut Rng) -> String {
    (0..3 + rng.below(3))
        .map(|_| sentence(rng))
        .collect::<Vec<_>>()
        .join(" ")
}

fn page_text(rng: &mut Rng, date: NaiveDate, issue: NaiveDate, n: usize) -> String {
    let mut t = String::new();
    let section = SECTIONS[rng.below(3)];
    if rng.below(4) != 0 {
        let _ = writeln!(t, "Article {n} on {}\n", WORDS[rng.below(WORDS.len())]);
    }
    let _ = writeln!(t, "{}\n\n", date.format("%A, %-d %B %Y"));
    let _ = writeln!(t, "Published in {section}\n");
    let author = AUTHORS[rng.below(AUTHORS.len())];
    let byline = section != "News Digest";
    if byline {
        if rng.below(5) != 0 {
            let _ = writeln!(
                t,
                "By {author} ({}/{}/{} issue of the CACI Analyst)\n",
                issue.month(),
                issue.day(),
                issue.year()
            );
        } else {
            let _ = writeln!(t, "By {author}\n");
        }
    }
    let lead = paragraph(rng);
    let _ = writeln!(t, "{lead}\n");
    let _ = writeln!(t, "{lead} {}\n", paragraph(rng));
    for _ in 0..3 + rng.below(5) {
        let _ = writeln!(t, "{}\n", paragraph(rng));
    }
    if byline {
        let _ = writeln!(t, "{author}");
    }
    let _ = writeln!(t, "Read {} times\n", 100 + rng.below(5000));
    t.push_str("Visit also\n\n\n\nStaff Publications\n\n");
    for _ in 0..8 {
        let _ = writeln!(t, "Silk Road Paper {}\n", sentence(rng));
    }
    t.push_str("Sign up for upcoming events, latest news and articles from the CACI Analyst\n");
    t
}

fn markdown(rng: &mut Rng, date: NaiveDate, issue: NaiveDate, n: usize) -> String {
    let mut t = String::new();
    let section = SECTIONS[rng.below(2)];
    if rng.below(2) == 0 {
        let _ = writeln!(
            t,
            "---\ntitle: \"Markdown article {n}\"\nauthor: {}\ndate: {date}\nissue: {issue}\nsection: {section}\n---\n",
            AUTHORS[rng.below(3)]
        );
    } else {
        let _ = writeln!(
            t,
            "+++\ntitle = \"Markdown article {n}\"\nauthors = [\"{}\"]\ndate = {date}\nsection = \"{section}\"\n+++\n",
            AUTHORS[rng.below(3)]
        );
    }
    for i in 0..5 + rng.below(4) {
        if i == 2 {
            t.push_str("## A heading\n\n- a list item with *emphasis*\n- another with a [link](https://example.org)\n\n");
        }
        let _ = writeln!(t, "{}\n", paragraph(rng));
    }
    t
}

/// Writes `count` articles spread over biweekly issues from 2006-01-04 on, ten an issue.
fn write_folder(dir: &Path, count: usize) {
    let mut rng = Rng(0x00C0_FFEE_1234_5678);
    let first = NaiveDate::from_ymd_opt(2006, 1, 4).expect("valid date");
    for n in 0..count {
        let issue = first + TimeDelta::days(14 * (n / 10) as i64);
        let date = issue - TimeDelta::days(rng.below(13) as i64);
        let (name, text) = if n % 5 == 4 {
            (
                format!("{n:05}-article.md"),
                markdown(&mut rng, date, issue, n),
            )
        } else {
            (
                format!("{n:05}-article.txt"),
                page_text(&mut rng, date, issue, n),
            )
        };
        std::fs::write(dir.join(name), text).expect("write article");
    }
}

fn config_for(dir: &Path) -> Config {
    let text = format!(
        "[publication]\nname = \"Bench\"\nbase_url = \"https://analyst.example.org\"\narticles_dir = '{}'\n\n[sender]\nfrom = \"B <d@analyst.example.org>\"\nlist_id = \"d.analyst.example.org\"\n",
        dir.display()
    );
    Config::parse(&text, &dir.join("config.toml")).expect("bench config")
}

fn load_and_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("articles_load_and_group");
    group.sample_size(10);
    for count in [1_000usize, 5_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let articles = dir.path().join("articles");
        std::fs::create_dir(&articles).expect("articles dir");
        write_folder(&articles, count);
        let config = config_for(&articles);
        let catalog = Catalog::load(&config).expect("the generated folder loads");
        assert_eq!(
            catalog.articles().count(),
            count,
            "every generated file is an article"
        );
        assert!(catalog.skipped.is_empty());
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &config, |b, config| {
            b.iter(|| Catalog::load(config).expect("load"))
        });
    }
    group.finish();
}

criterion_group!(benches, load_and_group);

/// `FORTNIGHT_BENCH_WRITE=DIR [FORTNIGHT_BENCH_FILES=N] cargo bench --bench articles` writes
/// the generated folder (`DIR/articles/`, N files, default 5,000) and `DIR/config.toml`
/// instead of benchmarking, so that the real binary can be timed on it
/// (`perf stat fortnight --config DIR/config.toml issues`).
fn main() {
    if let Some(dir) = std::env::var_os("FORTNIGHT_BENCH_WRITE") {
        let dir = std::path::PathBuf::from(dir);
        let count = std::env::var("FORTNIGHT_BENCH_FILES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(5_000);
        let articles = dir.join("articles");
        std::fs::create_dir_all(&articles).expect("create the articles folder");
        write_folder(&articles, count);
        let config = "[publication]\nname = \"Bench\"\nbase_url = \"https://analyst.example.org\"\n\n[sender]\nfrom = \"B <d@analyst.example.org>\"\nlist_id = \"d.analyst.example.org\"\n";
        std::fs::write(dir.join("config.toml"), config).expect("write config.toml");
        println!("wrote {count} articles to {}", articles.display());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
