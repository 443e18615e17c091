//! Bounded rendering: limits that keep a hostile or mistaken template from exhausting the
//! stack (Tera's parser and renderer recurse once per nesting level, include and macro call).
//!
//! Two checks, both before anything is rendered, both giving an [`Exceeded`] that
//! `templates` turns into a template error with the file and line (exit 2, never an abort):
//! 1. [`scan`] reads each template's source before Tera parses it: block tags (`if`, `for`,
//!    `block`, `macro`, `filter`) nested deeper than [`MAX_NESTING`], brackets deeper than
//!    [`MAX_BRACKETS`], or more than [`MAX_OPERATORS`] operators in one tag are refused;
//! 2. [`check_graph`] follows includes, extends and macro calls over the parsed templates:
//!    a cycle (a partial including itself, a macro calling itself, directly or not) is
//!    refused, and so is a render deeper than [`MAX_DEPTH`] levels, counting each nested
//!    block, include and macro call along the deepest chain.
//!
//! The limits are documented in the README ("Templates: limits").

use std::collections::{BTreeMap, HashMap};

use tera::ast::{Expr, ExprVal, Node};
use tera::Tera;

/// A limit a template exceeds: which template (by name), where, and what to do.
#[derive(Debug)]
pub struct Exceeded {
    pub template: String,
    pub line: usize,
    pub problem: String,
    pub help: &'static str,
}

/// How deep block tags may nest in one template.
pub const MAX_NESTING: usize = 32;
/// How deep brackets may nest in one tag.
pub const MAX_BRACKETS: usize = 32;
/// How many operators one tag may hold (Tera nests each binary operator one level deeper).
pub const MAX_OPERATORS: usize = 64;
/// How deep a render may go, counting nested blocks, includes and macro calls along the
/// deepest chain (each level is a frame of Tera's recursive renderer; 64 leave a wide margin
/// on the 2 MiB stack of a worker thread).
pub const MAX_DEPTH: usize = 64;

fn error(template: &str, line: usize, problem: String, help: &'static str) -> Exceeded {
    Exceeded {
        template: template.to_string(),
        line,
        problem,
        help,
    }
}

const OPENERS: &[&str] = &["if", "for", "block", "macro", "filter"];
const CLOSERS: &[&str] = &["endif", "endfor", "endblock", "endmacro", "endfilter"];

/// Checks the nesting of one template's source, in one pass over its bytes.
pub fn scan(name: &str, text: &str) -> Result<(), Exceeded> {
    let src = name;
    let b = text.as_bytes();
    let mut i = 0;
    let mut line = 1;
    let mut depth = 0usize;
    while i + 1 < b.len() {
        if b[i] == b'\n' {
            line += 1;
        }
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let tag_line = line;
        let kind = b[i + 1];
        let start = i + 2;
        if kind == b'#' {
            let end = find(b, start, b"#}").unwrap_or(b.len());
            line += count_lines(&b[i..end]);
            i = end + 2;
            continue;
        }
        let Some(tag) = Tag::read(b, start, kind) else {
            // Unterminated: Tera reports the syntax error.
            return Ok(());
        };
        line += count_lines(&b[i..tag.end]);
        if tag.brackets > MAX_BRACKETS {
            return Err(error(
                src,
                tag_line,
                format!("brackets nest more than {MAX_BRACKETS} deep"),
                "split the expression with `{% set %}`",
            ));
        }
        if tag.operators > MAX_OPERATORS {
            return Err(error(
                src,
                tag_line,
                format!("one tag holds more than {MAX_OPERATORS} operators"),
                "split the expression with `{% set %}`",
            ));
        }
        i = tag.end;
        if kind != b'%' {
            continue;
        }
        let word = first_word(&b[start..tag.end]);
        if word == "raw" {
            // Everything up to `endraw` is text.
            let mut j = i;
            loop {
                let Some(k) = find(b, j, b"endraw") else {
                    return Ok(());
                };
                j = k + 6;
                let before = &b[..k];
                let open = before.iter().rposition(|&c| c == b'{');
                if open.is_some_and(|o| b.get(o + 1) == Some(&b'%')) {
                    break;
                }
            }
            line += count_lines(&b[i..j]);
            i = j;
        } else if OPENERS.contains(&word) {
            depth += 1;
            if depth > MAX_NESTING {
                return Err(error(
                    src,
                    tag_line,
                    format!("`{{% {word} %}}` blocks nest more than {MAX_NESTING} deep"),
                    "flatten the template: move inner parts into a partial or a macro",
                ));
            }
        } else if CLOSERS.contains(&word) {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= b.len() {
        return None;
    }
    b[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn first_word(b: &[u8]) -> &str {
    let s = std::str::from_utf8(b).unwrap_or("");
    let s = s.trim_start_matches('-').trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// One `{{ … }}` or `{% … %}` tag, read with its strings skipped.
struct Tag {
    /// Index just after the closing `}}` / `%}`.
    end: usize,
    brackets: usize,
    operators: usize,
}

impl Tag {
    fn read(b: &[u8], start: usize, kind: u8) -> Option<Tag> {
        let close = if kind == b'%' { b'%' } else { b'}' };
        let mut i = start;
        let mut depth = 0usize;
        let mut max = 0usize;
        let mut operators = 0usize;
        let mut prev_word = false;
        while i < b.len() {
            let c = b[i];
            match c {
                b'"' | b'\'' | b'`' => {
                    let end = b[i + 1..].iter().position(|&x| x == c)?;
                    i += end + 2;
                    prev_word = false;
                    continue;
                }
                b'(' | b'[' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b')' | b']' => depth = depth.saturating_sub(1),
                b'+' | b'-' | b'*' | b'/' | b'~' | b'<' | b'>' | b'!' => operators += 1,
                b'%' if close != b'%' => operators += 1,
                _ => {}
            }
            if c == close && b.get(i + 1) == Some(&b'}') {
                return Some(Tag {
                    end: i + 2,
                    brackets: max,
                    operators,
                });
            }
            let word = c.is_ascii_alphanumeric() || c == b'_';
            if word && !prev_word {
                let rest = &b[i..];
                for kw in [&b"and"[..], b"or", b"not", b"in", b"is"] {
                    let after = rest.get(kw.len()).copied().unwrap_or(b' ');
                    if rest.starts_with(kw) && !(after.is_ascii_alphanumeric() || after == b'_') {
                        operators += 1;
                    }
                }
            }
            prev_word = word;
            i += 1;
        }
        None
    }
}

/// A template, or a macro defined in one.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Unit {
    Template(String),
    Macro(String, String),
}

/// What a unit renders: the units it includes or calls, with how to find that use in the
/// source and the block nesting there, and its own deepest block nesting.
#[derive(Default)]
struct Edges {
    to: Vec<(Unit, String, usize)>,
    nesting: usize,
    nesting_now: usize,
}

impl Edges {
    fn push(&mut self, (unit, needle): (Unit, String)) {
        let d = self.nesting_now;
        self.to.push((unit, needle, d));
    }
}

fn collect(nodes: &[Node], template: &str, imports: &[(String, String)], out: &mut Edges) {
    out.nesting_now += 1;
    out.nesting = out.nesting.max(out.nesting_now);
    collect_level(nodes, template, imports, out);
    out.nesting_now -= 1;
}

fn collect_level(nodes: &[Node], template: &str, imports: &[(String, String)], out: &mut Edges) {
    for n in nodes {
        match n {
            Node::VariableBlock(_, e) => expr(e, template, imports, out),
            Node::MacroDefinition(..) => {}
            Node::Extends(_, name) => out.push((Unit::Template(name.clone()), name.clone())),
            Node::Include(_, names, _) => {
                for name in names {
                    out.push((Unit::Template(name.clone()), name.clone()));
                }
            }
            Node::Set(_, s) => expr(&s.value, template, imports, out),
            Node::FilterSection(_, fs, _) => {
                for a in fs.filter.args.values() {
                    expr(a, template, imports, out);
                }
                collect(&fs.body, template, imports, out);
            }
            Node::Block(_, b, _) => collect(&b.body, template, imports, out),
            Node::Forloop(_, f, _) => {
                expr(&f.container, template, imports, out);
                collect(&f.body, template, imports, out);
                if let Some(e) = &f.empty_body {
                    collect(e, template, imports, out);
                }
            }
            Node::If(i, _) => {
                for (_, cond, body) in &i.conditions {
                    expr(cond, template, imports, out);
                    collect(body, template, imports, out);
                }
                if let Some((_, body)) = &i.otherwise {
                    collect(body, template, imports, out);
                }
            }
            Node::ImportMacro(..)
            | Node::Super
            | Node::Text(_)
            | Node::Raw(..)
            | Node::Break(_)
            | Node::Continue(_)
            | Node::Comment(..) => {}
        }
    }
}

fn expr(e: &Expr, template: &str, imports: &[(String, String)], out: &mut Edges) {
    match &e.val {
        ExprVal::MacroCall(m) => {
            let file = if m.namespace == "self" {
                Some(template.to_string())
            } else {
                imports
                    .iter()
                    .find(|(_, ns)| *ns == m.namespace)
                    .map(|(f, _)| f.clone())
            };
            if let Some(file) = file {
                out.push((
                    Unit::Macro(file, m.name.clone()),
                    format!("{}::{}", m.namespace, m.name),
                ));
            }
            for a in m.args.values() {
                expr(a, template, imports, out);
            }
        }
        ExprVal::Math(m) => {
            expr(&m.lhs, template, imports, out);
            expr(&m.rhs, template, imports, out);
        }
        ExprVal::Logic(l) => {
            expr(&l.lhs, template, imports, out);
            expr(&l.rhs, template, imports, out);
        }
        ExprVal::Test(t) => {
            for a in &t.args {
                expr(a, template, imports, out);
            }
        }
        ExprVal::FunctionCall(f) => {
            for a in f.args.values() {
                expr(a, template, imports, out);
            }
        }
        ExprVal::Array(items) => {
            for i in items {
                expr(i, template, imports, out);
            }
        }
        ExprVal::In(i) => {
            expr(&i.lhs, template, imports, out);
            expr(&i.rhs, template, imports, out);
        }
        ExprVal::Ident(_)
        | ExprVal::String(_)
        | ExprVal::Int(_)
        | ExprVal::Float(_)
        | ExprVal::Bool(_)
        | ExprVal::StringConcat(_) => {}
    }
    for f in &e.filters {
        for a in f.args.values() {
            expr(a, template, imports, out);
        }
    }
}

/// Follows includes, extends and macro calls from every template: refuses a cycle or a
/// render deeper than [`MAX_DEPTH`], naming the template and line where it happens.
pub fn check_graph(tera: &Tera, sources: &BTreeMap<&str, &str>) -> Result<(), Exceeded> {
    let mut edges: HashMap<Unit, (String, Edges)> = HashMap::new();
    for name in sources.keys() {
        let Ok(t) = tera.get_template(name) else {
            continue;
        };
        let mut out = Edges::default();
        collect(&t.ast, name, &t.imported_macro_files, &mut out);
        edges.insert(Unit::Template(name.to_string()), (name.to_string(), out));
        for (m, def) in &t.macros {
            let mut out = Edges::default();
            collect(&def.body, name, &t.imported_macro_files, &mut out);
            edges.insert(
                Unit::Macro(name.to_string(), m.clone()),
                (name.to_string(), out),
            );
        }
    }
    let mut walk = Walk {
        edges: &edges,
        sources,
        depth: HashMap::new(),
        path: Vec::new(),
    };
    for name in sources.keys() {
        walk.deepest(&Unit::Template(name.to_string()))?;
    }
    Ok(())
}

fn describe(u: &Unit) -> String {
    match u {
        Unit::Template(t) => format!("`{t}`"),
        Unit::Macro(t, m) => format!("the macro `{m}` of `{t}`"),
    }
}

struct Walk<'a> {
    edges: &'a HashMap<Unit, (String, Edges)>,
    sources: &'a BTreeMap<&'a str, &'a str>,
    /// The deepest render below each unit seen so far.
    depth: HashMap<Unit, usize>,
    /// The chain being followed.
    path: Vec<Unit>,
}

impl Walk<'_> {
    /// How deep a render of `u` goes (memoised).
    fn deepest(&mut self, u: &Unit) -> Result<usize, Exceeded> {
        if let Some(d) = self.depth.get(u) {
            return Ok(*d);
        }
        let Some((file, out)) = self.edges.get(u) else {
            return Ok(0);
        };
        let src = file.as_str();
        let text = self.sources.get(src).copied().unwrap_or("");
        self.path.push(u.clone());
        let mut best = out.nesting;
        for (next, needle, at) in &out.to {
            let line = text
                .lines()
                .position(|l| l.contains(needle.as_str()))
                .map_or(1, |p| p + 1);
            if let Some(pos) = self.path.iter().position(|p| p == next) {
                let cycle: Vec<String> = self.path[pos..]
                    .iter()
                    .chain(std::iter::once(next))
                    .map(describe)
                    .collect();
                return Err(error(
                    src,
                    line,
                    format!(
                        "endless recursion: {} renders itself ({})",
                        describe(next),
                        cycle.join(" → ")
                    ),
                    "templates and macros cannot include or call themselves, directly or through others; remove the loop",
                ));
            }
            let d = at + self.deepest(next)?;
            if d > MAX_DEPTH {
                return Err(error(
                    src,
                    line,
                    format!(
                        "the render goes more than {MAX_DEPTH} levels deep here (nested blocks, includes and macro calls along {})",
                        describe(next)
                    ),
                    "flatten the templates: fewer nested blocks and partials within partials",
                ));
            }
            best = best.max(d);
        }
        self.path.pop();
        self.depth.insert(u.clone(), best);
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> (&'static str, &str) {
        ("t.tera", text)
    }

    #[test]
    fn deep_nesting_is_refused_with_the_line() {
        let mut t = String::from("a\n");
        for _ in 0..40 {
            t.push_str("{% if x %}\n");
        }
        let (n, t) = src(&t);
        let e = scan(n, t).unwrap_err();
        assert_eq!(e.line, 2 + MAX_NESTING, "{e:?}");
        assert!(e.problem.contains("nest more than 32"), "{e:?}");
        let ok = "{% raw %}{% if %}{% if %}{% endraw %}{# {% if #}{{ \"%}\" }}".repeat(50);
        scan("t", &ok).unwrap();
        let brackets = format!("{{{{ {}1 }}}}", "(".repeat(40));
        assert!(scan("t", &brackets).is_err());
        let ops = format!("{{{{ 1{} }}}}", " + 1".repeat(300));
        assert!(scan("t", &ops).is_err());
    }
}
