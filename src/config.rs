//! `config.toml`: the publication, the sender, the list, the relay and the limits.
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) so that a misspelt key is an error
//! naming the key and the file instead of a silently ignored setting. Relative paths resolve
//! against the folder of the config file, never against the working directory. Secrets are
//! not in this file: they come from environment variables (the SMTP password: `Secrets`;
//! the unsubscribe signing keys: `token::keyring_from_env`).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::base::lang::{Language, Words};
use crate::base::IssueDate;

/// Environment variable holding the SMTP password.
pub(crate) const ENV_SMTP_PASSWORD: &str = "FORTNIGHT_SMTP_PASSWORD";
/// Environment variable holding the unsubscribe signing key (at least 32 bytes).
pub(crate) const ENV_UNSUBSCRIBE_KEY: &str = "FORTNIGHT_UNSUBSCRIBE_KEY";

/// The whole configuration, with the location it was read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub publication: PublicationConfig,
    pub sender: SenderConfig,
    #[serde(default)]
    pub digest: DigestConfig,
    #[serde(default)]
    pub subscribers: SubscribersConfig,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub throttle: ThrottleConfig,
    #[serde(default)]
    pub unsubscribe: Option<UnsubscribeConfig>,
    #[serde(default)]
    pub journal: JournalConfig,
    /// `[dkim]` (one key) or `[[dkim]]` (one table per key; every key signs every message).
    #[serde(default, deserialize_with = "one_or_many")]
    pub dkim: Vec<DkimConfig>,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub bounces: BouncesConfig,
    /// Overrides of the built-in templates' words, by key (`read = "Lire"`).
    #[serde(default)]
    pub words: std::collections::BTreeMap<String, String>,
    /// The config file this was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The folder relative paths resolve against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationConfig {
    pub name: String,
    pub base_url: String,
    #[serde(default = "default_articles_dir")]
    pub articles_dir: PathBuf,
    #[serde(default = "default_cadence")]
    pub cadence_days: u32,
    /// Grid anchor; inferred from explicit issue dates when absent.
    #[serde(default)]
    pub first_issue: Option<IssueDate>,
    /// When set, issue numbers count from this number at `first_issue`.
    #[serde(default)]
    pub first_issue_number: Option<u32>,
    /// Section order in the digest; sections not listed follow in alphabetical order.
    #[serde(default)]
    pub sections: Vec<String>,
    /// The language of the edition (`en`, `ru`): `lang` on the HTML, month names, and the
    /// built-in templates' words.
    #[serde(default = "default_language")]
    pub language: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    /// `Display Name <address@domain>`
    pub from: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Envelope sender (MAIL FROM); defaults to the From address.
    #[serde(default)]
    pub bounce: Option<String>,
    /// The List-Id label, e.g. `digest.analyst.example.org`.
    pub list_id: String,
    #[serde(default)]
    pub postal_address: Option<String>,
    /// The `Feedback-ID` header (Gmail's feedback loop): colon-separated fields, the last
    /// naming the sender; `{issue}` becomes the issue date (YYYYMMDD). Default
    /// `{issue}:LIST_ID:digest:fortnight`. Never per-recipient.
    #[serde(default)]
    pub feedback_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BodyMode {
    /// The card shows the lead paragraph and links to the article.
    #[default]
    Lead,
    /// The whole article is in the message.
    Full,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    /// Whether the config file sets `templates_dir` (then the folder must exist).
    #[serde(skip)]
    pub templates_dir_set: bool,
    /// Tera template for the Subject line.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Tera template for the hidden preheader; default: the lead of the first article.
    #[serde(default)]
    pub preheader: Option<String>,
    #[serde(default)]
    pub body: BodyMode,
    /// Prefix of the subject of `send --to` test copies.
    #[serde(default = "default_test_prefix")]
    pub test_subject_prefix: String,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            templates_dir: default_templates_dir(),
            templates_dir_set: false,
            subject: default_subject(),
            preheader: None,
            body: BodyMode::default(),
            test_subject_prefix: default_test_prefix(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribersConfig {
    #[serde(default = "default_subscribers_file")]
    pub file: PathBuf,
}

impl Default for SubscribersConfig {
    fn default() -> Self {
        SubscribersConfig {
            file: default_subscribers_file(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Implicit TLS (port 465).
    Tls,
    /// STARTTLS, required: the run aborts if the upgrade fails.
    Starttls,
    /// Plain text; allowed for loopback hosts only.
    None,
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Tls => "tls",
            TlsMode::Starttls => "starttls",
            TlsMode::None => "none",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    /// Name sent in EHLO; default: this machine's host name.
    #[serde(default)]
    pub helo_name: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Timeout for each command reply (EHLO, MAIL, RCPT, DATA).
    #[serde(default = "default_command_timeout")]
    pub command_timeout_secs: u64,
    /// Timeout for the reply to the final `.` (RFC 5321 suggests 10 minutes).
    #[serde(default = "default_data_timeout")]
    pub data_timeout_secs: u64,
    /// PEM file of extra CA certificates to trust (a relay with a private CA), on top of the
    /// built-in web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Tls => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    #[serde(default)]
    pub per_second: Option<u32>,
    #[serde(default)]
    pub per_minute: Option<u32>,
    #[serde(default)]
    pub per_hour: Option<u32>,
    #[serde(default)]
    pub per_day: Option<u32>,
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(default = "default_backoff")]
    pub backoff_secs: f64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            per_second: None,
            per_minute: None,
            per_hour: None,
            per_day: None,
            concurrency: default_concurrency(),
            retries: default_retries(),
            backoff_secs: default_backoff(),
            backoff_max_secs: default_backoff_max(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeConfig {
    /// HTTPS URL template holding `{token}`.
    pub url: String,
    #[serde(default)]
    pub mailto: Option<String>,
    /// Id of the current key, written into every token (for rotation).
    #[serde(default = "default_key_id")]
    pub key_id: String,
    /// Ids of retired keys whose tokens still verify; each secret comes from the
    /// environment variable `FORTNIGHT_UNSUBSCRIBE_KEY_<ID>` (id uppercased).
    #[serde(default)]
    pub retired_key_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    #[serde(default = "default_journal_path")]
    pub path: PathBuf,
    /// SQLite durability of each commit: `normal` (survives the process being killed; an OS
    /// crash can lose the last second) or `full` (fsync per commit).
    #[serde(default)]
    pub synchronous: JournalSync,
}

/// `[journal] synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum JournalSync {
    #[default]
    Normal,
    Full,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: default_journal_path(),
            synchronous: JournalSync::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    /// PKCS#8 PEM, RSA (rsa-sha256) or Ed25519 (ed25519-sha256).
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Requests per minute allowed from one client address (a token bucket of that size).
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Behind a reverse proxy: the header holding the client address (`X-Forwarded-For`,
    /// `X-Real-IP`); its last entry is used. Unset: the peer address of the connection.
    #[serde(default)]
    pub client_ip_header: Option<String>,
    /// Connections served at once; more wait in the kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Peers whose `client_ip_header` is believed (addresses or CIDR blocks); unset:
    /// loopback only (a reverse proxy on the same machine).
    #[serde(default)]
    pub trusted_proxies: Option<Vec<String>>,
}

/// An address or a CIDR block (`127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: std::net::IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|n| *n <= max)?,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip.to_canonical() {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let (net, width) = bits(self.addr);
        let (ip, ip_width) = bits(ip);
        if width != ip_width {
            return false;
        }
        let shift = u32::from(width - self.prefix.min(width));
        shift >= 128 || (net >> shift) == (ip >> shift)
    }
}

impl ServeConfig {
    /// The peers whose `client_ip_header` is believed: `trusted_proxies`, else loopback.
    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>> {
        let Some(list) = &self.trusted_proxies else {
            return Ok(vec![
                IpNet::parse("127.0.0.0/8").expect("a valid block"),
                IpNet::parse("::1").expect("a valid address"),
            ]);
        };
        list.iter()
            .map(|s| {
                IpNet::parse(s).with_context(|| {
                    format!(
                        "[serve] trusted_proxies: `{}` is not an address or CIDR block (write e.g. \"10.0.0.0/8\" or \"::1\")",
                        crate::base::escape_control(s)
                    )
                })
            })
            .collect()
    }

    /// Whether `listen` is a loopback address (`127.0.0.1:…`, `[::1]:…`, `localhost:…`).
    pub fn listens_on_loopback(listen: &str) -> bool {
        if let Ok(a) = listen.parse::<std::net::SocketAddr>() {
            return a.ip().is_loopback();
        }
        listen
            .rsplit_once(':')
            .is_some_and(|(h, _)| h.eq_ignore_ascii_case("localhost"))
    }

    /// The warning `check` and `serve` give when `client_ip_header` is set, the server
    /// listens beyond loopback and no `trusted_proxies` say who may set the header.
    pub fn proxy_warning(&self, listen: &str) -> Option<String> {
        let header = self.client_ip_header.as_ref()?;
        if self.trusted_proxies.is_some() || Self::listens_on_loopback(listen) {
            return None;
        }
        Some(format!(
            "[serve] client_ip_header = \"{}\" with listen = \"{listen}\" and no trusted_proxies: the header is believed only from loopback peers, so clients reaching the server directly are rate-limited by their own address; set [serve] trusted_proxies to your proxy's address",
            crate::base::escape_control(header)
        ))
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            requests_per_minute: default_requests_per_minute(),
            client_ip_header: None,
            max_connections: default_max_connections(),
            trusted_proxies: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// Use `bounces+TOKEN@domain` as the envelope sender so bounces name their subscriber.
    #[serde(default)]
    pub verp: bool,
    /// Soft bounces in this many consecutive issues make an address `bounced`.
    #[serde(default = "default_soft_limit")]
    pub soft_bounce_limit: u32,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            verp: false,
            soft_bounce_limit: default_soft_limit(),
        }
    }
}

/// `[dkim]` as one table or `[[dkim]]` as an array of tables, read as a list of keys.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<DkimConfig>, D::Error> {
    // Read as a TOML value first, so a misspelt key is reported by name rather than as
    // "did not match any variant".
    let value = toml::Value::deserialize(d)?;
    let parsed = match value {
        toml::Value::Array(_) => value.try_into::<Vec<DkimConfig>>(),
        _ => value.try_into::<DkimConfig>().map(|one| vec![one]),
    };
    parsed.map_err(|e| serde::de::Error::custom(format!("[dkim]: {}", e.message())))
}

fn default_language() -> String {
    "en".to_string()
}

fn default_articles_dir() -> PathBuf {
    PathBuf::from("articles")
}
fn default_cadence() -> u32 {
    14
}
fn default_templates_dir() -> PathBuf {
    PathBuf::from("templates")
}
fn default_subject() -> String {
    "{{ publication.name }}: issue of {{ issue.date }}".to_string()
}
fn default_test_prefix() -> String {
    "[TEST] ".to_string()
}
fn default_subscribers_file() -> PathBuf {
    PathBuf::from("subscribers.csv")
}
fn default_tls() -> TlsMode {
    TlsMode::Starttls
}
fn default_connect_timeout() -> u64 {
    30
}
fn default_command_timeout() -> u64 {
    60
}
fn default_data_timeout() -> u64 {
    600
}
fn default_concurrency() -> u32 {
    4
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> f64 {
    30.0
}
fn default_backoff_max() -> f64 {
    1800.0
}
fn default_key_id() -> String {
    "k1".to_string()
}
fn default_journal_path() -> PathBuf {
    PathBuf::from(".fortnight/journal.sqlite")
}
fn default_listen() -> String {
    "127.0.0.1:8025".to_string()
}
fn default_soft_limit() -> u32 {
    3
}
fn default_requests_per_minute() -> u32 {
    120
}
fn default_max_connections() -> u32 {
    256
}

/// A config file larger than this is refused before it is read (a real one is a few KB).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let hint = "pass --config PATH, or run `fortnight init DIR` to create a project";
        let bytes =
            crate::base::files::read_regular(path, MAX_CONFIG_BYTES).with_context(|| {
                format!("cannot read the config file `{}` ({hint})", path.display())
            })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "the config file `{}` is not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text as if read from `path` (used for relative path resolution).
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut config: Config = toml::from_str(text)
            .with_context(|| format!("invalid config file `{}`", path.display()))?;
        config.path = path.to_path_buf();
        config.digest.templates_dir_set = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("digest")?.get("templates_dir").cloned())
            .is_some();
        config.base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        config
            .validate(text)
            .with_context(|| format!("invalid config file `{}`", path.display()))?;
        Ok(config)
    }

    /// Checks every value serde cannot: ranges, URL schemes, the one `{token}`, the listen
    /// address, header names. All problems are reported at once, each with its line, key
    /// and fix (docs/standards.md "Configuration values").
    fn validate(&self, text: &str) -> Result<()> {
        let mut p = Problems::default();
        let pb = &self.publication;
        p.range(
            "publication",
            "cadence_days",
            pb.cadence_days.into(),
            1,
            366,
        );
        if pb.name.trim().is_empty() {
            p.add(
                "publication",
                "name",
                "must not be empty",
                "write the publication's name",
            );
        }
        p.web_url("publication", "base_url", &pb.base_url, false);
        if Language::parse(&pb.language).is_none() {
            p.add(
                "publication",
                "language",
                &format!("`{}` has no built-in words", pb.language),
                &format!(
                    "use one of {} (and [words] to change single words)",
                    crate::base::lang::LANGUAGE_CODES.join(", ")
                ),
            );
        }
        for key in self.words.keys() {
            if !crate::base::lang::word_keys().any(|k| k == key) {
                p.add(
                    "words",
                    "key",
                    &format!("`{key}` is not a word of the built-in templates"),
                    &format!(
                        "the keys are: {}",
                        crate::base::lang::word_keys()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if self.sender.list_id.trim().is_empty()
            || self.sender.list_id.contains(char::is_whitespace)
        {
            p.add(
                "sender",
                "list_id",
                "must be a label without spaces",
                "write e.g. \"digest.example.org\"",
            );
        }
        let t = &self.throttle;
        p.range("throttle", "concurrency", t.concurrency.into(), 1, 64);
        p.range("throttle", "retries", t.retries.into(), 0, 100);
        for (key, v) in [
            ("per_second", t.per_second),
            ("per_minute", t.per_minute),
            ("per_hour", t.per_hour),
            ("per_day", t.per_day),
        ] {
            if v == Some(0) {
                p.add(
                    "throttle",
                    key,
                    "must be at least 1",
                    "remove the key for no limit",
                );
            }
        }
        for (key, v) in [
            ("backoff_secs", t.backoff_secs),
            ("backoff_max_secs", t.backoff_max_secs),
        ] {
            if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
                p.add(
                    "throttle",
                    key,
                    "must be a number of seconds from 0 to 86400",
                    "write e.g. 30",
                );
            }
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() || smtp.host.contains(char::is_whitespace) {
                p.add(
                    "smtp",
                    "host",
                    "must be a host name or address",
                    "write e.g. \"smtp.example.org\"",
                );
            }
            if smtp.port == Some(0) {
                p.add(
                    "smtp",
                    "port",
                    "must be 1 to 65535",
                    "use 587 (starttls) or 465 (tls), or remove the key",
                );
            }
            for (key, v) in [
                ("connect_timeout_secs", smtp.connect_timeout_secs),
                ("command_timeout_secs", smtp.command_timeout_secs),
                ("data_timeout_secs", smtp.data_timeout_secs),
            ] {
                p.range("smtp", key, v, 1, 3600);
            }
        }
        if let Some(u) = &self.unsubscribe {
            // http is refused later, with its reason, by the message layer's checks.
            p.web_url("unsubscribe", "url", &u.url, false);
            // None at all is refused, with its reason, by the message layer's checks.
            let n = u.url.matches("{token}").count();
            if n > 1 {
                p.add(
                    "unsubscribe",
                    "url",
                    &format!("must hold `{{token}}` exactly once (it holds it {n} times)"),
                    "write it as \"https://example.org/unsubscribe?t={token}\"",
                );
            }
            if let Some(m) = &u.mailto {
                if !m.contains('@') || m.contains(|c: char| c.is_whitespace() || c.is_control()) {
                    p.add(
                        "unsubscribe",
                        "mailto",
                        "must be an address",
                        "write e.g. \"unsubscribe@example.org\"",
                    );
                }
            }
        }
        let sv = &self.serve;
        if !valid_listen(&sv.listen) {
            p.add(
                "serve",
                "listen",
                "must be HOST:PORT",
                "write e.g. \"127.0.0.1:8025\" or \"[::1]:8025\"",
            );
        }
        p.range(
            "serve",
            "max_connections",
            sv.max_connections.into(),
            1,
            100_000,
        );
        if let Some(h) = &sv.client_ip_header {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if h.trim().is_empty() || !h.trim().chars().all(token) {
                p.add(
                    "serve",
                    "client_ip_header",
                    "must be an HTTP header name",
                    "write e.g. \"X-Forwarded-For\"",
                );
            }
        }
        if let Err(e) = sv.trusted_proxies() {
            p.add(
                "serve",
                "trusted_proxies",
                &e.to_string(),
                "list addresses or CIDR blocks",
            );
        }
        p.range(
            "bounces",
            "soft_bounce_limit",
            self.bounces.soft_bounce_limit.into(),
            0,
            100,
        );
        p.finish(text)
    }

    /// Resolves a path from the config against the config file's folder.
    pub(crate) fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// `[publication] language` (checked when the file was read).
    pub fn language(&self) -> Language {
        Language::parse(&self.publication.language).unwrap_or_default()
    }

    /// The built-in templates' words in the edition's language, with `[words]` applied.
    pub fn words(&self) -> Words {
        self.language().words(&self.words)
    }

    pub fn articles_dir(&self) -> PathBuf {
        self.resolve(&self.publication.articles_dir)
    }
    pub fn templates_dir(&self) -> PathBuf {
        self.resolve(&self.digest.templates_dir)
    }
    pub(crate) fn subscribers_file(&self) -> PathBuf {
        self.resolve(&self.subscribers.file)
    }
    pub fn journal_path(&self) -> PathBuf {
        self.resolve(&self.journal.path)
    }
}

/// `HOST:PORT` with a port number (`127.0.0.1:8025`, `[::1]:8025`, `localhost:8025`).
fn valid_listen(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The problems `validate` found, each with its section and key.
#[derive(Default)]
struct Problems(Vec<(&'static str, &'static str, String, String)>);

impl Problems {
    fn add(&mut self, section: &'static str, key: &'static str, problem: &str, fix: &str) {
        self.0
            .push((section, key, problem.to_string(), fix.to_string()));
    }

    fn range(&mut self, section: &'static str, key: &'static str, v: u64, min: u64, max: u64) {
        if v < min || v > max {
            self.add(
                section,
                key,
                &format!("is {v}, must be {min} to {max}"),
                &format!("write a number from {min} to {max}"),
            );
        }
    }

    /// An `http(s)://host…` URL (`https` only when `https_only`), nothing else.
    fn web_url(&mut self, section: &'static str, key: &'static str, url: &str, https_only: bool) {
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://").filter(|_| !https_only));
        let host_ok = rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.starts_with(':')
        });
        if !host_ok || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            let scheme = if https_only { "https" } else { "http or https" };
            self.add(
                section,
                key,
                &format!(
                    "must be an {scheme} URL with a host (it is `{}`)",
                    crate::base::escape_control(url)
                ),
                if https_only {
                    "write e.g. \"https://example.org/unsubscribe?t={token}\""
                } else {
                    "write e.g. \"https://example.org\""
                },
            );
        }
    }

    fn finish(self, text: &str) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(section, key, problem, fix)| {
                let at =
                    line_of(text, section, key).map_or(String::new(), |l| format!("line {l}: "));
                format!("{at}[{section}] {key} {problem}; {fix}")
            })
            .collect();
        bail!("{}", lines.join("\n"))
    }
}

/// The line of `key = …` in `[section]`, if the file sets it.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = "";
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            current = name.trim();
            continue;
        }
        if current == section {
            if let Some(rest) = l.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return Some(n + 1);
                }
            }
        }
    }
    None
}

/// Secrets read from the environment; never printed (Debug is redacted). The unsubscribe
/// signing keys are read by [`crate::token::keyring_from_env`].
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    pub smtp_password: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Secrets {
    pub(crate) fn from_env() -> Secrets {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Secrets {
            smtp_password: get(ENV_SMTP_PASSWORD),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[publication]
name = "The Analyst"
base_url = "https://analyst.example.org"

[sender]
from = "The Analyst <digest@analyst.example.org>"
list_id = "digest.analyst.example.org"
"#;

    #[test]
    fn trusted_proxies_are_addresses_or_blocks_and_default_to_loopback() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")) && !net.contains(ip("11.0.0.1")));
        assert!(IpNet::parse("::1").unwrap().contains(ip("::1")));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert!(IpNet::parse("10.0.0.0/33").is_none() && IpNet::parse("nope").is_none());
        let serve = ServeConfig::default();
        let loopback = serve.trusted_proxies().unwrap();
        assert!(loopback.iter().any(|n| n.contains(ip("127.0.0.1"))));
        assert!(loopback.iter().any(|n| n.contains(ip("::ffff:127.0.0.1"))));
        assert!(!loopback.iter().any(|n| n.contains(ip("192.0.2.1"))));
        let header = ServeConfig {
            client_ip_header: Some("X-Forwarded-For".into()),
            ..ServeConfig::default()
        };
        assert!(header.proxy_warning("0.0.0.0:8025").is_some());
        assert!(header.proxy_warning("127.0.0.1:8025").is_none());
        assert!(header.proxy_warning("localhost:8025").is_none());
        let bad = ServeConfig {
            trusted_proxies: Some(vec!["10.0.0.0/8".into(), "x\ny".into()]),
            ..ServeConfig::default()
        };
        let e = format!("{:#}", bad.trusted_proxies().unwrap_err());
        assert!(e.contains("`x\\ny`"), "{e}");
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths_against_its_folder() {
        let c = Config::parse(MINIMAL, Path::new("/srv/pub/config.toml")).unwrap();
        assert_eq!(c.publication.cadence_days, 14);
        assert_eq!(c.articles_dir(), PathBuf::from("/srv/pub/articles"));
        assert_eq!(
            c.journal_path(),
            PathBuf::from("/srv/pub/.fortnight/journal.sqlite")
        );
        assert_eq!(c.throttle.concurrency, 4);
    }

    #[test]
    fn misspelt_key_is_an_error_naming_the_key_and_the_file() {
        let text = MINIMAL.replace("base_url", "base_ulr");
        let err = Config::parse(&text, Path::new("site/config.toml")).unwrap_err();
        let chain = format!("{err:#}");
        assert!(chain.contains("site/config.toml"), "{chain}");
        assert!(chain.contains("base_ulr"), "{chain}");
    }

    #[test]
    fn unknown_section_is_an_error() {
        let text = format!("{MINIMAL}\n[smtpp]\nhost = \"x\"\n");
        let err = Config::parse(&text, Path::new("config.toml")).unwrap_err();
        assert!(format!("{err:#}").contains("smtpp"));
    }

    #[test]
    fn zero_rate_is_rejected() {
        let text = format!("{MINIMAL}\n[throttle]\nper_second = 0\n");
        let err = Config::parse(&text, Path::new("config.toml")).unwrap_err();
        assert!(format!("{err:#}").contains("per_second"));
    }

    #[test]
    fn secrets_debug_never_shows_values() {
        let s = Secrets {
            smtp_password: Some("hunter2".into()),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
