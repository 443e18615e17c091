//! Counts in words: `1 article`, `2 articles`, `1,204 messages`. The one place that decides
//! singular or plural, so that no output says "1 articles".

/// `n` and the noun, singular for exactly one: `plural(1, "article")` → `1 article`,
/// `plural(3, "article")` → `3 articles`. Nouns whose plural is not `+s` use
/// [`plural_with`].
pub fn plural(n: impl Count, noun: &str) -> String {
    let n = n.count();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

/// `n` and the singular or the given plural form: `plural_with(2, "copy", "copies")`.
pub fn plural_with(n: impl Count, singular: &str, plural: &str) -> String {
    let n = n.count();
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{} {plural}", thousands(n))
    }
}

/// A count of things (the integer types counts come in).
pub trait Count {
    fn count(self) -> u64;
}

impl Count for u64 {
    fn count(self) -> u64 {
        self
    }
}

impl Count for u32 {
    fn count(self) -> u64 {
        u64::from(self)
    }
}

impl Count for usize {
    fn count(self) -> u64 {
        u64::try_from(self).unwrap_or(u64::MAX)
    }
}

/// `1204` → `1,204`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(plural(1u64, "article"), "1 article");
        assert_eq!(plural(0u64, "article"), "0 articles");
        assert_eq!(plural(1204u64, "message"), "1,204 messages");
        assert_eq!(plural_with(2u64, "copy", "copies"), "2 copies");
        assert_eq!(plural_with(1u64, "copy", "copies"), "1 copy");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
