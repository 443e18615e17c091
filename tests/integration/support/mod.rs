//! Test helpers: a throwaway project folder and a way to run the real binary in it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A minimal working config; tests append or replace sections as they need.
pub const BASE_CONFIG: &str = r#"[publication]
name = "Test Analyst"
base_url = "https://analyst.example.org"
articles_dir = "articles"
cadence_days = 14
sections = ["Analytical Articles", "Field Reports", "News Digest"]

[sender]
from = "The Test Analyst <digest@analyst.example.org>"
reply_to = "editors@analyst.example.org"
bounce = "bounces@analyst.example.org"
list_id = "digest.analyst.example.org"
postal_address = "Example Institute, 1 Example Row, Washington, DC 20000"

[subscribers]
file = "subscribers.csv"

[unsubscribe]
url = "https://analyst.example.org/unsubscribe?t={token}"
mailto = "unsubscribe@analyst.example.org"
"#;

/// A key good enough for tests (never used outside them).
pub const TEST_UNSUBSCRIBE_KEY: &str = "test-key-0123456789-abcdefghijklmnopqrstuvwxyz";

/// A project in a temporary folder.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    config: String,
}

impl TestProject {
    /// An empty project with [`BASE_CONFIG`] and an empty `articles/` folder.
    pub fn new() -> TestProject {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("articles")).expect("articles dir");
        let p = TestProject {
            dir,
            config: BASE_CONFIG.to_string(),
        };
        p.write("config.toml", &p.config);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (parents created) relative to the project folder.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, contents).expect("write fixture");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel))
            .unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Appends TOML to config.toml.
    pub fn config_append(&mut self, toml: &str) -> &mut Self {
        self.config.push('\n');
        self.config.push_str(toml);
        self.write("config.toml", self.config.clone());
        self
    }

    /// Replaces config.toml entirely.
    pub fn config_replace(&mut self, toml: &str) -> &mut Self {
        self.config = toml.to_string();
        self.write("config.toml", self.config.clone());
        self
    }

    /// Copies the repository's sample articles (`articles/`) into the project.
    pub fn with_sample_articles(&self) -> &Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("articles");
        for entry in std::fs::read_dir(&src).expect("repo articles/") {
            let entry = entry.expect("dir entry");
            std::fs::copy(
                entry.path(),
                self.path().join("articles").join(entry.file_name()),
            )
            .expect("copy article");
        }
        self
    }

    /// A command for the real binary, run in the project folder, with a clean environment
    /// for fortnight's variables (tests set what they need).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fortnight"));
        c.current_dir(self.path())
            .args(args)
            .env_remove("FORTNIGHT_SMTP_PASSWORD")
            .env_remove("FORTNIGHT_UNSUBSCRIBE_KEY")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs the binary and returns its output.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().expect("run fortnight");
        Run { out }
    }
}

/// The outcome of one run of the binary.
pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(
            self.code(),
            0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

pub mod sending;
pub mod smtp;
