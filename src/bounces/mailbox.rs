//! Mailboxes: the messages of an mbox file or a Maildir folder, one at a time.
//!
//! mbox: a message starts at a `From ` line at the start of the file or after an empty
//! line (the separator mbox writers emit); `>From ` quoting is undone (mboxrd: one `>` is
//! removed from `>…>From ` lines). A file that does not start with a `From ` line is one
//! message (a saved `.eml`). Maildir: the files in `cur/` and `new/`, in name order.
//! Nothing here interprets the messages.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::base::files::{open_regular, read_regular, special_kind, ReadError};
use chrono::NaiveDate;

/// Messages larger than this are skipped with a warning (a bounce is a few kilobytes; the
/// original it quotes rarely more than a few hundred).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// One message read from a mailbox.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// Where it came from: `path:line` for mbox, the file path for Maildir.
    pub origin: String,
    pub bytes: Vec<u8>,
    /// The delivery date the mailbox recorded (mbox `From ` line), if any.
    pub delivered: Option<NaiveDate>,
}

/// What a source turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Mbox,
    Maildir,
}

/// Calls `f` for each message of `path` (an mbox file or a Maildir folder).
/// Returns the kind of the source (`None` when it was skipped); a message over
/// [`MAX_MESSAGE_BYTES`], or a path or Maildir entry that is not a regular file (a FIFO, a
/// socket, a device: never opened for a blocking read), is passed to `skipped` as a warning
/// instead.
pub fn for_each_message(
    path: &Path,
    mut f: impl FnMut(RawMessage),
    mut skipped: impl FnMut(String),
) -> Result<Option<SourceKind>> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if meta.is_dir() {
        let (cur, new) = (path.join("cur"), path.join("new"));
        if !cur.is_dir() && !new.is_dir() {
            bail!(
                "`{}` is a folder but not a Maildir (it has no `cur/` or `new/` folder); pass an mbox file or a Maildir",
                path.display()
            );
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for sub in [cur, new] {
            if !sub.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&sub)
                .with_context(|| format!("cannot list the Maildir folder `{}`", sub.display()))?
            {
                let entry = entry.with_context(|| {
                    format!("cannot list the Maildir folder `{}`", sub.display())
                })?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                match entry.file_type().map(|t| special_kind(&t)) {
                    Ok(None) => files.push(entry.path()),
                    Ok(Some("a folder")) => {}
                    Ok(Some(kind)) => skipped(format!(
                        "skipped `{}`: not a regular file but {kind}",
                        entry.path().display()
                    )),
                    Err(_) => {}
                }
            }
        }
        files.sort();
        for file in files {
            let bytes = match read_regular(&file, MAX_MESSAGE_BYTES as u64) {
                Ok(b) => b,
                Err(e @ (ReadError::TooLarge { .. } | ReadError::NotRegular(_))) => {
                    skipped(format!("skipped the message `{}`: {e}", file.display()));
                    continue;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read the message `{}`", file.display()))
                }
            };
            f(RawMessage {
                origin: file.display().to_string(),
                bytes,
                delivered: None,
            });
        }
        return Ok(Some(SourceKind::Maildir));
    }
    let file = match open_regular(path) {
        Ok((f, _)) => f,
        Err(ReadError::NotRegular(kind)) => {
            skipped(format!(
                "skipped `{}`: not a regular file but {kind} (pass an mbox file or a Maildir folder)",
                path.display()
            ));
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open `{}`", path.display())),
    };
    let mut reader = MboxReader::new(BufReader::new(file), path.display().to_string());
    loop {
        match reader
            .next_message()
            .with_context(|| format!("cannot read the mbox file `{}`", path.display()))?
        {
            None => break,
            Some(Item::Message(m)) => f(m),
            Some(Item::TooBig(origin)) => skipped(format!(
                "skipped a message over {} MB: {origin}",
                MAX_MESSAGE_BYTES >> 20
            )),
        }
    }
    Ok(Some(SourceKind::Mbox))
}

enum Item {
    Message(RawMessage),
    TooBig(String),
}

/// Splits an mbox stream into messages without holding more than one in memory.
struct MboxReader<R> {
    reader: R,
    name: String,
    line_no: usize,
    /// The `From ` line that starts the next message, and its line number.
    pending_from: Option<(usize, Vec<u8>)>,
    started: bool,
    done: bool,
}

impl<R: Read> MboxReader<BufReader<R>> {
    fn new(reader: BufReader<R>, name: String) -> Self {
        MboxReader {
            reader,
            name,
            line_no: 0,
            pending_from: None,
            started: false,
            done: false,
        }
    }

    fn read_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        buf.clear();
        let n = self.reader.read_until(b'\n', buf)?;
        if n > 0 {
            self.line_no += 1;
        }
        Ok(n > 0)
    }

    fn next_message(&mut self) -> std::io::Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        let mut line = Vec::with_capacity(128);
        let (start_line, from_line) = match self.pending_from.take() {
            Some(p) => p,
            None => {
                // First message: a `From ` line, or else the whole file is one message.
                if !self.read_line(&mut line)? {
                    self.done = true;
                    return Ok(None);
                }
                self.started = true;
                if is_from_line(&line) {
                    (self.line_no, line.clone())
                } else {
                    (0, Vec::new())
                }
            }
        };
        let mut body: Vec<u8> = Vec::new();
        let mut too_big = false;
        if from_line.is_empty() {
            // Not an mbox: the first line already read belongs to the message.
            body.extend_from_slice(&line);
        }
        let mut prev_blank = false;
        loop {
            if !self.read_line(&mut line)? {
                self.done = true;
                break;
            }
            if prev_blank && !from_line.is_empty() && is_from_line(&line) {
                self.pending_from = Some((self.line_no, line.clone()));
                // The empty line before a separator belongs to the mbox format.
                trim_one_line_ending(&mut body);
                break;
            }
            prev_blank = line == b"\n" || line == b"\r\n";
            if too_big {
                continue;
            }
            if body.len() + line.len() > MAX_MESSAGE_BYTES {
                too_big = true;
                body = Vec::new();
                continue;
            }
            if !from_line.is_empty() {
                unquote_from(&mut line);
            }
            body.extend_from_slice(&line);
        }
        let origin = format!("{}:{}", self.name, start_line.max(1));
        if too_big {
            return Ok(Some(Item::TooBig(origin)));
        }
        Ok(Some(Item::Message(RawMessage {
            origin,
            bytes: body,
            delivered: from_line_date(&from_line),
        })))
    }
}

fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ") && line[5..].iter().any(|b| !b.is_ascii_whitespace())
}

/// mboxrd: `>From ` → `From `, `>>From ` → `>From `.
fn unquote_from(line: &mut Vec<u8>) {
    if line.first() != Some(&b'>') {
        return;
    }
    let gts = line.iter().take_while(|&&b| b == b'>').count();
    if line[gts..].starts_with(b"From ") {
        line.remove(0);
    }
}

fn trim_one_line_ending(body: &mut Vec<u8>) {
    if body.ends_with(b"\r\n") {
        body.truncate(body.len() - 2);
    } else if body.ends_with(b"\n") {
        body.truncate(body.len() - 1);
    }
}

/// The date of a `From sender Thu Feb 28 10:00:00 2002` line.
fn from_line_date(line: &[u8]) -> Option<NaiveDate> {
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_whitespace().collect();
    // From, sender, weekday, month, day, time, year (some writers add a zone)
    let month_at = words.iter().position(|w| month_number(w).is_some())?;
    let month = month_number(words[month_at])?;
    let day: u32 = words.get(month_at + 1)?.parse().ok()?;
    let year: i32 = words
        .iter()
        .skip(month_at + 2)
        .find_map(|w| w.parse::<i32>().ok().filter(|y| (1970..=9999).contains(y)))?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn month_number(w: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if w.len() != 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(w))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<RawMessage> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mbox");
        fs::write(&p, text).unwrap();
        let mut out = Vec::new();
        let kind = for_each_message(&p, |m| out.push(m), |s| panic!("skipped {s}")).unwrap();
        assert_eq!(kind, Some(SourceKind::Mbox));
        out
    }

    #[test]
    fn mbox_splits_on_from_lines_after_empty_lines_and_unquotes_from() {
        let text = "From MAILER-DAEMON Thu Feb 28 10:00:00 2002\nSubject: one\n\nbody\n>From here\n>>From there\nFrom inside a paragraph is not a separator\n\nFrom MAILER-DAEMON Fri Mar  1 09:00:00 2002\nSubject: two\n\nsecond\n";
        let msgs = split(text);
        assert_eq!(msgs.len(), 2);
        let one = String::from_utf8(msgs[0].bytes.clone()).unwrap();
        assert_eq!(
            one,
            "Subject: one\n\nbody\nFrom here\n>From there\nFrom inside a paragraph is not a separator\n"
        );
        assert_eq!(msgs[0].delivered, NaiveDate::from_ymd_opt(2002, 2, 28));
        assert_eq!(msgs[1].delivered, NaiveDate::from_ymd_opt(2002, 3, 1));
        assert!(msgs[1].origin.ends_with(":9"), "{}", msgs[1].origin);
        assert_eq!(msgs[1].bytes, b"Subject: two\n\nsecond\n");
    }

    #[test]
    fn a_file_without_from_line_is_one_message() {
        let msgs = split("Subject: eml\r\n\r\nFrom the start\r\n");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].bytes, b"Subject: eml\r\n\r\nFrom the start\r\n");
    }

    #[test]
    fn empty_file_has_no_messages() {
        assert!(split("").is_empty());
    }

    #[test]
    fn maildir_reads_cur_and_new_and_skips_dotfiles() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("cur")).unwrap();
        fs::create_dir_all(dir.path().join("new")).unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("cur/1.host:2,S"), "Subject: a\n\nx\n").unwrap();
        fs::write(dir.path().join("new/2.host"), "Subject: b\n\ny\n").unwrap();
        fs::write(dir.path().join("new/.hidden"), "junk").unwrap();
        fs::write(dir.path().join("tmp/3.host"), "Subject: c\n\nz\n").unwrap();
        let mut out = Vec::new();
        let kind = for_each_message(dir.path(), |m| out.push(m), |_| {}).unwrap();
        assert_eq!(kind, Some(SourceKind::Maildir));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_plain_folder_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let err = for_each_message(dir.path(), |_| {}, |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("not a Maildir"), "{err:#}");
    }
}
