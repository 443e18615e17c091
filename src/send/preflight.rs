//! Preflight: what a real send checks before it plans anything, so that a send that cannot
//! work refuses before any connection: the `[smtp]` section (with its CA file and the
//! password variable), the `[unsubscribe]` section and key, and the deliverability of the
//! sample message (an error refuses a send to the list; test copies go out with a warning).

use anyhow::{anyhow, bail, Context, Result};

use crate::config::{Config, Secrets};
use crate::digest::{Digest, Rendered};
use crate::message::{deliverability_findings, Severity};
use crate::token::Keyring;

use super::compose::render_sample;
use super::options::SendEvents;
use super::report::{Mode, SendWarning};
use super::smtp::SmtpSettings;

/// What a real send has checked and built before it plans anything.
pub(crate) struct Ready {
    pub smtp: SmtpSettings,
    pub keyring: Keyring,
    /// The sample message's subject (for the confirmation question).
    pub subject: String,
}

/// Runs every check of a real send in `mode` (`Send` or `Test`).
pub(crate) fn check(
    config: &Config,
    digest: &Digest,
    mode: Mode,
    events: &mut dyn SendEvents,
) -> Result<Ready> {
    let smtp = smtp_settings(config)?;
    if config.unsubscribe.is_none() {
        bail!(
            "`{}` has no [unsubscribe] section: a real send needs an HTTPS one-click unsubscribe \
             URL (url = \"https://…?t={{token}}\")",
            config.path.display()
        );
    }
    let (keyring, _) = crate::token::keyring_from_env(config.unsubscribe.as_ref(), false)?;
    let rendered = render_sample(config, &keyring, digest)?;
    check_deliverability(config, &rendered, mode, events)?;
    Ok(Ready {
        smtp,
        keyring,
        subject: rendered.subject,
    })
}

/// The `[smtp]` section as connection settings, with the password from the environment and
/// the extra CA certificates of `ca_file`.
fn smtp_settings(config: &Config) -> Result<SmtpSettings> {
    let smtp_cfg = config.smtp.as_ref().ok_or_else(|| {
        anyhow!(
            "`{}` has no [smtp] section: a real send needs one (host, port, tls, username); \
             `fortnight send --dry-run` needs none",
            config.path.display()
        )
    })?;
    let secrets = Secrets::from_env();
    let from = crate::message::SenderAddress::from_of(config)?;
    let mut smtp = SmtpSettings::from_config(smtp_cfg, secrets.smtp_password.as_deref())
        .with_context(|| format!("invalid [smtp] section in `{}`", config.path.display()))?
        .with_helo_fallback(from.domain());
    if let Some(ca) = &smtp_cfg.ca_file {
        let path = config.resolve(ca);
        let pem = crate::base::files::read_regular(&path, 1 << 20)
            .with_context(|| format!("cannot read [smtp] ca_file `{}`", path.display()))?;
        smtp = smtp.with_extra_roots(&pem, &path.display().to_string())?;
    }
    Ok(smtp)
}

/// Warns about deliverability warnings; errors refuse a send to the list and are warnings
/// for test copies.
fn check_deliverability(
    config: &Config,
    sample: &Rendered,
    mode: Mode,
    events: &mut dyn SendEvents,
) -> Result<()> {
    let (errors, warnings): (Vec<_>, Vec<_>) = deliverability_findings(config, sample)
        .into_iter()
        .partition(|f| f.severity == Severity::Error);
    for f in warnings {
        events.warning(SendWarning::Deliverability {
            mode,
            severity: f.severity,
            message: f.message,
        });
    }
    if errors.is_empty() {
        return Ok(());
    }
    if mode == Mode::Test {
        for f in errors {
            events.warning(SendWarning::Deliverability {
                mode,
                severity: f.severity,
                message: f.message,
            });
        }
        return Ok(());
    }
    let messages: Vec<String> = errors.into_iter().map(|f| f.message).collect();
    bail!(
        "refusing to send: {} deliverability error(s):\n  - {}\n(`fortnight check` shows every finding)",
        messages.len(),
        messages.join("\n  - ")
    )
}
