//! Subscriber list benchmarks: the address policy, name normalisation, and loading a
//! 1,000,000-row list the two ways a send can (all rows in memory, or streamed).
//!
//! `cargo bench --bench subscribers`. Import end to end (with peak RSS) is measured by
//! `scripts/bench-subscribers` on the release binary; see BENCHMARKS.md.

use std::io::Write;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use fortnight::subscribers::{
    normalize_name, CompactList, Status, SubscriberEmail, SubscriberList,
};

const ROWS: usize = 1_000_000;

fn addresses() -> Vec<String> {
    (0..1000)
        .map(|i| match i % 4 {
            0 => format!("reader{i}@mail{}.example.org", i % 50),
            1 => format!("First.Last{i}@Example.COM"),
            2 => format!("user+tag{i}@bücher{}.de", i % 7),
            _ => format!("not-an-address-{i}"),
        })
        .collect()
}

fn write_list(path: &std::path::Path) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create list"));
    writeln!(w, "email,name,status,since,source,tags,country").expect("write");
    for i in 0..ROWS {
        let status = if i % 20 == 0 {
            "unsubscribed"
        } else {
            "subscribed"
        };
        let tags = if i % 10 == 0 { "news;analysis" } else { "" };
        writeln!(
            w,
            "reader{i:07}@mail{:02}.example.org,Reader {i},{status},2024-01-{:02},import:plain,{tags},GE",
            i % 50,
            i % 28 + 1
        )
        .expect("write");
    }
    w.flush().expect("flush");
}

fn address_policy(c: &mut Criterion) {
    let input = addresses();
    c.bench_function("parse 1000 addresses (mixed, a quarter IDN)", |b| {
        b.iter(|| {
            input
                .iter()
                .filter(|a| SubscriberEmail::parse(black_box(a)).is_ok())
                .count()
        })
    });
    let names = [
        "Anna Petrova",
        "Müller, Lena",
        "Eve\r\nBcc: all@example.org",
    ];
    c.bench_function("normalise 3 names", |b| {
        b.iter(|| {
            names
                .iter()
                .map(|n| normalize_name(black_box(n)).len())
                .sum::<usize>()
        })
    });
}

/// Resident memory of this process in MB (Linux), to show what a loaded list holds.
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn million_row_list(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("subscribers.csv");
    write_list(&path);
    if let Some(before) = rss_mb() {
        let list = CompactList::load(&path).expect("load");
        let after = rss_mb().unwrap_or(before);
        eprintln!(
            "CompactList::load of {} rows holds about {:.0} MB ({:.0} bytes a row)",
            list.len(),
            after - before,
            (after - before) * 1024.0 * 1024.0 / list.len() as f64
        );
        drop(list);
        let before = rss_mb().unwrap_or(0.0);
        let list = SubscriberList::load(&path).expect("load");
        let after = rss_mb().unwrap_or(before);
        eprintln!(
            "SubscriberList::load of {} rows holds about {:.0} MB ({:.0} bytes a row)",
            list.subscribers.len(),
            after - before,
            (after - before) * 1024.0 * 1024.0 / list.subscribers.len() as f64
        );
    }
    let mut group = c.benchmark_group("1,000,000-row list");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("SubscriberList::load", |b| {
        b.iter_batched(
            || (),
            |_| SubscriberList::load(&path).expect("load"),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("CompactList::load", |b| {
        b.iter_batched(
            || (),
            |_| CompactList::load(&path).expect("load"),
            BatchSize::PerIteration,
        )
    });
    group.bench_function(
        "CompactList::load + build every subscribed Subscriber",
        |b| {
            b.iter(|| {
                let list = CompactList::load(&path).expect("load");
                list.subscribed().map(|s| s.name.len()).sum::<usize>()
            })
        },
    );
    group.bench_function("SubscriberList::for_each (subscribed only)", |b| {
        b.iter(|| {
            let mut n = 0usize;
            SubscriberList::for_each(&path, |s| {
                if s.status == Status::Subscribed {
                    n += 1;
                }
                Ok(())
            })
            .expect("stream");
            n
        })
    });
    group.finish();
}

criterion_group!(benches, address_policy, million_row_list);
criterion_main!(benches);
