//! Addresses and names as they may enter the list.
//!
//! A mailing list is not a general RFC 5322 parser: it accepts the addresses that mail
//! systems deliver reliably and that cannot smuggle anything into a header, and rejects the
//! rest with a reason a person can act on (docs/standards.md "Addresses"). [`SubscriberEmail`] is
//! the only way an address crosses into the program; its constructor does not trim (the
//! importer trims cells first), so an address carrying a line break is rejected here, not
//! silently repaired. Display names are not validated but normalised: control, bidi and
//! zero-width characters become single spaces and the length is capped, so a name can never
//! carry a header line (`\r\nBcc: …`).

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// Longest local part, in octets (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// Longest address, in octets (RFC 5321 path limit minus the angle brackets).
pub const MAX_ADDRESS: usize = 254;
/// Longest domain, in octets.
pub const MAX_DOMAIN: usize = 253;
/// Longest domain label, in octets.
pub const MAX_LABEL: usize = 63;
/// Longest display name kept, in characters (longer names are cut at a character boundary).
pub const MAX_NAME_CHARS: usize = 100;

/// Top-level domains that never deliver mail to a real person (RFC 2606, RFC 6761, RFC 6762,
/// RFC 7686, RFC 3172).
pub const RESERVED_TLDS: &[&str] = &[
    "test",
    "example",
    "invalid",
    "localhost",
    "local",
    "onion",
    "arpa",
];

/// An address that passed the list's address policy (docs/standards.md "Addresses").
///
/// The only constructor is [`SubscriberEmail::parse`]. The domain is lowercased (IDN as
/// A-labels); the local part is kept as written. Equality, ordering and hashing are
/// case-insensitive, so `Anna@x.org` and `anna@X.org` are the same subscriber.
#[derive(Debug, Clone)]
pub struct SubscriberEmail {
    address: String,
}

/// Why an address was rejected. The message says what is wrong in words a list owner can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address contains a control character (U+{0:04X})")]
    ControlCharacter(u32),
    #[error("the address contains a space")]
    Space,
    #[error("the address contains an invisible character (U+{0:04X})")]
    InvisibleCharacter(u32),
    #[error("quoted local parts (`\"…\"@…`) are not accepted")]
    Quoted,
    #[error("comments (`(…)`) are not accepted in an address")]
    Comment,
    #[error("the address has no `@`")]
    MissingAt,
    #[error("the part before `@` is empty")]
    EmptyLocalPart,
    #[error("the domain after `@` is missing")]
    MissingDomain,
    #[error("the part before `@` must be plain ASCII")]
    NonAsciiLocalPart,
    #[error("the part before `@` is {0} octets long; at most 64 are allowed")]
    LocalPartTooLong(usize),
    #[error("the part before `@` starts or ends with a dot, or has two dots in a row")]
    LocalPartDots,
    #[error("the part before `@` contains `{0}`, which is not allowed")]
    LocalPartCharacter(char),
    #[error("IP address literals (`@[…]`) are not accepted")]
    IpLiteral,
    #[error("the domain is not a valid internationalised domain name")]
    InvalidIdn,
    #[error("the domain contains `{0}`; only letters, digits, `-` and `.` are allowed")]
    DomainCharacter(char),
    #[error("the domain has an empty label (a leading, trailing or doubled dot)")]
    EmptyLabel,
    #[error("a domain label is {0} octets long; at most 63 are allowed")]
    LabelTooLong(usize),
    #[error("a domain label starts or ends with `-`")]
    LabelHyphen,
    #[error("the domain `{0}` has no dot; a public domain like `example.org` is needed")]
    Dotless(String),
    #[error("the top-level domain `{0}` is not valid (letters only, at least two, or `xn--…`)")]
    InvalidTld(String),
    #[error("the top-level domain `.{0}` is reserved and never receives mail")]
    ReservedTld(String),
    #[error("the domain is {0} octets long; at most 253 are allowed")]
    DomainTooLong(usize),
    #[error("the address is {0} octets long; at most 254 are allowed")]
    TooLong(usize),
}

impl SubscriberEmail {
    /// Checks `input` against the policy. Does not trim: surrounding whitespace is an error.
    pub fn parse(input: &str) -> Result<SubscriberEmail, AddressError> {
        normalize_address(input).map(|a| SubscriberEmail {
            address: a.into_owned(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.address
    }
    pub fn local_part(&self) -> &str {
        self.address.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
    /// The case-insensitive identity used for equality and de-duplication.
    pub fn key(&self) -> String {
        self.address.to_ascii_lowercase()
    }
    /// Wraps an address that already went through [`normalize_address`].
    pub(crate) fn from_normalized(address: String) -> SubscriberEmail {
        SubscriberEmail { address }
    }
}

impl PartialEq for SubscriberEmail {
    fn eq(&self, other: &Self) -> bool {
        self.address.eq_ignore_ascii_case(&other.address)
    }
}
impl Eq for SubscriberEmail {}
impl std::hash::Hash for SubscriberEmail {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.address.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}
impl PartialOrd for SubscriberEmail {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SubscriberEmail {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.address
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(other.address.bytes().map(|b| b.to_ascii_lowercase()))
    }
}
impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}
impl Serialize for SubscriberEmail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.address)
    }
}
impl std::str::FromStr for SubscriberEmail {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SubscriberEmail::parse(s)
    }
}

/// Characters that render as nothing or reorder text: zero-width spaces, bidi controls,
/// the BOM, the soft hyphen and friends. ZWJ/ZWNJ (U+200C/D) are not in this set: names in
/// Persian, Indic scripts and emoji sequences need them (addresses reject them anyway, as
/// non-ASCII local parts or through IDNA).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}' | '\u{200E}' | '\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// One pass over ASCII text: `Some(true)` when it holds only printable characters and no
/// double space, `Some(false)` when it needs normalising, `None` when it is not ASCII.
fn clean_ascii(bytes: &[u8]) -> Option<bool> {
    let mut ok = true;
    let mut prev = 0u8;
    for &b in bytes {
        if b >= 0x80 {
            return None;
        }
        ok &= b >= b' ' && b != 0x7f && !(b == b' ' && prev == b' ');
        prev = b;
    }
    Some(ok)
}

/// Whether `b` appears twice in a row (a plain loop: short strings, no search set-up).
fn has_double(bytes: &[u8], b: u8) -> bool {
    bytes.windows(2).any(|w| w[0] == b && w[1] == b)
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Applies the address policy; borrows `input` when it is already in normal form.
pub(crate) fn normalize_address(input: &str) -> Result<Cow<'_, str>, AddressError> {
    if input.is_empty() {
        return Err(AddressError::Empty);
    }
    // Bound the work on absurd input before any Unicode processing.
    if input.len() > 4 * MAX_ADDRESS {
        return Err(AddressError::TooLong(input.len()));
    }
    if input.contains('"') {
        return Err(AddressError::Quoted);
    }
    if input.contains(['(', ')']) {
        return Err(AddressError::Comment);
    }
    if !input.is_ascii() || input.bytes().any(|b| b <= b' ' || b == 0x7f) {
        for c in input.chars() {
            if c == ' ' || (c.is_whitespace() && !c.is_control()) {
                return Err(AddressError::Space);
            }
            if c.is_control() {
                return Err(AddressError::ControlCharacter(c as u32));
            }
            if is_invisible(c) || c == '\u{200C}' || c == '\u{200D}' {
                return Err(AddressError::InvisibleCharacter(c as u32));
            }
        }
    }
    let (local, domain) = input.rsplit_once('@').ok_or(AddressError::MissingAt)?;
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if domain.is_empty() {
        return Err(AddressError::MissingDomain);
    }
    if domain.starts_with('[') {
        return Err(AddressError::IpLiteral);
    }
    check_local_part(local)?;
    let domain = normalize_domain(domain)?;
    let total = local.len() + 1 + domain.len();
    if total > MAX_ADDRESS {
        return Err(AddressError::TooLong(total));
    }
    Ok(match domain {
        Cow::Borrowed(_) => Cow::Borrowed(input),
        Cow::Owned(d) => {
            let mut s = String::with_capacity(total);
            s.push_str(local);
            s.push('@');
            s.push_str(&d);
            Cow::Owned(s)
        }
    })
}

fn check_local_part(local: &str) -> Result<(), AddressError> {
    if !local.is_ascii() {
        return Err(AddressError::NonAsciiLocalPart);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPartTooLong(local.len()));
    }
    if local.starts_with('.') || local.ends_with('.') || has_double(local.as_bytes(), b'.') {
        return Err(AddressError::LocalPartDots);
    }
    if let Some(b) = local.bytes().find(|&b| b != b'.' && !is_atext(b)) {
        return Err(AddressError::LocalPartCharacter(b as char));
    }
    Ok(())
}

/// Lowercases the domain (IDN to A-labels) and checks it is a public LDH host name.
fn normalize_domain(domain: &str) -> Result<Cow<'_, str>, AddressError> {
    let b = domain.as_bytes();
    let needs_idna = !domain.is_ascii()
        || b.windows(4)
            .enumerate()
            .any(|(i, w)| (i == 0 || b[i - 1] == b'.') && w.eq_ignore_ascii_case(b"xn--"));
    let domain: Cow<'_, str> = if needs_idna {
        if domain.is_ascii() {
            // ASCII with A-labels: check the characters first so the reasons stay precise.
            check_ldh_chars(domain)?;
        }
        let ascii = idna::uts46::Uts46::new()
            .to_ascii(
                domain.as_bytes(),
                idna::uts46::AsciiDenyList::STD3,
                idna::uts46::Hyphens::Allow,
                idna::uts46::DnsLength::Ignore,
            )
            .map_err(|_| AddressError::InvalidIdn)?;
        Cow::Owned(ascii.into_owned())
    } else if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase())
    } else {
        Cow::Borrowed(domain)
    };
    check_ldh_chars(&domain)?;
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong(domain.len()));
    }
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(AddressError::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(AddressError::LabelTooLong(label.len()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::LabelHyphen);
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err(AddressError::Dotless(domain.into_owned()));
    }
    // `domain` is lowercase here (ASCII lowercased above, IDNA output is lowercase).
    let tld = last;
    let alphabetic = tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic());
    if !alphabetic && !tld.starts_with("xn--") {
        return Err(AddressError::InvalidTld(tld.to_string()));
    }
    if RESERVED_TLDS.contains(&tld) {
        return Err(AddressError::ReservedTld(tld.to_string()));
    }
    Ok(domain)
}

fn check_ldh_chars(domain: &str) -> Result<(), AddressError> {
    match domain
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        Some(c) => Err(AddressError::DomainCharacter(c)),
        None => Ok(()),
    }
}

/// Trims what spreadsheets leave around a cell (whitespace, BOM, zero-width spaces).
pub fn trim_cell(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}' || c == '\u{200B}')
}

/// Whether `c` must not survive in a stored text cell: controls (CR, LF, NUL, TAB, C1),
/// Unicode line breaks and other non-space whitespace, bidi and zero-width characters.
fn is_breaking(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ') || is_invisible(c)
}

/// Normalises free text for the list: every control, bidi or zero-width character and every
/// kind of whitespace becomes one space, runs of spaces collapse, the ends are trimmed, and
/// the result is cut to `max_chars` characters. Borrows when nothing changes.
pub fn normalize_text(raw: &str, max_chars: usize) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let trimmed = !raw.starts_with(' ') && !raw.ends_with(' ');
    let clean = match clean_ascii(bytes) {
        Some(ok) => ok && trimmed && raw.len() <= max_chars,
        None => {
            trimmed
                && !has_double(bytes, b' ')
                && raw.chars().count() <= max_chars
                && !raw.chars().any(is_breaking)
        }
    };
    if clean {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in raw.chars() {
        if c == ' ' || is_breaking(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            if count + 1 >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            break;
        }
        out.push(c);
        count += 1;
    }
    Cow::Owned(out)
}

/// A display name as stored: `normalize_text` capped at `MAX_NAME_CHARS` (100 characters).
pub fn normalize_name(raw: &str) -> Cow<'_, str> {
    normalize_text(raw, MAX_NAME_CHARS)
}

/// Why a decoded name cannot be stored as it is: it holds U+FFFD (a character lost in an
/// earlier conversion) or looks like UTF-8 read as Latin-1 (`MÃ¼ller`).
pub fn damaged_text(s: &str) -> Option<&'static str> {
    if s.is_ascii() {
        return None;
    }
    if s.contains('\u{FFFD}') {
        return Some("contains U+FFFD (a character lost in an earlier conversion)");
    }
    let mut prev = None;
    for c in s.chars() {
        if matches!(prev, Some('Ã' | 'Â' | 'Å' | 'Ä')) && ('\u{80}'..='\u{BF}').contains(&c) {
            return Some("looks like UTF-8 decoded as Latin-1 (mojibake such as `MÃ¼ller`)");
        }
        prev = Some(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        SubscriberEmail::parse(s)
            .unwrap_or_else(|e| panic!("{s:?} rejected: {e}"))
            .to_string()
    }
    fn err(s: &str) -> AddressError {
        SubscriberEmail::parse(s).expect_err(s)
    }

    #[test]
    fn domain_is_lowercased_and_local_part_kept() {
        assert_eq!(ok("Mehmet.Yilmaz@Example.NET"), "Mehmet.Yilmaz@example.net");
        let a = SubscriberEmail::parse("Mehmet.Yilmaz@Example.NET").unwrap();
        assert_eq!(a.local_part(), "Mehmet.Yilmaz");
        assert_eq!(a.domain(), "example.net");
        assert_eq!(a.key(), "mehmet.yilmaz@example.net");
    }

    #[test]
    fn equality_and_hashing_ignore_case() {
        use std::collections::HashSet;
        let a = SubscriberEmail::parse("Anna@example.org").unwrap();
        let b = SubscriberEmail::parse("anna@EXAMPLE.org").unwrap();
        assert_eq!(a, b);
        let set: HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn idn_domains_become_a_labels() {
        assert_eq!(ok("hans@bücher.de"), "hans@xn--bcher-kva.de");
        assert_eq!(ok("a@BÜCHER.de"), "a@xn--bcher-kva.de");
        assert_eq!(ok("x@пример.рф"), "x@xn--e1afmkfd.xn--p1ai");
    }

    #[test]
    fn reserved_tlds_are_rejected_but_example_org_is_fine() {
        for tld in RESERVED_TLDS {
            assert_eq!(
                err(&format!("a@host.{tld}")),
                AddressError::ReservedTld(tld.to_string())
            );
        }
        assert_eq!(err("a@host.TEST"), AddressError::ReservedTld("test".into()));
        ok("a@example.org");
        ok("a@test.com");
    }

    #[test]
    fn rejections_name_their_reason() {
        assert_eq!(err(""), AddressError::Empty);
        assert_eq!(err("not-an-address"), AddressError::MissingAt);
        assert_eq!(err(" a@example.org"), AddressError::Space);
        assert_eq!(err("a@example.org\n"), AddressError::ControlCharacter(0x0A));
        assert_eq!(
            err("a\u{200B}b@example.org"),
            AddressError::InvisibleCharacter(0x200B)
        );
        assert_eq!(
            err("a@exa\u{202E}mple.org"),
            AddressError::InvisibleCharacter(0x202E)
        );
        assert_eq!(err("\"a b\"@example.org"), AddressError::Quoted);
        assert_eq!(err("(c)a@example.org"), AddressError::Comment);
        assert_eq!(err("a@[192.0.2.1]"), AddressError::IpLiteral);
        assert_eq!(
            err("a@localhost"),
            AddressError::Dotless("localhost".into())
        );
        assert_eq!(err("a@192.0.2.1"), AddressError::InvalidTld("1".into()));
        assert_eq!(err("jürgen@example.de"), AddressError::NonAsciiLocalPart);
        assert_eq!(err("a..b@example.org"), AddressError::LocalPartDots);
        assert_eq!(err("a@-x.org"), AddressError::LabelHyphen);
        assert_eq!(err("a@x..org"), AddressError::EmptyLabel);
        assert_eq!(err("a@x_y.org"), AddressError::DomainCharacter('_'));
        assert_eq!(err("a,b@x.org"), AddressError::LocalPartCharacter(','));
        assert!(err("not-an-address").to_string().contains('@'));
    }

    #[test]
    fn names_lose_controls_and_header_injection() {
        assert_eq!(normalize_name("Anna\r\nBcc: x@y.org"), "Anna Bcc: x@y.org");
        assert_eq!(normalize_name("  a\t\u{0}b  "), "a b");
        assert_eq!(normalize_name("Ev\u{202E}il\u{200B}Name"), "Ev il Name");
        assert_eq!(normalize_name("Ça Müller"), "Ça Müller");
        assert!(matches!(normalize_name("plain name"), Cow::Borrowed(_)));
        let long = "x".repeat(300);
        assert_eq!(normalize_name(&long).chars().count(), MAX_NAME_CHARS);
        let long_words = "ab ".repeat(100);
        let cut = normalize_name(&long_words);
        assert!(cut.chars().count() <= MAX_NAME_CHARS && !cut.ends_with(' '));
    }

    #[test]
    fn damaged_names_are_recognised() {
        assert!(damaged_text("M\u{FFFD}ller").is_some());
        assert!(damaged_text("MÃ¼ller").is_some());
        assert!(damaged_text("Müller, Lena").is_none());
        assert!(damaged_text("Ãlvaro").is_none());
    }

    #[test]
    fn cell_trimming_removes_bom_and_whitespace() {
        assert_eq!(trim_cell("\u{FEFF} a@b.org \t"), "a@b.org");
    }
}
