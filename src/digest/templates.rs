//! Templates: the built-ins compiled into the binary, the editor's folder layered over them,
//! and template errors explained so that an editor can fix them.
//!
//! Every file under the configured templates folder whose name ends in `.tera` is loaded
//! under its path relative to that folder (`partials/article.html.tera`); a file with the
//! name of a built-in replaces it. The subject and preheader templates from `[digest]` are
//! added as `[digest] subject` / `[digest] preheader`. Autoescape is on for `.html.tera`
//! templates (with fortnight's escaper), off for the text part, subject and preheader.
//!
//! Tera's own errors say "Failed to render 'x'" and hide the variable name and line in their
//! causes; [`TemplateError`] names the file and line and says what to do, and keeps Tera's
//! error as its source so that the whole chain is printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tera::Tera;

use super::context::{ARTICLE_KEYS, OTHER_PATHS, SECTION_KEYS, TOP_LEVEL_KEYS};
use super::filters;
use crate::base::edit_distance;
use crate::config::Config;

/// The HTML part's template.
pub const HTML: &str = "digest.html.tera";
/// The text part's template.
pub const TEXT: &str = "digest.txt.tera";
/// The subject template's name (from config).
pub const SUBJECT: &str = "[digest] subject";
/// The preheader template's name (from config).
pub const PREHEADER: &str = "[digest] preheader";

/// A template file larger than this is refused before it is read.
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// The built-in templates: (name, source).
pub const BUILTIN: &[(&str, &str)] = &[
    (HTML, include_str!("../../templates/digest.html.tera")),
    (TEXT, include_str!("../../templates/digest.txt.tera")),
    (
        "partials/article.html.tera",
        include_str!("../../templates/partials/article.html.tera"),
    ),
    (
        "partials/article.txt.tera",
        include_str!("../../templates/partials/article.txt.tera"),
    ),
    (
        "partials/footer.html.tera",
        include_str!("../../templates/partials/footer.html.tera"),
    ),
    (
        "partials/footer.txt.tera",
        include_str!("../../templates/partials/footer.txt.tera"),
    ),
];

/// Where a template came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// How to name it to a person: `templates/digest.html.tera`, `the built-in …`.
    pub display: String,
    pub text: String,
    /// From the editor's folder (or config), not built in.
    pub user: bool,
}

/// The loaded templates.
pub struct TemplateSet {
    pub tera: Tera,
    pub sources: BTreeMap<String, Source>,
    /// The filter chains on subscriber fields computed per copy (`super::personal`).
    pub chains: std::sync::Arc<Vec<super::contract::Chain>>,
}

impl fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSet")
            .field("templates", &self.sources.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A template problem, located and explained.
#[derive(Debug, thiserror::Error)]
pub struct TemplateError {
    /// The template file (as shown to a person).
    pub file: String,
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// What is wrong, in plain words.
    pub problem: String,
    /// What to do / what is available.
    pub help: Option<String>,
    #[source]
    pub cause: Option<tera::Error>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.problem, self.file)?;
        if let Some(l) = self.line {
            write!(f, " line {l}")?;
        }
        if let Some(h) = &self.help {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

fn display_for(config: &Config, name: &str) -> String {
    config
        .digest
        .templates_dir
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn collect_folder(dir: &Path, rel: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the templates folder `{}`", dir.display()))?;
    let mut entries: Vec<_> = entries
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot read the templates folder `{}`", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        let rel_name = rel.join(&name);
        if path.is_dir() {
            collect_folder(&path, &rel_name, out)?;
        } else if name.to_string_lossy().ends_with(".tera") {
            let key = rel_name
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((key, path));
        }
    }
    Ok(())
}

/// The built-in templates, under their names.
fn builtin_sources() -> BTreeMap<String, Source> {
    BUILTIN
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                Source {
                    display: format!("the built-in template {n}"),
                    text: t.to_string(),
                    user: false,
                },
            )
        })
        .collect()
}

/// Adds the `.tera` files of the templates folder, when it exists, over the built-ins.
fn add_folder(config: &Config, sources: &mut BTreeMap<String, Source>) -> Result<()> {
    let folder = config.templates_dir();
    if !folder.is_dir() {
        if config.digest.templates_dir_set {
            anyhow::bail!(
                "the templates folder `{}` (`[digest] templates_dir` in {}) does not exist: create it \
                 (`fortnight init DIR` writes one with the default templates to copy from), or remove \
                 the key to use the built-in templates",
                folder.display(),
                config.path.display()
            );
        }
        return Ok(());
    }
    let mut files = Vec::new();
    collect_folder(&folder, Path::new(""), &mut files)?;
    for (name, path) in files {
        let bytes = crate::base::files::read_regular(&path, MAX_TEMPLATE_BYTES)
            .with_context(|| format!("cannot read the template `{}`", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!(
                "cannot read the template `{}`: templates must be UTF-8 text",
                path.display()
            )
        })?;
        sources.insert(
            name.clone(),
            Source {
                display: display_for(config, &name),
                text,
                user: true,
            },
        );
    }
    Ok(())
}

/// Adds the subject and preheader templates of the config.
fn add_config_templates(config: &Config, sources: &mut BTreeMap<String, Source>) {
    let cfg = config.path.display();
    sources.insert(
        SUBJECT.to_string(),
        Source {
            display: format!("`[digest] subject` of {cfg}"),
            text: config.digest.subject.clone(),
            user: true,
        },
    );
    if let Some(p) = &config.digest.preheader {
        sources.insert(
            PREHEADER.to_string(),
            Source {
                display: format!("`[digest] preheader` of {cfg}"),
                text: p.clone(),
                user: true,
            },
        );
    }
}

/// Reads the built-ins, the editor's folder and the config templates, and parses them all.
/// Errors are [`TemplateError`]s (downcast to tell them apart from I/O problems).
pub fn load(config: &Config) -> Result<TemplateSet> {
    let mut sources = builtin_sources();
    add_folder(config, &mut sources)?;
    add_config_templates(config, &mut sources);

    let mut tera = Tera::default();
    tera.autoescape_on(vec![".html.tera", ".html", ".htm"]);
    tera.set_escape_fn(crate::base::escape_html);
    filters::register(&mut tera, config.language());

    // Bounded rendering (docs: README "Templates: limits"): before Tera's parser sees them.
    for (name, src) in &sources {
        super::bounds::scan(name, &src.text).map_err(|e| exceeded(&sources, e))?;
    }
    if let Err(e) =
        tera.add_raw_templates(sources.iter().map(|(n, s)| (n.as_str(), s.text.as_str())))
    {
        // Parse one by one, so that a syntax error names its own file and line.
        for (name, src) in &sources {
            if let Err(e) = tera::Template::new(name, None, &src.text) {
                return Err(syntax_error(src, e).into());
            }
        }
        let set = TemplateSet {
            tera: Tera::default(),
            sources,
            chains: Default::default(),
        };
        return Err(set.explain(e, HTML).into());
    }
    let texts = sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.text.as_str()))
        .collect();
    super::bounds::check_graph(&tera, &texts).map_err(|e| exceeded(&sources, e))?;
    let chains = super::personal::rewrite(&mut tera);
    Ok(TemplateSet {
        tera,
        sources,
        chains,
    })
}

/// A limit of `bounds`, as a template error naming the file.
fn exceeded(sources: &BTreeMap<String, Source>, e: super::bounds::Exceeded) -> anyhow::Error {
    let file = sources
        .get(&e.template)
        .map_or(e.template.clone(), |s| s.display.clone());
    TemplateError {
        file,
        line: Some(e.line),
        problem: e.problem,
        help: Some(e.help.to_string()),
        cause: None,
    }
    .into()
}

/// Tera's chain of messages, outermost first.
pub fn chain_messages(e: &tera::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push(s.to_string());
        src = s.source();
    }
    out
}

fn syntax_error(src: &Source, e: tera::Error) -> TemplateError {
    let msgs = chain_messages(&e);
    let detail = msgs.last().cloned().unwrap_or_default();
    // pest: " --> 12:5" and "  = expected …"
    let line = detail.lines().find_map(|l| {
        let l = l.trim_start();
        let rest = l.strip_prefix("-->")?.trim();
        rest.split(':').next()?.trim().parse().ok()
    });
    let expected = detail
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= ").map(str::to_string));
    let problem = match expected {
        Some(x) => format!("syntax error ({x})"),
        None => "syntax error".to_string(),
    };
    TemplateError {
        file: src.display.clone(),
        line,
        problem,
        help: Some(
            "check that every `{{` has its `}}`, every `{%` its `%}`, and every `{% if %}`/`{% for %}` its `{% endif %}`/`{% endfor %}`"
                .to_string(),
        ),
        cause: Some(e),
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first line holding `needle` as a whole name (not part of a longer name).
pub fn find_name_line(text: &str, needle: &str) -> Option<usize> {
    for (n, line) in text.lines().enumerate() {
        for (i, _) in line.match_indices(needle) {
            let before = line[..i].chars().next_back();
            let after = line[i + needle.len()..].chars().next();
            let ok_before = before.is_none_or(|c| !is_ident_char(c) && c != '.');
            let ok_after = after.is_none_or(|c| !is_ident_char(c));
            if ok_before && ok_after {
                return Some(n + 1);
            }
        }
    }
    None
}

/// The first line where `name` is used as a filter (`| name` or `{% filter name`).
pub fn find_filter_line(text: &str, name: &str) -> Option<usize> {
    for (n, line) in text.lines().enumerate() {
        for (i, _) in line.match_indices(name) {
            let before = line[..i].trim_end();
            let after = line[i + name.len()..].chars().next();
            if after.is_some_and(is_ident_char) {
                continue;
            }
            if before.ends_with('|')
                || before.ends_with("filter")
                || before.ends_with(" is")
                || before.ends_with(" is not")
            {
                return Some(n + 1);
            }
        }
    }
    None
}

/// The closest known variable path to `unknown`, if any is close.
pub fn suggest(unknown: &str) -> Option<String> {
    let root = unknown.split(['.', '[']).next().unwrap_or(unknown);
    let mut candidates: Vec<String> = TOP_LEVEL_KEYS.iter().map(|s| s.to_string()).collect();
    candidates.extend(OTHER_PATHS.iter().map(|s| s.to_string()));
    for r in [root, "article", "section"] {
        candidates.extend(ARTICLE_KEYS.iter().map(|k| format!("{r}.{k}")));
        candidates.extend(SECTION_KEYS.iter().map(|k| format!("{r}.{k}")));
    }
    let limit = if unknown.len() > 12 { 3 } else { 2 };
    candidates
        .into_iter()
        .filter(|c| c != unknown)
        .map(|c| (edit_distance(unknown, &c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// The context, described for an editor.
pub fn context_help() -> String {
    format!(
        "the context has: {}; each entry of `sections` has: {}; each article (in `section.articles` or `articles`) has: {}; see the README's \"Template context\"",
        TOP_LEVEL_KEYS.join(", "),
        SECTION_KEYS.join(", "),
        ARTICLE_KEYS.join(", ")
    )
}

fn filters_help() -> String {
    let ours: Vec<&str> = filters::FILTERS.iter().map(|(n, _)| *n).collect();
    format!(
        "fortnight's filters are {}, plus Tera's built-in filters (upper, lower, trim, truncate, replace, default, length, join, …); `date`, `urlencode`, `slugify` and `filesizeformat` are not available (use `date_format`)",
        ours.join(", ")
    )
}

/// The template being rendered when it failed: the innermost one Tera's messages name.
fn active_template(msgs: &[String], template: &str) -> String {
    let mut active = template.to_string();
    for m in msgs {
        if let Some(pos) = m.find("while rendering '") {
            if let Some(n) = quoted_after(&m[pos + "while rendering ".len()..], "") {
                active = n.to_string();
            }
        } else if let Some(n) = quoted_after(m, "Failed to render ") {
            active = n.to_string();
        }
    }
    active
}

fn quoted_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(prefix)?;
    let q = rest.chars().next()?;
    let rest = &rest[q.len_utf8()..];
    let end = rest.find(q)?;
    Some(&rest[..end])
}

impl TemplateSet {
    pub fn display(&self, name: &str) -> String {
        self.sources
            .get(name)
            .map_or_else(|| name.to_string(), |s| s.display.clone())
    }

    fn text(&self, name: &str) -> &str {
        self.sources.get(name).map_or("", |s| s.text.as_str())
    }

    /// Finds `needle` with `find` in `preferred` first, then in the other templates.
    fn locate(
        &self,
        preferred: &str,
        find: impl Fn(&str) -> Option<usize>,
    ) -> (String, Option<usize>) {
        if let Some(l) = find(self.text(preferred)) {
            return (preferred.to_string(), Some(l));
        }
        for (name, s) in &self.sources {
            if let Some(l) = find(&s.text) {
                return (name.clone(), Some(l));
            }
        }
        (preferred.to_string(), None)
    }

    /// An unknown filter, test or function found before rendering.
    pub fn unknown_call(&self, template: &str, kind: &str, name: &str) -> TemplateError {
        let (file, line) = if kind == "function" {
            self.locate(template, |t| find_name_line(t, name))
        } else {
            self.locate(template, |t| find_filter_line(t, name))
        };
        let help = match kind {
            "filter" => filters_help(),
            "test" => "Tera's tests are defined, undefined, odd, even, string, number, divisibleby, iterable, object, starting_with, ending_with, containing, matching".to_string(),
            _ => "fortnight's templates have no functions besides Tera's `range` and `throw`".to_string(),
        };
        if kind == "function" && name == "get_env" {
            return TemplateError {
                file: self.display(&file),
                line,
                problem: "`get_env` is not available: templates cannot read the environment (it holds the SMTP password and the unsubscribe key)".to_string(),
                help: Some("put the value in config.toml and use it from there".to_string()),
                cause: None,
            };
        }
        TemplateError {
            file: self.display(&file),
            line,
            problem: format!("unknown {kind} `{name}`"),
            help: Some(help),
            cause: None,
        }
    }

    /// `include`/`extends` of `name`, which does not exist, in `active`.
    fn missing_template(&self, active: &str, name: &str) -> TemplateError {
        let (file, line) = self.locate(active, |t| {
            t.lines()
                .position(|l| {
                    l.contains(&format!("\"{name}\"")) || l.contains(&format!("'{name}'"))
                })
                .map(|p| p + 1)
        });
        let known: Vec<&str> = self
            .sources
            .keys()
            .map(String::as_str)
            .filter(|n| n.ends_with(".tera"))
            .collect();
        TemplateError {
            file: self.display(&file),
            line,
            problem: format!("there is no template named `{name}`"),
            help: Some(format!(
                "`include`/`extends` name files relative to the templates folder; the templates are: {}",
                known.join(", ")
            )),
            cause: None,
        }
    }

    /// Turns a Tera error raised while rendering `template` into a [`TemplateError`].
    pub fn explain(&self, e: tera::Error, template: &str) -> TemplateError {
        let msgs = chain_messages(&e);
        let active = active_template(&msgs, template);
        for m in msgs.iter().rev() {
            if let Some(var) = quoted_after(m, "Variable ") {
                let (file, line) = self.locate(&active, |t| find_name_line(t, var));
                let mut help = String::new();
                if let Some(s) = suggest(var) {
                    help.push_str(&format!("did you mean `{s}`? "));
                }
                help.push_str(&context_help());
                return TemplateError {
                    file: self.display(&file),
                    line,
                    problem: format!("unknown variable `{var}`"),
                    help: Some(help),
                    cause: Some(e),
                };
            }
            if let Some(name) = quoted_after(m, "Filter ") {
                if m.ends_with("not found") {
                    let err = self.unknown_call(&active, "filter", name);
                    return TemplateError {
                        cause: Some(e),
                        ..err
                    };
                }
            }
            if let Some(name) = quoted_after(m, "Template ") {
                if m.ends_with("not found") {
                    return TemplateError {
                        cause: Some(e),
                        ..self.missing_template(&active, name)
                    };
                }
            }
        }
        // Anything else: say where, and what Tera said at the deepest level.
        let problem = msgs
            .last()
            .cloned()
            .unwrap_or_else(|| "the template could not be rendered".to_string());
        let problem = problem.lines().next().unwrap_or_default().to_string();
        TemplateError {
            file: self.display(&active),
            line: None,
            problem,
            help: None,
            cause: Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_as_whole_words_only() {
        let t = "line one\n{{ article.titles }}\n{{ x.article.title }}\n  {{ article.title }}";
        assert_eq!(find_name_line(t, "article.title"), Some(4));
        assert_eq!(find_filter_line("a\n{{ x | uppr }}", "uppr"), Some(2));
        assert_eq!(find_filter_line("{% filter uppr %}", "uppr"), Some(1));
    }

    #[test]
    fn close_misspellings_get_a_suggestion() {
        assert_eq!(suggest("artcle.title").as_deref(), Some("article.title"));
        assert_eq!(suggest("article.titel").as_deref(), Some("article.title"));
        assert_eq!(
            suggest("publcation.name").as_deref(),
            Some("publication.name")
        );
        assert_eq!(suggest("zzzzzzzz"), None);
    }
}
