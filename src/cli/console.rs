//! `patron console`: the full-screen live view (see [`crate::console`]).

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::{CliResult, Ctx};
use crate::console::{self, Options};

#[derive(Debug, Args)]
pub struct Cmd {
    /// How often the view reloads from the database (at least 100ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    refresh: Duration,
    /// Where log output goes while the console owns the terminal
    /// (default: patron-console.log in the temp folder).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        // Before connecting: a script that runs `patron console` learns at once why it cannot.
        console::ensure_terminal()?;
        let db = ctx.db().await?;
        let log_file = self
            .log_file
            .unwrap_or_else(|| std::env::temp_dir().join("patron-console.log"));
        console::run(
            db.clone(),
            Options {
                refresh: self.refresh,
                log_file,
                lease_ttl: ctx.settings.scheduler.lease_ttl,
                loyalty: ctx.settings.loyalty.clone(),
                lake: ctx.lake(db.clone()).ok(),
            },
        )
        .await?;
        Ok(())
    }
}
