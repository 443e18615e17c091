//! Unsubscribe requests by mail: a message sent to the `[unsubscribe] mailto` address the
//! List-Unsubscribe field offers (`unsubscribe+TAG@domain`, TAG being the reader's token in
//! base32, see `crate::message::MailtoTarget`). Any subject and body: the address alone
//! names the reader. This module only finds the tag in a message's recipient fields;
//! resolving it (with the signing key) and changing the list is the caller's.

use crate::message::MailtoTarget;

/// The recipient fields a request's address may be found in: what the sender wrote and
/// what the receiving server recorded.
const RECIPIENT_FIELDS: [&str; 6] = [
    "to",
    "cc",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-delivered-to",
];

/// The header block of a message, unfolded: (lowercase field name, value) per field.
fn header_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let end = memchr::memmem::find(bytes, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(bytes, b"\n\n"))
        .unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    fields
}

/// Whether the message is an unsubscribe request to `target`, and the tag its address
/// carries: `None` when it is not addressed to `target`; `Some(None)` when it is, without a
/// tag (the plain address); `Some(Some(tag))` otherwise.
pub(crate) fn request_tag(bytes: &[u8], target: &MailtoTarget) -> Option<Option<String>> {
    let mut found: Option<Option<String>> = None;
    for (name, value) in header_fields(bytes) {
        if !RECIPIENT_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let pieces = value.split([',', ' ', '\t', '<', '>', ';', '"', '(', ')']);
        for piece in pieces.filter(|p| p.contains('@')) {
            match target.tag_of(piece) {
                Some(Some(tag)) => return Some(Some(tag.to_string())),
                Some(None) => found = Some(None),
                None => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> MailtoTarget {
        crate::message::parse_mailto("unsubscribe@analyst.example.org").unwrap()
    }

    #[test]
    fn the_tag_is_found_in_any_recipient_field_and_case() {
        let m = b"From: Reader <r@readers-mail.org>\r\nTo: \"List\" <Unsubscribe+ABC234@Analyst.Example.org>\r\nSubject: x\r\n\r\nbody unsubscribe+zzz@analyst.example.org\r\n";
        assert_eq!(request_tag(m, &target()), Some(Some("ABC234".to_string())));
        let folded = b"Subject: hi\nDelivered-To:\n unsubscribe+abc@analyst.example.org\nTo: someone@else.org\n\nbody\n";
        assert_eq!(
            request_tag(folded, &target()),
            Some(Some("abc".to_string()))
        );
        let plain = b"To: unsubscribe@analyst.example.org\r\n\r\nplease remove me\r\n";
        assert_eq!(request_tag(plain, &target()), Some(None));
        let other =
            b"To: editors@analyst.example.org\r\n\r\nunsubscribe+abc@analyst.example.org\r\n";
        assert_eq!(request_tag(other, &target()), None);
    }
}
