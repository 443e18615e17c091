//! Private files: what fortnight writes that holds addresses or unsubscribe tokens.
//!
//! Dry-run messages, the manifest and preview files carry personal data and working tokens,
//! so they are created owner-only (0600), and an older file at the same path gets that mode
//! too. This module only creates and writes files; atomic rewrites of the list live in
//! `subscribers`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

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
