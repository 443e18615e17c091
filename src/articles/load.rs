//! Reading the articles folder: find the files, parse them (in parallel), assign issues.
//!
//! The walk is sequential and sorted (so every run lists the same files in the same order);
//! reading and parsing is spread over the machine's cores with scoped threads, since each
//! file is independent. A file that is not an article (empty, binary, a note, an unknown
//! extension, hidden) is skipped with its reason; a Markdown file whose front matter is
//! wrong is an error, because its author clearly meant it as an article and would otherwise
//! miss it in the digest. Issue assignment happens once every file is parsed, because the
//! grid may be inferred from all the explicit issue dates.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::grid::Grid;
use super::text::{decode, MAX_ARTICLE_BYTES};
use super::{fallback_title, markdown, page_text, Article, Catalog, Draft, Issue, Parsed, Skipped};
use crate::base::files::{read_regular, special_kind, ReadError};
use crate::base::IssueDate;
use crate::config::PublicationConfig;

/// Extensions read as articles (compared case-insensitively).
pub(crate) const EXTENSIONS: [&str; 3] = ["txt", "md", "markdown"];
/// Folders nested deeper than this are not walked (guards against link loops).
const MAX_DEPTH: usize = 16;
/// Below this many files per thread, threads cost more than they save.
const FILES_PER_THREAD: usize = 64;

/// What one file turned out to be.
pub(crate) enum FileOutcome {
    Article(Box<Draft>),
    Skipped(String),
    Invalid(String),
}

/// A file found by the walk: its path relative to the articles folder, and on disk.
struct Found {
    rel: PathBuf,
    abs: PathBuf,
}

/// Loads `dir` (already resolved against the config file's folder). `config_path` is only
/// used in messages ("set articles_dir in …").
pub(crate) fn load(
    dir: &Path,
    publication: &PublicationConfig,
    config_path: &Path,
) -> Result<Catalog> {
    check_folder(dir, config_path)?;
    let mut skipped = Vec::new();
    let mut found = Vec::new();
    walk(dir, Path::new(""), 0, &mut found, &mut skipped)?;
    let looked_at = found.len() + skipped.len();
    let drafts = parse_found(dir, found, &mut skipped)?;
    if drafts.is_empty() {
        bail!(no_articles(dir, looked_at, &skipped));
    }

    let mut warnings = Vec::new();
    let grid = choose_grid(&drafts, publication, &mut warnings);
    let base_url = publication.base_url.trim_end_matches('/');
    let mut by_issue: BTreeMap<IssueDate, Vec<Article>> = BTreeMap::new();
    for (rel, draft) in drafts {
        let article = article(dir, rel, draft, &grid, base_url, &mut warnings);
        section_warning(dir, &article, &publication.sections, &mut warnings);
        by_issue.entry(article.issue).or_default().push(article);
    }
    let issues = by_issue
        .into_iter()
        .rev()
        .map(|(date, mut articles)| {
            articles.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.file.cmp(&b.file)));
            Issue { date, articles }
        })
        .collect();
    Ok(Catalog {
        issues,
        skipped,
        warnings,
    })
}

/// `dir` must be a folder that can be opened.
fn check_folder(dir: &Path, config_path: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            "the articles folder `{}` is a file, not a folder; set `articles_dir` under [publication] in `{}`",
            dir.display(),
            config_path.display()
        ),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot open the articles folder `{}`; create it, or set `articles_dir` under [publication] in `{}`",
                dir.display(),
                config_path.display()
            )
        }),
    }
}

/// Parses the files found: the drafts of the articles, in the order found; the files that
/// are not articles join `skipped` (sorted by name). An error names every file meant as an
/// article that cannot be read as one.
fn parse_found(
    dir: &Path,
    found: Vec<Found>,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<(PathBuf, Draft)>> {
    let outcomes = parse_all(&found);
    let mut drafts = Vec::new();
    let mut invalid = Vec::new();
    for (f, outcome) in found.into_iter().zip(outcomes) {
        match outcome {
            FileOutcome::Article(d) => drafts.push((f.rel, *d)),
            FileOutcome::Skipped(reason) => skipped.push(Skipped {
                file: f.rel,
                reason,
            }),
            FileOutcome::Invalid(msg) => invalid.push(format!("`{}`: {msg}", f.abs.display())),
        }
    }
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    if !invalid.is_empty() {
        bail!(
            "{} article file{} in `{}` cannot be read as articles; fix {}:\n  {}",
            invalid.len(),
            if invalid.len() == 1 { "" } else { "s" },
            dir.display(),
            if invalid.len() == 1 { "it" } else { "them" },
            invalid.join("\n  ")
        );
    }
    Ok(drafts)
}

/// The error of a folder without a single article: what was looked at, and the first ten
/// files skipped with their reasons.
fn no_articles(dir: &Path, looked_at: usize, skipped: &[Skipped]) -> String {
    let mut msg = format!(
        "no articles in `{}`: looked at {looked_at} file{} and found no page-text (.txt) or Markdown (.md) article",
        dir.display(),
        if looked_at == 1 { "" } else { "s" }
    );
    for s in skipped.iter().take(10) {
        msg.push_str(&format!(
            "\n  skipped `{}`: {}",
            dir.join(&s.file).display(),
            s.reason
        ));
    }
    if skipped.len() > 10 {
        msg.push_str(&format!(
            "\n  … and {} more skipped files",
            skipped.len() - 10
        ));
    }
    msg
}

/// The article a draft makes: its issue (explicit, else the grid's next issue date), its
/// title (or a fallback) and URL; the draft's warnings and the problems found on the way
/// join `warnings`, each naming the file.
fn article(
    dir: &Path,
    rel: PathBuf,
    draft: Draft,
    grid: &Grid,
    base_url: &str,
    warnings: &mut Vec<String>,
) -> Article {
    let shown = dir.join(&rel);
    let shown = shown.display();
    for w in &draft.warnings {
        warnings.push(format!("`{shown}`: {w}"));
    }
    let issue = match draft.issue {
        Some(explicit) => {
            if !grid.is_issue_date(explicit.date()) {
                let after = grid.issue_on_or_after(explicit.date());
                let before = after
                    .date()
                    .checked_sub_days(chrono::Days::new(u64::from(grid.cadence_days())))
                    .map_or_else(|| "-".to_string(), |d| IssueDate::new(d).to_string());
                warnings.push(format!(
                    "`{shown}`: its issue date {explicit} is not on the {}-day issue grid through {} (nearest issue dates {before} and {after}); kept as given, because an explicit issue wins",
                    grid.cadence_days(),
                    grid.anchor()
                ));
            }
            explicit
        }
        None => grid.issue_on_or_after(draft.date),
    };
    let (title, title_is_fallback) = match draft.title {
        Some(t) => (t, false),
        None => {
            let t = fallback_title(draft.section.as_deref(), &draft.authors, draft.date);
            let how = if is_markdown(&rel) {
                "add `title:` to its front matter"
            } else {
                "add a title line above the date line"
            };
            warnings.push(format!("`{shown}`: no title; listed as \"{t}\" ({how})"));
            (t, true)
        }
    };
    let url = draft
        .url
        .unwrap_or_else(|| format!("{base_url}/{}", url_path(&rel)));
    let body_html = match &draft.markdown {
        None => draft.body_html,
        Some(body) => {
            let rendered = super::markdown::render(body, Some(&url));
            for (line, target) in &rendered.unresolved {
                warnings.push(format!(
                    "`{shown}` line {line}: the link target `{target}` cannot be resolved against the article's URL {url}; write it as a full URL (https://…)"
                ));
            }
            rendered.html
        }
    };
    let word_count = super::text::word_count(&draft.paragraphs);
    let lead = draft.paragraphs.first().cloned().unwrap_or_default();
    Article {
        file: rel,
        title,
        title_is_fallback,
        authors: draft.authors,
        section: draft.section,
        date: draft.date,
        issue,
        url,
        summary: draft.summary,
        lead,
        paragraphs: draft.paragraphs,
        body_html,
        read_count: draft.read_count,
        word_count,
    }
}

/// A warning when `sections` is configured and the article's section is not one of them
/// (a misspelt section silently makes a new one), with the closest configured name.
fn section_warning(dir: &Path, a: &Article, sections: &[String], warnings: &mut Vec<String>) {
    let Some(section) = a
        .section
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    if sections.is_empty() || sections.iter().any(|s| s.trim() == section) {
        return;
    }
    let hint = crate::base::closest(section, sections.iter().map(|s| s.trim()))
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    warnings.push(format!(
        "`{}`: its section `{section}` is not in [publication] sections ({}); {hint}it is shown as a section of its own, after the configured ones",
        dir.join(&a.file).display(),
        sections.join(", ")
    ));
}

/// The configured grid, else the one inferred from explicit issue dates, else one anchored
/// at the newest article's date (with a warning saying how to pin it).
fn choose_grid(
    drafts: &[(PathBuf, Draft)],
    publication: &PublicationConfig,
    warnings: &mut Vec<String>,
) -> Grid {
    let cadence = publication.cadence_days;
    if let Some(first) = publication.first_issue {
        return Grid::new(first, cadence);
    }
    let explicit: Vec<_> = drafts
        .iter()
        .filter_map(|(_, d)| d.issue.map(IssueDate::date))
        .collect();
    if let Some(grid) = Grid::infer(&explicit, cadence) {
        return grid;
    }
    let newest = drafts
        .iter()
        .map(|(_, d)| d.date)
        .max()
        .expect("choose_grid is only called with at least one article");
    warnings.push(format!(
        "no article names its issue (`M/D/YYYY issue of` in a byline or `issue:` in front matter) and [publication] has no `first_issue`: the {cadence}-day issue grid is anchored at the newest article's date, {newest}; set `first_issue` to pin it"
    ));
    Grid::new(IssueDate::new(newest), cadence)
}

/// Walks `dir/rel` in sorted order, collecting candidate files and skipping the rest.
fn walk(
    dir: &Path,
    rel: &Path,
    depth: usize,
    found: &mut Vec<Found>,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    let here = dir.join(rel);
    let entries = fs::read_dir(&here)
        .with_context(|| format!("cannot list the articles folder `{}`", here.display()))?;
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let child = rel.join(&name);
        let skip = |skipped: &mut Vec<Skipped>, reason: &str| {
            skipped.push(Skipped {
                file: child.clone(),
                reason: reason.to_string(),
            })
        };
        let Some(name) = name.to_str() else {
            skip(skipped, "its name is not valid UTF-8; rename it");
            continue;
        };
        if name.starts_with('.') {
            skip(skipped, "hidden file or folder");
            continue;
        }
        let abs = entry.path();
        let Ok(meta) = fs::metadata(&abs) else {
            skip(skipped, "cannot be read (a broken link?)");
            continue;
        };
        if meta.is_dir() {
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            if is_link {
                skip(skipped, "a link to a folder (not followed)");
            } else if depth >= MAX_DEPTH {
                skip(skipped, "folder nested too deep (not walked)");
            } else {
                walk(dir, &child, depth + 1, found, skipped)?;
            }
            continue;
        }
        if let Some(kind) = special_kind(&meta.file_type()) {
            skip(skipped, &format!("not a regular file but {kind}; not read"));
            continue;
        }
        let ext = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext {
            Some(e) if EXTENSIONS.contains(&e.as_str()) => found.push(Found { rel: child, abs }),
            Some(e) => skip(
                skipped,
                &format!("unknown extension `.{e}` (articles are .txt page text or .md/.markdown Markdown)"),
            ),
            None => skip(
                skipped,
                "no extension (articles are .txt page text or .md/.markdown Markdown)",
            ),
        }
    }
    Ok(())
}

/// Reads and parses every file, on up to `available_parallelism` threads; results are in
/// the order of `found`.
fn parse_all(found: &[Found]) -> Vec<FileOutcome> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(found.len().div_ceil(FILES_PER_THREAD)).max(1);
    if threads == 1 {
        return found.iter().map(read_and_parse).collect();
    }
    let chunk = found.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = found
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(read_and_parse).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn read_and_parse(f: &Found) -> FileOutcome {
    // The size limit is checked from the metadata, before reading (a 2 GB file costs nothing).
    match read_regular(&f.abs, MAX_ARTICLE_BYTES as u64) {
        Ok(bytes) => parse_file_owned(&f.rel, bytes),
        Err(e @ ReadError::TooLarge { .. }) => {
            FileOutcome::Skipped(format!("{e}, too large to be an article"))
        }
        Err(ReadError::NotRegular(kind)) => {
            FileOutcome::Skipped(format!("not a regular file but {kind}; not read"))
        }
        Err(e) => FileOutcome::Skipped(format!("cannot be read: {e}")),
    }
}

fn is_markdown(rel: &Path) -> bool {
    rel.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"))
}

/// Parses one file's bytes; `rel` picks the format (`.md`/`.markdown` → Markdown; other
/// files are page text unless they open with a front matter fence).
fn parse_file_owned(rel: &Path, bytes: Vec<u8>) -> FileOutcome {
    let decoded = match decode(bytes) {
        Ok(d) => d,
        Err(reason) => return FileOutcome::Skipped(reason),
    };
    let parsed = if is_markdown(rel) || markdown::has_front_matter(&decoded.text) {
        markdown::parse(&decoded.text)
    } else {
        match page_text::parse(&decoded.text) {
            Ok(d) => Parsed::Article(d),
            Err(reason) => Parsed::NotArticle(reason),
        }
    };
    match parsed {
        Parsed::Article(mut d) => {
            if let Some(note) = decoded.note {
                d.warnings.insert(0, note.to_string());
            }
            FileOutcome::Article(Box::new(d))
        }
        Parsed::NotArticle(reason) => FileOutcome::Skipped(reason),
        Parsed::Invalid(msg) => FileOutcome::Invalid(msg),
    }
}

/// The file's path without its extension, `/`-separated and percent-encoded, for URLs.
fn url_path(rel: &Path) -> String {
    let stemmed = rel.with_extension("");
    let mut out = String::new();
    for comp in stemmed.components() {
        if let Component::Normal(part) = comp {
            if !out.is_empty() {
                out.push('/');
            }
            for b in part.to_string_lossy().bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// Parses one file's bytes (a copy; the loader hands over its buffer instead).
#[cfg(test)]
pub(crate) fn parse_file(rel: &Path, bytes: &[u8]) -> FileOutcome {
    parse_file_owned(rel, bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str =
        "A Title\n\nWednesday, 27 February 2002\n\nPublished in News Digest\n\nBody.\n";

    fn publication() -> PublicationConfig {
        toml::from_str("name = \"T\"\nbase_url = \"https://t.example/\"\n").expect("publication")
    }

    #[test]
    fn sub_folders_are_walked_in_order_and_hidden_folders_and_folder_links_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("2002/02")).unwrap();
        fs::create_dir_all(d.join(".git")).unwrap();
        fs::write(d.join("2002/02/nested.TXT"), PAGE).unwrap();
        fs::write(d.join("top.txt"), PAGE).unwrap();
        fs::write(d.join(".git/config.txt"), PAGE).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("2002"), d.join("loop")).unwrap();
        let c = load(d, &publication(), Path::new("config.toml")).unwrap();
        let files: Vec<_> = c.articles().map(|a| a.file.clone()).collect();
        assert_eq!(
            files,
            [
                PathBuf::from("2002/02/nested.TXT"),
                PathBuf::from("top.txt")
            ]
        );
        assert_eq!(
            c.articles().next().unwrap().url,
            "https://t.example/2002/02/nested"
        );
        let skipped: Vec<_> = c
            .skipped
            .iter()
            .map(|s| (s.file.to_string_lossy().into_owned(), s.reason.as_str()))
            .collect();
        assert!(
            skipped.contains(&(".git".to_string(), "hidden file or folder")),
            "{skipped:?}"
        );
        #[cfg(unix)]
        assert!(
            skipped.contains(&("loop".to_string(), "a link to a folder (not followed)")),
            "{skipped:?}"
        );
    }

    #[test]
    fn a_txt_file_with_front_matter_is_read_as_markdown() {
        match parse_file(
            Path::new("x.txt"),
            b"---\ntitle: T\ndate: 2002-02-12\n---\n*Body*\n",
        ) {
            FileOutcome::Article(d) => assert_eq!(d.body_html, "<p><em>Body</em></p>"),
            _ => panic!("expected an article"),
        }
    }

    #[test]
    fn a_repaired_encoding_is_a_warning_on_the_article() {
        let bytes = b"Caf\xe9 Politics\n\n27 February 2002\nPublished in News Digest\n\nBody.\n";
        match parse_file(Path::new("x.txt"), bytes) {
            FileOutcome::Article(d) => {
                assert_eq!(d.title.as_deref(), Some("Café Politics"));
                assert!(d.warnings[0].contains("Windows-1252"));
            }
            _ => panic!("expected an article"),
        }
    }

    #[test]
    fn many_files_are_parsed_in_parallel_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..300 {
            let day = 1 + i % 28;
            fs::write(
                dir.path().join(format!("{i:03}.txt")),
                format!(
                    "Title {i}\n\n{day} February 2002\n\nPublished in News Digest\n\nBody {i}.\n"
                ),
            )
            .unwrap();
        }
        fs::write(dir.path().join("zz-notes.txt"), "a note").unwrap();
        let c = load(dir.path(), &publication(), Path::new("config.toml")).unwrap();
        assert_eq!(c.articles().count(), 300);
        assert_eq!(c.skipped.len(), 1);
        for a in c.articles() {
            let n: usize = a.file.to_string_lossy()[..3].parse().unwrap();
            assert_eq!(a.title, format!("Title {n}"));
            assert_eq!(a.lead, format!("Body {n}."));
        }
    }

    #[test]
    fn url_paths_drop_the_extension_and_encode_the_rest() {
        assert_eq!(
            url_path(Path::new("kazakhstan-grain.txt")),
            "kazakhstan-grain"
        );
        assert_eq!(url_path(Path::new("2002/manas air.md")), "2002/manas%20air");
        assert_eq!(url_path(Path::new("ə.txt")), "%C9%99");
    }
}
