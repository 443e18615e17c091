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
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            requests_per_minute: default_requests_per_minute(),
            client_ip_header: None,
            max_connections: default_max_connections(),
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

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the config file `{}` (pass --config PATH, or run `fortnight init DIR` to create a project)",
                path.display()
            )
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text as if read from `path` (used for relative path resolution).
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut config: Config = toml::from_str(text)
            .with_context(|| format!("invalid config file `{}`", path.display()))?;
        config.path = path.to_path_buf();
        config.base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        config
            .validate()
            .with_context(|| format!("invalid config file `{}`", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.publication.cadence_days == 0 {
            bail!("[publication] cadence_days must be at least 1");
        }
        if Language::parse(&self.publication.language).is_none() {
            bail!(
                "[publication] language `{}` has no built-in words; use one of {} (and [words] to change single words)",
                self.publication.language,
                crate::base::lang::LANGUAGE_CODES.join(", ")
            );
        }
        for key in self.words.keys() {
            if !crate::base::lang::word_keys().any(|k| k == key) {
                bail!(
                    "[words] `{key}` is not a word of the built-in templates; the keys are: {}",
                    crate::base::lang::word_keys()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if self.publication.name.trim().is_empty() {
            bail!("[publication] name must not be empty");
        }
        if self.throttle.concurrency == 0 {
            bail!("[throttle] concurrency must be at least 1");
        }
        for (key, v) in [
            ("per_second", self.throttle.per_second),
            ("per_minute", self.throttle.per_minute),
            ("per_hour", self.throttle.per_hour),
            ("per_day", self.throttle.per_day),
        ] {
            if v == Some(0) {
                bail!("[throttle] {key} must be at least 1 (remove the key for no limit)");
            }
        }
        if !(self.throttle.backoff_secs >= 0.0 && self.throttle.backoff_max_secs >= 0.0) {
            bail!("[throttle] backoff_secs and backoff_max_secs must be non-negative numbers");
        }
        Ok(())
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
