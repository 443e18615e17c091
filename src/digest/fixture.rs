//! The unit tests' fixture: the shared sample-issue fixture (`tests/fixtures/sample_issue.rs`,
//! which the integration tests and benchmarks use too), and projects with custom templates.

use crate as fortnight;
use crate::digest::templates;

include!("../../tests/fixtures/sample_issue.rs");

/// The fixture config in a temporary folder holding the given template files, with
/// `extra_config` appended (its `[digest]` table, if any, replaces the fixture's).
pub fn project(files: &[(&str, &str)], extra_config: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join("templates").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let text = format!("{CONFIG}\n{extra_config}");
    let text = if extra_config.contains("[digest]") {
        text.replace("[digest]\ntemplates_dir = \"templates\"\n", "")
    } else {
        text
    };
    let config = Config::parse(&text, &dir.path().join("config.toml")).unwrap();
    (dir, config)
}

/// The built-in HTML template with `from` (which it must hold) replaced by `to`.
pub fn fixture_template_with(from: &str, to: &str) -> String {
    let builtin = templates::BUILTIN
        .iter()
        .find(|(n, _)| *n == templates::HTML)
        .unwrap()
        .1;
    assert!(builtin.contains(from));
    builtin.replace(from, to)
}
