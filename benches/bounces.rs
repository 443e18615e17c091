//! Bounce processing: recognising one message of each fixture shape, and reading +
//! recognising a 2,000-message mbox (the mailbox of a large list after a bad issue).

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fortnight::bounces::mailbox::for_each_message;
use fortnight::bounces::Recognizer;
use fortnight::config::Config;

const CONFIG: &str = r#"
[publication]
name = "Test Analyst"
base_url = "https://analyst.example.org"
[sender]
from = "The Test Analyst <digest@analyst.example.org>"
bounce = "bounces@analyst.example.org"
list_id = "digest.analyst.example.org"
[unsubscribe]
url = "https://analyst.example.org/unsubscribe?t={token}"
"#;

const FIXTURES: &[&str] = &[
    "postfix-user-unknown.eml",
    "exim-user-unknown.eml",
    "gmail-address-not-found.eml",
    "exchange-recipient-not-found.eml",
    "mailbox-full-2002-02-27.eml",
    "arf-abuse.eml",
    "junk-reader-reply.eml",
];

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces")
}

fn bench(c: &mut Criterion) {
    let config = Config::parse(CONFIG, Path::new("config.toml")).expect("config");
    let recognizer = Recognizer::new(&config);

    let mut group = c.benchmark_group("analyse");
    for name in FIXTURES {
        let bytes = std::fs::read(fixtures().join(name)).expect("fixture");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| recognizer.analyse(bytes))
        });
    }
    group.finish();

    // A 2,000-message mbox made of the fixtures, round robin.
    let dir = tempfile::tempdir().expect("temp dir");
    let mbox = dir.path().join("bounces.mbox");
    let mut text = String::new();
    let bodies: Vec<String> = FIXTURES
        .iter()
        .map(|n| std::fs::read_to_string(fixtures().join(n)).expect("fixture"))
        .collect();
    for i in 0..2000 {
        text.push_str("From MAILER-DAEMON Wed Feb 27 10:15:02 2002\n");
        for line in bodies[i % bodies.len()].lines() {
            if line.trim_start_matches('>').starts_with("From ") {
                text.push('>');
            }
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    std::fs::write(&mbox, &text).expect("write mbox");
    let mut group = c.benchmark_group("mbox");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2000));
    group.bench_function("read+analyse 2000 messages", |b| {
        b.iter(|| {
            let mut n = 0;
            for_each_message(
                &mbox,
                |m| {
                    let a = recognizer.analyse(&m.bytes);
                    n += a.notices.len();
                },
                |_| {},
            )
            .expect("read mbox");
            n
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
