//! Files: private files fortnight writes, and the bounded reading of the files it is given.
//!
//! Dry-run messages, the manifest and preview files carry personal data and working tokens,
//! so they are created owner-only (0600), and an older file at the same path gets that mode
//! too. Atomic rewrites of the list live in `subscribers`.
//!
//! Every input file (articles, templates, the config, lists, mailboxes) is opened with
//! [`open_regular`] or [`read_regular`]: a FIFO, socket or device is refused without
//! blocking (opened non-blocking, checked with `fstat` on the opened handle), and a file over
//! its size limit is refused from its metadata, before a byte is read.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A FIFO, socket, device or folder: never read (a FIFO would block forever).
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than the limit of what it should be.
    #[error("it is larger than {} ({} bytes)", size(*.max), .len)]
    TooLarge { len: u64, max: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// What a file type is, in words, when it is not a regular file.
pub fn special_kind(t: &std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
    }
    if t.is_dir() {
        Some("a folder")
    } else if t.is_file() {
        None
    } else {
        Some("a special file")
    }
}

/// Opens `path` for reading only if it is a regular file (links followed), without ever
/// blocking on a FIFO or a device.
pub fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_NONBLOCK | libc::O_NOCTTY);
    let f = o.open(path)?;
    let meta = f.metadata()?;
    if let Some(kind) = special_kind(&meta.file_type()) {
        return Err(ReadError::NotRegular(kind));
    }
    Ok((f, meta.len()))
}

/// Reads the whole of a regular file of at most `max` bytes (checked from its metadata
/// before reading, and again while reading, in case it grows).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let (f, len) = open_regular(path)?;
    if len > max {
        return Err(ReadError::TooLarge { len, max });
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge {
            len: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// Creates a file readable by its owner only (0600), replacing an older one.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    open_private(path, true)
}

/// Writes `bytes` as the whole content of a private (0600) file. An existing file is
/// overwritten in place and then cut to length, not truncated first: a rerun then reuses
/// the blocks of the previous message instead of freeing and allocating them again.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = open_private(path, false)?;
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)
}

fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        // An older file keeps its mode through `truncate`: set it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}
