//! `patron daemon`: runs the scheduler until SIGINT or SIGTERM.

use anyhow::Context as _;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{CliResult, Ctx};
use crate::scheduler::{self, DaemonOptions};

#[derive(Debug, Args)]
pub struct Cmd {
    /// Worker id recorded on attempts (default: HOST-PID, or daemon.worker_id).
    #[arg(long)]
    worker_id: Option<String>,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let shutdown = CancellationToken::new();
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let token = shutdown.clone();
        // The one owner of signal handling: the first signal starts a graceful shutdown, a
        // second one during the grace period exits at once.
        tokio::spawn(async move {
            tokio::select! {
                _ = sigterm.recv() => info!("SIGTERM: shutting down"),
                _ = sigint.recv() => info!("SIGINT: shutting down"),
            }
            token.cancel();
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = sigint.recv() => {}
            }
            eprintln!(
                "second signal: exiting now; running jobs will be retried when their leases expire"
            );
            std::process::exit(130);
        });
        let options = DaemonOptions {
            worker_id: self.worker_id,
            ..Default::default()
        };
        scheduler::run(&ctx.settings, db, options, shutdown).await?;
        Ok(())
    }
}
