//! Outbox: the files a dry-run writes instead of sending.
//!
//! Every message goes to `NNNNNN-<safe-name>.eml` (plan order, 1-based; mode 0600: the files
//! hold addresses and unsubscribe tokens) and one JSON line per message to `manifest.jsonl`
//! (recipient, Message-ID, subject, size, sha256). File names are built from the address but
//! can never leave the folder: only `[a-z0-9._-]` survive, `..` cannot appear, and the number
//! comes first. Composing, hashing and writing run on worker threads; the manifest is written
//! in plan order by the calling thread. This module opens no socket.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::base::files::{create_private, write_private};
use crate::base::hex;
use crate::subscribers::Subscriber;

use super::compose::{ComposeFn, SharedComposerFactory};

/// The longest address part of a file name.
const SAFE_NAME_MAX: usize = 64;

/// A file-name-safe form of an address: lowercase `[a-z0-9._-]`, `@` as `_at_`, no `..`,
/// no leading dot or dash, at most 64 bytes, never empty.
pub(crate) fn safe_name(address: &str) -> String {
    let mut out = String::with_capacity(address.len().min(SAFE_NAME_MAX) + 4);
    for c in address.chars() {
        let c = c.to_ascii_lowercase();
        match c {
            'a'..='z' | '0'..='9' | '_' | '-' => out.push(c),
            '.' if !out.ends_with('.') => out.push('.'),
            '.' => out.push('_'),
            '@' => out.push_str("_at_"),
            _ => out.push('_'),
        }
        if out.len() >= SAFE_NAME_MAX {
            break;
        }
    }
    out.truncate(SAFE_NAME_MAX);
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches('.');
    if trimmed.is_empty() {
        "recipient".to_string()
    } else {
        trimmed.to_string()
    }
}

/// `NNNNNN-<safe-name>.eml` for the `n`th message (1-based).
pub(crate) fn file_name(n: usize, address: &str) -> String {
    format!("{n:06}-{}.eml", safe_name(address))
}

/// One line of `manifest.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ManifestLine {
    pub n: usize,
    pub file: String,
    pub recipient: String,
    pub message_id: String,
    pub subject: String,
    pub size: usize,
    pub sha256: String,
}

/// What a dry-run wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Outbox {
    pub dir: PathBuf,
    pub messages: usize,
    pub bytes: u64,
    pub elapsed_secs: f64,
}

/// The files of an earlier dry-run found in the outbox, to remove once the new ones are
/// written (same names are rewritten in place: deleting thousands of files and creating as
/// many right away makes ext4 scan its recently freed inodes on every create, measured 6×
/// slower).
#[derive(Debug, Default)]
pub(crate) struct Stale {
    messages: std::collections::HashSet<std::ffi::OsString>,
}

impl Stale {
    /// Removes the old message files this run did not write again.
    pub(crate) fn remove_unwritten(mut self, dir: &Path, written: &[String]) -> Result<()> {
        for name in written {
            self.messages.remove(std::ffi::OsStr::new(name));
        }
        for name in self.messages {
            let path = dir.join(&name);
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the old `{}`", path.display()))?;
        }
        Ok(())
    }
}

/// Prepares the outbox folder: created (0700) if missing, made private (0700) if it was
/// not, refused if it is or holds a symbolic link (`base::files::private_dir`). Returns the
/// message files of an earlier dry-run there (`NNNNNN-*.eml`); `manifest.jsonl`,
/// `digest.html` and `digest.txt` are rewritten; anything else is left alone.
pub(crate) fn prepare_dir(dir: &Path) -> Result<Stale> {
    crate::base::files::private_dir(dir).context("the dry-run's output folder is not safe")?;
    let mut stale = Stale::default();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the outbox folder `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        let ours = text.ends_with(".eml")
            && text.len() > 7
            && text.as_bytes()[..6].iter().all(u8::is_ascii_digit);
        if ours && entry.file_type()?.is_file() {
            stale.messages.insert(name);
        }
    }
    Ok(stale)
}

/// Composes every recipient `feed` pushes, in order, and writes the outbox into `dir`
/// (already prepared). `feed` runs on the calling thread (it reads the list); `threads`
/// workers compose and hash in parallel while it does; one writer thread creates the files
/// (one thread: file creation in one folder serialises on the folder's lock in the kernel,
/// and a second creator only spins) and writes `manifest.jsonl` in plan order. `push` fails
/// once something failed, which stops the feed. Returns the outbox and the file names.
pub(crate) fn write_outbox(
    dir: &Path,
    composer: SharedComposerFactory,
    threads: usize,
    feed: impl FnOnce(&mut dyn FnMut(Subscriber) -> Result<()>) -> Result<()>,
) -> Result<(Outbox, Vec<String>)> {
    let started = Instant::now();
    let failed = Arc::new(AtomicBool::new(false));
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(256);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::sync_channel::<Result<Composed>>(64);
    let workers: Vec<_> = (0..threads.clamp(1, 16))
        .map(|_| {
            let (jobs, done, composer, failed) = (
                job_rx.clone(),
                done_tx.clone(),
                composer.clone(),
                failed.clone(),
            );
            std::thread::Builder::new()
                .name("dry-run".into())
                .spawn(move || compose_jobs(&jobs, &done, &composer, &failed))
                .expect("spawning a dry-run thread")
        })
        .collect();
    drop(done_tx);

    let manifest_path = dir.join("manifest.jsonl");
    let manifest_file = create_private(&manifest_path)
        .with_context(|| format!("cannot create `{}`", manifest_path.display()))?;
    let writer = {
        let dir = dir.to_path_buf();
        let failed = failed.clone();
        std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || write_composed(&dir, manifest_file, done_rx, &failed))
            .expect("spawning the outbox writer")
    };

    let mut n = 0usize;
    let fed = feed(&mut |s: Subscriber| {
        if failed.load(Ordering::SeqCst) {
            anyhow::bail!("writing the outbox failed");
        }
        n += 1;
        job_tx
            .send((n, s))
            .map_err(|_| anyhow::anyhow!("writing the outbox failed"))
    });
    drop(job_tx);
    for w in workers {
        let _ = w.join();
    }
    let written = match writer.join() {
        Ok(r) => r.with_context(|| format!("cannot write the outbox `{}`", dir.display())),
        Err(_) => Err(anyhow::anyhow!("the outbox writer panicked")),
    };
    // A writer's error explains a failed feed better than the feed's own "failed".
    let (names, bytes) = match (fed, written) {
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(_)) => return Err(e),
        (Ok(()), Ok(w)) => w,
    };
    Ok((
        Outbox {
            dir: dir.to_path_buf(),
            messages: names.len(),
            bytes,
            elapsed_secs: started.elapsed().as_secs_f64(),
        },
        names,
    ))
}

/// The `n`th recipient of the plan (1-based).
type Job = (usize, Subscriber);

/// A composing thread: takes jobs until there are none (or something failed) and hands
/// each composed message to the writer.
fn compose_jobs(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    done: &mpsc::SyncSender<Result<Composed>>,
    composer: &SharedComposerFactory,
    failed: &AtomicBool,
) {
    let mut compose = match composer() {
        Ok(c) => c,
        Err(e) => {
            failed.store(true, Ordering::SeqCst);
            let _ = done.send(Err(e.context("cannot prepare the messages")));
            return;
        }
    };
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((n, s)) = job else { return };
        if failed.load(Ordering::SeqCst) {
            return;
        }
        let r = compose_one(n, &s, &mut compose);
        if r.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        if done.send(r).is_err() {
            return;
        }
    }
}

/// The writer thread: creates each message file as it arrives and writes `manifest.jsonl`
/// in plan order. Returns the file names in order and their total size.
fn write_composed(
    dir: &Path,
    manifest: std::fs::File,
    composed: mpsc::Receiver<Result<Composed>>,
    failed: &AtomicBool,
) -> Result<(Vec<String>, u64)> {
    let mut out = BufWriter::with_capacity(256 * 1024, manifest);
    let mut pending: BTreeMap<usize, ManifestLine> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut bytes = 0u64;
    let mut first_error: Option<anyhow::Error> = None;
    for r in composed {
        let written = r.and_then(|c| {
            let path = dir.join(&c.line.file);
            write_private(&path, &c.bytes)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            Ok(c.line)
        });
        match written {
            Ok(line) => {
                pending.insert(line.n, line);
                while let Some(line) = pending.remove(&(names.len() + 1)) {
                    bytes += line.size as u64;
                    serde_json::to_writer(&mut out, &line)?;
                    out.write_all(b"\n")?;
                    names.push(line.file);
                }
            }
            Err(e) => {
                failed.store(true, Ordering::SeqCst);
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())?;
    Ok((names, bytes))
}

/// A composed message and its manifest line.
struct Composed {
    line: ManifestLine,
    bytes: Vec<u8>,
}

fn compose_one(n: usize, s: &Subscriber, compose: &mut ComposeFn) -> Result<Composed> {
    let out = compose(s).with_context(|| format!("cannot build the message for {}", s.email))?;
    let file = file_name(n, out.recipient.as_str());
    let sha = Sha256::digest(&out.bytes);
    Ok(Composed {
        line: ManifestLine {
            n,
            file,
            recipient: out.recipient.to_string(),
            message_id: out.message_id,
            subject: out.subject,
            size: out.bytes.len(),
            sha256: hex(&sha),
        },
        bytes: out.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_keep_only_harmless_characters() {
        assert_eq!(
            safe_name("Anna.Smith+news@Example.org"),
            "anna.smith_news_at_example.org"
        );
        assert_eq!(
            safe_name("../../etc/passwd@x.org"),
            "__.__etc_passwd_at_x.org"
        );
        for nasty in [
            "../../../etc/passwd",
            "..@..",
            "/abs/path@x.org",
            "a/../../b@x.org",
            "\u{0}\u{202e}evil@x.org",
            ".hidden@x.org",
            "-rf@x.org",
            "",
            "....",
        ] {
            let name = safe_name(nasty);
            assert!(!name.is_empty(), "{nasty:?}");
            assert!(!name.contains(".."), "{nasty:?} -> {name}");
            assert!(!name.contains('/'), "{nasty:?} -> {name}");
            assert!(!name.starts_with(['.', '-']), "{nasty:?} -> {name}");
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
        }
        assert!(safe_name(&format!("{}@x.org", "a".repeat(300))).len() <= SAFE_NAME_MAX);
    }

    #[test]
    fn file_names_are_numbered_and_stay_in_the_folder() {
        assert_eq!(file_name(7, "a@b.org"), "000007-a_at_b.org.eml");
        assert_eq!(file_name(1_234_567, "a@b.org"), "1234567-a_at_b.org.eml");
        let dir = Path::new("/out");
        for nasty in ["../../x@y.org", "/etc/passwd", ".."] {
            let p = dir.join(file_name(1, nasty));
            assert_eq!(p.parent(), Some(dir), "{nasty}");
        }
    }

    #[test]
    fn a_rewritten_file_holds_exactly_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.eml");
        write_private(&p, b"a much longer old message").unwrap();
        write_private(&p, b"short").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"short");
    }

    #[test]
    fn private_files_are_mode_0600_even_when_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.eml");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_new_dry_run_removes_only_old_message_files_it_did_not_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["000001-a.eml", "000002-b.eml", "notes.txt", "x.eml"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let stale = prepare_dir(dir.path()).unwrap();
        stale
            .remove_unwritten(dir.path(), &["000001-a.eml".to_string()])
            .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["000001-a.eml", "notes.txt", "x.eml"]);
    }
}
