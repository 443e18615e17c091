//! The fast path: render once with markers, personalise by substitution.
//!
//! Every per-subscriber value is rendered as a marker (`\u{E000}name\u{E001}`, private-use
//! characters that no article or template contains), and the output is split into
//! [`Segment`]s. A copy is then the concatenation of the literal segments and the escaped
//! values. This is exact only when templates print subscriber data as it is; so two checks
//! decide whether the fast path may be used:
//! 1. a static one over the templates' syntax tree ([`analyse`]): subscriber data may only
//!    appear as a plain `{{ subscriber.name }}`-style print (optionally `| default(...)`),
//!    never in a condition, a filter, a `set`, a loop or a `{% filter %}` section;
//! 2. a dynamic one (in `mod.rs`): the substituted result must equal a full render for two
//!    probe subscribers, one with an empty name and one with markup-like characters.
//!
//! If either fails, every copy is rendered in full (the digest has no fast parts).

use std::collections::{BTreeSet, HashSet};

use tera::ast::{Expr, ExprVal, FunctionCall, Node};
use tera::Tera;

use std::sync::Arc;

use super::contract::Chain;
use super::contract::{Escape, Field, Part, Segment, MARK_END, MARK_START};
use super::personal::{CHAIN_SEP, FILTER};

/// The marker standing for a field.
pub fn marker(field: &Field) -> String {
    let name = match field {
        Field::Email => "email".to_string(),
        Field::Name => "name".to_string(),
        Field::UnsubscribeUrl => "unsubscribe_url".to_string(),
        Field::Attr(a) => format!("attr:{a}"),
        Field::Filtered { field, id, .. } => {
            let base = marker(field);
            let base = &base[MARK_START.len_utf8()..base.len() - MARK_END.len_utf8()];
            format!("{base}{CHAIN_SEP}{id}")
        }
    };
    format!("{MARK_START}{name}{MARK_END}")
}

fn field_of(name: &str, chains: &[Chain]) -> Option<Field> {
    if let Some((base, id)) = name.split_once(CHAIN_SEP) {
        let id: usize = id.parse().ok()?;
        return Some(Field::Filtered {
            field: Box::new(field_of(base, &[])?),
            id,
            chain: Arc::new(chains.get(id)?.clone()),
        });
    }
    match name {
        "email" => Some(Field::Email),
        "name" => Some(Field::Name),
        "unsubscribe_url" => Some(Field::UnsubscribeUrl),
        _ => name
            .strip_prefix("attr:")
            .map(|a| Field::Attr(a.to_string())),
    }
}

/// Splits a marker render into segments; `Err` when a marker was damaged (a template
/// transformed it), with a description.
pub fn split(rendered: &str, escape: Escape, chains: &[Chain]) -> Result<Part, String> {
    let mut segments = Vec::new();
    let mut rest = rendered;
    while let Some(start) = rest.find(MARK_START) {
        let after = &rest[start + MARK_START.len_utf8()..];
        let end = after
            .find(MARK_END)
            .ok_or_else(|| "a subscriber value was cut by a template".to_string())?;
        let name = &after[..end];
        if name.contains(MARK_START) {
            return Err("a subscriber value was cut by a template".to_string());
        }
        let field = field_of(name, chains).ok_or_else(|| {
            format!("a subscriber value was changed by a template (it became `{name}`)")
        })?;
        if start > 0 {
            segments.push(Segment::Lit(rest[..start].to_string()));
        }
        segments.push(Segment::Field(field));
        rest = &after[end + MARK_END.len_utf8()..];
    }
    if rest.contains(MARK_END) {
        return Err("a subscriber value was cut by a template".to_string());
    }
    if !rest.is_empty() {
        segments.push(Segment::Lit(rest.to_string()));
    }
    Ok(Part { segments, escape })
}

/// What the static analysis found.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Why the fast path cannot be used (empty: it can, as far as syntax shows).
    pub reasons: Vec<String>,
    /// `subscriber.attrs.NAME` printed by the templates.
    pub attrs: BTreeSet<String>,
    /// Filters, tests and functions used: (template, kind, name).
    pub calls: Vec<(String, &'static str, String)>,
    /// Templates visited.
    pub visited: Vec<String>,
    /// Whether any per-subscriber value is used at all.
    pub uses_personal: bool,
}

struct Walker<'a> {
    tera: &'a Tera,
    /// Roots whose values differ per subscriber.
    personal: &'a HashSet<String>,
    template: String,
    analysis: Analysis,
    queue: Vec<String>,
    seen: HashSet<String>,
}

fn root_of(ident: &str) -> &str {
    let end = ident.find(['.', '[']).unwrap_or(ident.len());
    &ident[..end]
}

impl Walker<'_> {
    fn is_personal(&self, ident: &str) -> bool {
        let root = root_of(ident);
        root == "__tera_context" || self.personal.contains(root)
    }

    /// Remembers `subscriber.attrs.NAME`, so a full render can give rows without that
    /// column an empty value instead of failing.
    fn note_attr(&mut self, ident: &str) {
        if let Some(attr) = ident.strip_prefix("subscriber.attrs.") {
            if !attr.is_empty() && attr.chars().all(|c| c.is_alphanumeric() || c == '_') {
                self.analysis.attrs.insert(attr.to_string());
            }
        }
    }

    fn reason(&mut self, ident: &str, how: &str) {
        self.note_attr(ident);
        self.analysis.uses_personal = true;
        let r = format!("`{ident}` {how} in {}", self.template);
        if !self.analysis.reasons.contains(&r) {
            self.analysis.reasons.push(r);
        }
    }

    /// A plain print of a per-subscriber value the fast path can substitute.
    fn plain_personal(&mut self, expr: &Expr) -> bool {
        let ExprVal::Ident(ident) = &expr.val else {
            return false;
        };
        if !self.is_personal(ident) || expr.negated {
            return false;
        }
        if expr
            .filters
            .iter()
            .any(|f| f.name != "default" && f.name != FILTER)
        {
            return false;
        }
        self.analysis.uses_personal = true;
        match ident.as_str() {
            "subscriber.email" | "subscriber.name" | "unsubscribe_url" | "subject"
            | "preheader" => true,
            _ => match ident.strip_prefix("subscriber.attrs.") {
                Some(attr)
                    if !attr.is_empty()
                        && attr.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                {
                    self.analysis.attrs.insert(attr.to_string());
                    true
                }
                _ => false,
            },
        }
    }

    fn call(&mut self, kind: &'static str, f: &FunctionCall) {
        self.analysis
            .calls
            .push((self.template.clone(), kind, f.name.clone()));
        for a in f.args.values() {
            self.expr(a, "is passed to a filter or function");
        }
    }

    fn expr(&mut self, e: &Expr, how: &str) {
        match &e.val {
            ExprVal::Ident(i) => {
                if self.is_personal(i) {
                    if let Some(f) = e
                        .filters
                        .iter()
                        .find(|f| f.name != "default" && f.name != FILTER)
                    {
                        self.reason(i, &format!("goes through the filter `{}`", f.name));
                    } else {
                        self.reason(i, how);
                    }
                }
            }
            ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
            ExprVal::Math(m) => {
                self.expr(&m.lhs, "is used in arithmetic");
                self.expr(&m.rhs, "is used in arithmetic");
            }
            ExprVal::Logic(l) => {
                self.expr(&l.lhs, how);
                self.expr(&l.rhs, how);
            }
            ExprVal::Test(t) => {
                self.analysis
                    .calls
                    .push((self.template.clone(), "test", t.name.clone()));
                if self.is_personal(&t.ident) {
                    self.reason(&t.ident.clone(), &format!("is tested with `is {}`", t.name));
                }
                for a in &t.args {
                    self.expr(a, how);
                }
            }
            ExprVal::MacroCall(m) => {
                for a in m.args.values() {
                    self.expr(a, "is passed to a macro");
                }
            }
            ExprVal::FunctionCall(f) => self.call("function", f),
            ExprVal::Array(items) => {
                for i in items {
                    self.expr(i, "is put in a list");
                }
            }
            ExprVal::StringConcat(c) => {
                for v in &c.values {
                    if let ExprVal::Ident(i) = v {
                        if self.is_personal(i) {
                            self.reason(i, "is joined with `~`");
                        }
                    }
                }
            }
            ExprVal::In(i) => {
                self.expr(&i.lhs, "is compared with `in`");
                self.expr(&i.rhs, "is compared with `in`");
            }
        }
        for f in &e.filters {
            self.call("filter", f);
        }
    }

    fn nodes(&mut self, nodes: &[Node], in_filter_section: bool) {
        for n in nodes {
            match n {
                Node::VariableBlock(_, e) => {
                    if !in_filter_section && self.plain_personal(e) {
                        for f in &e.filters {
                            self.call("filter", f);
                        }
                    } else if in_filter_section {
                        self.expr(e, "is printed inside a `{% filter %}` section");
                    } else {
                        self.expr(e, "is used in an expression");
                    }
                }
                Node::MacroDefinition(_, def, _) => {
                    for d in def.args.values().flatten() {
                        self.expr(d, "is a macro argument default");
                    }
                    self.nodes(&def.body, in_filter_section);
                }
                Node::Extends(_, name) => self.enqueue(name),
                Node::Include(_, names, _) => {
                    for name in names {
                        self.enqueue(name);
                    }
                }
                Node::ImportMacro(_, file, _) => self.enqueue(file),
                Node::Set(_, s) => self.expr(&s.value, "is copied with `set`"),
                Node::FilterSection(_, fs, _) => {
                    self.call("filter", &fs.filter);
                    self.nodes(&fs.body, true);
                }
                Node::Block(_, b, _) => self.nodes(&b.body, in_filter_section),
                Node::Forloop(_, f, _) => {
                    self.expr(&f.container, "is looped over");
                    self.nodes(&f.body, in_filter_section);
                    if let Some(e) = &f.empty_body {
                        self.nodes(e, in_filter_section);
                    }
                }
                Node::If(i, _) => {
                    for (_, cond, body) in &i.conditions {
                        self.expr(cond, "is used in a condition");
                        self.nodes(body, in_filter_section);
                    }
                    if let Some((_, body)) = &i.otherwise {
                        self.nodes(body, in_filter_section);
                    }
                }
                Node::Super
                | Node::Text(_)
                | Node::Raw(..)
                | Node::Break(_)
                | Node::Continue(_)
                | Node::Comment(..) => {}
            }
        }
    }

    fn enqueue(&mut self, name: &str) {
        if self.seen.insert(name.to_string()) {
            self.queue.push(name.to_string());
        }
    }
}

/// Walks the given templates and everything they include, extend or import.
pub fn analyse(tera: &Tera, roots: &[String], personal: &HashSet<String>) -> Analysis {
    let mut w = Walker {
        tera,
        personal,
        template: String::new(),
        analysis: Analysis::default(),
        queue: Vec::new(),
        seen: HashSet::new(),
    };
    for r in roots.iter().rev() {
        w.enqueue(r);
    }
    while let Some(name) = w.queue.pop() {
        let Ok(t) = w.tera.get_template(&name) else {
            continue;
        };
        w.template = name.clone();
        w.analysis.visited.push(name);
        let ast = t.ast.clone();
        w.nodes(&ast, false);
    }
    w.analysis
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::contract::fill;
    use crate::subscribers::{Status, Subscriber, SubscriberEmail};
    use std::collections::BTreeMap;

    fn personal() -> HashSet<String> {
        ["subscriber", "unsubscribe_url"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn analyse_src(src: &str) -> Analysis {
        let mut t = Tera::default();
        t.add_raw_template("t", src).unwrap();
        analyse(&t, &["t".to_string()], &personal())
    }

    #[test]
    fn plain_prints_of_subscriber_data_allow_the_fast_path() {
        let a = analyse_src(
            "Hi {{ subscriber.name }} <{{ subscriber.email }}> {{ subscriber.attrs.city | default(value='') }} {{ unsubscribe_url }} {{ publication.name | upper }}",
        );
        assert!(a.reasons.is_empty(), "{:?}", a.reasons);
        assert_eq!(a.attrs.iter().collect::<Vec<_>>(), ["city"]);
    }

    #[test]
    fn transformed_or_tested_subscriber_data_is_reported() {
        for (src, expect) in [
            ("{{ subscriber.name | upper }}", "filter `upper`"),
            ("{% if subscriber.name %}x{% endif %}", "condition"),
            (
                "{% if subscriber.attrs.plan == 'pro' %}x{% endif %}",
                "condition",
            ),
            ("{% set n = subscriber.name %}{{ n }}", "`set`"),
            (
                "{% filter upper %}{{ subscriber.name }}{% endfilter %}",
                "`{% filter %}`",
            ),
            ("{{ subscriber.name ~ '!' }}", "`~`"),
            ("{{ subscriber.attrs['plan'] }}", "expression"),
            (
                "{% for t in subscriber.attrs %}{{ t }}{% endfor %}",
                "looped",
            ),
            ("{{ subscriber.name | length }}", "filter `length`"),
            ("{{ __tera_context }}", "expression"),
        ] {
            let a = analyse_src(src);
            assert!(
                a.reasons.iter().any(|r| r.contains(expect)),
                "{src}: {:?}",
                a.reasons
            );
        }
    }

    #[test]
    fn split_and_fill_round_trip_with_escaping() {
        let rendered = format!(
            "<a href=\"{}\">Hi {}</a>",
            marker(&Field::UnsubscribeUrl),
            marker(&Field::Name)
        );
        let part = split(&rendered, Escape::Html, &[]).unwrap();
        assert_eq!(part.segments.len(), 5);
        let s = Subscriber {
            email: SubscriberEmail::parse("zoe@example.org").unwrap(),
            name: "<Zoë & \"Bo\">".into(),
            status: Status::Subscribed,
            since: String::new(),
            source: String::new(),
            tags: vec![],
            attrs: BTreeMap::new(),
        };
        let mut out = String::new();
        fill(&part, &s, "https://x.org/u?t=1&l=2", &mut out);
        assert_eq!(
            out,
            "<a href=\"https://x.org/u?t=1&amp;l=2\">Hi &lt;Zoë &amp; &quot;Bo&quot;&gt;</a>"
        );
    }

    #[test]
    fn damaged_markers_are_detected() {
        assert!(split("x \u{E000}NAME\u{E001}", Escape::None, &[]).is_err());
        assert!(split("x \u{E000}na", Escape::None, &[]).is_err());
        assert!(split("me\u{E001} x", Escape::None, &[]).is_err());
    }
}
