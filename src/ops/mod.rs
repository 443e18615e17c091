//! Use cases that span several domains: [`check`](mod@check) (everything a send depends on, checked
//! beforehand), [`preview`](mod@preview) (the digest of one issue written to files) and [`init`] (a
//! starter project). They combine the articles, the digest, the message layer, the list and the
//! unsubscribe keys, so they sit above all of those; each takes plain options and returns a typed
//! report, and none of them prints or decides an exit code.

pub mod check;
pub mod init;
pub mod preview;

pub use check::{check, CheckReport};
pub use init::init_dir;
pub use preview::{load_articles, preview, PreviewOptions, PreviewOutput, PreviewReport};

#[cfg(test)]
mod tests;
