//! Personalised renders per second (subject + HTML + text for one subscriber) on one core,
//! for the twelve-article sample issue: the fast path (render once, substitute) against a
//! full Tera render per copy (the fallback), plus the one-off cost of preparing the issue.
//!
//! Run: `cargo bench --bench render` (figures in BENCHMARKS.md, "## Digest").

#[path = "../tests/fixtures/sample_issue.rs"]
#[allow(dead_code)]
mod fixture;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fortnight::digest::{Digest, RenderPath};

fn bench(c: &mut Criterion) {
    let config = fixture::config();
    let issue = fixture::sample_issue();
    let digest = Digest::prepare(&config, &issue, fixture::now()).expect("prepare");
    assert_eq!(digest.path(), RenderPath::Fast);
    let subscriber = fixture::subscriber("anna.petrova@example.org", "Anna Petrova");
    let url = "https://analyst.example.org/unsubscribe?t=AQJrMQ3x9vJ0c2XbV1lmb0Q2bnR0c1d4";
    let sample = digest.render_for(&subscriber, url).expect("render");
    eprintln!(
        "sample copy: html {} bytes, text {} bytes, subject {:?}",
        sample.html.len(),
        sample.text.len(),
        sample.subject
    );

    let mut g = c.benchmark_group("personalised copy (12-article issue)");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fast path (substitution)", |b| {
        b.iter(|| {
            digest
                .render_for(black_box(&subscriber), black_box(url))
                .expect("render")
        })
    });
    g.sample_size(20);
    g.bench_function("full Tera render (fallback)", |b| {
        b.iter(|| {
            digest
                .render_full_for(black_box(&subscriber), black_box(url))
                .expect("render")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("once per issue");
    g.sample_size(10);
    g.bench_function("prepare (load templates, marker render, 2 probes)", |b| {
        b.iter(|| Digest::prepare(&config, black_box(&issue), fixture::now()).expect("prepare"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
