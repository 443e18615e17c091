//! Bounces: delivery status notifications and complaint reports in, list suppressions out.
//!
//! `fortnight bounces FILE_OR_DIR...` reads mbox files and Maildirs ([`mailbox`]),
//! recognises each message ([`parse`]: RFC 3464 DSNs, common human-readable bounces,
//! RFC 5965 complaints), ties each report to a subscriber (by the unsubscribe token of a
//! VERP envelope or of the quoted original when the key is at hand, else by the address the
//! report names) and then:
//! - a hard bounce (a permanent failure that is the address's fault, see [`status`]) marks
//!   a `subscribed` address `bounced`;
//! - a soft bounce (4.x.x, 5.2.2 mailbox full) is remembered per issue in the journal
//!   database ([`store`]); soft bounces in `[bounces] soft_bounce_limit` consecutive issues
//!   mark the address `bounced`;
//! - an abuse complaint marks the address `complained` (whatever its status was).
//!
//! Only addresses on the list change; policy rejections (5.7.x) and delays are reported,
//! never held against an address. It sends nothing and never deletes a row.

pub mod mailbox;
pub mod parse;
pub mod status;
pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::base::IssueDate;
use crate::config::{Config, ENV_UNSUBSCRIBE_KEY};
use crate::subscribers::{self, Status, SubscriberEmail, SubscriberList};
use crate::token::TokenIndex;

pub use parse::{Analysis, Event, Notice, Recognizer, ReportKind};
pub use status::{BounceClass, StatusCode};
use store::{IssueSource, SoftBounce, SoftBounceStore};

/// The VERP envelope sender for one copy: `bounces+TOKEN@domain`.
///
/// `bounce_address` is the plain bounce address (`bounces@domain`, no angle brackets). If
/// the result would break the 64-octet local-part limit, or the address has no `@`, the
/// plain bounce address is returned unchanged (the bounce then still arrives, just without
/// the token).
pub fn verp_address(bounce_address: &str, token: &str) -> String {
    match bounce_address.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !token.is_empty()
                && local.len() + 1 + token.len() <= 64
                && is_token_text(token) =>
        {
            format!("{local}+{token}@{domain}")
        }
        _ => bounce_address.to_string(),
    }
}

/// The token of a VERP address (`bounces+TOKEN@domain`, with or without a display name
/// or angle brackets): what follows the last `+` of the local part.
pub fn verp_token(recipient: &str) -> Option<String> {
    let addr = parse::bare_address(recipient)?;
    let (local, _) = addr.rsplit_once('@')?;
    let (_, token) = local.rsplit_once('+')?;
    (!token.is_empty() && is_token_text(token)).then(|| token.to_string())
}

fn is_token_text(t: &str) -> bool {
    t.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The envelope sender (MAIL FROM) for the copy whose unsubscribe token is `token`:
/// `[sender] bounce` (else the From address), VERP-encoded when `[bounces] verp = true`.
pub fn envelope_from(config: &Config, token: &str) -> String {
    let base = config
        .sender
        .bounce
        .as_deref()
        .and_then(parse::bare_address)
        .or_else(|| parse::bare_address(&config.sender.from))
        .unwrap_or_default();
    if config.bounces.verp {
        verp_address(base, token)
    } else {
        base.to_string()
    }
}

/// One report about one subscriber (or one address not on the list).
#[derive(Debug, Clone)]
pub struct Finding {
    /// The subscriber, or the address as the report wrote it when it is not on the list.
    pub address: String,
    pub status: Option<StatusCode>,
    pub diagnostic: String,
    /// Where the report was read (`file:line` or Maildir file).
    pub origin: String,
}

/// A soft bounce of a subscriber and where the address stands.
#[derive(Debug, Clone)]
pub struct SoftFinding {
    pub finding: Finding,
    pub issue: IssueDate,
    pub issue_source: IssueSource,
    /// Consecutive issues with soft bounces, this one included.
    pub consecutive: u32,
}

/// A status change (made, or to be made under `--dry-run`).
#[derive(Debug, Clone)]
pub struct Change {
    pub email: SubscriberEmail,
    pub from: Status,
    pub to: Status,
    pub reason: String,
}

/// What a run found and did.
#[derive(Debug, Clone, Default)]
pub struct BounceReport {
    pub messages: usize,
    pub hard: Vec<Finding>,
    pub soft: Vec<SoftFinding>,
    pub complaints: Vec<Finding>,
    pub policy: Vec<Finding>,
    pub delayed: usize,
    pub other_feedback: usize,
    /// Origins of messages that are neither bounces nor complaints.
    pub unrecognised: Vec<String>,
    /// Origins of bounces that name nobody we could identify.
    pub incomplete: Vec<String>,
    /// Addresses reported that are not on the list, with what happened to them.
    pub not_in_list: Vec<(String, String)>,
    /// Reports on subscribers whose status already says enough (e.g. a hard bounce of an
    /// unsubscribed address): address, current status, what was reported.
    pub unchanged: Vec<(String, Status, String)>,
    pub changes: Vec<Change>,
    /// Messages skipped because they are too big.
    pub skipped: Vec<String>,
    /// Reports whose tokens could not be resolved for want of the key.
    pub unresolved_tokens: usize,
    pub new_soft_records: usize,
    pub dry_run: bool,
}

/// The subscribers of the list by key, with their current status.
struct ListView {
    by_key: HashMap<String, (SubscriberEmail, Status)>,
}

impl ListView {
    fn find(&self, address: &str) -> Option<&(SubscriberEmail, Status)> {
        let email = SubscriberEmail::parse(address).ok()?;
        self.by_key.get(&email.key())
    }
}

/// What the reports want done to a subscriber, strongest wish kept.
#[derive(Debug, Clone)]
struct Wish {
    email: SubscriberEmail,
    current: Status,
    to: Status,
    reason: String,
}

/// Reads reports, decides, and (unless `dry_run`) records soft bounces and changes the list.
pub fn process(
    config: &Config,
    sources: &[PathBuf],
    dry_run: bool,
    today: NaiveDate,
) -> Result<BounceReport> {
    let list_path = config.subscribers_file();
    let list = SubscriberList::load(&list_path)
        .with_context(|| format!("cannot read the subscriber list `{}`", list_path.display()))?;
    let view = ListView {
        by_key: list
            .subscribers
            .iter()
            .map(|s| (s.email.key(), (s.email.clone(), s.status)))
            .collect(),
    };
    let index = if std::env::var(ENV_UNSUBSCRIBE_KEY).is_ok_and(|v| !v.is_empty()) {
        let (ring, _) = crate::token::keyring_from_env(config.unsubscribe.as_ref(), false)?;
        Some(TokenIndex::build(
            ring,
            &config.sender.list_id,
            list.subscribers.iter().map(|s| &s.email),
        ))
    } else {
        None
    };

    let recognizer = Recognizer::new(config);
    let mut report = BounceReport {
        dry_run,
        ..Default::default()
    };
    let mut analyses: Vec<(String, Option<NaiveDate>, Analysis)> = Vec::new();
    for source in sources {
        let mut skipped = Vec::new();
        mailbox::for_each_message(
            source,
            |m| analyses.push((m.origin, m.delivered, recognizer.analyse(&m.bytes))),
            |s| skipped.push(s),
        )?;
        report.skipped.extend(skipped);
    }
    report.messages = analyses.len();

    let mut wishes: BTreeMap<String, Wish> = BTreeMap::new();
    let mut soft_new: Vec<(SoftBounce, Finding)> = Vec::new();
    for (origin, delivered, a) in &analyses {
        if a.kind == ReportKind::Unrecognised {
            report.unrecognised.push(origin.clone());
            continue;
        }
        let token_subscriber = match (&index, a.tokens.is_empty()) {
            (_, true) => None,
            (None, false) => {
                report.unresolved_tokens += 1;
                None
            }
            (Some(index), false) => {
                let mut found: Vec<SubscriberEmail> = Vec::new();
                for t in &a.tokens {
                    if let Ok(e) = index.resolve(t) {
                        if !found.contains(&e) {
                            found.push(e);
                        }
                    }
                }
                (found.len() == 1).then(|| found.remove(0))
            }
        };
        for notice in &a.notices {
            let named = notice.addresses.iter().find_map(|x| view.find(x));
            let by_token = token_subscriber
                .as_ref()
                .filter(|_| a.notices.len() == 1 || named.is_none())
                .and_then(|e| view.by_key.get(&e.key()));
            let Some((email, current)) = by_token.or(named).cloned() else {
                let worth_reporting = matches!(notice.event, Event::Failed(_) | Event::Complaint);
                match notice.addresses.first() {
                    Some(addr) if worth_reporting => report
                        .not_in_list
                        .push((addr.clone(), describe(&notice.event, notice.status))),
                    Some(_) => {}
                    None => {
                        if matches!(notice.event, Event::Failed(_) | Event::Complaint) {
                            report.incomplete.push(origin.clone())
                        }
                    }
                }
                continue;
            };
            let finding = Finding {
                address: email.to_string(),
                status: notice.status,
                diagnostic: notice.diagnostic.clone(),
                origin: origin.clone(),
            };
            match &notice.event {
                Event::Failed(BounceClass::Hard) => {
                    wish(
                        &mut wishes,
                        &email,
                        current,
                        Status::Bounced,
                        format!(
                            "hard bounce {}",
                            notice.status.map(|s| s.to_string()).unwrap_or_default()
                        )
                        .trim_end()
                        .to_string(),
                    );
                    report.hard.push(finding);
                }
                Event::Failed(BounceClass::Soft) => {
                    let (issue, issue_source) = match a.original_issue {
                        Some(i) => (i, IssueSource::MessageId),
                        None => (
                            IssueDate::new(a.date.or(*delivered).unwrap_or(today)),
                            IssueSource::ReportDate,
                        ),
                    };
                    soft_new.push((
                        SoftBounce {
                            address: email.key(),
                            issue,
                            issue_source,
                            bounce_id: a.id.clone(),
                            status: notice.status.map(|s| s.to_string()),
                        },
                        finding,
                    ));
                }
                Event::Failed(BounceClass::Policy) => report.policy.push(finding),
                Event::Delayed => report.delayed += 1,
                Event::Complaint => {
                    wish(
                        &mut wishes,
                        &email,
                        current,
                        Status::Complained,
                        "abuse complaint".to_string(),
                    );
                    report.complaints.push(finding);
                }
                Event::OtherFeedback(_) => report.other_feedback += 1,
            }
        }
    }

    // Soft bounces: this run's plus those remembered from earlier runs.
    let journal = config.journal_path();
    let mut store = if dry_run || soft_new.is_empty() {
        None
    } else {
        Some(SoftBounceStore::open(&journal)?)
    };
    if !soft_new.is_empty() {
        let addresses: Vec<String> = soft_new
            .iter()
            .map(|(b, _)| b.address.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let history = match &store {
            Some(s) => s.history(&addresses)?,
            None => match SoftBounceStore::open_read_only(&journal)? {
                Some(s) => s.history(&addresses)?,
                None => HashMap::new(),
            },
        };
        let mut dates: HashMap<String, BTreeSet<NaiveDate>> = HashMap::new();
        for (addr, rows) in &history {
            dates
                .entry(addr.clone())
                .or_default()
                .extend(rows.iter().map(|(d, _)| d.date()));
        }
        for (b, _) in &soft_new {
            dates
                .entry(b.address.clone())
                .or_default()
                .insert(b.issue.date());
        }
        let limit = config.bounces.soft_bounce_limit;
        for (b, finding) in &soft_new {
            let set = &dates[&b.address];
            let upto: BTreeSet<NaiveDate> = set.range(..=b.issue.date()).copied().collect();
            let consecutive = store::consecutive_issues(&upto, config.publication.cadence_days);
            report.soft.push(SoftFinding {
                finding: finding.clone(),
                issue: b.issue,
                issue_source: b.issue_source,
                consecutive,
            });
        }
        if limit > 0 {
            for (addr, set) in &dates {
                let run = store::consecutive_issues(set, config.publication.cadence_days);
                if run >= limit {
                    if let Some((email, current)) = view.by_key.get(addr) {
                        wish(
                            &mut wishes,
                            email,
                            *current,
                            Status::Bounced,
                            format!("soft bounces in {run} consecutive issues"),
                        );
                    }
                }
            }
        }
    }

    for w in wishes.into_values() {
        let changes = match w.to {
            Status::Complained => w.current != Status::Complained,
            _ => w.current == Status::Subscribed,
        };
        if changes {
            report.changes.push(Change {
                email: w.email,
                from: w.current,
                to: w.to,
                reason: w.reason,
            });
        } else {
            report
                .unchanged
                .push((w.email.to_string(), w.current, w.reason));
        }
    }

    if !dry_run {
        if let Some(store) = store.as_mut() {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let rows: Vec<SoftBounce> = soft_new.iter().map(|(b, _)| b.clone()).collect();
            report.new_soft_records = store.record(&rows, &now)?;
        }
        if !report.changes.is_empty() {
            let changes: Vec<(SubscriberEmail, Status)> = report
                .changes
                .iter()
                .map(|c| (c.email.clone(), c.to))
                .collect();
            subscribers::set_statuses(&list_path, &changes).with_context(|| {
                format!(
                    "cannot update the subscriber list `{}`",
                    list_path.display()
                )
            })?;
        }
    }
    Ok(report)
}

fn wish(
    wishes: &mut BTreeMap<String, Wish>,
    email: &SubscriberEmail,
    current: Status,
    to: Status,
    reason: String,
) {
    let rank = |s: Status| match s {
        Status::Complained => 2,
        Status::Bounced => 1,
        _ => 0,
    };
    match wishes.get_mut(&email.key()) {
        Some(w) if rank(w.to) >= rank(to) => {}
        Some(w) => {
            w.to = to;
            w.reason = reason;
        }
        None => {
            wishes.insert(
                email.key(),
                Wish {
                    email: email.clone(),
                    current,
                    to,
                    reason,
                },
            );
        }
    }
}

fn describe(event: &Event, status: Option<StatusCode>) -> String {
    let code = status.map(|s| format!(" {s}")).unwrap_or_default();
    match event {
        Event::Failed(c) => format!("{} bounce{code}", c.as_str()),
        Event::Delayed => format!("delayed{code}"),
        Event::Complaint => "abuse complaint".to_string(),
        Event::OtherFeedback(t) => format!("feedback report ({t})"),
    }
}

/// Writes the human-readable report.
pub fn print_report(
    report: &BounceReport,
    limit: u32,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let code = |s: Option<StatusCode>| s.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    writeln!(out, "read {} messages", report.messages)?;
    let rows: [(&str, usize, &str); 8] = [
        ("hard bounces", report.hard.len(), ""),
        ("soft bounces", report.soft.len(), ""),
        ("complaints", report.complaints.len(), ""),
        (
            "policy rejections",
            report.policy.len(),
            "  (not held against the address)",
        ),
        ("delays", report.delayed, "  (not bounces yet)"),
        (
            "unrecognised",
            report.unrecognised.len(),
            "  (not a bounce or a complaint: ignored)",
        ),
        ("no recipient found", report.incomplete.len(), ""),
        ("not in the list", report.not_in_list.len(), ""),
    ];
    for (label, n, note) in rows {
        writeln!(out, "  {:<20}{n:>5}{note}", format!("{label}:"))?;
    }
    if report.other_feedback > 0 {
        writeln!(
            out,
            "  {:<20}{:>5}  (not acted on)",
            "other feedback:", report.other_feedback
        )?;
    }

    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    writeln!(out, "\n{verb}: {}", report.changes.len())?;
    for c in &report.changes {
        writeln!(
            out,
            "  {:<11} {}  ({}, was {})",
            c.to.as_str(),
            c.email,
            c.reason,
            c.from
        )?;
    }
    if !report.hard.is_empty() {
        writeln!(out, "\nhard bounces:")?;
        for f in &report.hard {
            writeln!(
                out,
                "  {}  {}  {}  [{}]",
                f.address,
                code(f.status),
                f.diagnostic,
                f.origin
            )?;
        }
    }
    if !report.soft.is_empty() {
        writeln!(out, "\nsoft bounces:")?;
        for s in &report.soft {
            let how = match s.issue_source {
                IssueSource::MessageId => "",
                IssueSource::ReportDate => " (dated by the report)",
            };
            writeln!(
                out,
                "  {}  {}  issue {}{how}  {} of {} consecutive  {}",
                s.finding.address,
                code(s.finding.status),
                s.issue,
                s.consecutive,
                limit,
                s.finding.diagnostic
            )?;
        }
    }
    if !report.complaints.is_empty() {
        writeln!(out, "\ncomplaints:")?;
        for f in &report.complaints {
            writeln!(out, "  {}  [{}]", f.address, f.origin)?;
        }
    }
    if !report.policy.is_empty() {
        writeln!(
            out,
            "\npolicy rejections (check SPF/DKIM/DMARC, blocklists and content; the addresses stay subscribed):"
        )?;
        for f in &report.policy {
            writeln!(out, "  {}  {}  {}", f.address, code(f.status), f.diagnostic)?;
        }
    }
    if !report.unchanged.is_empty() {
        writeln!(out, "\nalready suppressed, left as they are:")?;
        for (a, s, why) in &report.unchanged {
            writeln!(out, "  {a}  {s}  ({why})")?;
        }
    }
    if !report.not_in_list.is_empty() {
        writeln!(out, "\nnot in the list (nothing changed):")?;
        for (a, what) in &report.not_in_list {
            writeln!(out, "  {a}  {what}")?;
        }
    }
    if !report.incomplete.is_empty() {
        writeln!(out, "\nbounces naming no recognisable recipient:")?;
        for o in &report.incomplete {
            writeln!(out, "  {o}")?;
        }
    }
    if report.dry_run {
        writeln!(out, "\ndry run: nothing was changed")?;
    }
    Ok(())
}

/// `fortnight bounces`.
pub fn cmd_bounces(config: &Config, args: &crate::cli::BouncesArgs) -> Result<crate::Exit> {
    let key_set = std::env::var(ENV_UNSUBSCRIBE_KEY).is_ok_and(|v| !v.is_empty());
    if config.bounces.verp && !key_set {
        crate::report::warn(format!(
            "[bounces] verp is on but {ENV_UNSUBSCRIBE_KEY} is not set: VERP tokens are not resolved; bounces are matched by the addresses they name"
        ));
    }
    let today = chrono::Utc::now().date_naive();
    let report = process(config, &args.sources, args.dry_run, today)?;
    for s in &report.skipped {
        crate::report::warn(format!("skipped a message over 32 MB: {s}"));
    }
    if report.unresolved_tokens > 0 && !config.bounces.verp {
        crate::report::warn(format!(
            "{} reports carry unsubscribe tokens but {ENV_UNSUBSCRIBE_KEY} is not set: they were matched by the addresses they name only",
            report.unresolved_tokens
        ));
    }
    let mut out = std::io::stdout().lock();
    print_report(&report, config.bounces.soft_bounce_limit, &mut out)?;
    Ok(crate::Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_address_round_trips_the_token() {
        let a = verp_address("bounces@analyst.example.org", "AQJrMQ-_xyz");
        assert_eq!(a, "bounces+AQJrMQ-_xyz@analyst.example.org");
        assert_eq!(verp_token(&a).as_deref(), Some("AQJrMQ-_xyz"));
        assert_eq!(
            verp_token(&format!("Mailer <{a}>")).as_deref(),
            Some("AQJrMQ-_xyz")
        );
        // a bounce address that already has a `+` keeps it
        let b = verp_address("me+lists@example.org", "TOKEN");
        assert_eq!(verp_token(&b).as_deref(), Some("TOKEN"));
        assert_eq!(verp_token("bounces@analyst.example.org"), None);
        assert_eq!(verp_token("bounces+@analyst.example.org"), None);
    }

    #[test]
    fn verp_address_falls_back_to_the_plain_address_when_too_long() {
        let long = "t".repeat(64);
        assert_eq!(
            verp_address("bounces@example.org", &long),
            "bounces@example.org"
        );
        assert_eq!(verp_address("nodomain", "tok"), "nodomain");
    }
}
