//! List the issues of the articles folder (`fortnight issues`).

use anyhow::Result;

use super::Exit;
use crate::cli::IssuesArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &IssuesArgs) -> Result<Exit> {
    crate::articles::cmd_issues(config, args)
}
