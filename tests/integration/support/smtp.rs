//! An in-process SMTP server for the tests: real TCP on 127.0.0.1:0, enough ESMTP for
//! fortnight (EHLO with optional STARTTLS/AUTH, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT), one thread per session, TCP_NODELAY on its side.
//!
//! It records every message it received (envelope and data), every command line with the
//! read (packet) it arrived in, and the number of simultaneous sessions; it offers PIPELINING
//! (RFC 2920) unless told not to; a [`Policy`] scripts faults: replies per recipient and
//! attempt, replies or a dropped connection after the final dot, slow replies.
//!
//! DATA parsing is deliberately lenient (a line holding only `.` ends DATA whether it ends
//! in CRLF or a bare LF), like the servers SMTP smuggling exploits, so a test can show that
//! fortnight never lets such a line through.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// What the server does instead of its normal reply.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Reply this line (e.g. `451 4.3.0 Try again later`) and go on.
    Reply(String),
    /// Reply this line and close the connection (e.g. `421 4.7.0 Slow down`).
    ReplyAndClose(String),
    /// Close the connection without replying.
    Drop,
    /// Reply this line, then reset the connection (RST): the client's next write fails.
    ReplyAndReset(String),
}

/// The context a fault rule sees.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub rcpt: String,
    /// How many times this recipient was seen at RCPT so far, this one included (1-based).
    pub nth: u32,
    /// How many MAIL commands the server has seen, this transaction's included (1-based).
    pub transaction: u64,
    pub session: u64,
}

pub type Rule = Arc<dyn Fn(&Attempt) -> Option<Fault> + Send + Sync>;

/// How the server behaves.
#[derive(Clone)]
pub struct Policy {
    /// Advertise STARTTLS. With `tls` set the upgrade really happens; without, the server
    /// answers `starttls_reply` (a refusal).
    pub starttls: bool,
    pub starttls_reply: String,
    /// The server's TLS identity (tests/fixtures/smtp-tls), for STARTTLS or implicit TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Speak TLS from the first byte (port 465 style); needs `tls`.
    pub implicit_tls: bool,
    /// Advertise AUTH PLAIN LOGIN and require these credentials before MAIL.
    pub auth: Option<(String, String)>,
    /// Reply to every AUTH attempt with this instead (e.g. `535 5.7.8 ...`).
    pub auth_reply: Option<String>,
    pub eightbitmime: bool,
    /// Advertise PIPELINING in the EHLO reply (default true, as Postfix does).
    pub pipelining: bool,
    /// Wait this long before replying to the final dot.
    pub data_delay: Duration,
    /// At RCPT TO.
    pub on_rcpt: Option<Rule>,
    /// At the DATA command, before the body is read.
    pub on_data_command: Option<Rule>,
    /// After the final dot (the message counts as received even when the reply is a fault,
    /// since the server holds all of it).
    pub on_data: Option<Rule>,
    /// Sessions beyond this many at once get `421 4.7.0 Too many connections` as greeting.
    pub max_sessions: Option<usize>,
    /// Take connections and never answer anything (not even the greeting).
    pub silent: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            starttls: false,
            starttls_reply: "454 4.7.0 TLS not available due to local problem".into(),
            tls: None,
            implicit_tls: false,
            auth: None,
            auth_reply: None,
            eightbitmime: true,
            pipelining: true,
            data_delay: Duration::ZERO,
            on_rcpt: None,
            on_data_command: None,
            on_data: None,
            max_sessions: None,
            silent: false,
        }
    }
}

impl Policy {
    pub fn on_rcpt(
        mut self,
        f: impl Fn(&Attempt) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        self.on_rcpt = Some(Arc::new(f));
        self
    }
    pub fn on_data_command(
        mut self,
        f: impl Fn(&Attempt) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        self.on_data_command = Some(Arc::new(f));
        self
    }
    pub fn on_data(
        mut self,
        f: impl Fn(&Attempt) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        self.on_data = Some(Arc::new(f));
        self
    }
    /// Offers STARTTLS and really upgrades, with the fixture certificate for localhost.
    pub fn with_starttls(mut self) -> Self {
        self.starttls = true;
        self.tls = Some(test_tls_config());
        self
    }
    /// Speaks TLS from the start, with the fixture certificate for localhost.
    pub fn with_implicit_tls(mut self) -> Self {
        self.implicit_tls = true;
        self.tls = Some(test_tls_config());
        self
    }
    /// Does not advertise PIPELINING: a client must wait for each reply.
    pub fn without_pipelining(mut self) -> Self {
        self.pipelining = false;
        self
    }
    pub fn data_delay(mut self, d: Duration) -> Self {
        self.data_delay = d;
        self
    }
    pub fn auth(mut self, user: &str, pass: &str) -> Self {
        self.auth = Some((user.into(), pass.into()));
        self
    }
}

/// The folder of the test CA (`ca.pem`) and the server's certificate and key.
pub fn tls_fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp-tls")
}

fn test_tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tls_fixtures();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("server.pem certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate"),
    )
}

/// A session's stream: plain TCP or TLS over it.
enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(t) => t,
            Io::Tls(s) => &s.sock,
        }
    }
}

thread_local! {
    /// Reads that returned data in this session's thread (one session per thread): the
    /// packet boundaries a client's writes arrived in.
    static READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self {
            Io::Plain(t) => t.read(buf),
            Io::Tls(s) => s.read(buf),
        }?;
        if n > 0 {
            READS.with(|r| r.set(r.get() + 1));
        }
        Ok(n)
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(t) => t.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Io::Plain(t) => t.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

/// One message the server took in.
#[derive(Debug, Clone)]
pub struct Received {
    pub session: u64,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, line endings as received.
    pub data: Vec<u8>,
    pub at: Instant,
    /// Whether the server replied 2xx (false: it dropped the connection or refused).
    pub accepted: bool,
    /// Whether the session was encrypted when the message came in.
    pub tls: bool,
}

impl Received {
    /// The first value of a header (unfolded, trimmed).
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.data);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.to_string());
                }
            }
        }
        // Trimmed after unfolding: a field may start on a continuation line.
        value.map(|v| v.trim().to_string())
    }
    pub fn message_id(&self) -> Option<String> {
        self.header("Message-ID")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// One line of the session log: which session, when, and what the client sent or the
/// server replied.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub seq: u64,
    pub session: u64,
    pub from_client: bool,
    pub line: String,
    /// For a client line: the number of the session's read (1-based) that completed it.
    /// Lines a client wrote at once arrive in one read and share it.
    pub packet: u64,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    log: Mutex<Vec<LogLine>>,
    seq: AtomicU64,
    sessions_now: AtomicUsize,
    sessions_max: AtomicUsize,
    sessions_total: AtomicU64,
    transactions: AtomicU64,
    rcpt_counts: Mutex<HashMap<String, u32>>,
}

/// The running server; stops when dropped.
pub struct TestSmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Arc<AtomicBool>,
}

impl TestSmtpServer {
    pub fn start(policy: Policy) -> TestSmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let policy = Arc::new(policy);
        {
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shutdown.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    let policy = policy.clone();
                    std::thread::spawn(move || session(stream, &shared, &policy));
                }
            });
        }
        TestSmtpServer {
            addr,
            shared,
            shutdown,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// An `[smtp]` section pointing at this server (plain SMTP on loopback).
    pub fn smtp_section(&self) -> String {
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nhelo_name = \"fortnight.test\"\n",
            self.port()
        )
    }

    /// Every message the server holds (accepted or not).
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Messages the server accepted with 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }

    /// How many messages (held, accepted or not) went to each recipient.
    pub fn copies_per_recipient(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.received() {
            for to in &r.rcpt_to {
                *m.entry(to.to_ascii_lowercase()).or_default() += 1;
            }
        }
        m
    }

    pub fn max_sessions(&self) -> usize {
        self.shared.sessions_max.load(Ordering::SeqCst)
    }

    pub fn sessions(&self) -> u64 {
        self.shared.sessions_total.load(Ordering::SeqCst)
    }

    pub fn log(&self) -> Vec<LogLine> {
        self.shared.log.lock().unwrap().clone()
    }

    /// For every transaction (MAIL) of every session: the reads its MAIL, RCPT and DATA
    /// lines arrived in, e.g. `[3, 3, 3]` for one pipelined write.
    pub fn envelope_packets(&self) -> Vec<Vec<u64>> {
        let mut out: Vec<Vec<u64>> = Vec::new();
        let mut open: HashMap<u64, usize> = HashMap::new();
        for l in self.log().into_iter().filter(|l| l.from_client) {
            let verb = l
                .line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "MAIL" => {
                    open.insert(l.session, out.len());
                    out.push(vec![l.packet]);
                }
                "RCPT" | "DATA" => {
                    if let Some(&i) = open.get(&l.session) {
                        out[i].push(l.packet);
                    }
                    if verb == "DATA" {
                        open.remove(&l.session);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The command verbs clients sent (`EHLO`, `MAIL`, ...), in order.
    pub fn client_verbs(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.from_client)
            .map(|l| {
                l.line
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase()
            })
            .collect()
    }
}

impl Drop for TestSmtpServer {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

struct Session<'a> {
    id: u64,
    shared: &'a Shared,
    io: BufReader<Io>,
}

impl Session<'_> {
    fn log(&self, from_client: bool, line: &str) {
        let seq = self.shared.seq.fetch_add(1, Ordering::SeqCst);
        self.shared.log.lock().unwrap().push(LogLine {
            seq,
            session: self.id,
            from_client,
            line: line.to_string(),
            packet: READS.with(|r| r.get()),
        });
    }
    fn reply(&mut self, line: &str) -> bool {
        self.log(false, line);
        let io = self.io.get_mut();
        io.write_all(format!("{line}\r\n").as_bytes()).is_ok() && io.flush().is_ok()
    }
    fn read_line(&mut self) -> Option<String> {
        read_line(&mut self.io)
    }
    fn is_tls(&self) -> bool {
        matches!(self.io.get_ref(), Io::Tls(_))
    }
    /// Applies a fault; returns whether the session goes on.
    fn fault(&mut self, f: &Fault) -> bool {
        match f {
            Fault::Reply(l) => self.reply(l),
            Fault::ReplyAndClose(l) => {
                self.reply(l);
                let _ = self.io.get_ref().tcp().shutdown(std::net::Shutdown::Both);
                false
            }
            Fault::Drop => {
                self.log(false, "<dropped>");
                let _ = self.io.get_ref().tcp().shutdown(std::net::Shutdown::Both);
                false
            }
            Fault::ReplyAndReset(l) => {
                self.reply(l);
                self.log(false, "<reset>");
                let sock = socket2::SockRef::from(self.io.get_ref().tcp());
                let _ = sock.set_linger(Some(Duration::ZERO));
                let _ = self.io.get_ref().tcp().shutdown(std::net::Shutdown::Read);
                false
            }
        }
    }
    /// Upgrades the session to TLS (after `220` to STARTTLS, or at once for implicit TLS).
    fn start_tls(&mut self, config: &Arc<rustls::ServerConfig>) -> bool {
        let Ok(placeholder) = self.io.get_ref().tcp().try_clone() else {
            return false;
        };
        let io = std::mem::replace(&mut self.io, BufReader::new(Io::Plain(placeholder)));
        let Io::Plain(tcp) = io.into_inner() else {
            return false;
        };
        let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
            return false;
        };
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // Complete the handshake now, so a client that rejects the certificate fails here.
        while stream.conn.is_handshaking() {
            match stream.conn.complete_io(&mut stream.sock) {
                Ok((0, 0)) | Err(_) => {
                    self.log(false, "<tls handshake failed>");
                    return false;
                }
                Ok(_) => {}
            }
        }
        self.io = BufReader::new(Io::Tls(Box::new(stream)));
        true
    }
}

struct SessionGuard<'a>(&'a Shared);
impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.0.sessions_now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn read_line(r: &mut BufReader<Io>) -> Option<String> {
    let mut buf = Vec::new();
    match r.read_until(b'\n', &mut buf) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(
            String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn session(stream: TcpStream, shared: &Shared, policy: &Policy) {
    let _ = stream.set_nodelay(true);
    let id = shared.sessions_total.fetch_add(1, Ordering::SeqCst) + 1;
    let now = shared.sessions_now.fetch_add(1, Ordering::SeqCst) + 1;
    shared.sessions_max.fetch_max(now, Ordering::SeqCst);
    let _guard = SessionGuard(shared);
    let mut s = Session {
        id,
        shared,
        io: BufReader::new(Io::Plain(stream)),
    };
    if policy.implicit_tls {
        let config = policy
            .tls
            .clone()
            .expect("implicit TLS needs a certificate");
        if !s.start_tls(&config) {
            return;
        }
    }

    let mut authed = policy.auth.is_none();
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut transaction = 0u64;

    if policy.silent {
        s.log(false, "<silent>");
        while s.read_line().is_some() {}
        return;
    }
    if policy.max_sessions.is_some_and(|max| now > max) {
        s.reply("421 4.7.0 test.local Too many connections, try again later");
        return;
    }
    if !s.reply("220 test.local ESMTP fortnight-test") {
        return;
    }
    while let Some(line) = s.read_line() {
        let shown = if line.to_ascii_uppercase().starts_with("AUTH") {
            "AUTH <credentials hidden>".to_string()
        } else {
            line.clone()
        };
        s.log(true, &shown);
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_string();
        let ok = match verb.as_str() {
            "EHLO" => {
                let mut lines = vec![
                    "250-test.local".to_string(),
                    "250-ENHANCEDSTATUSCODES".into(),
                ];
                if policy.eightbitmime {
                    lines.push("250-8BITMIME".into());
                }
                if policy.pipelining {
                    lines.push("250-PIPELINING".into());
                }
                if policy.starttls && !s.is_tls() {
                    lines.push("250-STARTTLS".into());
                }
                if policy.auth.is_some() {
                    lines.push("250-AUTH PLAIN LOGIN".into());
                }
                lines.push("250 SIZE 10240000".into());
                lines.iter().all(|l| s.reply(l))
            }
            "HELO" => s.reply("250 test.local"),
            "STARTTLS" => match (&policy.tls, s.is_tls()) {
                (Some(config), false) => {
                    s.reply("220 2.0.0 Ready to start TLS") && s.start_tls(config)
                }
                _ => s.reply(&policy.starttls_reply.clone()),
            },
            "AUTH" => {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let mech = parts
                    .get(1)
                    .map(|m| m.to_ascii_uppercase())
                    .unwrap_or_default();
                let (user, pass) = match mech.as_str() {
                    "PLAIN" => {
                        let initial = match parts.get(2) {
                            Some(i) => i.to_string(),
                            None => {
                                s.reply("334 ");
                                s.read_line().unwrap_or_default()
                            }
                        };
                        let decoded = b64(&initial);
                        let mut f = decoded.split('\0');
                        let _authzid = f.next();
                        (
                            f.next().unwrap_or("").to_string(),
                            f.next().unwrap_or("").to_string(),
                        )
                    }
                    "LOGIN" => {
                        s.reply("334 VXNlcm5hbWU6");
                        let u = b64(&s.read_line().unwrap_or_default());
                        s.reply("334 UGFzc3dvcmQ6");
                        let p = b64(&s.read_line().unwrap_or_default());
                        (u, p)
                    }
                    _ => {
                        s.reply("504 5.5.4 Unrecognized authentication type");
                        continue;
                    }
                };
                if let Some(r) = &policy.auth_reply {
                    s.reply(r)
                } else if policy.auth.as_ref() == Some(&(user, pass)) {
                    authed = true;
                    s.reply("235 2.7.0 Authentication successful")
                } else {
                    s.reply("535 5.7.8 Authentication credentials invalid")
                }
            }
            "MAIL" => {
                if !authed {
                    s.reply("530 5.7.0 Authentication required")
                } else {
                    transaction = shared.transactions.fetch_add(1, Ordering::SeqCst) + 1;
                    mail_from = Some(angle(&line));
                    rcpts.clear();
                    s.reply("250 2.1.0 Ok")
                }
            }
            "RCPT" => {
                if mail_from.is_none() {
                    s.reply("503 5.5.1 Error: need MAIL command")
                } else {
                    let rcpt = angle(&line);
                    let nth = {
                        let mut m = shared.rcpt_counts.lock().unwrap();
                        let c = m.entry(rcpt.to_ascii_lowercase()).or_default();
                        *c += 1;
                        *c
                    };
                    let attempt = Attempt {
                        rcpt: rcpt.clone(),
                        nth,
                        transaction,
                        session: id,
                    };
                    match policy.on_rcpt.as_ref().and_then(|f| f(&attempt)) {
                        Some(f) => s.fault(&f),
                        None => {
                            rcpts.push(rcpt);
                            s.reply("250 2.1.5 Ok")
                        }
                    }
                }
            }
            "DATA" => {
                let early = Attempt {
                    rcpt: rcpts.first().cloned().unwrap_or_default(),
                    nth: 0,
                    transaction,
                    session: id,
                };
                if rcpts.is_empty() {
                    s.reply("503 5.5.1 Error: need RCPT command")
                } else if let Some(f) = policy.on_data_command.as_ref().and_then(|f| f(&early)) {
                    s.fault(&f)
                } else if !s.reply("354 End data with <CR><LF>.<CR><LF>") {
                    false
                } else {
                    let Some(data) = read_data(&mut s.io) else {
                        break;
                    };
                    let attempt = Attempt {
                        rcpt: rcpts.first().cloned().unwrap_or_default(),
                        nth: shared
                            .rcpt_counts
                            .lock()
                            .unwrap()
                            .get(&rcpts[0].to_ascii_lowercase())
                            .copied()
                            .unwrap_or(0),
                        transaction,
                        session: id,
                    };
                    if !policy.data_delay.is_zero() {
                        std::thread::sleep(policy.data_delay);
                    }
                    let fault = policy.on_data.as_ref().and_then(|f| f(&attempt));
                    let accepted = fault.is_none();
                    shared.received.lock().unwrap().push(Received {
                        session: id,
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpts),
                        data,
                        at: Instant::now(),
                        accepted,
                        tls: s.is_tls(),
                    });
                    match fault {
                        Some(f) => s.fault(&f),
                        None => s.reply(&format!("250 2.0.0 Ok: queued as T{transaction}")),
                    }
                }
            }
            "RSET" => {
                mail_from = None;
                rcpts.clear();
                s.reply("250 2.0.0 Ok")
            }
            "NOOP" => s.reply("250 2.0.0 Ok"),
            "QUIT" => {
                s.reply("221 2.0.0 Bye");
                false
            }
            _ => s.reply("502 5.5.2 Error: command not recognized"),
        };
        if !ok {
            break;
        }
    }
}

/// The address between `<` and `>` of a MAIL/RCPT line.
fn angle(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(a), Some(b)) if b > a => line[a + 1..b].to_string(),
        _ => line
            .split_once(':')
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Reads DATA up to a line holding only `.` (CRLF or bare LF), unstuffing dots.
fn read_data(r: &mut BufReader<Io>) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let content_end = line
            .iter()
            .rposition(|b| *b != b'\n' && *b != b'\r')
            .map_or(0, |i| i + 1);
        if &line[..content_end] == b"." {
            return Some(data);
        }
        if line.first() == Some(&b'.') {
            data.extend_from_slice(&line[1..]);
        } else {
            data.extend_from_slice(&line);
        }
    }
}
