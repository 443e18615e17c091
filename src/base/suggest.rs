//! "Did you mean …?": the distance between what was written and what was meant, for the
//! hints of error messages (front matter keys, template variables).

/// Levenshtein distance, for "did you mean" hints (front matter keys, template variables).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `written` (case-insensitively), when it is close enough to be
/// what was meant: at most a third of its length away (and at least one edit).
pub fn closest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = written.to_lowercase();
    let limit = (w.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    #[test]
    fn the_closest_candidate_is_suggested_only_when_close() {
        let sections = ["News", "Field Reports", "Analytical Articles"];
        assert_eq!(closest("Newz", sections), Some("News"));
        assert_eq!(closest("field report", sections), Some("Field Reports"));
        assert_eq!(closest("Opinion", sections), None);
        assert_eq!(
            closest("digst.txt.tera", ["digest.txt.tera", "digest.html.tera"]),
            Some("digest.txt.tera")
        );
    }

    #[test]
    fn the_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("title", "title"), 0);
        assert_eq!(edit_distance("titel", "title"), 2);
        assert_eq!(edit_distance("autor", "author"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("Мурат", "Мурад"), 1);
    }
}
