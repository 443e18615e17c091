//! Serve: the HTTP endpoint behind every message's unsubscribe URL (RFC 8058 one-click).
//!
//! `GET` shows a confirmation page with a button and never changes anything (link scanners
//! fetch every URL in a message); `POST` with `List-Unsubscribe=One-Click` and a valid
//! token marks the subscriber `unsubscribed` and answers `200` with a page, never a
//! redirect. Tokens resolve through an index of the list (`index`); unsubscribes go
//! through one batching writer (`writer`) that rewrites the list under its lock.
//!
//! Limits: request bodies of 8 KB, a header read timeout, a body read timeout, a cap on
//! connections, and a per-client rate limit (`limit`). Meant to run on loopback behind an
//! HTTPS reverse proxy (Caddy, nginx); the README shows both and a systemd unit.
//!
//! Every request is told to a [`ServeLog`] (time, method, route, status, outcome, duration),
//! and so is every warning (a failed accept, a list write that did not happen); the command
//! layer decides where the lines go. No token, address or client IP is given to the log
//! (the list is the record of who left; the proxy's access log has the IPs if you keep
//! them). `Setup` checks the config and reads the key; [`App::start`] builds the index and
//! starts the writer; [`run`] serves until told to stop.

mod index;
mod limit;
mod pages;
mod writer;

use std::future::Future;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::subscribers::Status;
use crate::token::{keyring_from_env, Keyring};
use pages::Outcome;

/// Where the server's log lines go (implemented by the command layer).
pub trait ServeLog: Send + Sync {
    /// One handled request.
    fn request(&self, request: &RequestRecord<'_>);
    /// Something went wrong that the server survives (the client got an error page).
    fn warning(&self, message: &str);
}

/// One handled request, as logged: nothing in it names the subscriber or the client.
#[derive(Debug, Clone)]
pub struct RequestRecord<'a> {
    /// When the answer was ready.
    pub at: chrono::DateTime<chrono::Utc>,
    pub method: &'a str,
    /// The route (a path token is never shown) or the requested path, cut short.
    pub route: &'a str,
    pub status: u16,
    /// What the request did (`unsubscribed`, `invalid-link`, …), `-` when not ours to say.
    pub outcome: &'a str,
    pub elapsed: Duration,
}

/// The largest request body read (a one-click body is 26 bytes).
const MAX_BODY: usize = 8 * 1024;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// Where the token sits in the unsubscribe URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenPlace {
    /// A query parameter: `/unsubscribe?t={token}` → `t`.
    Query(String),
    /// A whole path segment: `/u/{token}`.
    PathSegment,
}

/// The route served, from `[unsubscribe] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// The axum route (`/unsubscribe`, `/u/:token`).
    route: String,
    /// The path as shown in logs (`/unsubscribe`, `/u/{token}`).
    display: String,
    token: TokenPlace,
}

impl Endpoint {
    /// Reads the route from the URL template (`https://host/unsubscribe?t={token}`).
    fn from_url(url: &str) -> Result<Endpoint> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let path_and_query = rest.find('/').map_or("/", |i| &rest[i..]);
        let path_and_query = path_and_query.split('#').next().unwrap_or("/");
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        if path.contains("{token}") {
            let segments: Vec<&str> = path.split('/').collect();
            if segments.iter().filter(|s| s.contains("{token}")).count() != 1
                || !segments.contains(&"{token}")
            {
                bail!("[unsubscribe] url `{url}`: `{{token}}` must be a whole path segment (`/u/{{token}}`) or a query value (`?t={{token}}`)");
            }
            let route: Vec<&str> = segments
                .iter()
                .map(|s| if *s == "{token}" { ":token" } else { s })
                .collect();
            return Ok(Endpoint {
                route: route.join("/"),
                display: path.to_string(),
                token: TokenPlace::PathSegment,
            });
        }
        let param = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| match pair.split_once('=') {
                Some((k, "{token}")) if !k.is_empty() => Some(k.to_string()),
                _ => None,
            });
        match param {
            Some(p) => Ok(Endpoint {
                route: if path.is_empty() { "/".into() } else { path.to_string() },
                display: path.to_string(),
                token: TokenPlace::Query(p),
            }),
            None => bail!(
                "[unsubscribe] url `{url}` has no `{{token}}`: write it as `https://host/unsubscribe?t={{token}}`"
            ),
        }
    }
}

/// Limits and proxy settings of the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    requests_per_minute: u32,
    client_ip_header: Option<HeaderName>,
    /// Peers whose `client_ip_header` is believed.
    trusted_proxies: Vec<crate::config::IpNet>,
    max_connections: usize,
}

impl ServeOptions {
    pub fn from_config(config: &Config) -> Result<ServeOptions> {
        let client_ip_header =
            match &config.serve.client_ip_header {
                Some(h) => Some(HeaderName::from_bytes(h.trim().as_bytes()).with_context(
                    || format!("[serve] client_ip_header `{h}` is not a header name"),
                )?),
                None => None,
            };
        if config.serve.max_connections == 0 {
            bail!("[serve] max_connections must be at least 1");
        }
        Ok(ServeOptions {
            requests_per_minute: config.serve.requests_per_minute,
            client_ip_header,
            trusted_proxies: config.serve.trusted_proxies()?,
            max_connections: config.serve.max_connections as usize,
        })
    }
}

/// What `fortnight serve` needs before it listens: the checked `[unsubscribe]` URL, the
/// keys, the limits and the address to listen on.
pub(crate) struct Setup {
    pub(crate) keyring: Keyring,
    pub(crate) options: ServeOptions,
    pub(crate) listen: SocketAddr,
    /// What the person starting the server should know (e.g. an untrusted proxy header).
    pub(crate) warnings: Vec<String>,
}

impl Setup {
    /// Checks the config (an `[unsubscribe]` URL with a `{token}`, the limits), reads the
    /// signing keys from the environment and resolves `listen` (else `[serve] listen`).
    pub(crate) fn from_config(config: &Config, listen: Option<&str>) -> Result<Setup> {
        let unsubscribe = unsubscribe_section(config)?;
        Endpoint::from_url(&unsubscribe.url)?;
        let (keyring, _) = keyring_from_env(Some(unsubscribe), false)?;
        let options = ServeOptions::from_config(config)?;
        let listen_text = listen.unwrap_or(&config.serve.listen);
        let listen = listen_address(listen_text)?;
        let warnings = config
            .serve
            .proxy_warning(listen_text)
            .into_iter()
            .collect();
        Ok(Setup {
            keyring,
            options,
            listen,
            warnings,
        })
    }
}

fn unsubscribe_section(config: &Config) -> Result<&crate::config::UnsubscribeConfig> {
    config.unsubscribe.as_ref().context(
        "`fortnight serve` needs an [unsubscribe] section with the url template, e.g. url = \"https://example.org/unsubscribe?t={token}\"",
    )
}

struct AppState {
    publication: pages::Site,
    endpoint: Endpoint,
    tokens: Arc<index::Tokens>,
    writer: writer::Writer,
    limiter: limit::RateLimiter,
    client_ip_header: Option<HeaderName>,
    trusted_proxies: Vec<crate::config::IpNet>,
    log: Arc<dyn ServeLog>,
}

/// A ready server: index built, writer running.
pub struct App {
    state: Arc<AppState>,
    writer_task: tokio::task::JoinHandle<()>,
    max_connections: usize,
}

impl App {
    /// Reads the list, builds the token index and starts the writer (inside a tokio
    /// runtime). Requests and warnings go to `log`.
    pub async fn start(
        config: &Config,
        keyring: Keyring,
        options: ServeOptions,
        log: Arc<dyn ServeLog>,
    ) -> Result<App> {
        let unsubscribe = unsubscribe_section(config)?;
        let endpoint = Endpoint::from_url(&unsubscribe.url)?;
        let list_path = config.subscribers_file();
        let (p, id, l) = (
            list_path.clone(),
            config.sender.list_id.clone(),
            log.clone(),
        );
        let tokens = tokio::task::spawn_blocking(move || index::Tokens::load(&p, keyring, &id, l))
            .await
            .context("building the token index failed")??;
        let tokens = Arc::new(tokens);
        let (writer, writer_task) = writer::Writer::spawn(list_path, tokens.clone(), log.clone());
        Ok(App {
            state: Arc::new(AppState {
                publication: pages::Site::of(config),
                endpoint,
                tokens,
                writer,
                limiter: limit::RateLimiter::new(options.requests_per_minute),
                client_ip_header: options.client_ip_header,
                trusted_proxies: options.trusted_proxies,
                log,
            }),
            writer_task,
            max_connections: options.max_connections,
        })
    }

    /// The route served, as shown in logs.
    pub(crate) fn route_display(&self) -> &str {
        &self.state.endpoint.display
    }

    /// How many addresses the token index holds.
    pub(crate) fn indexed(&self) -> usize {
        self.state.tokens.indexed()
    }

    fn router(&self) -> Router {
        let state = self.state.clone();
        Router::new()
            .route(&state.endpoint.route, get(confirm_page).post(one_click))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(state.clone(), guard))
            .with_state(state)
    }
}

/// The peer address of a connection (request extension).
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish
/// (up to 10 s) and waits for the pending list writes.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let router = app.router();
    let log = app.state.log.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(app.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            s = slots.clone().acquire_owned() => s.context("connection limiter closed")?,
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    log.warning(&format!("accept failed: {err}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let mut router = router.clone();
                async move { tower_service::Service::call(&mut router, req.map(Body::new)).await }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stopping = async move {
                // (the guard wait_for returns must not live across an await)
                let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, conn).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    let App {
        state, writer_task, ..
    } = app;
    drop(router);
    drop(state);
    // Every Writer clone is gone now: the writer drains its queue and ends.
    let _ = tokio::time::timeout(GRACE, writer_task).await;
    Ok(())
}

/// The client's address for the rate limit: the `client_ip_header`'s last entry when the
/// peer is a trusted proxy (`[serve] trusted_proxies`, default loopback), else the peer.
fn client_ip(state: &AppState, req: &Request) -> Option<IpAddr> {
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let trusted = peer.is_some_and(|ip| state.trusted_proxies.iter().any(|n| n.contains(ip)));
    if let Some(name) = state.client_ip_header.as_ref().filter(|_| trusted) {
        let from_header = req
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(parse_ip);
        if from_header.is_some() {
            return from_header;
        }
    }
    peer
}

/// `203.0.113.7`, `203.0.113.7:5123`, `[2001:db8::1]:443`, `2001:db8::1`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            s.strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(ip, _)| ip.parse().ok())
        })
}

/// Rate limit, then one log line per request.
async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = log_path(&state.endpoint, req.uri());
    let decision = match client_ip(&state, &req) {
        Some(ip) => state.limiter.check(ip),
        None => limit::Decision::Allow,
    };
    let response = match decision {
        limit::Decision::Allow => next.run(req).await,
        limit::Decision::Deny(wait) => {
            let mut r = pages::error(
                &state.publication,
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests from your address. Please try again in a minute.",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    };
    let outcome = response.extensions().get::<Outcome>().map_or("-", |o| o.0);
    state.log.request(&RequestRecord {
        at: chrono::Utc::now(),
        method: method.as_str(),
        route: &route,
        status: response.status().as_u16(),
        outcome,
        elapsed: started.elapsed(),
    });
    response
}

/// The path for the log: the route itself for our endpoint (a path token is never
/// logged), else the requested path, cut short and stripped of anything unprintable, with
/// anything long enough to be a token (12 or more token characters in a row, after
/// percent-decoding) shown as `{redacted}`: `//u/T`, `/./u/T` and `/u%2FT` never log `T`.
fn log_path(endpoint: &Endpoint, uri: &Uri) -> String {
    let path = uri.path();
    let ours = match endpoint.token {
        TokenPlace::Query(_) => path == endpoint.route,
        TokenPlace::PathSegment => {
            let prefix = endpoint.display.split("{token}").next().unwrap_or("");
            path.starts_with(prefix)
        }
    };
    if ours {
        return endpoint.display.clone();
    }
    let decoded = percent_decode(path);
    let mut out = String::new();
    let mut run = String::new();
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=');
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 12 {
            out.push_str("{redacted}");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in decoded.chars().filter(|c| c.is_ascii_graphic()) {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out.chars().take(64).collect()
}

/// `%XX` sequences decoded (repeatedly, so `%252F` is no disguise); invalid ones kept.
fn percent_decode(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..3 {
        let b = cur.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if b[i] == b'%' && i + 2 < b.len() {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        let next = String::from_utf8_lossy(&out).into_owned();
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn token_of(state: &AppState, uri: &Uri, path_token: Option<Path<String>>) -> Option<String> {
    let token = match &state.endpoint.token {
        TokenPlace::PathSegment => path_token.map(|Path(t)| t),
        TokenPlace::Query(name) => uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name.as_str())
                .map(|(_, v)| v.into_owned())
        }),
    }?;
    let token = token.trim().to_string();
    (!token.is_empty()).then_some(token)
}

async fn confirm_page(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    path_token: Option<Path<String>>,
) -> Response {
    let Some(token) = token_of(&state, &uri, path_token) else {
        return pages::missing_token(&state.publication);
    };
    match state.tokens.resolve(&token).await {
        Ok(email) => pages::confirm(&state.publication, email.as_str()),
        Err(_) => pages::invalid_link(&state.publication),
    }
}

async fn one_click(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    path_token: Option<Path<String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let publication = &state.publication;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large(publication);
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Err(_) => {
            return pages::error(
                publication,
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The request took too long to arrive.",
            )
        }
        Ok(Err(_)) => return too_large(publication),
        Ok(Ok(b)) => b,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_one_click(content_type, &bytes) {
        return pages::not_confirmed(publication);
    }
    let Some(token) = token_of(&state, &uri, path_token) else {
        return pages::missing_token(publication);
    };
    let email = match state.tokens.resolve(&token).await {
        Ok(e) => e,
        Err(_) => return pages::invalid_link(publication),
    };
    let written = state.writer.unsubscribe(email.clone()).await;
    answer_unsubscribe(&state, email.as_str(), written)
}

/// The page for an unsubscribe the writer recorded (or could not).
fn answer_unsubscribe(
    state: &AppState,
    email: &str,
    written: Result<writer::Outcome, writer::WriteError>,
) -> Response {
    let publication = &state.publication;
    match written {
        Ok(writer::Outcome::Unsubscribed) => pages::done(publication, email, "unsubscribed", false),
        Ok(writer::Outcome::AlreadyUnsubscribed) => {
            pages::done(publication, email, "already-unsubscribed", true)
        }
        Ok(writer::Outcome::AlreadySuppressed(Status::Bounced)) => {
            pages::done(publication, email, "already-bounced", true)
        }
        Ok(writer::Outcome::AlreadySuppressed(_)) => {
            pages::done(publication, email, "already-suppressed", true)
        }
        // Removed from the list since the token was checked: the link is no longer valid.
        Ok(writer::Outcome::NotInList) => pages::invalid_link(publication),
        Err(writer::WriteError::Busy) => {
            let mut r = pages::error(
                publication,
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many requests right now; nothing was changed. Please try again in a minute.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        Err(err) => {
            state
                .log
                .warning(&format!("unsubscribe not recorded: {err}"));
            pages::error(
                publication,
                StatusCode::INTERNAL_SERVER_ERROR,
                "write-failed",
                "Your request could not be recorded; nothing was changed. Please try again later.",
            )
        }
    }
}

fn too_large(publication: &pages::Site) -> Response {
    pages::error(
        publication,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "The request is too large.",
    )
}

async fn not_found(State(state): State<Arc<AppState>>, method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        let mut r = pages::error(
            &state.publication,
            StatusCode::METHOD_NOT_ALLOWED,
            "bad-method",
            "This method is not allowed here.",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return r;
    }
    pages::error(
        &state.publication,
        StatusCode::NOT_FOUND,
        "not-found",
        "There is nothing here.",
    )
    .into_response()
}

/// Whether a POST body says `List-Unsubscribe=One-Click` (RFC 8058 §3.2), as
/// `application/x-www-form-urlencoded` (also assumed when no type is given) or
/// `multipart/form-data`.
fn is_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    let is_value = |v: &str| v.trim().eq_ignore_ascii_case("One-Click");
    let ct = content_type.unwrap_or("");
    if ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        // A multipart body is a MIME body: let the mail parser split it.
        let mut raw = format!("Content-Type: {ct}\r\n\r\n").into_bytes();
        raw.extend_from_slice(body);
        let Some(msg) = mail_parser::MessageParser::default().parse(&raw) else {
            return false;
        };
        use mail_parser::MimeHeaders;
        return msg.parts.iter().skip(1).any(|p| {
            p.content_disposition()
                .and_then(|d| d.attribute("name"))
                .is_some_and(|n| n == "List-Unsubscribe")
                && p.text_contents().is_some_and(is_value)
        });
    }
    form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && is_value(&v))
}

/// Resolves `--listen` / `[serve] listen` (`127.0.0.1:8025`, `localhost:8025`, `[::1]:8025`).
fn listen_address(s: &str) -> Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .with_context(|| {
            format!("cannot use `{s}` as the listen address (write HOST:PORT, e.g. 127.0.0.1:8025)")
        })?
        .next()
        .with_context(|| format!("`{s}` resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_comes_from_the_url_template() {
        let e = Endpoint::from_url("https://analyst.example.org/unsubscribe?t={token}").unwrap();
        assert_eq!(e.route, "/unsubscribe");
        assert_eq!(e.token, TokenPlace::Query("t".into()));
        let e = Endpoint::from_url("https://a.example.org/list/u?list=x&tok={token}").unwrap();
        assert_eq!(e.route, "/list/u");
        assert_eq!(e.token, TokenPlace::Query("tok".into()));
        let e = Endpoint::from_url("https://a.example.org/u/{token}").unwrap();
        assert_eq!(e.route, "/u/:token");
        assert_eq!(e.token, TokenPlace::PathSegment);
        assert!(Endpoint::from_url("https://a.example.org/u").is_err());
        assert!(Endpoint::from_url("https://a.example.org/u/x{token}").is_err());
    }

    #[test]
    fn one_click_bodies_are_recognised_in_both_form_encodings() {
        assert!(is_one_click(
            Some("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=One-Click"
        ));
        assert!(is_one_click(None, b"List-Unsubscribe=One-Click"));
        let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(is_one_click(
            Some("multipart/form-data; boundary=XyZ"),
            multipart
        ));
        assert!(!is_one_click(
            Some("multipart/form-data; boundary=other"),
            multipart
        ));
        assert!(!is_one_click(None, b"List-Unsubscribe=Nope"));
        assert!(!is_one_click(None, b""));
        assert!(!is_one_click(Some("multipart/form-data"), b"\x00\xff--"));
    }

    #[test]
    fn client_addresses_parse_with_or_without_ports() {
        assert_eq!(parse_ip(" 203.0.113.7"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip("203.0.113.7:5123"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("unknown"), None);
    }

    #[test]
    fn path_tokens_never_reach_the_log() {
        let e = Endpoint::from_url("https://a.example.org/u/{token}").unwrap();
        let uri: Uri = "/u/AQJrMQsecret".parse().unwrap();
        assert_eq!(log_path(&e, &uri), "/u/{token}");
        let e = Endpoint::from_url("https://a.example.org/unsubscribe?t={token}").unwrap();
        let uri: Uri = "/unsubscribe?t=AQJrMQsecret".parse().unwrap();
        assert_eq!(log_path(&e, &uri), "/unsubscribe");
        // Non-canonical spellings of a path-form URL: the token is still not logged.
        let e = Endpoint::from_url("https://a.example.org/u/{token}").unwrap();
        for p in [
            "//u/AQJrMQsecret-token_x",
            "/./u/AQJrMQsecret-token_x",
            "/u%2FAQJrMQsecret-token_x",
            "/u%252FAQJrMQsecret%2Dtoken_x",
        ] {
            let uri: Uri = p.parse().unwrap();
            let logged = log_path(&e, &uri);
            assert!(!logged.contains("AQJrMQ"), "{p} → {logged}");
            assert!(logged.contains("{redacted}"), "{p} → {logged}");
        }
        assert_eq!(
            log_path(&e, &"/favicon.ico".parse().unwrap()),
            "/favicon.ico"
        );
    }
}
