//! Personalised messages built per second on one core: render (the digest's fast path:
//! segments filled with the subscriber's fields) + MIME + unsubscribe token + formatting to
//! bytes, without DKIM and signed with ed25519 or rsa-2048, for digests of 10, 25 and
//! 100 KB of HTML. `naive_lettre` is the reference the issue measured: the full texts filled
//! per subscriber and handed to lettre's builder, which quoted-printable-encodes both parts
//! for every copy.
//!
//! Run: `cargo bench --bench message` (criterion; one thread, so one core).
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall-clock
//! time: the project machine's 2 cores are shared with other builds, and CPU time is what
//! "per second on one core" means. `FORTNIGHT_BENCH_CLOCK=wall` measures wall-clock time.

#[path = "../tests/fixtures/sample_digest.rs"]
mod sample_digest;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use fortnight::base::IssueDate;
use fortnight::config::Config;
use fortnight::message::Composer;
use fortnight::subscribers::{Status, Subscriber, SubscriberEmail};
use fortnight::token::{Keyring, UnsubscribeKey};

const CONFIG: &str = r#"[publication]
name = "Central Asia-Caucasus Analyst"
base_url = "https://analyst.example.org"

[sender]
from = "The Analyst <digest@analyst.example.org>"
reply_to = "editors@analyst.example.org"
bounce = "bounces@analyst.example.org"
list_id = "digest.analyst.example.org"
postal_address = "Example Institute, 1 Example Row, Washington, DC 20000"

[unsubscribe]
url = "https://analyst.example.org/unsubscribe?t={token}"
mailto = "unsubscribe@analyst.example.org"
"#;

fn config(key: Option<&str>) -> Config {
    let mut text = CONFIG.to_string();
    if let Some(key) = key {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dkim")
            .join(key);
        text.push_str(&format!(
            "\n[dkim]\ndomain = \"analyst.example.org\"\nselector = \"fn2026\"\nprivate_key = \"{}\"\n",
            path.display()
        ));
    }
    Config::parse(&text, Path::new("config.toml")).expect("bench config")
}

fn subscribers(n: usize) -> Vec<Subscriber> {
    const NAMES: [&str; 4] = ["Anna Petrova", "Zoë Özil", "Мурат Аманов", "Doe, John"];
    (0..n)
        .map(|i| Subscriber {
            email: SubscriberEmail::parse(&format!("reader.{i}@example{}.org", i % 17)).unwrap(),
            name: NAMES[i % NAMES.len()].to_string(),
            status: Status::Subscribed,
            since: String::new(),
            source: String::new(),
            tags: vec![],
            attrs: BTreeMap::new(),
        })
        .collect()
}

fn composer(key: Option<&str>, html_kb: usize) -> Composer {
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2002-02-27T09:30:00Z")
        .unwrap()
        .into();
    Composer::new(
        &config(key),
        IssueDate::parse("2002-02-27").unwrap(),
        Arc::new(sample_digest::digest(html_kb * 1000)),
        Keyring::new(UnsubscribeKey::new("k1", &[7u8; 48]).unwrap(), vec![]),
        now,
    )
    .expect("composer")
}

/// CPU time consumed by the calling thread, in nanoseconds.
///
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` through rustix's safe wrapper
/// (the package forbids `unsafe`, benches included; rustix is already in the tree via tempfile).
fn thread_cpu_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Criterion measurement: the benchmark thread's CPU time.
struct ThreadCpuTime;

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else {
            (1e-6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match *throughput {
            Throughput::Elements(n) => n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n as f64,
        };
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        "elem/s (cpu)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

fn bench_compose<M: Measurement>(c: &mut Criterion<M>) {
    let subs = subscribers(1024);
    let mut group = c.benchmark_group("compose");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (label, key) in [
        ("no_dkim", None),
        ("ed25519", Some("ed25519.pem")),
        ("rsa2048", Some("rsa2048.pem")),
    ] {
        for kb in [10, 25, 100] {
            let composer = composer(key, kb);
            let mut i = 0;
            group.bench_function(BenchmarkId::new(label, format!("{kb}KB")), |b| {
                b.iter(|| {
                    i = (i + 1) % subs.len();
                    black_box(composer.compose(&subs[i]).expect("compose").bytes.len())
                })
            });
        }
    }
    group.finish();
}

/// The issue's reference: fill the whole texts per subscriber, then lettre's builder.
fn bench_naive_lettre<M: Measurement>(c: &mut Criterion<M>) {
    use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
    use lettre::Message;

    let subs = subscribers(1024);
    let key = UnsubscribeKey::new("k1", &[7u8; 48]).unwrap();
    let mut group = c.benchmark_group("naive_lettre");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for kb in [10, 25, 100] {
        let (subject, html, text) = sample_digest::parts(kb * 1000);
        let subject = sample_digest::fill(&subject, "", "", "", false);
        let mut i = 0;
        group.bench_function(BenchmarkId::new("no_dkim", format!("{kb}KB")), |b| {
            b.iter(|| {
                i = (i + 1) % subs.len();
                let s = &subs[i];
                let token = key.mint("digest.analyst.example.org", &s.email);
                let url = format!("https://analyst.example.org/unsubscribe?t={token}");
                let html = sample_digest::fill(&html, &s.name, s.email.as_str(), &url, true);
                let text = sample_digest::fill(&text, &s.name, s.email.as_str(), &url, false);
                let m = Message::builder()
                    .from(
                        "The Analyst <digest@analyst.example.org>"
                            .parse::<Mailbox>()
                            .unwrap(),
                    )
                    .to(Mailbox::new(
                        Some(s.name.clone()),
                        s.email.as_str().parse().unwrap(),
                    ))
                    .subject(subject.clone())
                    .message_id(Some("<20020227.x@analyst.example.org>".into()))
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_PLAIN)
                                    .body(text),
                            )
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_HTML)
                                    .body(html),
                            ),
                    )
                    .unwrap();
                black_box(m.formatted().len())
            })
        });
    }
    group.finish();
}

fn run<M: Measurement>(mut c: Criterion<M>) {
    bench_compose(&mut c);
    bench_naive_lettre(&mut c);
}

fn main() {
    if std::env::var("FORTNIGHT_BENCH_CLOCK").as_deref() == Ok("wall") {
        run(Criterion::<WallTime>::default().configure_from_args());
    } else {
        run(Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args());
    }
    Criterion::default().configure_from_args().final_summary();
}
