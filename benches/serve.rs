//! The unsubscribe endpoint under load, in-process on 127.0.0.1:0 over real TCP: 200
//! simultaneous one-click POSTs for different subscribers of a 10,000-row list (each
//! request answered only once its change is on disk), and sequential confirmation GETs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fortnight::config::Config;
use fortnight::serve::{App, RequestRecord, ServeLog, ServeOptions};
use fortnight::subscribers::SubscriberEmail;
use fortnight::token::{Keyring, UnsubscribeKey};

/// The bench measures the server, not a terminal: requests are not logged.
struct QuietLog;

impl ServeLog for QuietLog {
    fn request(&self, _: &RequestRecord<'_>) {}
    fn warning(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}

const LIST_ID: &str = "digest.analyst.example.org";
const SUBSCRIBERS: usize = 10_000;
const CONCURRENT: usize = 200;

fn post(addr: SocketAddr, token: &str) -> u16 {
    let body = "List-Unsubscribe=One-Click";
    let raw = format!(
        "POST /unsubscribe?t={token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &raw)
}

fn get(addr: SocketAddr, token: &str) -> u16 {
    exchange(
        addr,
        &format!("GET /unsubscribe?t={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

fn exchange(addr: SocketAddr, raw: &str) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(raw.as_bytes()).expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let list_path = dir.path().join("subscribers.csv");
    let mut list = String::from("email,name,status,since,source,tags\n");
    let addresses: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| format!("reader{i:05}@example.org"))
        .collect();
    for a in &addresses {
        list.push_str(&format!("{a},,subscribed,2026-01-01,manual,\n"));
    }
    std::fs::write(&list_path, &list).expect("write list");
    let config_text = r#"
[publication]
name = "Bench Analyst"
base_url = "https://analyst.example.org"
[sender]
from = "Bench <digest@analyst.example.org>"
list_id = "digest.analyst.example.org"
[unsubscribe]
url = "https://analyst.example.org/unsubscribe?t={token}"
[serve]
requests_per_minute = 0
"#;
    let config = Config::parse(config_text, &dir.path().join("config.toml")).expect("config");
    let key = UnsubscribeKey::new("k1", &[42u8; 32]).expect("key");
    let tokens: Vec<String> = addresses
        .iter()
        .map(|a| key.mint(LIST_ID, &SubscriberEmail::parse(a).expect("address")))
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send addr");
            let options = ServeOptions::from_config(&config).expect("options");
            let app = App::start(
                &config,
                Keyring::new(key, vec![]),
                options,
                Arc::new(QuietLog),
            )
            .await
            .expect("start");
            fortnight::serve::run(listener, app, async {
                let _ = stop_rx.await;
            })
            .await
            .expect("serve");
        })
    });
    let addr = addr_rx.recv().expect("server address");
    // let the index build finish
    while get(addr, &tokens[0]) != 200 {
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut group = c.benchmark_group("serve");
    group.sample_size(10);
    group.bench_function(
        "GET confirmation page (sequential, new connection each)",
        |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % SUBSCRIBERS;
                assert_eq!(get(addr, &tokens[i]), 200);
            })
        },
    );
    group.bench_function("200 concurrent one-click POSTs, 10k-row list", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::fs::write(&list_path, &list).expect("reset list");
                let barrier = Arc::new(Barrier::new(CONCURRENT + 1));
                let handles: Vec<_> = tokens[..CONCURRENT]
                    .iter()
                    .cloned()
                    .map(|t| {
                        let barrier = barrier.clone();
                        std::thread::spawn(move || {
                            barrier.wait();
                            post(addr, &t)
                        })
                    })
                    .collect();
                barrier.wait();
                let started = Instant::now();
                for h in handles {
                    assert_eq!(h.join().expect("client thread"), 200);
                }
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    let _ = stop_tx.send(());
    server.join().expect("server thread");
}

criterion_group!(benches, bench);
criterion_main!(benches);
