//! The crate's layering, checked from its source: clap and the CLI's types appear only in the
//! command layer (`main.rs`, `cli.rs`, `cmd/`), only the command layer prints, and the
//! library's top-level modules depend on each other without a cycle (the diagram in
//! `lib.rs`). Comments and `#[cfg(test)]` modules are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(path relative to src/, code without comments and without test modules)`.
fn library_sources() -> Vec<(String, String)> {
    let comments = regex::Regex::new(r"(?s)/\*.*?\*/|//[^\n]*").unwrap();
    let test_module = regex::Regex::new(r"#\[cfg\(test\)\]\s*mod\s").unwrap();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap();
            // Test modules (`#[cfg(test)] mod …`) sit at the end of a file.
            let text = match test_module.find(&text) {
                Some(m) => text[..m.start()].to_string(),
                None => text,
            };
            (rel, comments.replace_all(&text, "").into_owned())
        })
        .filter(|(rel, _)| !is_command_layer(rel) && !rel.ends_with("tests.rs"))
        .collect()
}

fn is_command_layer(rel: &str) -> bool {
    rel == "main.rs" || rel == "cli.rs" || rel.starts_with("cmd/")
}

fn top_module(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

#[test]
fn only_the_command_layer_sees_clap_or_prints() {
    let clap = regex::Regex::new(r"\bclap::|\buse clap\b|crate::cli\b|crate::cmd\b").unwrap();
    let prints = regex::Regex::new(
        r"\b(e?println!|e?print!)|std::io::(stdout|stderr)\(\)|\bindicatif::|\bProgressBar\b",
    )
    .unwrap();
    let mut leaks = Vec::new();
    for (rel, code) in library_sources() {
        if rel == "lib.rs" {
            continue;
        }
        if let Some(m) = clap.find(&code) {
            leaks.push(format!("{rel}: `{}`", m.as_str()));
        }
        if let Some(m) = prints.find(&code) {
            leaks.push(format!("{rel}: `{}`", m.as_str()));
        }
    }
    assert!(
        leaks.is_empty(),
        "library files that use clap, the command layer or print:\n{}",
        leaks.join("\n")
    );
}

/// The library's top-level modules and which of them each one uses.
fn module_graph() -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let uses = regex::Regex::new(r"crate::([a-z_][a-z0-9_]*)").unwrap();
    let group = regex::Regex::new(r"(?s)crate::\{([^}]*)\}").unwrap();
    let name = regex::Regex::new(r"(?:^|,)\s*([a-z_][a-z0-9_]*)").unwrap();
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let p = entry.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        let n = n.strip_suffix(".rs").unwrap_or(&n).to_string();
        if !["lib", "main", "cli", "cmd"].contains(&n.as_str()) {
            modules.insert(n);
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in library_sources() {
        if rel == "lib.rs" {
            continue;
        }
        let from = top_module(&rel).to_string();
        let mut refs: BTreeSet<String> = uses
            .captures_iter(&code)
            .map(|c| c[1].to_string())
            .collect();
        for g in group.captures_iter(&code) {
            refs.extend(name.captures_iter(&g[1]).map(|c| c[1].to_string()));
        }
        for to in refs {
            if to != from && modules.contains(&to) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    (modules, edges)
}

#[test]
fn the_library_modules_form_a_graph_without_cycles() {
    let (modules, edges) = module_graph();
    if let Some(cycle) = find_cycle(&modules, &edges) {
        panic!(
            "library modules depend on each other in a cycle: {}",
            cycle.join(" → ")
        );
    }
    // The test itself must see the graph: the pipeline's modules depend on something.
    assert!(
        edges.get("send").is_some_and(|e| e.contains("message")),
        "{edges:?}"
    );
}

/// The layer table in the crate docs (`lib.rs`) says what each module uses: it stays true.
#[test]
fn the_layer_table_in_the_crate_docs_is_true() {
    let (modules, mut edges) = module_graph();
    for e in edges.values_mut() {
        e.remove("base");
    }
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//!")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `layer module uses…` (a layer name may be two words) or `module uses…` (a further row of the same layer).
        let Some(at) = words
            .iter()
            .position(|w| modules.contains(*w))
            .filter(|&i| i <= 2)
        else {
            continue;
        };
        let uses = words[at + 1..]
            .iter()
            .map(|w| w.trim_end_matches(','))
            .take_while(|w| modules.contains(*w))
            .map(str::to_string)
            .collect();
        documented.insert(words[at].to_string(), uses);
    }
    for m in &modules {
        let actual = edges.get(m).cloned().unwrap_or_default();
        assert_eq!(
            documented.get(m),
            Some(&actual),
            "lib.rs's layer table is wrong about `{m}`: it uses {actual:?}"
        );
    }
}

/// The files of one module folder (its `mod.rs` aside) do not depend on each other in a
/// cycle either (`send/plan` ↔ `send/deliver` was one).
#[test]
fn the_files_of_a_module_folder_form_a_graph_without_cycles() {
    let sibling =
        regex::Regex::new(r"(?:super|crate::([a-z_][a-z0-9_]*))::([a-z_][a-z0-9_]*)").unwrap();
    let group = regex::Regex::new(r"(?s)super::\{([^}]*)\}").unwrap();
    let name = regex::Regex::new(r"(?:^|,)\s*([a-z_][a-z0-9_]*)").unwrap();
    let sources = library_sources();
    let mut checked = 0;
    for (folder, _) in sources.iter().filter(|(r, _)| r.ends_with("/mod.rs")) {
        let top = top_module(folder).to_string();
        let files: BTreeSet<String> = sources
            .iter()
            .filter_map(|(r, _)| r.strip_prefix(&format!("{top}/")))
            .filter(|r| *r != "mod.rs" && !r.contains('/'))
            .map(|r| r.trim_end_matches(".rs").to_string())
            .collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let code = &sources
                .iter()
                .find(|(r, _)| *r == format!("{top}/{f}.rs"))
                .unwrap()
                .1;
            let mut refs = BTreeSet::new();
            for c in sibling.captures_iter(code) {
                if c.get(1).is_none_or(|m| m.as_str() == top) {
                    refs.insert(c[2].to_string());
                }
            }
            for g in group.captures_iter(code) {
                refs.extend(name.captures_iter(&g[1]).map(|c| c[1].to_string()));
            }
            for to in refs {
                if &to != f && files.contains(&to) {
                    edges.entry(f.clone()).or_default().insert(to);
                }
            }
        }
        if let Some(cycle) = find_cycle(&files, &edges) {
            panic!(
                "files of src/{top}/ depend on each other in a cycle: {}",
                cycle.join(" → ")
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the module folders of src/ to be checked"
    );
}

/// A cycle in `edges` over `nodes`, as the path that closes it.
fn find_cycle(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Option<Vec<String>> {
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == m).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in nodes {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(m, edges, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// In the command layer itself, every terminal write goes through `cmd/output.rs`.
#[test]
fn the_command_layer_prints_only_through_its_output_module() {
    let prints =
        regex::Regex::new(r"\b(e?println!|e?print!)|std::io::(stdout|stderr)\(\)").unwrap();
    let mut files = Vec::new();
    rust_files(&src().join("cmd"), &mut files);
    let mut leaks = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("output.rs")) {
        let text = std::fs::read_to_string(f).unwrap();
        if let Some(m) = prints.find(&text) {
            leaks.push(format!("{}: `{}`", f.display(), m.as_str()));
        }
    }
    assert!(files.len() > 5, "expected the command layer's files");
    assert!(
        leaks.is_empty(),
        "prints outside cmd/output.rs:\n{}",
        leaks.join("\n")
    );
}
