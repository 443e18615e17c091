//! Unsubscribe tokens: proof that a request to leave the list came from a message we sent.
//!
//! A token is `base64url(version | key id | lookup | tag)` where `lookup` (8 bytes) and `tag`
//! (16 bytes) are HMAC-SHA256 outputs over (purpose, list id, lowercased address) under the
//! signing key from `FORTNIGHT_UNSUBSCRIBE_KEY`. The address is not in the token: the
//! server finds it through a [`TokenIndex`] built from the list (by `lookup`), then checks
//! the `tag` in constant time. The key id in the token lets keys rotate: retired keys stay
//! verifiable while new tokens use the current one. This module does no I/O.
//!
//! The same bytes have a second spelling for places that may change letter case: the VERP
//! envelope sender (`bounces+TOKEN@domain`), whose local part a relay may lowercase.
//! [`lowercase_form`] writes the token in lowercase base32 (RFC 4648 §6, `a-z2-7`), and
//! every reader of tokens accepts either spelling, base32 in any case.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::subscribers::SubscriberEmail;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const LOOKUP_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// The shortest key accepted, in bytes.
const MIN_KEY_LEN: usize = 32;

/// A signing key and its id. Debug never shows the secret.
#[derive(Clone)]
pub struct UnsubscribeKey {
    id: String,
    /// HMAC-SHA256 already keyed with the secret: cloning it skips the key schedule on
    /// every token (two per message of a send).
    keyed: HmacSha256,
}

impl fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsubscribeKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a key or a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the unsubscribe key is {0} bytes long; it must be at least 32 bytes (generate one with `openssl rand -base64 48`)")]
    KeyTooShort(usize),
    #[error("the key id `{0}` must be 1 to 16 characters of letters, digits, `-` or `_`")]
    BadKeyId(String),
    #[error("the token is not valid base64url")]
    Encoding,
    #[error("the token has the wrong length or version")]
    Malformed,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token does not match any subscriber of this list")]
    NoMatch,
}

impl UnsubscribeKey {
    pub fn new(id: &str, secret: &[u8]) -> Result<UnsubscribeKey, TokenError> {
        if id.is_empty()
            || id.len() > 16
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenError::BadKeyId(id.to_string()));
        }
        if secret.len() < MIN_KEY_LEN {
            return Err(TokenError::KeyTooShort(secret.len()));
        }
        Ok(UnsubscribeKey {
            id: id.to_string(),
            keyed: HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"),
        })
    }

    /// A random key for previews and dry-runs on a machine without a configured key.
    pub(crate) fn throwaway() -> UnsubscribeKey {
        use rand::RngCore;
        let mut secret = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        UnsubscribeKey {
            id: "preview".to_string(),
            keyed: HmacSha256::new_from_slice(&secret).expect("HMAC accepts keys of any length"),
        }
    }

    fn mac(&self, purpose: &[u8], list_id: &str, email: &SubscriberEmail) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(list_id.as_bytes());
        mac.update(&[0]);
        mac.update(email.key().as_bytes());
        mac
    }

    fn lookup(&self, list_id: &str, email: &SubscriberEmail) -> [u8; LOOKUP_LEN] {
        let out = self
            .mac(b"fortnight/lookup", list_id, email)
            .finalize()
            .into_bytes();
        let mut l = [0u8; LOOKUP_LEN];
        l.copy_from_slice(&out[..LOOKUP_LEN]);
        l
    }

    /// 20 bytes that identify (`scope`, list, subscriber) under this key, for the Message-ID:
    /// without the key nobody can tell which address an ID belongs to.
    pub(crate) fn message_id_tag(
        &self,
        scope: &str,
        list_id: &str,
        email: &SubscriberEmail,
    ) -> [u8; 20] {
        let mut purpose = b"fortnight/message-id\0".to_vec();
        purpose.extend_from_slice(scope.as_bytes());
        let out = self.mac(&purpose, list_id, email).finalize().into_bytes();
        let mut tag = [0u8; 20];
        tag.copy_from_slice(&out[..20]);
        tag
    }

    /// The token for this subscriber of this list.
    pub fn mint(&self, list_id: &str, email: &SubscriberEmail) -> String {
        let tag = self
            .mac(b"fortnight/unsubscribe", list_id, email)
            .finalize()
            .into_bytes();
        let mut raw = Vec::with_capacity(2 + self.id.len() + LOOKUP_LEN + TAG_LEN);
        raw.push(VERSION);
        raw.push(self.id.len() as u8);
        raw.extend_from_slice(self.id.as_bytes());
        raw.extend_from_slice(&self.lookup(list_id, email));
        raw.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn check_tag(
        &self,
        list_id: &str,
        email: &SubscriberEmail,
        tag: &[u8],
    ) -> Result<(), TokenError> {
        self.mac(b"fortnight/unsubscribe", list_id, email)
            .verify_truncated_left(tag)
            .map_err(|_| TokenError::NoMatch)
    }
}

/// RFC 4648 §6 base32, lowercase, no padding.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `token` (as minted) spelled in lowercase base32, so a hop that lowercases an address
/// (the VERP envelope sender) cannot make it unreadable. `None` when `token` is not one.
pub fn lowercase_form(token: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let mut out = String::with_capacity(raw.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in raw {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    Some(out)
}

/// Decodes base32 in either case (no padding); `None` on any other character.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE32.iter().position(|&b| b == c.to_ascii_lowercase())? as u32;
        acc = ((acc << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

struct Parsed {
    key_id: String,
    lookup: [u8; LOOKUP_LEN],
    tag: Vec<u8>,
}

impl Parsed {
    fn decode(token: &str) -> Result<Parsed, TokenError> {
        let token = token.trim();
        if token.len() > 128 {
            return Err(TokenError::Malformed);
        }
        let well_formed = |raw: &[u8]| {
            raw.len() >= 2
                && raw[0] == VERSION
                && raw.len() == 2 + raw[1] as usize + LOOKUP_LEN + TAG_LEN
        };
        // The lowercase-safe spelling first: a base64url token made only of base32
        // characters is not well formed once read as base32 (its first byte is not VERSION).
        let raw = match base32_decode(token).filter(|r| well_formed(r)) {
            Some(raw) => raw,
            None => URL_SAFE_NO_PAD
                .decode(token)
                .map_err(|_| TokenError::Encoding)?,
        };
        if !well_formed(&raw) {
            return Err(TokenError::Malformed);
        }
        let id_len = raw[1] as usize;
        let key_id = std::str::from_utf8(&raw[2..2 + id_len])
            .map_err(|_| TokenError::Malformed)?
            .to_string();
        let mut lookup = [0u8; LOOKUP_LEN];
        lookup.copy_from_slice(&raw[2 + id_len..2 + id_len + LOOKUP_LEN]);
        Ok(Parsed {
            key_id,
            lookup,
            tag: raw[2 + id_len + LOOKUP_LEN..].to_vec(),
        })
    }
}

/// The keys tokens may be signed with: the current one (used to mint) and retired ones.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: UnsubscribeKey,
    retired: Vec<UnsubscribeKey>,
}

impl Keyring {
    pub fn new(current: UnsubscribeKey, retired: Vec<UnsubscribeKey>) -> Keyring {
        Keyring { current, retired }
    }
    pub(crate) fn current(&self) -> &UnsubscribeKey {
        &self.current
    }
    fn key(&self, id: &str) -> Option<&UnsubscribeKey> {
        std::iter::once(&self.current)
            .chain(self.retired.iter())
            .find(|k| k.id == id)
    }
}

/// Where the keyring came from: the environment, or a throwaway key for previews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    Environment,
    Throwaway,
}

/// Reads the keyring from the environment: the current key from `FORTNIGHT_UNSUBSCRIBE_KEY`
/// (with `key_id` from the config), retired ones from `FORTNIGHT_UNSUBSCRIBE_KEY_<ID>`.
/// Without the current key, `allow_throwaway` gives a random key (previews, dry-runs).
pub(crate) fn keyring_from_env(
    config: Option<&crate::config::UnsubscribeConfig>,
    allow_throwaway: bool,
) -> anyhow::Result<(Keyring, KeySource)> {
    keyring_from_vars(config, allow_throwaway, |name| std::env::var(name).ok())
}

/// The environment variable holding the secret of retired key `id`.
fn retired_var(id: &str) -> String {
    format!(
        "{}_{}",
        crate::config::ENV_UNSUBSCRIBE_KEY,
        id.to_ascii_uppercase().replace('-', "_")
    )
}

/// [`keyring_from_env`] over any source of variables (tests pass a map).
fn keyring_from_vars(
    config: Option<&crate::config::UnsubscribeConfig>,
    allow_throwaway: bool,
    get: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(Keyring, KeySource)> {
    use anyhow::Context;
    let var = crate::config::ENV_UNSUBSCRIBE_KEY;
    let key_id = config.map(|c| c.key_id.as_str()).unwrap_or("k1");
    let current = match get(var).filter(|v| !v.is_empty()) {
        Some(secret) => UnsubscribeKey::new(key_id, secret.as_bytes())
            .with_context(|| format!("environment variable {var} is not a usable key"))?,
        None if allow_throwaway => {
            return Ok((
                Keyring::new(UnsubscribeKey::throwaway(), vec![]),
                KeySource::Throwaway,
            ))
        }
        None => anyhow::bail!(
            "environment variable {var} is not set: a real send needs the unsubscribe signing key \
             (at least 32 bytes; generate one with `openssl rand -base64 48`)"
        ),
    };
    let mut retired: Vec<UnsubscribeKey> = Vec::new();
    for id in config.map(|c| c.retired_key_ids.as_slice()).unwrap_or(&[]) {
        let name = retired_var(id);
        if name == retired_var(key_id) || retired.iter().any(|k| retired_var(&k.id) == name) {
            anyhow::bail!(
                "[unsubscribe] retired_key_ids lists `{id}` twice or as the current key_id \
                 (ids are compared ignoring case and `-`/`_`): each key needs its own id, or \
                 tokens signed with one of them stop verifying"
            );
        }
        let secret = get(&name).with_context(|| {
            format!("[unsubscribe] retired_key_ids names `{id}` but environment variable {name} is not set")
        })?;
        retired.push(
            UnsubscribeKey::new(id, secret.as_bytes())
                .with_context(|| format!("environment variable {name} is not a usable key"))?,
        );
    }
    Ok((Keyring::new(current, retired), KeySource::Environment))
}

/// Finds the subscriber a token names, among the addresses of one list.
pub struct TokenIndex {
    keyring: Keyring,
    list_id: String,
    by_lookup: HashMap<(String, [u8; LOOKUP_LEN]), Vec<SubscriberEmail>>,
}

impl TokenIndex {
    /// Indexes `emails` under every key of the ring (one HMAC per address and key).
    pub fn build<'a>(
        keyring: Keyring,
        list_id: &str,
        emails: impl IntoIterator<Item = &'a SubscriberEmail>,
    ) -> TokenIndex {
        let mut by_lookup: HashMap<(String, [u8; LOOKUP_LEN]), Vec<SubscriberEmail>> =
            HashMap::new();
        let keys: Vec<UnsubscribeKey> = std::iter::once(keyring.current.clone())
            .chain(keyring.retired.iter().cloned())
            .collect();
        for email in emails {
            for key in &keys {
                by_lookup
                    .entry((key.id.clone(), key.lookup(list_id, email)))
                    .or_default()
                    .push(email.clone());
            }
        }
        TokenIndex {
            keyring,
            list_id: list_id.to_string(),
            by_lookup,
        }
    }

    /// The address `token` was minted for, after a constant-time tag check.
    pub fn resolve(&self, token: &str) -> Result<SubscriberEmail, TokenError> {
        let parsed = Parsed::decode(token)?;
        let key = self
            .keyring
            .key(&parsed.key_id)
            .ok_or(TokenError::UnknownKey)?;
        let candidates = self
            .by_lookup
            .get(&(parsed.key_id.clone(), parsed.lookup))
            .ok_or(TokenError::NoMatch)?;
        candidates
            .iter()
            .find(|e| key.check_tag(&self.list_id, e, &parsed.tag).is_ok())
            .cloned()
            .ok_or(TokenError::NoMatch)
    }
}

/// The token a [`lowercase_form`] carries (any case, as in a mailto local part), in the
/// form it was minted; `None` when it is not base32.
pub fn token_from_mailto_tag(tag: &str) -> Option<String> {
    if tag.len() > 128 {
        return None;
    }
    Some(URL_SAFE_NO_PAD.encode(base32_decode(tag)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_tags_carry_the_token_in_any_case() {
        let key = UnsubscribeKey::new("k1", &[7u8; 32]).unwrap();
        let email = SubscriberEmail::parse("Zoe@Example.org").unwrap();
        let token = key.mint("digest.example.org", &email);
        let tag = lowercase_form(&token).unwrap();
        assert!(tag.bytes().all(|b| BASE32.contains(&b)), "{tag}");
        assert_eq!(
            tag.len(),
            45,
            "k1 tokens fit `unsubscribe+TAG` in 64 characters"
        );
        assert_eq!(token_from_mailto_tag(&tag).as_deref(), Some(token.as_str()));
        assert_eq!(
            token_from_mailto_tag(&tag.to_uppercase()).as_deref(),
            Some(token.as_str())
        );
        assert!(token_from_mailto_tag("not-base32!").is_none());
    }

    impl UnsubscribeKey {
        fn id(&self) -> &str {
            &self.id
        }

        /// Checks in constant time that `token` was minted for `email` on `list_id` with this key
        /// (the tests' reference; a running server resolves tokens through a `TokenIndex`).
        fn verify(
            &self,
            list_id: &str,
            email: &SubscriberEmail,
            token: &str,
        ) -> Result<(), TokenError> {
            let parsed = Parsed::decode(token)?;
            if parsed.key_id != self.id {
                return Err(TokenError::UnknownKey);
            }
            // Both comparisons in constant time, and both always made.
            let lookup_ok = self
                .mac(b"fortnight/lookup", list_id, email)
                .verify_truncated_left(&parsed.lookup)
                .is_ok();
            let tag_ok = self.check_tag(list_id, email, &parsed.tag).is_ok();
            if lookup_ok && tag_ok {
                Ok(())
            } else {
                Err(TokenError::NoMatch)
            }
        }
    }

    fn key(id: &str, fill: u8) -> UnsubscribeKey {
        UnsubscribeKey::new(id, &[fill; 32]).unwrap()
    }
    fn addr(s: &str) -> SubscriberEmail {
        SubscriberEmail::parse(s).unwrap()
    }

    #[test]
    fn short_key_is_refused_with_advice() {
        let err = UnsubscribeKey::new("k1", b"too short").unwrap_err();
        assert_eq!(err, TokenError::KeyTooShort(9));
        assert!(err.to_string().contains("openssl rand"));
    }

    #[test]
    fn the_lowercase_form_resolves_in_any_case_and_old_tokens_still_do() {
        let k = key("k1", 7);
        let a = addr("anna@example.org");
        let t = k.mint("digest.example.org", &a);
        let lower = lowercase_form(&t).unwrap();
        assert!(lower.bytes().all(|b| BASE32.contains(&b)), "{lower}");
        assert_eq!(lower.len(), 45);
        let idx = TokenIndex::build(Keyring::new(k, vec![]), "digest.example.org", [&a]);
        for spelling in [t.clone(), lower.clone(), lower.to_ascii_uppercase()] {
            assert_eq!(idx.resolve(&spelling).unwrap(), a, "{spelling}");
        }
        // A lowercased base64url token is a different token, and is refused.
        assert!(t != t.to_ascii_lowercase());
        assert!(idx.resolve(&t.to_ascii_lowercase()).is_err());
        assert_eq!(lowercase_form("not base64!"), None);
    }

    #[test]
    fn token_round_trips_and_hides_the_address() {
        let k = key("k1", 7);
        let a = addr("Anna.Petrova@example.org");
        let t = k.mint("digest.example.org", &a);
        assert!(!t.to_ascii_lowercase().contains("anna"));
        k.verify("digest.example.org", &a, &t).unwrap();
        // case-insensitive identity
        k.verify("digest.example.org", &addr("anna.petrova@EXAMPLE.org"), &t)
            .unwrap();
        let idx = TokenIndex::build(Keyring::new(k, vec![]), "digest.example.org", [&a]);
        assert_eq!(idx.resolve(&t).unwrap(), a);
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let k = key("k1", 7);
        let a = addr("reader@example.org");
        let b = addr("other@example.org");
        let t = k.mint("list.example.org", &a);
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let idx = TokenIndex::build(
            Keyring::new(k.clone(), vec![]),
            "list.example.org",
            [&a, &b],
        );
        // every flipped byte
        for i in 0..raw.len() {
            let mut r = raw.clone();
            r[i] ^= 0x01;
            let bad = URL_SAFE_NO_PAD.encode(&r);
            assert!(idx.resolve(&bad).is_err(), "flipped byte {i} accepted");
            assert!(k.verify("list.example.org", &a, &bad).is_err());
        }
        // truncated tag
        let short = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]);
        assert_eq!(idx.resolve(&short), Err(TokenError::Malformed));
        // other list
        let other_list = k.mint("other.example.org", &a);
        assert_eq!(idx.resolve(&other_list), Err(TokenError::NoMatch));
        // other subscriber's address with this token
        assert!(k.verify("list.example.org", &b, &t).is_err());
        // junk
        assert_eq!(idx.resolve("!!!"), Err(TokenError::Encoding));
        assert!(idx.resolve("").is_err());
    }

    #[test]
    fn other_key_id_is_rejected_and_retired_keys_still_verify() {
        let old = key("k0", 1);
        let new = key("k1", 2);
        let a = addr("reader@example.org");
        let from_old = old.mint("l.example.org", &a);
        let stranger = key("k9", 3).mint("l.example.org", &a);
        let ring = Keyring::new(new.clone(), vec![old]);
        let idx = TokenIndex::build(ring, "l.example.org", [&a]);
        assert_eq!(idx.resolve(&from_old).unwrap(), a);
        assert_eq!(idx.resolve(&stranger), Err(TokenError::UnknownKey));
        // same id, other secret
        let impostor = key("k1", 9).mint("l.example.org", &a);
        assert!(idx.resolve(&impostor).is_err());
        assert_eq!(idx.resolve(&new.mint("l.example.org", &a)).unwrap(), a);
    }

    fn unsub(key_id: &str, retired: &[&str]) -> crate::config::UnsubscribeConfig {
        crate::config::UnsubscribeConfig {
            url: "https://l.example.org/u?t={token}".into(),
            mailto: None,
            key_id: key_id.into(),
            retired_key_ids: retired.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn keyring_reads_current_and_retired_keys_and_refuses_reused_ids() {
        let vars = |name: &str| match name {
            "FORTNIGHT_UNSUBSCRIBE_KEY" => Some("n".repeat(40)),
            "FORTNIGHT_UNSUBSCRIBE_KEY_K0" => Some("o".repeat(40)),
            _ => None,
        };
        let a = addr("reader@example.org");
        let (ring, source) = keyring_from_vars(Some(&unsub("k1", &["k0"])), false, vars).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(ring.current().id(), "k1");
        let old = UnsubscribeKey::new("k0", "o".repeat(40).as_bytes()).unwrap();
        let idx = TokenIndex::build(ring, "l.example.org", [&a]);
        assert_eq!(idx.resolve(&old.mint("l.example.org", &a)).unwrap(), a);

        for bad in [
            unsub("k1", &["k1"]),
            unsub("k1", &["k0", "K0"]),
            unsub("k-1", &["K_1"]),
        ] {
            let err = keyring_from_vars(Some(&bad), false, vars).unwrap_err();
            assert!(format!("{err:#}").contains("retired_key_ids"), "{err:#}");
        }
        let err = keyring_from_vars(Some(&unsub("k1", &["k9"])), false, vars).unwrap_err();
        assert!(
            format!("{err:#}").contains("FORTNIGHT_UNSUBSCRIBE_KEY_K9"),
            "{err:#}"
        );
    }

    #[test]
    fn without_a_key_only_previews_get_a_throwaway_one() {
        let none = |_: &str| None;
        let (_, source) = keyring_from_vars(None, true, none).unwrap();
        assert_eq!(source, KeySource::Throwaway);
        let err = keyring_from_vars(None, false, none).unwrap_err();
        assert!(
            format!("{err:#}").contains("openssl rand -base64 48"),
            "{err:#}"
        );
        let short = |_: &str| Some("short".to_string());
        assert!(keyring_from_vars(None, false, short).is_err());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let shown = format!("{:?}", key("k1", b'z'));
        assert!(!shown.contains("zzzz"), "{shown}");
    }
}
