//! Files: private files fortnight writes, and the bounded reading of the files it is given.
//!
//! Dry-run messages, the manifest, preview files and the journal carry personal data and
//! working tokens, so they are created owner-only (0600) in owner-only folders (0700, see
//! [`private_dir`]), never through a symbolic link (`O_NOFOLLOW`), and an older file at the
//! same path gets that mode too. Atomic rewrites of the list live in `subscribers`.
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

/// Creates a file readable by its owner only (0600), replacing an older one. Never follows
/// a symbolic link at `path`, never opens a FIFO or device there, and refuses a file with
/// other hard links (so no other file is changed through it).
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
    // Not truncated at open: a FIFO, device or hard-linked file is refused first.
    o.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a symbolic link (ELOOP); never blocked by a planted FIFO (ENXIO).
        o.mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let f = o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::new(
                e.kind(),
                "it is a symbolic link, and fortnight never writes through one; remove it",
            )
        } else {
            e
        }
    })?;
    let meta = f.metadata()?;
    if let Some(kind) = special_kind(&meta.file_type()) {
        return Err(std::io::Error::other(format!(
            "it is {kind}, not a regular file; remove it"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if meta.nlink() > 1 {
            return Err(std::io::Error::other(
                "it has other hard links, and writing it would change them too; remove it",
            ));
        }
        // An older file keeps its mode when rewritten: set it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    if truncate {
        f.set_len(0)?;
    }
    Ok(f)
}

/// Makes `dir` a private folder to write into: created (with its parents) owner-only (0700)
/// when missing; an existing one must be a real folder, not a symbolic link, and hold no
/// symbolic link (fortnight never writes through one: refused, naming the link), and a mode
/// looser than 0700 is tightened. Returns a note when it tightened the mode.
pub fn private_dir(dir: &Path) -> anyhow::Result<Option<String>> {
    use anyhow::{bail, Context};
    let note = private_folder(dir)?;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read `{}`", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            bail!(
                "`{}` is a symbolic link; fortnight never writes through links into its output folder: remove it, or choose another folder",
                entry.path().display()
            );
        }
    }
    Ok(note)
}

/// Makes `dir` an owner-only folder (0700): created with its parents when missing, its mode
/// tightened when looser; refused when it is a symbolic link or not a folder. Returns a note
/// when it tightened the mode.
pub fn private_folder(dir: &Path) -> anyhow::Result<Option<String>> {
    use anyhow::{bail, Context};
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir)
                .with_context(|| format!("cannot create the folder `{}`", dir.display()))?;
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open `{}`", dir.display())),
    };
    if meta.file_type().is_symlink() {
        bail!(
            "`{}` is a symbolic link; fortnight writes private files only into a real folder: pass the folder it points to, or another one",
            dir.display()
        );
    }
    if !meta.is_dir() {
        bail!("`{}` exists and is not a folder", dir.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
                || {
                    format!(
                        "`{}` is readable by others (mode {mode:o}) and cannot be made private; fix its owner or choose another folder",
                        dir.display()
                    )
                },
            )?;
            return Ok(Some(format!(
                "`{}` was readable by others (mode {mode:o}); made it private (0700)",
                dir.display()
            )));
        }
    }
    Ok(None)
}

/// Prepares the folder of the journal (or its lock): created owner-only (0700) when
/// missing, and tightened to 0700 when it is fortnight's own `.fortnight` folder; any other
/// existing folder (the journal may be configured into the project folder) is left as it is,
/// since the files in it are private themselves.
pub fn data_folder(dir: &Path) -> anyhow::Result<()> {
    let own = dir.file_name().is_some_and(|n| n == ".fortnight");
    if own || std::fs::symlink_metadata(dir).is_err() {
        private_folder(dir)?;
    }
    Ok(())
}

/// Makes the file at `path` private before another library (SQLite) opens it: created
/// empty (0600) when missing, set to 0600 when it exists; never through a symbolic link.
/// SQLite gives its `-wal` and `-shm` files the mode of the database file.
pub fn ensure_private_file(path: &Path) -> std::io::Result<()> {
    open_private(path, false).map(drop)
}

/// Creates a new private (0600) file, failing if anything (a file, a link) is at `path`.
pub fn create_new_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}
