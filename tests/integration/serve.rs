//! Integration tests for `serve`: the real binary on 127.0.0.1:0, spoken to over raw
//! HTTP/1.1 (a few lines of TcpStream; no HTTP client dependency).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fortnight::subscribers::{Status, SubscriberEmail, SubscriberList};
use fortnight::token::UnsubscribeKey;

use crate::support::{TestProject, TEST_UNSUBSCRIBE_KEY};

const LIST_ID: &str = "digest.analyst.example.org";
const HEADER: &str = "email,name,status,since,source,tags\n";

pub fn token_for(address: &str) -> String {
    let key = UnsubscribeKey::new("k1", TEST_UNSUBSCRIBE_KEY.as_bytes()).expect("test key");
    key.mint(
        LIST_ID,
        &SubscriberEmail::parse(address).expect("test address"),
    )
}

pub fn list_csv(rows: &[(&str, &str)]) -> String {
    let mut s = HEADER.to_string();
    for (email, status) in rows {
        s.push_str(&format!("{email},,{status},2026-01-01,manual,\n"));
    }
    s
}

pub fn status_of(project: &TestProject, address: &str) -> Option<Status> {
    let list = SubscriberList::load(&project.path().join("subscribers.csv")).expect("list loads");
    let wanted = SubscriberEmail::parse(address).expect("address");
    list.subscribers
        .iter()
        .find(|s| s.email == wanted)
        .map(|s| s.status)
}

/// A running `fortnight serve`; killed (by its pid) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(project: &TestProject) -> Server {
        let mut child = project
            .cmd(&["serve", "--listen", "127.0.0.1:0"])
            .env("FORTNIGHT_UNSUBSCRIBE_KEY", TEST_UNSUBSCRIBE_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fortnight serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve did not start; stderr:\n{}", log.lock().unwrap());
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .expect("listening address");
        Server { child, addr, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM (to this child's pid only) and waits for the exit code.
    pub fn terminate(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
        let code = self.child.wait().expect("wait").code().unwrap_or(-1);
        std::thread::sleep(Duration::from_millis(50));
        (code, self.log())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `raw` and reads until the server closes; `None` if it closed without a reply.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Option<Reply> {
    exchange_with(addr, raw, false)
}

/// Like [`exchange`]; `half_close` ends the client's side after writing (so that junk
/// which is not a whole request does not wait for the server's header timeout).
pub fn exchange_with(addr: SocketAddr, raw: &[u8], half_close: bool) -> Option<Reply> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer and close before reading everything (a huge body): ignore
    // write errors and read what it said.
    let _ = s.write_all(raw);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_string(),
    })
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    let ct = if content_type.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {content_type}\r\n")
    };
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: analyst.example.org\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, raw.as_bytes()).expect("a reply")
}

pub fn one_click(addr: SocketAddr, token: &str) -> Reply {
    request(
        addr,
        "POST",
        &format!("/unsubscribe?t={token}"),
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
    )
}

fn project_with(rows: &[(&str, &str)]) -> TestProject {
    let p = TestProject::new();
    p.write("subscribers.csv", list_csv(rows));
    p
}

const READERS: &[(&str, &str)] = &[
    ("anna@example.org", "subscribed"),
    ("boris@example.org", "subscribed"),
    ("gone@example.org", "bounced"),
];

#[test]
fn one_click_post_unsubscribes_and_answers_200_without_redirect() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let r = one_click(server.addr, &token_for("anna@example.org"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Location"), None);
    assert!(r.body.contains("unsubscribed"), "{}", r.body);
    assert!(
        !r.body.contains("anna@example.org"),
        "page shows the whole address"
    );
    assert_eq!(
        status_of(&p, "anna@example.org"),
        Some(Status::Unsubscribed)
    );
    assert_eq!(status_of(&p, "boris@example.org"), Some(Status::Subscribed));
    assert_eq!(status_of(&p, "gone@example.org"), Some(Status::Bounced));
}

#[test]
fn one_click_post_as_multipart_form_data_unsubscribes() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let body = "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0undary--\r\n";
    let r = request(
        server.addr,
        "POST",
        &format!("/unsubscribe?t={}", token_for("boris@example.org")),
        "multipart/form-data; boundary=b0undary",
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        status_of(&p, "boris@example.org"),
        Some(Status::Unsubscribed)
    );
}

#[test]
fn get_shows_a_confirmation_page_with_a_post_button_and_changes_nothing() {
    let p = project_with(READERS);
    let before = p.read("subscribers.csv");
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    let r = request(
        server.addr,
        "GET",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("<form method=\"post\""), "{}", r.body);
    assert!(
        r.body
            .contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("a***@example.org"), "{}", r.body);
    let head = request(
        server.addr,
        "HEAD",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    assert_eq!(head.status, 200);
    assert_eq!(p.read("subscribers.csv"), before, "a GET changed the list");
    assert_eq!(status_of(&p, "anna@example.org"), Some(Status::Subscribed));
}

#[test]
fn the_confirmation_button_posts_what_the_endpoint_accepts() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    let page = request(
        server.addr,
        "GET",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    // A browser submits the form to the page's own URL with its hidden field.
    let field = page
        .body
        .split("<input type=\"hidden\" name=\"")
        .nth(1)
        .and_then(|r| r.split_once("\" value=\""))
        .map(|(name, rest)| {
            (
                name.to_string(),
                rest.split('"').next().unwrap().to_string(),
            )
        })
        .expect("hidden field");
    let r = request(
        server.addr,
        "POST",
        &format!("/unsubscribe?t={token}"),
        "application/x-www-form-urlencoded",
        &format!("{}={}", field.0, field.1),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        status_of(&p, "anna@example.org"),
        Some(Status::Unsubscribed)
    );
}

#[test]
fn a_repeated_post_is_harmless() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    assert_eq!(one_click(server.addr, &token).status, 200);
    let after_first = p.read("subscribers.csv");
    let again = one_click(server.addr, &token);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.header("Location"), None);
    assert_eq!(p.read("subscribers.csv"), after_first);
    assert_eq!(
        status_of(&p, "anna@example.org"),
        Some(Status::Unsubscribed)
    );
    // A one-click for an address that bounced leaves `bounced` in place.
    assert_eq!(
        one_click(server.addr, &token_for("gone@example.org")).status,
        200
    );
    assert_eq!(status_of(&p, "gone@example.org"), Some(Status::Bounced));
}

#[test]
fn bad_tokens_and_bad_requests_change_nothing() {
    let p = project_with(READERS);
    let before = p.read("subscribers.csv");
    let server = Server::start(&p);
    let good = token_for("anna@example.org");
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other_list = UnsubscribeKey::new("k1", TEST_UNSUBSCRIBE_KEY.as_bytes())
        .unwrap()
        .mint(
            "other.example.org",
            &SubscriberEmail::parse("anna@example.org").unwrap(),
        );
    let other_key = UnsubscribeKey::new("k1", &[7u8; 40]).unwrap().mint(
        LIST_ID,
        &SubscriberEmail::parse("anna@example.org").unwrap(),
    );
    let stranger = token_for("stranger@example.org");
    for bad in [
        flipped.as_str(),
        &good[..good.len() - 2],
        other_list.as_str(),
        other_key.as_str(),
        stranger.as_str(),
        "not-a-token",
        "%00%ff%fe",
        "",
    ] {
        let r = one_click(server.addr, bad);
        assert_eq!(r.status, 400, "token {bad:?}: {r:?}");
        assert!(
            r.body.contains("not valid") || r.body.contains("incomplete"),
            "{}",
            r.body
        );
        let g = request(server.addr, "GET", &format!("/unsubscribe?t={bad}"), "", "");
        assert_eq!(g.status, 400, "GET token {bad:?}");
    }
    // no token at all
    let r = request(
        server.addr,
        "POST",
        "/unsubscribe",
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(r.status, 400);
    // a valid token without the one-click body
    let r = request(
        server.addr,
        "POST",
        &format!("/unsubscribe?t={good}"),
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=Yes-Please",
    );
    assert_eq!(r.status, 400);
    assert_eq!(p.read("subscribers.csv"), before, "the list changed");
}

#[test]
fn two_hundred_concurrent_posts_for_different_subscribers_all_land() {
    let mut p = TestProject::new();
    p.config_append("[serve]\nrequests_per_minute = 0\n");
    let addresses: Vec<String> = (0..200)
        .map(|i| format!("reader{i:03}@example.org"))
        .collect();
    let mut rows: Vec<(&str, &str)> = addresses
        .iter()
        .map(|a| (a.as_str(), "subscribed"))
        .collect();
    rows.push(("stays@example.org", "subscribed"));
    p.write("subscribers.csv", list_csv(&rows));
    let server = Server::start(&p);
    let addr = server.addr;
    let barrier = Arc::new(std::sync::Barrier::new(addresses.len()));
    let handles: Vec<_> = addresses
        .iter()
        .map(|a| {
            let token = token_for(a);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                one_click(addr, &token).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let list = SubscriberList::load(&p.path().join("subscribers.csv")).expect("the list is valid");
    assert_eq!(list.subscribers.len(), 201);
    let unsubscribed = list
        .subscribers
        .iter()
        .filter(|s| s.status == Status::Unsubscribed)
        .count();
    assert_eq!(unsubscribed, 200);
    assert_eq!(status_of(&p, "stays@example.org"), Some(Status::Subscribed));
}

#[test]
fn junk_requests_do_not_crash_the_server() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let addr = server.addr;
    let token = token_for("anna@example.org");

    // a body over the limit, declared
    let big = "x".repeat(64 * 1024);
    let r = request(
        addr,
        "POST",
        &format!("/unsubscribe?t={token}"),
        "application/x-www-form-urlencoded",
        &big,
    );
    assert_eq!(r.status, 413);
    // a body over the limit, chunked (no length given)
    let mut raw = format!("POST /unsubscribe?t={token} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes();
    for _ in 0..20 {
        raw.extend_from_slice(format!("{:x}\r\n{}\r\n", 1024, "y".repeat(1024)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(exchange(addr, &raw).map(|r| r.status), Some(413));
    // methods the endpoint does not serve
    for m in ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
        let r = request(addr, m, &format!("/unsubscribe?t={token}"), "", "");
        assert_eq!(r.status, 405, "{m}");
    }
    let r = request(addr, "DELETE", "/elsewhere", "", "");
    assert_eq!(r.status, 405);
    // other paths
    assert_eq!(request(addr, "GET", "/", "", "").status, 404);
    assert_eq!(
        request(addr, "GET", "/unsubscribe/../etc/passwd", "", "").status,
        404
    );
    // garbage on the wire: the server answers 400 or closes; it must not die
    for junk in [
        &b"\x00\x01\x02\x03\xff\xfe\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /unsubscribe?t=x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /unsubscribe?t=x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
        b"\r\n\r\n\r\n",
    ] {
        if let Some(r) = exchange_with(addr, junk, true) {
            assert!(r.status >= 400, "{junk:?} got {}", r.status);
        }
    }
    let huge_header = format!(
        "GET /unsubscribe?t={token} HTTP/1.1\r\nX-Junk: {}\r\n\r\n",
        "z".repeat(100_000)
    );
    if let Some(r) = exchange(addr, huge_header.as_bytes()) {
        assert!(r.status >= 400);
    }
    // a connection that sends nothing and goes away
    drop(TcpStream::connect(addr).unwrap());
    // still alive and still correct
    let r = one_click(addr, &token);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        status_of(&p, "anna@example.org"),
        Some(Status::Unsubscribed)
    );
}

#[test]
fn a_subscriber_added_after_startup_can_unsubscribe() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let mut rows = READERS.to_vec();
    rows.push(("newcomer@example.org", "subscribed"));
    p.write("subscribers.csv", list_csv(&rows));
    let r = one_click(server.addr, &token_for("newcomer@example.org"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        status_of(&p, "newcomer@example.org"),
        Some(Status::Unsubscribed)
    );
}

#[test]
fn too_many_requests_from_one_client_are_refused_with_retry_after() {
    let mut p = project_with(READERS);
    p.config_append("[serve]\nrequests_per_minute = 5\n");
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    let statuses: Vec<u16> = (0..8)
        .map(|_| {
            request(
                server.addr,
                "GET",
                &format!("/unsubscribe?t={token}"),
                "",
                "",
            )
            .status
        })
        .collect();
    assert_eq!(&statuses[..5], &[200; 5]);
    assert_eq!(statuses[7], 429, "{statuses:?}");
    let r = request(
        server.addr,
        "GET",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    assert!(r.header("Retry-After").is_some(), "{r:?}");
}

#[test]
fn the_log_has_one_line_per_request_and_no_token_or_address() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    request(
        server.addr,
        "GET",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    one_click(server.addr, &token);
    one_click(server.addr, "bogus");
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" GET /unsubscribe ") || l.contains(" POST /unsubscribe "))
        .collect();
    assert_eq!(requests.len(), 3, "{log}");
    assert!(
        requests[0].contains("GET /unsubscribe 200 confirm-page"),
        "{log}"
    );
    assert!(
        requests[1].contains("POST /unsubscribe 200 unsubscribed"),
        "{log}"
    );
    assert!(
        requests[2].contains("POST /unsubscribe 400 invalid-token"),
        "{log}"
    );
    assert!(!log.contains(&token), "{log}");
    assert!(!log.contains("anna@"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn serve_refuses_to_start_without_the_key() {
    let p = project_with(READERS);
    let r = p.run(&["serve", "--listen", "127.0.0.1:0"]);
    r.code_is(2);
    assert!(
        r.stderr().contains("FORTNIGHT_UNSUBSCRIBE_KEY"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_token_of_an_address_removed_after_startup_gets_400() {
    let p = project_with(READERS);
    let server = Server::start(&p);
    // Our own unsubscribe first: the index stays valid and keeps answering.
    assert_eq!(
        one_click(server.addr, &token_for("boris@example.org")).status,
        200
    );
    let rows: Vec<(&str, &str)> = READERS
        .iter()
        .copied()
        .filter(|(e, _)| *e != "anna@example.org")
        .collect();
    p.write("subscribers.csv", list_csv(&rows));
    let token = token_for("anna@example.org");
    let get = request(
        server.addr,
        "GET",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    assert_eq!(get.status, 400, "{get:?}");
    let post = one_click(server.addr, &token);
    assert_eq!(post.status, 400, "{post:?}");
    assert!(!post.body.contains("is unsubscribed"), "{}", post.body);
    assert_eq!(status_of(&p, "anna@example.org"), None);
}

#[test]
fn path_tokens_are_never_logged_whatever_the_spelling() {
    let mut p = project_with(READERS);
    let config = crate::support::BASE_CONFIG.replace(
        "url = \"https://analyst.example.org/unsubscribe?t={token}\"",
        "url = \"https://analyst.example.org/u/{token}\"",
    );
    p.config_replace(&config);
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    for target in [
        format!("/u/{token}"),
        format!("//u/{token}"),
        format!("/./u/{token}"),
        format!("/u%2F{token}"),
        format!("/x/{token}/y"),
    ] {
        request(server.addr, "GET", &target, "", "");
    }
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains(&token), "{log}");
    assert!(!log.contains(&token[..12]), "{log}");
    assert!(log.contains("{redacted}"), "{log}");
}

/// Eight GETs from this (loopback) client, each claiming another address in the header.
fn rotating_forwarded_for(server: &Server) -> Vec<u16> {
    let token = token_for("anna@example.org");
    (0..8)
        .map(|i| {
            let raw = format!(
                "GET /unsubscribe?t={token} HTTP/1.1\r\nHost: analyst.example.org\r\nX-Forwarded-For: 203.0.113.{i}\r\nConnection: close\r\n\r\n"
            );
            exchange(server.addr, raw.as_bytes()).expect("a reply").status
        })
        .collect()
}

#[test]
fn client_ip_header_is_believed_only_from_trusted_proxies() {
    // Default: a proxy on loopback is trusted, so each forwarded address has its own bucket.
    let mut p = project_with(READERS);
    p.config_append("[serve]\nrequests_per_minute = 3\nclient_ip_header = \"X-Forwarded-For\"\n");
    let server = Server::start(&p);
    assert_eq!(rotating_forwarded_for(&server), vec![200; 8]);
    drop(server);

    // A peer outside trusted_proxies cannot rotate the header to escape the limit.
    let mut p = project_with(READERS);
    p.config_append(
        "[serve]\nrequests_per_minute = 3\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    );
    let server = Server::start(&p);
    let statuses = rotating_forwarded_for(&server);
    assert_eq!(&statuses[..3], &[200; 3]);
    assert_eq!(statuses[7], 429, "{statuses:?}");
}

#[test]
fn check_warns_about_a_proxy_header_on_a_public_listen_without_trusted_proxies() {
    let mut p = project_with(READERS);
    p.config_append("[serve]\nlisten = \"0.0.0.0:8025\"\nclient_ip_header = \"X-Forwarded-For\"\n");
    let r = p.run(&["check"]);
    let all = r.stdout() + &r.stderr();
    assert!(all.contains("no trusted_proxies"), "{all}");
    let mut q = project_with(READERS);
    q.config_append(
        "[serve]\nlisten = \"0.0.0.0:8025\"\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"192.0.2.10\"]\n",
    );
    let r = q.run(&["check"]);
    assert!(!(r.stdout() + &r.stderr()).contains("trusted_proxies"));
}

#[test]
fn a_russian_edition_has_russian_unsubscribe_pages() {
    let mut p = project_with(READERS);
    p.config_replace(&crate::support::BASE_CONFIG.replace(
        "cadence_days = 14\n",
        "cadence_days = 14\nlanguage = \"ru\"\n",
    ));
    let server = Server::start(&p);
    let token = token_for("anna@example.org");
    let r = request(
        server.addr,
        "GET",
        &format!("/unsubscribe?t={token}"),
        "",
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("<html lang=\"ru\""), "{}", r.body);
    assert!(
        r.body
            .contains("Больше не присылать «Test Analyst» на <strong>a***@example.org</strong>?"),
        "{}",
        r.body
    );
    assert!(r.body.contains(">Отписаться</button>"), "{}", r.body);
    assert!(!r.body.contains("Stop sending"), "{}", r.body);
    let done = one_click(server.addr, &token);
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Вы отписались"), "{}", done.body);
    let bad = request(
        server.addr,
        "GET",
        "/unsubscribe?t=AAAAAAAAAAAAAAAAAAAAAAAA",
        "",
        "",
    );
    assert!(
        bad.body.contains("Эта ссылка для отписки недействительна"),
        "{}",
        bad.body
    );
}
