//! SMTP: one connection per worker, opened by us and driven through lettre's
//! `AsyncSmtpConnection`, with every step under its own timeout.
//!
//! Why not lettre's pooled `AsyncSmtpTransport`: in 0.11.23 it never sets TCP_NODELAY, so
//! Nagle holds the final `.` until the server's delayed ACK (~44 ms per message per
//! connection), its timeout covers only the connect, and a failure after the final `.` cannot
//! be told apart from one before it. Here the TCP stream is ours (`set_nodelay(true)`), TLS is
//! implicit (a tokio-rustls stream) or STARTTLS (required: no AUTH or MAIL is ever sent if the
//! upgrade is not offered or fails), and a transaction is MAIL, RCPT, DATA (command timeout
//! per reply) followed by the body and the final `.` (data timeout). When the server offers
//! PIPELINING (RFC 2920) MAIL, RCPT and DATA go in one write and their three replies are read
//! in order, each classified as if it had been sent alone; otherwise each waits for the
//! previous reply. lettre does not parse the PIPELINING keyword, so the connection sends its
//! own EHLO once (before AUTH) and reads the keywords from its reply. The body
//! is dot-stuffed here and written through lettre's `command` (`StuffedBody`); the stream
//! under lettre counts its flushes (`Tracked`), so a connection lost after the whole body and
//! the final `.` reached the network is *ambiguous* while one lost before that is retryable.
//!
//! This module knows nothing about journals, throttles or subscribers: it reports what the
//! server said (`Reply`, `TxOutcome`, `ConnectError`); `classify` maps a reply to what
//! the delivery loop should do, per the table in docs/standards.md "SMTP replies".

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Noop, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{SmtpConfig, TlsMode};

/// Everything needed to open a connection; built once per run.
#[derive(Clone)]
pub struct SmtpSettings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: TlsMode,
    pub(crate) helo: ClientId,
    /// No `helo_name` and no fully qualified name of this machine: `helo` is its bare name
    /// until [`SmtpSettings::with_helo_fallback`] replaces it.
    helo_bare: bool,
    credentials: Option<Credentials>,
    /// The password as a server could echo it back (plain, and base64 as AUTH PLAIN/LOGIN
    /// sent it): scrubbed from every reply to AUTH before it is reported.
    echoes: Vec<String>,
    pub(crate) username: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) data_timeout: Duration,
    starttls: Option<TlsParameters>,
    implicit_tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.tls {
            TlsMode::Tls => "implicit TLS",
            TlsMode::Starttls => "STARTTLS",
            TlsMode::None => "no TLS",
        };
        write!(f, "{}:{} ({tls}", self.host, self.port)?;
        if let Some(u) = &self.username {
            write!(f, ", user {u}")?;
        }
        f.write_str(")")
    }
}

/// Whether `host` is a loopback host (`localhost`, 127.0.0.0/8, `::1`).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpSettings {
    /// `text` with every echo of the password replaced by `<password>`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.echoes {
            out = out.replace(secret.as_str(), "<password>");
        }
        out
    }

    /// Checks `[smtp]` and builds the settings. `password` comes from
    /// `FORTNIGHT_SMTP_PASSWORD`; it is required when a username is configured.
    /// EHLO with `domain` (the From domain) when neither `[smtp] helo_name` nor a fully
    /// qualified name of this machine was found (RFC 5321 §4.1.1.1 asks for the FQDN).
    pub(crate) fn with_helo_fallback(mut self, domain: &str) -> SmtpSettings {
        if self.helo_bare {
            self.helo = ClientId::Domain(domain.to_ascii_lowercase());
            self.helo_bare = false;
        }
        self
    }

    pub fn from_config(cfg: &SmtpConfig, password: Option<&str>) -> Result<SmtpSettings> {
        let host = cfg.host.trim().to_string();
        if host.is_empty() {
            bail!("[smtp] host is empty");
        }
        if cfg.tls == TlsMode::None && !is_loopback_host(&host) {
            bail!(
                "[smtp] tls = \"none\" is only allowed for loopback hosts (localhost, 127.0.0.1, ::1), \
                 not `{host}`: use tls = \"starttls\" (port 587) or tls = \"tls\" (port 465)"
            );
        }
        let credentials = match (&cfg.username, password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.to_string())),
            (Some(u), None) => bail!(
                "[smtp] username is `{u}` but the environment variable {} is not set",
                crate::config::ENV_SMTP_PASSWORD
            ),
            (None, _) => None,
        };
        let echoes = match (&cfg.username, password) {
            (Some(u), Some(p)) if !p.is_empty() => {
                use base64::Engine as _;
                let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
                vec![p.to_string(), b64(&format!("\0{u}\0{p}")), b64(p)]
            }
            _ => Vec::new(),
        };
        let (helo, helo_bare) = match (&cfg.helo_name, crate::base::host::system_fqdn()) {
            (Some(name), _) => (ClientId::Domain(name.trim().to_string()), false),
            (None, Some(fqdn)) => (ClientId::Domain(fqdn), false),
            (None, None) => (ClientId::default(), true),
        };
        let tls_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let starttls = match cfg.tls {
            TlsMode::Starttls => Some(
                TlsParameters::new(tls_host.clone())
                    .with_context(|| format!("cannot set up TLS for `{host}`"))?,
            ),
            _ => None,
        };
        let implicit_tls = match cfg.tls {
            TlsMode::Tls => Some(Arc::new(rustls_client_config(&[])?)),
            _ => None,
        };
        let secs = |s: u64, key: &str| -> Result<Duration> {
            if s == 0 {
                bail!("[smtp] {key} must be at least 1");
            }
            Ok(Duration::from_secs(s))
        };
        Ok(SmtpSettings {
            port: cfg.port(),
            host,
            tls: cfg.tls,
            helo,
            helo_bare,
            credentials,
            echoes,
            username: cfg.username.clone(),
            connect_timeout: secs(cfg.connect_timeout_secs, "connect_timeout_secs")?,
            command_timeout: secs(cfg.command_timeout_secs, "command_timeout_secs")?,
            data_timeout: secs(cfg.data_timeout_secs, "data_timeout_secs")?,
            starttls,
            implicit_tls,
        })
    }

    /// Also trusts the CA certificates in `pem` (from `[smtp] ca_file`, named by `source`).
    pub fn with_extra_roots(mut self, pem: &[u8], source: &str) -> Result<SmtpSettings> {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("`{source}` is not a PEM certificate file: {e}"))?;
        if certs.is_empty() {
            bail!("`{source}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
        let tls_host = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        match self.tls {
            TlsMode::Starttls => {
                let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
                    .with_context(|| format!("cannot use the certificates in `{source}`"))?;
                self.starttls = Some(
                    TlsParameters::builder(tls_host)
                        .add_root_certificate(cert)
                        .build_rustls()
                        .with_context(|| format!("cannot use the certificates in `{source}`"))?,
                );
            }
            TlsMode::Tls => {
                self.implicit_tls = Some(Arc::new(rustls_client_config(&certs)?));
            }
            TlsMode::None => {}
        }
        Ok(self)
    }

    /// Overrides the timeouts (tests use sub-second ones).
    pub fn with_timeouts(mut self, connect: Duration, command: Duration, data: Duration) -> Self {
        self.connect_timeout = connect;
        self.command_timeout = command;
        self.data_timeout = data;
        self
    }
}

fn rustls_client_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .context("cannot trust a certificate of [smtp] ca_file")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An enhanced status code (RFC 3463), e.g. `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Enhanced {
    pub(crate) class: u8,
    pub(crate) subject: u16,
    pub(crate) detail: u16,
}

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Enhanced {
    /// Parses `X.Y.Z` at the start of `text`.
    pub(crate) fn parse_prefix(text: &str) -> Option<Enhanced> {
        let word = text.split_whitespace().next()?;
        let mut parts = word.split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        let subject: u16 = parts.next()?.parse().ok()?;
        let detail: u16 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(Enhanced {
            class,
            subject,
            detail,
        })
    }
}

/// One SMTP reply: the code, the enhanced code if any, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) enhanced: Option<Enhanced>,
    /// The text after the code (all lines joined), without the enhanced code.
    pub(crate) text: String,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// At most this much of a reply goes into the journal and the reports.
const REPLY_MAX: usize = 300;

fn clip(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.len() <= REPLY_MAX {
        return trimmed.to_string();
    }
    let mut end = REPLY_MAX;
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &trimmed[..end])
}

impl Reply {
    fn new(code: u16, text: &str) -> Reply {
        let text = text.trim();
        let enhanced = Enhanced::parse_prefix(text);
        let text = match enhanced {
            Some(_) => text
                .split_once(char::is_whitespace)
                .map_or("", |(_, rest)| rest.trim_start()),
            None => text,
        };
        Reply {
            code,
            enhanced,
            text: clip(text),
        }
    }

    fn from_response(r: &lettre::transport::smtp::response::Response) -> Reply {
        let text: Vec<&str> = r.message().collect();
        Reply::new(u16::from(r.code()), &text.join(" "))
    }

    /// The server's reply inside a lettre error, if the error is one (lettre keeps the
    /// enhanced code only in the error text).
    pub(crate) fn from_error(e: &lettre::transport::smtp::Error) -> Option<Reply> {
        Reply::from_error_with(e, str::to_string)
    }

    /// Like [`Reply::from_error`], with `scrub` applied to the server's text before it is
    /// cut to length (so a secret cannot survive half-cut).
    fn from_error_with(
        e: &lettre::transport::smtp::Error,
        scrub: impl Fn(&str) -> String,
    ) -> Option<Reply> {
        let code = u16::from(e.status()?);
        let text = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        Some(Reply::new(code, &scrub(&text)))
    }
}

/// What the delivery loop does with a reply (the table in docs/standards.md "SMTP replies").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx after the final `.`.
    Sent,
    /// 4xx: defer and retry with backoff; `slow_down` for 421, 4.7.x and 450 4.2.1.
    Defer { slow_down: bool },
    /// 5xx about this recipient; `bounce` (5.1.x) marks the address bounced.
    Fail { bounce: bool },
    /// 5.7.x, 530, 535, 552 5.3.4: systemic, stop the run.
    Stop,
}

/// Classifies a reply per the table in docs/standards.md "SMTP replies".
pub(crate) fn classify(reply: &Reply) -> Verdict {
    let e = reply.enhanced;
    match reply.code {
        200..=399 => Verdict::Sent,
        400..=499 => Verdict::Defer {
            slow_down: reply.code == 421
                || e.is_some_and(|e| e.subject == 7)
                || (reply.code == 450 && e.is_some_and(|e| e.subject == 2 && e.detail == 1)),
        },
        _ => {
            if e.is_some_and(|e| e.subject == 7)
                || matches!(reply.code, 530 | 535)
                || (reply.code == 552 && e.is_some_and(|e| e.subject == 3 && e.detail == 4))
            {
                Verdict::Stop
            } else {
                Verdict::Fail {
                    bounce: e.is_some_and(|e| e.subject == 1),
                }
            }
        }
    }
}

/// Why a connection could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ConnectError {
    /// TCP connect, DNS, timeouts, lost connection: retry later.
    #[error("{0}")]
    Network(String),
    /// The server refused the session (greeting, EHLO) with a reply.
    #[error("the server refused the session: {0}")]
    Refused(Reply),
    /// TLS could not be set up (no STARTTLS offered, handshake or certificate failure).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// Authentication was refused.
    #[error("authentication failed: {0}")]
    Auth(String, Option<Reply>),
    /// The server took the connection but did not answer (greeting, EHLO, AUTH) in time.
    #[error("{0}")]
    NoReply(String),
}

impl ConnectError {
    /// Fatal errors stop the run: retrying cannot help and may lock the account.
    pub(crate) fn is_fatal(&self) -> bool {
        match self {
            ConnectError::Network(_) | ConnectError::NoReply(_) => false,
            ConnectError::Refused(r) => r.code >= 500,
            ConnectError::Tls(_) => true,
            ConnectError::Auth(_, r) => r.as_ref().is_none_or(|r| r.code >= 500),
        }
    }
    /// A refusal that asks us to slow down (421, 4.7.x).
    pub(crate) fn asks_to_slow_down(&self) -> bool {
        match self {
            ConnectError::Refused(r) | ConnectError::Auth(_, Some(r)) => {
                matches!(classify(r), Verdict::Defer { slow_down: true })
            }
            _ => false,
        }
    }
}

/// Where in a transaction something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Mail,
    Rcpt,
    Data,
    /// Writing the body (before the final `.` was written).
    Body,
    /// After the whole body and the final `.` were handed to the network.
    AfterDot,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Body => "the message body",
            Stage::AfterDot => "the reply to the final dot",
        })
    }
}

/// How one transaction ended.
#[derive(Debug, Clone)]
pub(crate) enum TxOutcome {
    /// The server replied (2xx after the final `.`, or a negative reply at `stage`).
    Replied { stage: Stage, reply: Reply },
    /// The connection was lost at `stage` (AfterDot means ambiguous).
    Lost { stage: Stage, error: String },
    /// No reply came at `stage` within its timeout (AfterDot means ambiguous).
    Silent { stage: Stage, error: String },
    /// We refused to send (the message needs an extension the server lacks).
    Local(String),
}

/// One open, ready SMTP session.
pub(crate) struct SmtpConnection {
    conn: AsyncSmtpConnection,
    /// Completed flushes of the stream under lettre (see [`Tracked`]).
    flushes: Arc<AtomicU64>,
    eight_bit: bool,
    smtputf8: bool,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
    broken: bool,
}

/// Opens a connection: TCP (no Nagle), TLS, greeting, EHLO, STARTTLS, AUTH.
pub(crate) async fn connect(s: &SmtpSettings) -> Result<SmtpConnection, ConnectError> {
    let target = format!("{}:{}", s.host, s.port);
    let host = s.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = open_tcp(s, host, &target).await?;
    let peer = tcp
        .peer_addr()
        .map_err(|e| ConnectError::Network(format!("connection to {target} lost: {e}")))?;
    let flushes = Arc::new(AtomicU64::new(0));
    let stream: Box<dyn AsyncTokioStream> = match (&s.tls, &s.implicit_tls) {
        (TlsMode::Tls, Some(config)) => Box::new(Tracked {
            inner: implicit_tls(s, config, host, &target, tcp).await?,
            peer,
            flushes: flushes.clone(),
        }),
        _ => Box::new(Tracked {
            inner: tcp,
            peer,
            flushes: flushes.clone(),
        }),
    };
    let mut conn = greet(s, stream, &target).await?;
    if s.tls == TlsMode::Starttls {
        starttls(s, &mut conn, &target).await?;
    }
    let pipelining = offers_pipelining(s, &mut conn, &target).await?;
    if let Some(creds) = &s.credentials {
        authenticate(s, &mut conn, creds, &target).await?;
    }
    let info = conn.server_info();
    Ok(SmtpConnection {
        flushes,
        eight_bit: info.supports_feature(Extension::EightBitMime),
        smtputf8: info.supports_feature(Extension::SmtpUtfEight),
        pipelining,
        conn,
        broken: false,
    })
}

/// Runs one step of setting up a connection within `limit`; running out of time is the
/// error `on_timeout` makes. The step's own result is returned as it is.
async fn within<T>(
    limit: Duration,
    step: impl std::future::Future<Output = T>,
    on_timeout: impl FnOnce() -> ConnectError,
) -> Result<T, ConnectError> {
    timeout(limit, step).await.map_err(|_| on_timeout())
}

/// The TCP connection, without Nagle's algorithm (see the module doc).
async fn open_tcp(s: &SmtpSettings, host: &str, target: &str) -> Result<TcpStream, ConnectError> {
    let tcp = within(
        s.connect_timeout,
        TcpStream::connect((host, s.port)),
        || {
            ConnectError::Network(format!(
                "connecting to {target} timed out after {} s",
                s.connect_timeout.as_secs_f64()
            ))
        },
    )
    .await?
    .map_err(|e| ConnectError::Network(format!("cannot connect to {target}: {e}")))?;
    tcp.set_nodelay(true)
        .map_err(|e| ConnectError::Network(format!("cannot set TCP_NODELAY: {e}")))?;
    Ok(tcp)
}

/// The TLS handshake of implicit TLS (port 465).
async fn implicit_tls(
    s: &SmtpSettings,
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    target: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| ConnectError::Tls(format!("`{host}` is not a valid TLS name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    within(s.command_timeout, connector.connect(name, tcp), || {
        ConnectError::Tls(format!("the TLS handshake with {target} timed out"))
    })
    .await?
    .map_err(|e| ConnectError::Tls(format!("the TLS handshake with {target} failed: {e}")))
}

/// The server's greeting and EHLO.
async fn greet(
    s: &SmtpSettings,
    stream: Box<dyn AsyncTokioStream>,
    target: &str,
) -> Result<AsyncSmtpConnection, ConnectError> {
    let greeting = AsyncSmtpConnection::connect_with_transport(stream, &s.helo);
    within(s.command_timeout, greeting, || {
        ConnectError::NoReply(format!(
            "{target} did not greet within {} s",
            s.command_timeout.as_secs_f64()
        ))
    })
    .await?
    .map_err(|e| match Reply::from_error(&e) {
        Some(r) => ConnectError::Refused(r),
        None if e.is_tls() => ConnectError::Tls(format!("{target}: {e}")),
        None => ConnectError::Network(format!("{target}: {e}")),
    })
}

/// The STARTTLS upgrade, which `tls = "starttls"` requires: no AUTH or MAIL without it.
async fn starttls(
    s: &SmtpSettings,
    conn: &mut AsyncSmtpConnection,
    target: &str,
) -> Result<(), ConnectError> {
    if !conn.can_starttls() {
        let _ = timeout(s.command_timeout, conn.abort()).await;
        return Err(ConnectError::Tls(format!(
            "{target} does not offer STARTTLS, and [smtp] tls = \"starttls\" requires it \
             (nothing was sent; use tls = \"tls\" for port 465, or fix the server)"
        )));
    }
    let params = s
        .starttls
        .clone()
        .expect("STARTTLS parameters are built with the settings");
    within(s.command_timeout, conn.starttls(params, &s.helo), || {
        ConnectError::Tls(format!("the STARTTLS upgrade with {target} timed out"))
    })
    .await?
    // No QUIT: after a failed upgrade lettre holds no stream to write it to. Dropping the
    // connection closes the socket.
    .map_err(|e| ConnectError::Tls(format!("the STARTTLS upgrade with {target} failed: {e}")))?;
    if !conn.is_encrypted() {
        return Err(ConnectError::Tls(format!(
            "the connection to {target} is not encrypted after STARTTLS"
        )));
    }
    Ok(())
}

/// Whether the server offers PIPELINING: our own EHLO (lettre keeps only the keywords it
/// knows), sent after STARTTLS and before AUTH, so the keywords are those of the session that
/// carries the mail. A refused EHLO here means no pipelining, not a failed connection.
async fn offers_pipelining(
    s: &SmtpSettings,
    conn: &mut AsyncSmtpConnection,
    target: &str,
) -> Result<bool, ConnectError> {
    let ehlo = conn.command(Ehlo::new(s.helo.clone()));
    match within(s.command_timeout, ehlo, || {
        ConnectError::NoReply(format!(
            "{target} did not answer EHLO within {} s",
            s.command_timeout.as_secs_f64()
        ))
    })
    .await?
    {
        Ok(resp) => Ok(resp.message().skip(1).any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
        })),
        Err(e) => match Reply::from_error(&e) {
            Some(r) if r.code == 421 => Err(ConnectError::Refused(r)),
            Some(_) => Ok(false),
            None => Err(ConnectError::Network(format!("{target}: {e}"))),
        },
    }
}

/// MAIL, RCPT and DATA as one write (RFC 2920 pipelining).
struct Envelope<'a>(&'a Mail, &'a Rcpt);

impl fmt::Display for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.0, self.1, Data)
    }
}

/// AUTH PLAIN or LOGIN.
async fn authenticate(
    s: &SmtpSettings,
    conn: &mut AsyncSmtpConnection,
    creds: &Credentials,
    target: &str,
) -> Result<(), ConnectError> {
    let auth = conn.auth(&[Mechanism::Plain, Mechanism::Login], creds);
    let Err(e) = within(s.command_timeout, auth, || {
        ConnectError::NoReply(format!(
            "{target} did not answer AUTH within {} s",
            s.command_timeout.as_secs_f64()
        ))
    })
    .await?
    else {
        return Ok(());
    };
    let reply = Reply::from_error_with(&e, |t| s.scrub(t));
    let _ = timeout(s.command_timeout, conn.abort()).await;
    let client = e.is_client();
    let e = s.scrub(&e.to_string());
    let msg = match &reply {
        Some(r) => format!("{target} replied {r}"),
        None if client => {
            format!("{target} offers no AUTH mechanism fortnight supports (PLAIN, LOGIN): {e}")
        }
        None => {
            return Err(ConnectError::Network(format!(
                "{target}: connection lost during AUTH: {e}"
            )))
        }
    };
    Err(ConnectError::Auth(msg, reply))
}

/// The message body as it goes after DATA: dot-stuffed (a line starting with `.` gets
/// another one) and followed by the final `\r\n.\r\n`. The body must already be
/// CRLF-normalised by [`wire_body`], so every line start is the start of the text or follows
/// a CRLF. Written through lettre's `command`, which writes a `Display` and reads the reply:
/// lettre's own `message()` stuffs byte by byte, which cost 18% of the CPU of a send at 16
/// connections; this finds the few lines to stuff with a SIMD search.
struct StuffedBody<'a>(&'a str);

impl fmt::Display for StuffedBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut from = 0;
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\r\n.") {
            // Up to and including the CRLF, then the extra dot; the line's own dot follows.
            f.write_str(&text[from..at + 2])?;
            f.write_str(".")?;
            from = at + 2;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

impl SmtpConnection {
    /// Whether the connection can carry another transaction.
    pub(crate) fn is_usable(&self) -> bool {
        !self.broken && !self.conn.has_broken()
    }

    /// One transaction: MAIL, RCPT, DATA, body, final `.`. `body` must be CRLF-normalised
    /// (see [`wire_body`]).
    pub(crate) async fn send(
        &mut self,
        s: &SmtpSettings,
        from: &Address,
        to: &Address,
        body: &[u8],
    ) -> TxOutcome {
        let mut params = Vec::new();
        if !body.is_ascii() {
            if !self.eight_bit {
                return TxOutcome::Local(
                    "the message has 8-bit content but the server does not offer 8BITMIME".into(),
                );
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if !(AsRef::<str>::as_ref(from).is_ascii() && AsRef::<str>::as_ref(to).is_ascii()) {
            if !self.smtputf8 {
                return TxOutcome::Local(
                    "an address is not ASCII but the server does not offer SMTPUTF8".into(),
                );
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        let mail = Mail::new(Some(from.clone()), params);
        let rcpt = Rcpt::new(to.clone(), vec![]);
        if self.pipelining {
            if let Some(out) = self.pipelined_envelope(s, &mail, &rcpt).await {
                return out;
            }
        } else {
            if let Some(out) = self.command(s, Stage::Mail, mail).await {
                return out;
            }
            if let Some(out) = self.command(s, Stage::Rcpt, rcpt).await {
                return out;
            }
            if let Some(out) = self.command(s, Stage::Data, Data).await {
                return out;
            }
        }
        self.send_body(s, body).await
    }

    /// MAIL, RCPT and DATA in one write, then their three replies in order (each under the
    /// command timeout); `None` when all three were accepted (354 to DATA), else how the
    /// transaction ended: the first refusal, with its own stage, exactly as if the commands
    /// had gone one by one. After a refusal the connection is RSET for the next message (if
    /// the server still accepted DATA, an empty body `.` ends that data first); after a 421 or
    /// a lost connection it is not used again. No body byte is written unless all three were
    /// accepted, so nothing here can be ambiguous.
    async fn pipelined_envelope(
        &mut self,
        s: &SmtpSettings,
        mail: &Mail,
        rcpt: &Rcpt,
    ) -> Option<TxOutcome> {
        let mut refusal: Option<TxOutcome> = None;
        for stage in [Stage::Mail, Stage::Rcpt, Stage::Data] {
            let result = if stage == Stage::Mail {
                timeout(s.command_timeout, self.conn.command(Envelope(mail, rcpt))).await
            } else {
                timeout(s.command_timeout, self.conn.read_response()).await
            };
            let accepted = matches!(result, Ok(Ok(_)));
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => match Reply::from_error(&e) {
                    Some(reply) => {
                        let closing = reply.code == 421;
                        if refusal.is_none() {
                            refusal = Some(TxOutcome::Replied { stage, reply });
                        }
                        if closing {
                            self.broken = true;
                            return refusal;
                        }
                    }
                    None => {
                        self.broken = true;
                        return refusal.or(Some(TxOutcome::Lost {
                            stage,
                            error: e.to_string(),
                        }));
                    }
                },
                Err(_) => {
                    self.broken = true;
                    return refusal.or(Some(TxOutcome::Silent {
                        stage,
                        error: format!(
                            "no reply to {stage} within {} s ([smtp] command_timeout_secs)",
                            s.command_timeout.as_secs_f64()
                        ),
                    }));
                }
            }
            if stage == Stage::Data && accepted && refusal.is_some() {
                // DATA was accepted although MAIL or RCPT was refused: end that (empty) data
                // without a single byte of the message.
                let answered = match timeout(s.command_timeout, self.conn.command(".\r\n")).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(e)) => e.status().is_some(),
                    Err(_) => false,
                };
                if !answered {
                    self.broken = true;
                    return refusal;
                }
            }
        }
        if refusal.is_some() {
            self.reset(s).await;
        }
        refusal
    }

    /// The body and the final dot, and the reply to it.
    async fn send_body(&mut self, s: &SmtpSettings, body: &[u8]) -> TxOutcome {
        // Whether the whole body and the final dot reached the network is known from the
        // flushes of our stream under lettre (and under TLS: rustls flushes the inner stream
        // only after writing every record): lettre flushes once after the body written through
        // `command`, twice (body, then dot) with `message`.
        let flushed_before = self.flushes.load(Ordering::SeqCst);
        let (result, flushes_needed) = match std::str::from_utf8(body) {
            Ok(text) => (
                timeout(s.data_timeout, self.conn.command(StuffedBody(text))).await,
                1,
            ),
            // Not UTF-8 (a raw 8-bit body): lettre's own encoder handles any bytes.
            Err(_) => (timeout(s.data_timeout, self.conn.message(body)).await, 2),
        };
        let stage = if self.flushes.load(Ordering::SeqCst) - flushed_before >= flushes_needed {
            Stage::AfterDot
        } else {
            Stage::Body
        };
        match result {
            Ok(Ok(resp)) => TxOutcome::Replied {
                stage: Stage::AfterDot,
                reply: Reply::from_response(&resp),
            },
            Ok(Err(e)) => match Reply::from_error(&e) {
                Some(reply) => {
                    if reply.code == 421 {
                        self.broken = true;
                    }
                    TxOutcome::Replied {
                        stage: Stage::AfterDot,
                        reply,
                    }
                }
                None => {
                    self.broken = true;
                    TxOutcome::Lost {
                        stage,
                        error: e.to_string(),
                    }
                }
            },
            Err(_) => {
                self.broken = true;
                TxOutcome::Silent {
                    stage,
                    error: format!(
                        "no reply within {} s ([smtp] data_timeout_secs)",
                        s.data_timeout.as_secs_f64()
                    ),
                }
            }
        }
    }

    /// Sends one command; `None` when it was accepted, else how the transaction ended.
    async fn command<C: fmt::Display>(
        &mut self,
        s: &SmtpSettings,
        stage: Stage,
        cmd: C,
    ) -> Option<TxOutcome> {
        match timeout(s.command_timeout, self.conn.command(cmd)).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => match Reply::from_error(&e) {
                Some(reply) => {
                    if reply.code == 421 {
                        self.broken = true;
                    } else {
                        self.reset(s).await;
                    }
                    Some(TxOutcome::Replied { stage, reply })
                }
                None => {
                    self.broken = true;
                    Some(TxOutcome::Lost {
                        stage,
                        error: e.to_string(),
                    })
                }
            },
            Err(_) => {
                self.broken = true;
                Some(TxOutcome::Silent {
                    stage,
                    error: format!(
                        "no reply to {stage} within {} s ([smtp] command_timeout_secs)",
                        s.command_timeout.as_secs_f64()
                    ),
                })
            }
        }
    }

    /// RSET after a refused command, so the connection can carry the next message.
    async fn reset(&mut self, s: &SmtpSettings) {
        match timeout(s.command_timeout, self.conn.command(Rset)).await {
            Ok(Ok(_)) => {}
            _ => self.broken = true,
        }
    }

    /// NOOP: is the connection still alive (after a long wait in the throttle)?
    pub(crate) async fn probe(&mut self, s: &SmtpSettings) -> bool {
        let ok = matches!(
            timeout(s.command_timeout, self.conn.command(Noop)).await,
            Ok(Ok(_))
        );
        if !ok {
            self.broken = true;
        }
        ok
    }

    /// QUIT politely (bounded by the command timeout).
    pub(crate) async fn quit(mut self, s: &SmtpSettings) {
        if self.is_usable() {
            let _ = timeout(s.command_timeout, self.conn.command(Quit)).await;
        }
    }
}

/// The message as it goes on the wire: every line ending CRLF (a bare CR or LF becomes CRLF,
/// so no `.` line can end DATA early on a server that accepts bare LF: SMTP smuggling) and
/// without the final CRLF, which the `\r\n.\r\n` terminator supplies (the server stores
/// exactly the message).
pub(crate) fn wire_body(message: &[u8]) -> Cow<'_, [u8]> {
    // Clean when every CR is followed by LF and every LF preceded by CR: check each hit of a
    // SIMD scan for either byte (most messages are clean; a dirty one is rebuilt).
    let mut clean = true;
    let mut hits = memchr::memchr2_iter(b'\r', b'\n', message);
    while let Some(i) = hits.next() {
        if message[i] != b'\r' || message.get(i + 1) != Some(&b'\n') {
            clean = false;
            break;
        }
        // Skip the LF of this CRLF.
        hits.next();
    }
    let mut body: Cow<'_, [u8]> = if clean {
        Cow::Borrowed(message)
    } else {
        let mut out = Vec::with_capacity(message.len() + 64);
        let mut i = 0;
        while i < message.len() {
            match message[i] {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    i += if message.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                }
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        Cow::Owned(out)
    };
    if body.ends_with(b"\r\n") {
        body = match body {
            Cow::Borrowed(b) => Cow::Borrowed(&b[..b.len() - 2]),
            Cow::Owned(mut v) => {
                v.truncate(v.len() - 2);
                Cow::Owned(v)
            }
        };
    }
    body
}

/// The stream lettre drives: TCP (no Nagle) or implicit TLS over it (port 465; STARTTLS
/// wraps this one inside lettre). It counts completed flushes, which tells whether the final
/// dot reached the network when a transaction fails.
struct Tracked<S> {
    inner: S,
    peer: std::net::SocketAddr,
    flushes: Arc<AtomicU64>,
}

impl<S> fmt::Debug for Tracked<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            self.flushes.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> AsyncTokioStream for Tracked<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin,
{
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a reply line such as `550 5.1.1 <x@y>: user unknown`.
    fn reply(line: &str) -> Reply {
        let code: u16 = line[..3].parse().expect(line);
        let rest = &line[3..];
        Reply::new(code, rest.strip_prefix(['-', ' ']).unwrap_or(rest))
    }

    #[test]
    fn replies_are_classified_per_the_standards_table() {
        use Verdict::*;
        for (line, verdict) in [
            ("250 2.0.0 Ok: queued as ABC", Sent),
            (
                "421 4.7.0 Too many connections, slow down",
                Defer { slow_down: true },
            ),
            (
                "451 4.7.1 Greylisted, try again later",
                Defer { slow_down: true },
            ),
            (
                "450 4.2.1 Mailbox temporarily busy",
                Defer { slow_down: true },
            ),
            (
                "451 4.3.0 Temporary local problem",
                Defer { slow_down: false },
            ),
            ("452 4.2.2 Mailbox full", Defer { slow_down: false }),
            ("450 Requested action not taken", Defer { slow_down: false }),
            (
                "550 5.1.1 <a@b.org>: Recipient address rejected",
                Fail { bounce: true },
            ),
            (
                "553 5.1.3 Bad recipient address syntax",
                Fail { bounce: true },
            ),
            ("552 5.2.2 Mailbox full", Fail { bounce: false }),
            ("550 Mailbox unavailable", Fail { bounce: false }),
            ("554 5.7.1 Relay access denied", Stop),
            ("550 5.7.26 Unauthenticated email is not accepted", Stop),
            ("530 5.7.0 Authentication required", Stop),
            ("535 Authentication credentials invalid", Stop),
            ("552 5.3.4 Message size exceeds fixed limit", Stop),
        ] {
            assert_eq!(classify(&reply(line)), verdict, "{line}");
        }
    }

    #[test]
    fn the_enhanced_code_is_parsed_out_of_the_text() {
        let r = reply("550 5.1.1 <nobody@example.org>: user unknown");
        assert_eq!(r.code, 550);
        assert_eq!(
            r.enhanced,
            Some(Enhanced {
                class: 5,
                subject: 1,
                detail: 1
            })
        );
        assert_eq!(r.text, "<nobody@example.org>: user unknown");
        assert_eq!(
            r.to_string(),
            "550 5.1.1 <nobody@example.org>: user unknown"
        );
        let plain = reply("250 Ok");
        assert_eq!(plain.enhanced, None);
        assert_eq!(plain.to_string(), "250 Ok");
        // A version number is not an enhanced code.
        assert_eq!(reply("220 1.2 ready").enhanced, None);
    }

    #[test]
    fn replies_are_clipped_to_one_printable_line() {
        let long = format!("550 5.1.1 {}\u{7}x", "a".repeat(1000));
        let r = reply(&long);
        assert!(r.text.len() <= REPLY_MAX + 3);
        assert!(!r.text.contains('\u{7}'));
    }

    #[test]
    fn wire_body_turns_bare_cr_and_lf_into_crlf_and_drops_the_last_crlf() {
        assert_eq!(&*wire_body(b"a\r\nb\r\n"), b"a\r\nb");
        assert!(matches!(wire_body(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(
            &*wire_body(b"a\n.\nb\r\r\n.\r\nc"),
            b"a\r\n.\r\nb\r\n\r\n.\r\nc"
        );
        assert_eq!(&*wire_body(b"x\r"), b"x");
        assert_eq!(&*wire_body(b"\n"), b"");
        assert_eq!(&*wire_body(b"a\r\r\n"), b"a\r\n");
        assert!(matches!(wire_body(b"a\r\nb"), Cow::Borrowed(b"a\r\nb")));
    }

    #[test]
    fn the_body_is_dot_stuffed_and_terminated() {
        let stuffed = |t: &str| StuffedBody(t).to_string();
        assert_eq!(stuffed("a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(
            stuffed(".a\r\n.\r\n..b\r\nc."),
            "..a\r\n..\r\n...b\r\nc.\r\n.\r\n"
        );
        assert_eq!(stuffed(""), "\r\n.\r\n");
    }

    #[test]
    fn plain_smtp_is_refused_for_a_remote_host() {
        let cfg: SmtpConfig =
            toml::from_str("host = \"smtp.example.org\"\ntls = \"none\"").unwrap();
        let err = SmtpSettings::from_config(&cfg, None).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        for host in ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost"] {
            let cfg: SmtpConfig =
                toml::from_str(&format!("host = \"{host}\"\ntls = \"none\"")).unwrap();
            assert!(SmtpSettings::from_config(&cfg, None).is_ok(), "{host}");
        }
    }

    #[test]
    fn a_username_without_the_password_variable_is_refused() {
        let cfg: SmtpConfig =
            toml::from_str("host = \"smtp.example.org\"\nusername = \"me\"").unwrap();
        let err = SmtpSettings::from_config(&cfg, None).unwrap_err();
        assert!(err.to_string().contains("FORTNIGHT_SMTP_PASSWORD"), "{err}");
        let ok = SmtpSettings::from_config(&cfg, Some("hunter2")).unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
        assert!(!ok.to_string().contains("hunter2"));
    }
}
