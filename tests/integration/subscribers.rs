//! Integration tests for `subscribers`: the address policy against an external test set,
//! and the `subscribers` / `unsubscribe` commands driven through the real binary.

use std::path::Path;

use fortnight::subscribers::SubscriberEmail;

/// The ids of `tests/data/isemail/tests.xml` that the list's address policy accepts
/// (tests/data/isemail/README.md).
const ISEMAIL_ACCEPTED: &[u32] = &[
    8, 9, 10, 11, 12, 14, 19, 21, 22, 25, 27, 29, 32, 38, 100, 101, 167, 168,
];

/// `(id, address)` of every test, with U+2400+n mapped back to control character n and
/// the XML entities decoded.
fn isemail_tests() -> Vec<(u32, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/isemail/tests.xml");
    let xml = std::fs::read_to_string(&path).expect("tests.xml");
    let mut out = Vec::new();
    for chunk in xml.split("<test id=\"").skip(1) {
        let id: u32 = chunk[..chunk.find('"').expect("id quote")]
            .parse()
            .expect("numeric id");
        let address = if chunk.contains("<address/>") {
            String::new()
        } else {
            let start = chunk.find("<address>").expect("address") + "<address>".len();
            let end = chunk.find("</address>").expect("end of address");
            decode_entities(&chunk[start..end])
        };
        let address: String = address
            .chars()
            .map(|c| match c as u32 {
                n @ 0x2400..=0x241F => char::from_u32(n - 0x2400).expect("control char"),
                _ => c,
            })
            .collect();
        out.push((id, address));
    }
    out
}

/// Decodes the XML entities of a text node (`&lt;`, `&#x240A;`, `&#64;`, …).
fn decode_entities(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';').expect("entity ends with ;") + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "amp" => '&',
            e if e.starts_with("#x") => {
                char::from_u32(u32::from_str_radix(&e[2..], 16).expect("hex")).expect("char")
            }
            e if e.starts_with('#') => {
                char::from_u32(e[1..].parse().expect("decimal")).expect("char")
            }
            e => panic!("unknown entity &{e};"),
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn isemail_set_accepts_exactly_the_listed_ids() {
    let tests = isemail_tests();
    assert_eq!(tests.len(), 164, "tests.xml holds 164 tests");
    let mut wrongly_accepted = Vec::new();
    let mut wrongly_rejected = Vec::new();
    for (id, address) in &tests {
        let accepted = SubscriberEmail::parse(address).is_ok();
        let expected = ISEMAIL_ACCEPTED.contains(id);
        if accepted && !expected {
            wrongly_accepted.push((*id, address.clone()));
        }
        if !accepted && expected {
            wrongly_rejected.push((
                *id,
                address.clone(),
                SubscriberEmail::parse(address).unwrap_err().to_string(),
            ));
        }
    }
    assert!(
        wrongly_accepted.is_empty() && wrongly_rejected.is_empty(),
        "accepted but should not be: {wrongly_accepted:?}\nrejected but should not be: {wrongly_rejected:?}"
    );
    let rejected = tests
        .iter()
        .filter(|(_, a)| SubscriberEmail::parse(a).is_err())
        .count();
    assert_eq!(rejected, 146);
}

#[test]
fn isemail_address_with_trailing_line_feed_is_rejected_by_the_parser_itself() {
    let tests = isemail_tests();
    let (_, a99) = tests.iter().find(|(id, _)| *id == 99).expect("test 99");
    assert!(a99.ends_with('\n'));
    let err = SubscriberEmail::parse(a99).unwrap_err();
    assert!(err.to_string().contains("control character"), "{err}");
}
