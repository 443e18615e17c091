//! Plan: who gets the issue in this run, in list order, and who does not and why.
//!
//! The list says who is subscribed (read at send time, so an address that unsubscribed,
//! bounced or complained since the last run gets nothing more); the journal says what earlier
//! runs did: `sent` is never resent, `failed` is reported and not retried, `ambiguous` is
//! skipped unless `--resend-ambiguous`, `deferred` is retried once its backoff has passed.
//! A dry-run plans without the journal (as if nothing had been sent yet). Test copies
//! (`--to`) are planned from the addresses given (`test_recipients`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::{RowSummary, State};
use crate::subscribers::{Status, Subscriber, SubscriberEmail, SubscriberList};

/// One recipient of the plan, with what the journal already counted.
#[derive(Debug, Clone)]
pub struct Planned {
    pub subscriber: Subscriber,
    /// Attempts recorded by earlier runs (drives the backoff).
    pub prior_attempts: u32,
}

/// Options that shape a plan.
#[derive(Debug, Clone)]
pub(crate) struct PlanOptions {
    /// At most this many recipients.
    pub limit: Option<u64>,
    pub resend_ambiguous: bool,
    pub now: DateTime<Utc>,
}

/// Rows of this issue that this run leaves alone because of what the journal says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Skipped {
    pub already_sent: u64,
    pub failed: u64,
    pub ambiguous: u64,
    pub deferred_not_due: u64,
    /// The earliest time a deferred row may be retried.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Left for a later run by `--limit`.
    pub beyond_limit: u64,
}

/// The recipients of one run.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The planned recipients in order (empty when they were streamed, see [`plan_file_into`]).
    pub recipients: Vec<Planned>,
    /// How many recipients were planned.
    pub planned: u64,
    /// Rows of the list that are not subscribed, by status.
    pub suppressed: BTreeMap<Status, u64>,
    pub skipped: Skipped,
    /// Planned rows that earlier runs deferred (their backoff passed).
    pub retrying_deferred: u64,
    /// Planned rows that earlier runs left ambiguous (`--resend-ambiguous`).
    pub resending_ambiguous: u64,
    /// Rows in the list.
    pub list_rows: u64,
}

/// A 64-bit hash of a subscriber key (sets of these stay small for million-row lists).
pub(crate) fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Plans a run straight from the list file, streaming it: only the planned rows are kept in
/// memory (a dry-run with `--limit 1000` over a million-row list holds a thousand).
pub(crate) fn plan_file(
    list: &Path,
    journal: Option<&HashMap<String, RowSummary>>,
    opts: &PlanOptions,
) -> anyhow::Result<Plan> {
    let mut planner = Planner::new(journal, opts);
    SubscriberList::for_each(list, |s| {
        planner.add(s);
        Ok(())
    })?;
    Ok(planner.plan)
}

/// Like [`plan_file`], but hands each planned recipient to `sink` as soon as it is found
/// (so the dry-run writes messages while the rest of the list is read); `sink` returning
/// an error stops the scan. The returned plan has the counts and no recipients.
pub(crate) fn plan_file_into(
    list: &Path,
    journal: Option<&HashMap<String, RowSummary>>,
    opts: &PlanOptions,
    mut sink: impl FnMut(Planned) -> anyhow::Result<()>,
) -> anyhow::Result<Plan> {
    let mut planner = Planner::new(journal, opts);
    SubscriberList::for_each(list, |s| {
        planner.add(s);
        match planner.plan.recipients.pop() {
            Some(planned) => sink(planned),
            None => Ok(()),
        }
    })?;
    Ok(planner.plan)
}

/// The `--to` recipients, each planned once: the list row when the address is in the list
/// `list` (so the copy is personalised like the real one), else a bare subscriber.
pub(crate) fn test_recipients(list: &Path, to: &[String]) -> anyhow::Result<Vec<Planned>> {
    let mut wanted = Vec::new();
    let mut seen = HashSet::new();
    for a in to {
        let email = SubscriberEmail::parse(a)
            .map_err(|e| anyhow!("--to `{a}` is not a usable address: {e}"))?;
        if seen.insert(email.key()) {
            wanted.push(email);
        }
    }
    let mut by_key: HashMap<String, Subscriber> = HashMap::new();
    SubscriberList::for_each(list, |s| {
        if seen.contains(&s.email.key()) {
            by_key.insert(s.email.key(), s);
        }
        Ok(())
    })
    .with_context(|| format!("cannot read the subscriber list `{}`", list.display()))?;
    let planned = wanted.into_iter().map(|email| {
        let mut subscriber = by_key
            .remove(&email.key())
            .unwrap_or_else(|| bare_subscriber(email));
        subscriber.status = Status::Subscribed;
        Planned {
            subscriber,
            prior_attempts: 0,
        }
    });
    Ok(planned.collect())
}

/// A test recipient who is not in the list.
fn bare_subscriber(email: SubscriberEmail) -> Subscriber {
    Subscriber {
        email,
        name: String::new(),
        status: Status::Subscribed,
        since: String::new(),
        source: "test".to_string(),
        tags: Vec::new(),
        attrs: BTreeMap::new(),
    }
}

struct Planner<'a> {
    plan: Plan,
    journal: Option<&'a HashMap<String, RowSummary>>,
    opts: &'a PlanOptions,
    limit: u64,
    seen: HashSet<u64>,
}

impl<'a> Planner<'a> {
    fn new(journal: Option<&'a HashMap<String, RowSummary>>, opts: &'a PlanOptions) -> Self {
        Planner {
            plan: Plan::default(),
            journal,
            opts,
            limit: opts.limit.unwrap_or(u64::MAX),
            seen: HashSet::new(),
        }
    }

    fn add(&mut self, s: Subscriber) {
        let p = &mut self.plan;
        p.list_rows += 1;
        if s.status != Status::Subscribed {
            *p.suppressed.entry(s.status).or_default() += 1;
            return;
        }
        let full = p.planned >= self.limit;
        if full && self.journal.is_none() {
            // Past --limit with nothing to look up: only count (a dry-run over a huge list).
            p.skipped.beyond_limit += 1;
            return;
        }
        let key = s.email.key();
        let row = self.journal.and_then(|j| j.get(&key));
        let mut retrying = false;
        let mut resending = false;
        if let Some(row) = row {
            match row.state {
                State::Sent => {
                    p.skipped.already_sent += 1;
                    return;
                }
                State::Failed => {
                    p.skipped.failed += 1;
                    return;
                }
                State::Ambiguous | State::InFlight if !self.opts.resend_ambiguous => {
                    p.skipped.ambiguous += 1;
                    return;
                }
                State::Ambiguous | State::InFlight => resending = true,
                State::Deferred => {
                    if let Some(next) = row.next_attempt_at {
                        if next > self.opts.now {
                            p.skipped.deferred_not_due += 1;
                            p.skipped.next_retry_at =
                                Some(p.skipped.next_retry_at.map_or(next, |t| t.min(next)));
                            return;
                        }
                    }
                    retrying = true;
                }
                State::Pending | State::Suppressed => {}
            }
        }
        if full {
            p.skipped.beyond_limit += 1;
            return;
        }
        // The list never holds an address twice; checked again for what is planned.
        if !self.seen.insert(key_hash(&key)) {
            return;
        }
        p.retrying_deferred += u64::from(retrying);
        p.resending_ambiguous += u64::from(resending);
        p.planned += 1;
        p.recipients.push(Planned {
            subscriber: s,
            prior_attempts: row.map_or(0, |r| r.attempts),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans a run from subscribers in memory (in list order).
    fn plan(
        subscribers: Vec<Subscriber>,
        journal: Option<&HashMap<String, RowSummary>>,
        opts: &PlanOptions,
    ) -> Plan {
        let mut planner = Planner::new(journal, opts);
        for s in subscribers {
            planner.add(s);
        }
        planner.plan
    }

    fn sub(addr: &str, status: Status) -> Subscriber {
        Subscriber {
            email: SubscriberEmail::parse(addr).unwrap(),
            name: String::new(),
            status,
            since: String::new(),
            source: String::new(),
            tags: vec![],
            attrs: Default::default(),
        }
    }

    fn row(state: State, attempts: u32, next: Option<DateTime<Utc>>) -> RowSummary {
        RowSummary {
            state,
            attempts,
            next_attempt_at: next,
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            limit: None,
            resend_ambiguous: false,
            now: Utc::now(),
        }
    }

    fn addresses(p: &Plan) -> Vec<String> {
        p.recipients
            .iter()
            .map(|r| r.subscriber.email.to_string())
            .collect()
    }

    #[test]
    fn a_rerun_skips_sent_failed_and_ambiguous_and_retries_due_deferred_rows() {
        let now = Utc::now();
        let list = vec![
            sub("sent@a.org", Status::Subscribed),
            sub("failed@a.org", Status::Subscribed),
            sub("ambiguous@a.org", Status::Subscribed),
            sub("due@a.org", Status::Subscribed),
            sub("later@a.org", Status::Subscribed),
            sub("new@a.org", Status::Subscribed),
            sub("pending@a.org", Status::Subscribed),
            sub("gone@a.org", Status::Unsubscribed),
            sub("bounced@a.org", Status::Bounced),
        ];
        let journal: HashMap<String, RowSummary> = [
            ("sent@a.org", row(State::Sent, 1, None)),
            ("failed@a.org", row(State::Failed, 1, None)),
            ("ambiguous@a.org", row(State::Ambiguous, 1, None)),
            (
                "due@a.org",
                row(State::Deferred, 2, Some(now - chrono::Duration::seconds(1))),
            ),
            (
                "later@a.org",
                row(State::Deferred, 1, Some(now + chrono::Duration::hours(1))),
            ),
            ("pending@a.org", row(State::Pending, 0, None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let p = plan(list.clone(), Some(&journal), &PlanOptions { now, ..opts() });
        assert_eq!(addresses(&p), ["due@a.org", "new@a.org", "pending@a.org"]);
        assert_eq!(p.recipients[0].prior_attempts, 2);
        assert_eq!(p.skipped.already_sent, 1);
        assert_eq!(p.skipped.failed, 1);
        assert_eq!(p.skipped.ambiguous, 1);
        assert_eq!(p.skipped.deferred_not_due, 1);
        assert_eq!(p.retrying_deferred, 1);
        assert_eq!(p.suppressed.values().sum::<u64>(), 2);

        let again = plan(
            list,
            Some(&journal),
            &PlanOptions {
                resend_ambiguous: true,
                now,
                ..opts()
            },
        );
        assert_eq!(
            addresses(&again),
            ["ambiguous@a.org", "due@a.org", "new@a.org", "pending@a.org"]
        );
        assert_eq!(again.resending_ambiguous, 1);
    }

    #[test]
    fn without_a_journal_everyone_subscribed_is_planned_in_list_order_up_to_the_limit() {
        let list = vec![
            sub("c@a.org", Status::Subscribed),
            sub("a@a.org", Status::Complained),
            sub("b@a.org", Status::Subscribed),
            sub("d@a.org", Status::Subscribed),
        ];
        let p = plan(
            list,
            None,
            &PlanOptions {
                limit: Some(2),
                ..opts()
            },
        );
        assert_eq!(addresses(&p), ["c@a.org", "b@a.org"]);
        assert_eq!(p.skipped.beyond_limit, 1);
        assert_eq!(p.suppressed.get(&Status::Complained), Some(&1));
    }

    #[test]
    fn the_same_address_twice_is_planned_once() {
        let list = vec![
            sub("Anna@a.org", Status::Subscribed),
            sub("anna@A.ORG", Status::Subscribed),
        ];
        let p = plan(list, None, &opts());
        assert_eq!(p.recipients.len(), 1);
    }
}
