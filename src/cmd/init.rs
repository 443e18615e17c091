//! Write a starter project (`fortnight init`).

use anyhow::Result;

use super::Exit;
use crate::cli::InitArgs;

pub fn run(args: &InitArgs) -> Result<Exit> {
    crate::digest::cmd_init(args)
}
