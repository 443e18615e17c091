//! Bounces: delivery status notifications and complaint reports in, list suppressions out.
//!
//! `process` reads mbox files and Maildirs ([`mailbox`]), recognises each message
//! ([`Recognizer`]: RFC 3464 DSNs, common human-readable bounces, RFC 5965 complaints), ties
//! each report to a subscriber (by the unsubscribe token of a VERP envelope or of the
//! quoted original when the key is at hand, else by the address the report names) and then:
//! - a hard bounce (a permanent failure that is the address's fault, see [`BounceClass`])
//!   marks a `subscribed` address `bounced`;
//! - a soft bounce (4.x.x, 5.2.2 mailbox full) is remembered per issue in the journal
//!   database (`store`); soft bounces in `[bounces] soft_bounce_limit` consecutive issues
//!   mark the address `bounced`;
//! - an abuse complaint marks the address `complained` (whatever its status was).
//!
//! Only addresses on the list change; policy rejections (5.7.x) and delays are reported,
//! never held against an address. With `[bounces] verp = true` a report changes the list
//! only when it carries a valid unsubscribe token (the VERP envelope, or the quoted
//! original's List-Unsubscribe) of the subscriber it is about: anyone can mail the bounce
//! address, so the others are reported "untrusted, not applied" unless the caller trusts
//! unsigned reports (`bounces --trust-unsigned`). It returns a `BounceReport` (the command layer prints
//! it), sends nothing and never deletes a row.

pub mod mailbox;
mod parse;
mod requests;
mod status;
mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::base::IssueDate;
use crate::config::{Config, ENV_UNSUBSCRIBE_KEY};
use crate::subscribers::{self, Status, SubscriberEmail, SubscriberList};
use crate::token::TokenIndex;

pub use parse::{Analysis, Event, Notice, Recognizer, ReportKind};
pub use status::{BounceClass, StatusCode};
pub(crate) use store::IssueSource;
use store::{SoftBounce, SoftBounceStore};

/// One report about one subscriber (or one address not on the list).
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// The subscriber, or the address as the report wrote it when it is not on the list.
    pub address: String,
    pub status: Option<StatusCode>,
    pub diagnostic: String,
    /// Where the report was read (`file:line` or Maildir file).
    pub origin: String,
}

/// A soft bounce of a subscriber and where the address stands.
#[derive(Debug, Clone)]
pub(crate) struct SoftFinding {
    pub finding: Finding,
    pub issue: IssueDate,
    pub issue_source: IssueSource,
    /// Consecutive issues with soft bounces, this one included.
    pub consecutive: u32,
}

/// A status change (made, or to be made under `--dry-run`).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub email: SubscriberEmail,
    pub from: Status,
    pub to: Status,
    pub reason: String,
}

/// What a run found and did.
#[derive(Debug, Clone, Default)]
pub(crate) struct BounceReport {
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
    /// With VERP on: bounces and complaints without a valid token of their subscriber,
    /// not applied.
    pub untrusted: Vec<Finding>,
    /// Reports whose tokens could not be resolved for want of the key.
    pub unresolved_tokens: usize,
    /// Unsubscribe requests by mail whose token named a subscriber of the list.
    pub unsubscribe_requests: Vec<Finding>,
    /// Mails to the unsubscribe address that were not acted on: (origin, why).
    pub rejected_requests: Vec<(String, String)>,
    pub new_soft_records: usize,
    pub dry_run: bool,
    /// What the person running it should know: messages skipped for their size, tokens
    /// left unresolved for want of the key.
    pub warnings: Vec<String>,
}

/// The subscribers of the list by key, with their current status.
struct ListView {
    by_key: HashMap<String, (SubscriberEmail, Status)>,
}

impl ListView {
    fn of(list: &SubscriberList) -> ListView {
        ListView {
            by_key: list
                .subscribers
                .iter()
                .map(|s| (s.email.key(), (s.email.clone(), s.status)))
                .collect(),
        }
    }

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
pub(crate) fn process(
    config: &Config,
    sources: &[PathBuf],
    dry_run: bool,
    trust_unsigned: bool,
    today: NaiveDate,
) -> Result<BounceReport> {
    let list_path = config.subscribers_file();
    let list = SubscriberList::load(&list_path)
        .with_context(|| format!("cannot read the subscriber list `{}`", list_path.display()))?;
    let view = ListView::of(&list);
    let index = token_index(config, &list)?;
    let mut report = BounceReport {
        dry_run,
        ..Default::default()
    };
    let require_token = config.bounces.verp && !trust_unsigned;
    if config.bounces.verp && index.is_none() {
        report.warnings.push(if require_token {
            format!(
                "[bounces] verp is on but {ENV_UNSUBSCRIBE_KEY} is not set: no report's token can be verified, so none changes the list (set the key, or pass --trust-unsigned to match reports by the addresses they name)"
            )
        } else {
            format!(
                "[bounces] verp is on but {ENV_UNSUBSCRIBE_KEY} is not set: VERP tokens are not resolved; bounces are matched by the addresses they name"
            )
        });
    }
    let mailto = config
        .unsubscribe
        .as_ref()
        .and_then(|u| u.mailto.as_deref())
        .and_then(|m| crate::message::parse_mailto(m).ok());
    let (analyses, requests) = read_sources(
        &Recognizer::new(config),
        mailto.as_ref(),
        sources,
        &mut report,
    )?;
    report.messages = analyses.len() + requests.len();

    let mut decider = Decider {
        view: &view,
        index: index.as_ref(),
        require_token,
        today,
        wishes: BTreeMap::new(),
        soft_new: Vec::new(),
    };
    for (origin, delivered, a) in &analyses {
        decider.message(origin, *delivered, a, &mut report);
    }
    for (origin, tag) in &requests {
        decider.request(origin, tag.as_deref(), &mut report);
    }
    let Decider {
        mut wishes,
        soft_new,
        ..
    } = decider;

    // Soft bounces: this run's plus those remembered from earlier runs.
    let journal = config.journal_path();
    let mut store = if dry_run || soft_new.is_empty() {
        None
    } else {
        Some(SoftBounceStore::open(&journal)?)
    };
    if !soft_new.is_empty() {
        let dates = soft_bounce_dates(&journal, store.as_ref(), &soft_new)?;
        count_soft_bounces(config, &view, &soft_new, &dates, &mut wishes, &mut report);
    }
    if !report.untrusted.is_empty() {
        report.warnings.push(format!(
            "{} report(s) carry no valid unsubscribe token of the subscriber they name: untrusted, not applied (anyone can mail the bounce address; pass --trust-unsigned to apply them)",
            report.untrusted.len()
        ));
    }
    settle(wishes, &mut report);
    if !dry_run {
        apply(&list_path, store.as_mut(), &soft_new, &mut report)?;
    }
    if report.unresolved_tokens > 0 && !config.bounces.verp {
        report.warnings.push(format!(
            "{} reports carry unsubscribe tokens but {ENV_UNSUBSCRIBE_KEY} is not set: they were matched by the addresses they name only",
            report.unresolved_tokens
        ));
    }
    Ok(report)
}

/// An index of the list's tokens, when the signing key is in the environment.
fn token_index(config: &Config, list: &SubscriberList) -> Result<Option<TokenIndex>> {
    if !std::env::var(ENV_UNSUBSCRIBE_KEY).is_ok_and(|v| !v.is_empty()) {
        return Ok(None);
    }
    let (ring, _) = crate::token::keyring_from_env(config.unsubscribe.as_ref(), false)?;
    Ok(Some(TokenIndex::build(
        ring,
        &config.sender.list_id,
        list.subscribers.iter().map(|s| &s.email),
    )))
}

/// A mail to the unsubscribe address: (origin, the tag its address carries).
type Request = (String, Option<String>);

/// Every message of every source, analysed: (origin, delivery date, analysis), and the
/// unsubscribe requests sent to `mailto` apart. Messages skipped for their size become
/// warnings.
#[allow(clippy::type_complexity)]
fn read_sources(
    recognizer: &Recognizer,
    mailto: Option<&crate::message::MailtoTarget>,
    sources: &[PathBuf],
    report: &mut BounceReport,
) -> Result<(Vec<(String, Option<NaiveDate>, Analysis)>, Vec<Request>)> {
    let mut analyses = Vec::new();
    let mut requests = Vec::new();
    for source in sources {
        let mut skipped = Vec::new();
        mailbox::for_each_message(
            source,
            |m| match mailto.and_then(|t| requests::request_tag(&m.bytes, t)) {
                Some(tag) => requests.push((m.origin, tag)),
                None => analyses.push((m.origin, m.delivered, recognizer.analyse(&m.bytes))),
            },
            |s| skipped.push(s),
        )?;
        report.warnings.extend(skipped);
    }
    Ok((analyses, requests))
}

/// Ties the notices of each message to subscribers and gathers what they want done.
struct Decider<'a> {
    view: &'a ListView,
    index: Option<&'a TokenIndex>,
    /// VERP is on and unsigned reports are not trusted: only a report whose token names
    /// the subscriber may change the list.
    require_token: bool,
    today: NaiveDate,
    wishes: BTreeMap<String, Wish>,
    /// This run's soft bounces, with the finding each came from.
    soft_new: Vec<(SoftBounce, Finding)>,
}

impl Decider<'_> {
    fn message(
        &mut self,
        origin: &str,
        delivered: Option<NaiveDate>,
        a: &Analysis,
        report: &mut BounceReport,
    ) {
        if a.kind == ReportKind::Unrecognised {
            report.unrecognised.push(origin.to_string());
            return;
        }
        let token_subscriber = self.token_subscriber(a, report);
        for notice in &a.notices {
            let named = notice.addresses.iter().find_map(|x| self.view.find(x));
            let by_token = token_subscriber
                .as_ref()
                .filter(|_| a.notices.len() == 1 || named.is_none())
                .and_then(|e| self.view.by_key.get(&e.key()));
            let Some((email, current)) = by_token.or(named).cloned() else {
                unmatched(notice, origin, report);
                continue;
            };
            let finding = Finding {
                address: email.to_string(),
                status: notice.status,
                diagnostic: notice.diagnostic.clone(),
                origin: origin.to_string(),
            };
            let acts = matches!(
                notice.event,
                Event::Failed(BounceClass::Hard | BounceClass::Soft) | Event::Complaint
            );
            let signed = token_subscriber
                .as_ref()
                .is_some_and(|t| t.key() == email.key());
            if self.require_token && acts && !signed {
                report.untrusted.push(Finding {
                    diagnostic: describe(&notice.event, notice.status),
                    ..finding
                });
                continue;
            }
            self.event(notice, a, delivered, (&email, current), finding, report);
        }
    }

    /// An unsubscribe request by mail: the reader its tag names leaves the list; without a
    /// tag that resolves (and the key to resolve it), it is reported and nothing changes.
    fn request(&mut self, origin: &str, tag: Option<&str>, report: &mut BounceReport) {
        let reject = |why: &str, report: &mut BounceReport| {
            report
                .rejected_requests
                .push((origin.to_string(), why.to_string()));
        };
        let Some(tag) = tag else {
            return reject(
                "sent to the unsubscribe address without a reader's token (`unsubscribe+TOKEN@…`); unsubscribe the sender by hand if they asked",
                report,
            );
        };
        let Some(index) = self.index else {
            return reject(
                &format!("{ENV_UNSUBSCRIBE_KEY} is not set, so the token cannot be verified"),
                report,
            );
        };
        let found = crate::token::token_from_mailto_tag(tag)
            .and_then(|t| index.resolve(&t).ok())
            .and_then(|e| self.view.by_key.get(&e.key()).cloned());
        let Some((email, current)) = found else {
            return reject(
                "the token in the address names no subscriber of this list",
                report,
            );
        };
        let reason = "unsubscribe request by mail".to_string();
        wish(
            &mut self.wishes,
            &email,
            current,
            Status::Unsubscribed,
            reason,
        );
        report.unsubscribe_requests.push(Finding {
            address: email.to_string(),
            status: None,
            diagnostic: "unsubscribe request by mail".to_string(),
            origin: origin.to_string(),
        });
    }

    /// The one subscriber the message's tokens name, if they name exactly one.
    fn token_subscriber(&self, a: &Analysis, report: &mut BounceReport) -> Option<SubscriberEmail> {
        if a.tokens.is_empty() {
            return None;
        }
        let Some(index) = self.index else {
            report.unresolved_tokens += 1;
            return None;
        };
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

    /// Files one notice about a subscriber of the list.
    fn event(
        &mut self,
        notice: &Notice,
        a: &Analysis,
        delivered: Option<NaiveDate>,
        (email, current): (&SubscriberEmail, Status),
        finding: Finding,
        report: &mut BounceReport,
    ) {
        match &notice.event {
            Event::Failed(BounceClass::Hard) => {
                let reason = format!(
                    "hard bounce {}",
                    notice.status.map(|s| s.to_string()).unwrap_or_default()
                )
                .trim_end()
                .to_string();
                wish(&mut self.wishes, email, current, Status::Bounced, reason);
                report.hard.push(finding);
            }
            Event::Failed(BounceClass::Soft) => {
                let (issue, issue_source) = match a.original_issue {
                    Some(i) => (i, IssueSource::MessageId),
                    None => (
                        IssueDate::new(a.date.or(delivered).unwrap_or(self.today)),
                        IssueSource::ReportDate,
                    ),
                };
                let bounce = SoftBounce {
                    address: email.key(),
                    issue,
                    issue_source,
                    bounce_id: a.id.clone(),
                    status: notice.status.map(|s| s.to_string()),
                };
                self.soft_new.push((bounce, finding));
            }
            Event::Failed(BounceClass::Policy) => report.policy.push(finding),
            Event::Delayed => report.delayed += 1,
            Event::Complaint => {
                let reason = "abuse complaint".to_string();
                wish(&mut self.wishes, email, current, Status::Complained, reason);
                report.complaints.push(finding);
            }
            Event::OtherFeedback(_) => report.other_feedback += 1,
        }
    }
}

/// Reports a notice that names nobody on the list (when it is a failure or a complaint).
fn unmatched(notice: &Notice, origin: &str, report: &mut BounceReport) {
    let worth_reporting = matches!(notice.event, Event::Failed(_) | Event::Complaint);
    match notice.addresses.first() {
        Some(addr) if worth_reporting => report
            .not_in_list
            .push((addr.clone(), describe(&notice.event, notice.status))),
        Some(_) => {}
        None if worth_reporting => report.incomplete.push(origin.to_string()),
        None => {}
    }
}

/// The issues each softly bounced address bounced in: those remembered in the journal
/// database (read only when nothing is to be written) and this run's.
fn soft_bounce_dates(
    journal: &Path,
    store: Option<&SoftBounceStore>,
    soft_new: &[(SoftBounce, Finding)],
) -> Result<HashMap<String, BTreeSet<NaiveDate>>> {
    let addresses: Vec<String> = soft_new
        .iter()
        .map(|(b, _)| b.address.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let history = match store {
        Some(s) => s.history(&addresses)?,
        None => match SoftBounceStore::open_read_only(journal)? {
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
    for (b, _) in soft_new {
        dates
            .entry(b.address.clone())
            .or_default()
            .insert(b.issue.date());
    }
    Ok(dates)
}

/// Reports each soft bounce with its run of consecutive issues, and wishes `bounced` for
/// the subscribers whose run reached `[bounces] soft_bounce_limit`.
fn count_soft_bounces(
    config: &Config,
    view: &ListView,
    soft_new: &[(SoftBounce, Finding)],
    dates: &HashMap<String, BTreeSet<NaiveDate>>,
    wishes: &mut BTreeMap<String, Wish>,
    report: &mut BounceReport,
) {
    let cadence = config.publication.cadence_days;
    for (b, finding) in soft_new {
        let upto: BTreeSet<NaiveDate> = dates[&b.address]
            .range(..=b.issue.date())
            .copied()
            .collect();
        report.soft.push(SoftFinding {
            finding: finding.clone(),
            issue: b.issue,
            issue_source: b.issue_source,
            consecutive: store::consecutive_issues(&upto, cadence),
        });
    }
    let limit = config.bounces.soft_bounce_limit;
    if limit == 0 {
        return;
    }
    for (addr, set) in dates {
        let run = store::consecutive_issues(set, cadence);
        if run >= limit {
            if let Some((email, current)) = view.by_key.get(addr) {
                let reason = format!("soft bounces in {run} consecutive issues");
                wish(wishes, email, *current, Status::Bounced, reason);
            }
        }
    }
}

/// Turns the wishes into changes (a complaint always changes; a bounce only a
/// `subscribed` address) and the rest into "left as they are".
fn settle(wishes: BTreeMap<String, Wish>, report: &mut BounceReport) {
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
}

/// Records this run's soft bounces and writes the status changes to the list.
fn apply(
    list_path: &Path,
    store: Option<&mut SoftBounceStore>,
    soft_new: &[(SoftBounce, Finding)],
    report: &mut BounceReport,
) -> Result<()> {
    if let Some(store) = store {
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
        subscribers::set_statuses(list_path, &changes).with_context(|| {
            format!(
                "cannot update the subscriber list `{}`",
                list_path.display()
            )
        })?;
    }
    Ok(())
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
