//! Shared primitives at the bottom of the library: small types and rules that several
//! domain modules need and that depend on nothing of fortnight's own.
//!
//! The issue date type, the one HTML escaper, lowercase hex, owner-only file creation,
//! one-line error chains, counts in words (`1 article`), "did you mean" distances, the
//! interrupt signals, this machine's FQDN and the language tables (month names, template
//! words). Nothing here
//! reads the config or knows about articles, subscribers or mail.

mod errors;
pub mod files;
mod hex;
pub mod host;
mod html;
mod issue_date;
pub mod lang;
mod plural;
mod shown;
pub mod signal;
mod suggest;

pub use errors::{error_chain, escape_control, escape_terminal};
pub use hex::hex;
pub use html::{escape_html, escape_html_into};
pub use issue_date::{IssueDate, IssueDateError};
pub use plural::{plural, plural_with, thousands};
pub use shown::shown;
pub use suggest::{closest, edit_distance};
