//! Enhanced status codes (RFC 3463) and what a failure with one means for the address.
//!
//! A bounce is only worth suppressing an address for when the failure is the address's
//! fault. `5.1.1 bad mailbox` is; `5.2.2 mailbox full` is temporary; `5.7.x` policy or
//! reputation rejections and `5.6.x` content rejections are about the sender, not the
//! address, so they are reported and never counted against the subscriber.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl StatusCode {
    /// Parses a code at the start of `s` (`5.1.1`, `5.1.1 (bad mailbox)`); `None` otherwise.
    pub fn parse(s: &str) -> Option<StatusCode> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let mut it = s[..end].split('.');
        let (class, subject, detail) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let class: u8 = class.parse().ok()?;
        if !(class == 2 || class == 4 || class == 5) || !valid_part(subject) || !valid_part(detail)
        {
            return None;
        }
        Some(StatusCode {
            class,
            subject: subject.parse().ok()?,
            detail: detail.parse().ok()?,
        })
    }

    /// The first enhanced status code of class 4 or 5 in free text (IP addresses and
    /// version numbers are not mistaken for one).
    pub fn find_in(text: &str) -> Option<StatusCode> {
        static RE: OnceLock<Regex> = OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(r"(?:^|[^0-9.])([45]\.[0-9]{1,3}\.[0-9]{1,3})(?:$|[^0-9.]|\.(?:$|[^0-9]))")
                .expect("status code regex compiles")
        });
        re.captures_iter(text)
            .find_map(|c| StatusCode::parse(c.get(1).map_or("", |m| m.as_str())))
    }

    /// The first basic SMTP reply code (`550 …`, `452-…`) in free text, as `X.0.0`.
    pub fn find_basic_in(text: &str) -> Option<StatusCode> {
        static RE: OnceLock<Regex> = OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(
                r"(?im)(?:^|said:|smtp;|returned|error[^:\n]{0,60}:|response[^:\n]{0,40}:)[\s']*([45][0-5][0-9])[ -][A-Za-z<#\[(]",
            )
                .expect("basic code regex compiles")
        });
        let code = re.captures(text)?.get(1)?.as_str();
        StatusCode::from_basic(code.parse().ok()?)
    }

    /// `550` → `5.0.0`, `452` → `4.0.0`.
    pub fn from_basic(code: u16) -> Option<StatusCode> {
        match code / 100 {
            c @ (4 | 5) => Some(StatusCode {
                class: c as u8,
                subject: 0,
                detail: 0,
            }),
            _ => None,
        }
    }

    pub const MAILBOX_FULL: StatusCode = StatusCode {
        class: 5,
        subject: 2,
        detail: 2,
    };
}

fn valid_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What a failed delivery means for the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BounceClass {
    /// Permanent, the address's fault (`5.1.x` unknown user, `5.4.x` no route, …): suppress.
    Hard,
    /// Temporary (`4.x.x`) or mailbox full (`5.2.2`) or message too big: counted per issue.
    Soft,
    /// Rejected for the sender's policy, reputation or content (`5.7.x`, `4.7.x`, `5.6.x`):
    /// reported, never counted against the address.
    Policy,
}

impl BounceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceClass::Hard => "hard",
            BounceClass::Soft => "soft",
            BounceClass::Policy => "policy",
        }
    }
}

/// Classifies a failure by its status code, refining the unspecific `X.0.0` codes by the
/// diagnostic text (many servers answer `550` alone for a full mailbox).
/// `None` for class 2 (a success).
pub fn classify(status: StatusCode, diagnostic: &str) -> Option<BounceClass> {
    if status.class == 2 {
        return None;
    }
    if status.subject == 0 && status.detail == 0 {
        if mentions_mailbox_full(diagnostic) {
            return Some(BounceClass::Soft);
        }
        if mentions_policy(diagnostic) {
            return Some(BounceClass::Policy);
        }
    }
    Some(match (status.class, status.subject, status.detail) {
        (_, 7, _) => BounceClass::Policy,
        (4, _, _) => BounceClass::Soft,
        (5, 6, _) => BounceClass::Policy,
        // mailbox full, message too big for the mailbox or the system
        (5, 2, 2) | (5, 2, 3) | (5, 3, 4) => BounceClass::Soft,
        _ => BounceClass::Hard,
    })
}

/// Whether a diagnostic says the mailbox is full / over quota.
pub fn mentions_mailbox_full(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(mail ?box|inbox|mail folder|user)\b[^.\n]{0,30}\b(is )?(full|over ?quota)|quota (exceeded|exceed)|over (the )?quota|insufficient (storage|disk space)|storage (space )?(is )?full",
        )
        .expect("mailbox full regex compiles")
    })
    .is_match(text)
}

/// Whether a diagnostic says the message was refused for the sender's policy or reputation.
pub fn mentions_policy(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(spam|blocked|block ?list(ed)?|black ?list(ed)?|reputation|policy|dmarc|spf|dkim|unauthenticated|rbl|spamhaus)\b")
            .expect("policy regex compiles")
    })
    .is_match(text)
}

/// Whether a diagnostic says the address does not exist (used when a bounce has no code).
pub fn mentions_unknown_address(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|doesn't exist|address not found|couldn't be found|could not be found|recipient not found|recipientnotfound|invalid recipient|mailbox unavailable|unrouteable address|account (has been )?disabled",
        )
        .expect("unknown address regex compiles")
    })
    .is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> StatusCode {
        StatusCode::parse(s).unwrap()
    }

    #[test]
    fn enhanced_codes_parse_with_trailing_comments_and_reject_junk() {
        assert_eq!(code("5.1.1").to_string(), "5.1.1");
        assert_eq!(code(" 4.2.2 (mailbox full)").to_string(), "4.2.2");
        assert_eq!(code("5.1.10").to_string(), "5.1.10");
        for bad in [
            "", "5", "5.1", "6.1.1", "5.1.1.1", "5..1", "x.1.1", "5.1.1234",
        ] {
            assert_eq!(StatusCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_are_found_in_text_but_ip_addresses_are_not_codes() {
        assert_eq!(
            StatusCode::find_in("host mx[5.6.7.8] said: 550 5.1.1 <a@b.org>: User unknown"),
            Some(code("5.1.1"))
        );
        assert_eq!(
            StatusCode::find_in(
                "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'"
            ),
            Some(code("5.1.10"))
        );
        assert_eq!(StatusCode::find_in("ends with 4.2.2."), Some(code("4.2.2")));
        assert_eq!(StatusCode::find_in("from 10.5.1.1 and Exim 4.96"), None);
        assert_eq!(
            StatusCode::find_basic_in("SMTP error: 550 Mailbox quota exceeded"),
            Some(code("5.0.0"))
        );
        assert_eq!(StatusCode::find_basic_in("on 2002 550 rows"), None);
    }

    #[test]
    fn permanent_failures_are_hard_except_full_mailboxes_and_policy() {
        assert_eq!(classify(code("5.1.1"), ""), Some(BounceClass::Hard));
        assert_eq!(classify(code("5.1.10"), ""), Some(BounceClass::Hard));
        assert_eq!(classify(code("5.4.1"), ""), Some(BounceClass::Hard));
        assert_eq!(classify(code("5.2.2"), ""), Some(BounceClass::Soft));
        assert_eq!(classify(code("4.4.7"), ""), Some(BounceClass::Soft));
        assert_eq!(classify(code("5.7.1"), ""), Some(BounceClass::Policy));
        assert_eq!(classify(code("4.7.0"), ""), Some(BounceClass::Policy));
        assert_eq!(classify(code("2.0.0"), ""), None);
    }

    #[test]
    fn unspecific_codes_are_refined_by_the_diagnostic() {
        let generic = code("5.0.0");
        assert_eq!(
            classify(generic, "550 Mailbox quota exceeded"),
            Some(BounceClass::Soft)
        );
        assert_eq!(
            classify(generic, "550 The mailbox is full"),
            Some(BounceClass::Soft)
        );
        assert_eq!(
            classify(generic, "550 rejected as spam"),
            Some(BounceClass::Policy)
        );
        assert_eq!(
            classify(generic, "550 No such user here"),
            Some(BounceClass::Hard)
        );
    }
}
