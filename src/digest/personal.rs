//! Filters on subscriber data, computed per copy: how the fast path keeps
//! `{{ subscriber.name | default(value="reader") | title }}` a substitution.
//!
//! After the templates are parsed, every print of a subscriber field (`subscriber.name`,
//! `subscriber.email`, `subscriber.attrs.NAME`) whose filters are all ones listed here, with
//! literal arguments, is rewritten to the one filter [`FILTER`]`(chain=N)`; chain N is the
//! list of those filters ([`Chain`]). In the marker render that filter turns the field's
//! marker into a tagged one (`name#N`) that the fast path fills by applying the chain to the
//! copy's value; in a full render it applies the same chain. Both paths compute the value
//! with the same code, so they agree byte for byte (the probes check it anyway).
//!
//! The filters: `default(value=…)`, `upper`, `lower`, `title`, `capitalize`, `trim`,
//! `truncate(length=…, end=…)`, `replace(from=…, to=…)`. `default` also applies to an empty
//! value (Tera's own applies only to an undefined one, and a subscriber's name is never
//! undefined): that is what `{{ subscriber.name | default(value="reader") }}` is written for.
//! Any other filter, or an argument that is not a literal, leaves the print as it is: the
//! static analysis then sends every copy through a full render (a note in `check`).

use std::collections::HashMap;
use std::sync::Arc;

use tera::ast::{Block, Expr, ExprVal, FunctionCall, Node};
use tera::{Tera, Value};

use super::contract::{Chain, Op, MARK_END, MARK_START};

/// The name of the filter the rewritten prints call.
pub(crate) const FILTER: &str = "__fortnight_personal";

/// What separates a field's name from its chain number in a tagged marker.
pub(crate) const CHAIN_SEP: char = '#';

/// A literal string argument.
fn literal(args: &HashMap<String, Expr>, key: &str) -> Option<String> {
    let e = args.get(key)?;
    if e.negated || !e.filters.is_empty() {
        return None;
    }
    match &e.val {
        ExprVal::String(s) => Some(s.clone()),
        ExprVal::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The op of one Tera filter call, when it is one this module computes.
fn op_of(f: &FunctionCall) -> Option<Op> {
    let only = |keys: &[&str]| f.args.keys().all(|k| keys.contains(&k.as_str()));
    let op = match f.name.as_str() {
        "default" if only(&["value"]) => Op::Default(literal(&f.args, "value")?),
        "upper" if only(&[]) => Op::Upper,
        "lower" if only(&[]) => Op::Lower,
        "title" if only(&[]) => Op::Title,
        "capitalize" if only(&[]) => Op::Capitalize,
        "trim" if only(&[]) => Op::Trim,
        "truncate" if only(&["length", "end"]) => Op::Truncate {
            length: match f.args.get("length") {
                None => 255,
                Some(_) => literal(&f.args, "length")?.parse().ok()?,
            },
            end: match f.args.get("end") {
                None => "…".to_string(),
                Some(_) => literal(&f.args, "end")?,
            },
        },
        "replace" if only(&["from", "to"]) => Op::Replace {
            from: literal(&f.args, "from")?,
            to: literal(&f.args, "to")?,
        },
        _ => return None,
    };
    Some(op)
}

/// Is `ident` a subscriber field the fast path can fill?
fn is_field(ident: &str) -> bool {
    match ident {
        "subscriber.name" | "subscriber.email" => true,
        _ => ident
            .strip_prefix("subscriber.attrs.")
            .is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_alphanumeric() || c == '_')),
    }
}

struct Rewriter {
    chains: Vec<Chain>,
}

impl Rewriter {
    fn chain_id(&mut self, chain: Chain) -> usize {
        match self.chains.iter().position(|c| *c == chain) {
            Some(i) => i,
            None => {
                self.chains.push(chain);
                self.chains.len() - 1
            }
        }
    }

    fn print(&mut self, e: &mut Expr) {
        let ExprVal::Ident(ident) = &e.val else {
            return;
        };
        if e.negated || e.filters.is_empty() || !is_field(ident) {
            return;
        }
        let Some(ops) = e.filters.iter().map(op_of).collect::<Option<Vec<Op>>>() else {
            return;
        };
        let id = self.chain_id(Chain { ops });
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        e.filters = vec![FunctionCall {
            name: FILTER.to_string(),
            args: HashMap::from([("chain".to_string(), Expr::new(ExprVal::Int(id)))]),
        }];
    }

    fn nodes(&mut self, nodes: &mut [Node]) {
        for n in nodes {
            match n {
                Node::VariableBlock(_, e) => self.print(e),
                Node::MacroDefinition(_, def, _) => self.nodes(&mut def.body),
                Node::FilterSection(_, fs, _) => self.nodes(&mut fs.body),
                Node::Block(_, b, _) => self.block(b),
                Node::Forloop(_, f, _) => {
                    self.nodes(&mut f.body);
                    if let Some(e) = &mut f.empty_body {
                        self.nodes(e);
                    }
                }
                Node::If(i, _) => {
                    for (_, _, body) in &mut i.conditions {
                        self.nodes(body);
                    }
                    if let Some((_, body)) = &mut i.otherwise {
                        self.nodes(body);
                    }
                }
                _ => {}
            }
        }
    }

    fn block(&mut self, b: &mut Block) {
        self.nodes(&mut b.body);
    }
}

/// Rewrites the prints of subscriber fields in every template of `tera` (the syntax tree,
/// the blocks as inheritance copied them, the macros) and registers [`FILTER`]. Returns the
/// chains, numbered as the tagged markers name them.
pub(crate) fn rewrite(tera: &mut Tera) -> Arc<Vec<Chain>> {
    let mut r = Rewriter { chains: Vec::new() };
    for t in tera.templates.values_mut() {
        r.nodes(&mut t.ast);
        for b in t.blocks.values_mut() {
            r.block(b);
        }
        for defs in t.blocks_definitions.values_mut() {
            for (_, b) in defs {
                r.block(b);
            }
        }
        for m in t.macros.values_mut() {
            r.nodes(&mut m.body);
        }
    }
    let chains = Arc::new(r.chains);
    let filter_chains = Arc::clone(&chains);
    tera.register_filter(
        FILTER,
        move |v: &Value, args: &HashMap<String, Value>| -> tera::Result<Value> {
            let id = args
                .get("chain")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok());
            let (Some(id), Some(s)) = (id, v.as_str()) else {
                return Err(tera::Error::msg("a subscriber field is not text"));
            };
            let chain = filter_chains
                .get(id)
                .ok_or_else(|| tera::Error::msg("unknown subscriber filter chain"))?;
            Ok(Value::String(match untagged_marker(s) {
                Some(name) => format!("{MARK_START}{name}{CHAIN_SEP}{id}{MARK_END}"),
                None => chain.apply(s),
            }))
        },
    );
    chains
}

/// The field name inside a plain marker (`\u{E000}name\u{E001}`), if `s` is one.
fn untagged_marker(s: &str) -> Option<&str> {
    let inner = s.strip_prefix(MARK_START)?.strip_suffix(MARK_END)?;
    (!inner.contains([MARK_START, MARK_END, CHAIN_SEP])).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(src: &str) -> Option<Chain> {
        let mut t = Tera::default();
        t.add_raw_template("t", src).unwrap();
        let chains = rewrite(&mut t);
        chains.first().cloned()
    }

    #[test]
    fn the_common_filters_are_computed_per_copy() {
        let cases = [
            (
                "{{ subscriber.name | default(value='reader') }}",
                "",
                "reader",
            ),
            (
                "{{ subscriber.name | default(value='reader') }}",
                "Zoë",
                "Zoë",
            ),
            ("{{ subscriber.name | upper }}", "Zoë b", "ZOË B"),
            ("{{ subscriber.name | lower }}", "ZOË", "zoë"),
            (
                "{{ subscriber.name | title }}",
                "anna o'neil-smith",
                "Anna O'neil-Smith",
            ),
            ("{{ subscriber.name | capitalize }}", "aNNA", "Anna"),
            ("{{ subscriber.name | trim }}", "  Anna ", "Anna"),
            (
                "{{ subscriber.name | truncate(length=3) }}",
                "Annabel",
                "Ann…",
            ),
            (
                "{{ subscriber.name | truncate(length=3, end='.') }}",
                "Ann",
                "Ann",
            ),
            (
                "{{ subscriber.attrs.city | replace(from='-', to=' ') }}",
                "Ust-Kut",
                "Ust Kut",
            ),
            (
                "{{ subscriber.name | trim | default(value='friend') | upper }}",
                "  ",
                "FRIEND",
            ),
        ];
        for (src, value, want) in cases {
            let chain = chain_of(src).unwrap_or_else(|| panic!("{src} not rewritten"));
            assert_eq!(chain.apply(value), want, "{src} on {value:?}");
        }
    }

    #[test]
    fn other_filters_and_non_literal_arguments_are_left_alone() {
        for src in [
            "{{ subscriber.name | length }}",
            "{{ subscriber.name | default(value=publication.name) }}",
            "{{ subscriber.name | upper | wordcount }}",
            "{{ subscriber.name }}",
            "{{ publication.name | upper }}",
        ] {
            assert!(chain_of(src).is_none(), "{src}");
        }
    }

    #[test]
    fn the_filter_tags_markers_and_computes_real_values() {
        let mut t = Tera::default();
        t.add_raw_template("t", "[{{ subscriber.name | default(value='reader') }}]")
            .unwrap();
        rewrite(&mut t);
        let render = |name: &str| {
            let mut ctx = tera::Context::new();
            ctx.insert("subscriber", &serde_json::json!({ "name": name }));
            t.render("t", &ctx).unwrap()
        };
        assert_eq!(render(""), "[reader]");
        assert_eq!(render("Bo"), "[Bo]");
        assert_eq!(render("\u{E000}name\u{E001}"), "[\u{E000}name#0\u{E001}]");
    }
}
