//! The command line: one file per command group, each with a `Cmd` and `async fn run`.

mod console;
mod daemon;
mod demo;
mod feedback;
mod ingest;
mod init;
mod logs;
mod loyalty;
mod models;
pub mod output;
mod pipelines;
mod recommend;
mod runs;
mod sentiment;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{
    config::{Overrides, Settings},
    db::{self, Db},
};

/// patron: loyalty-analytics pipelines on a schedule, and the CLI to run them.
#[derive(Debug, Parser)]
#[command(name = "patron", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Settings file (default: ./patron.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<String>,
    /// Database URL, e.g. sqlite://patron.db?mode=rwc or postgres://user@host/db.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented patron.toml.
    Init(init::InitCmd),
    /// Apply database migrations.
    Migrate,
    /// Set up a demo database, apply jobs/ and run the nightly pipeline through the scheduler.
    Demo(demo::Cmd),
    /// Run the scheduler daemon until SIGINT/SIGTERM.
    Daemon(daemon::Cmd),
    /// Validate, apply and manage pipelines.
    #[command(subcommand)]
    Pipelines(pipelines::Cmd),
    /// Start a run of a pipeline now.
    Trigger(runs::TriggerCmd),
    /// Create runs for every scheduled tick between two dates.
    Backfill(runs::BackfillCmd),
    /// List and inspect runs.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// Run a finished run's jobs again.
    Rerun(runs::RerunCmd),
    /// Cancel a queued or running run.
    Cancel(runs::CancelCmd),
    /// Print a run's job logs.
    Logs(logs::Cmd),
    /// Full-screen live view of pipelines, runs, DAGs, logs, workers and loyalty; acts on them.
    Console(console::Cmd),
    /// Load a CSV or JSON Lines file into customers, products, orders, events or reviews.
    Ingest(ingest::IngestCmd),
    /// Rows that could not be read, with their source, line and reason.
    #[command(subcommand)]
    Quarantine(ingest::QuarantineCmd),
    /// Rows stored per entity, quarantined rows and anomalies by reason, features by date.
    Stats,
    /// Write computed data as CSV.
    #[command(subcommand)]
    Export(ingest::ExportCmd),
    /// The model registry: trained models, champions and their metrics.
    #[command(subcommand)]
    Models(models::ModelsCmd),
    /// Score review text (or a whole CSV) for sentiment: a score in [-1, 1] and a label.
    Sentiment(sentiment::Cmd),
    /// A customer's current recommendations, with the reason for each.
    Recommend(recommend::Cmd),
    /// Loyalty campaigns: create, preview, launch (exactly once), cancel.
    #[command(subcommand)]
    Campaign(loyalty::CampaignCmd),
    /// Point balances, ledger history and manual adjustments.
    #[command(subcommand)]
    Points(loyalty::PointsCmd),
    /// What the feedback passes folded in between nightly runs.
    #[command(subcommand)]
    Feedback(feedback::Cmd),
    /// Daemons that have registered, with their heartbeats.
    Workers,
    /// Admin actions: who did what, when.
    #[command(subcommand)]
    Audit(runs::AuditCmd),
}

/// How a command ends when it is not plain success.
#[derive(Debug)]
pub enum CliError {
    /// Exit with this code; the command already printed why.
    Exit(u8),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        Self::Other(e.into())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

/// What every command gets: settings and output mode.
pub struct Ctx {
    pub settings: Settings,
    pub json: bool,
}

impl Ctx {
    /// Connects, and brings the schema up to date if it is behind (a fresh SQLite file).
    pub async fn db(&self) -> anyhow::Result<Db> {
        let url = &self.settings.database.url;
        let db = db::open(&self.settings.database)
            .await
            .with_context(|| format!("connecting to {}", crate::config::redact_url(url)))?;
        db::migrate(&db).await.context("applying migrations")?;
        Ok(db)
    }

    /// Prints `value` as JSON (in `--json` mode).
    pub fn print_json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }
}

/// Entry point used by `main`: builds the runtime the command needs and runs it.
pub fn main(cli: Cli) -> CliResult {
    let overrides = Overrides {
        config_file: cli.config.clone(),
        database_url: cli.database_url.clone(),
    };
    if let Command::Init(cmd) = &cli.command {
        return init::init(cmd, &overrides, cli.json);
    }
    let settings = Settings::load(&overrides).context("loading settings")?;
    let long_running = matches!(cli.command, Command::Daemon(_) | Command::Demo(_));
    if !long_running {
        restore_sigpipe();
    }
    init_tracing(if long_running {
        &settings.log.level
    } else {
        "warn"
    });
    let ctx = Ctx {
        settings,
        json: cli.json,
    };
    let runtime = if long_running {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    runtime.block_on(dispatch(cli.command, ctx))
}

async fn dispatch(command: Command, ctx: Ctx) -> CliResult {
    match command {
        Command::Init(_) => Ok(()),
        Command::Migrate => init::migrate(&ctx).await,
        Command::Demo(cmd) => cmd.run(&ctx).await,
        Command::Daemon(cmd) => cmd.run(&ctx).await,
        Command::Pipelines(cmd) => cmd.run(&ctx).await,
        Command::Trigger(cmd) => cmd.run(&ctx).await,
        Command::Backfill(cmd) => cmd.run(&ctx).await,
        Command::Runs(cmd) => cmd.run(&ctx).await,
        Command::Rerun(cmd) => cmd.run(&ctx).await,
        Command::Cancel(cmd) => cmd.run(&ctx).await,
        Command::Logs(cmd) => cmd.run(&ctx).await,
        Command::Console(cmd) => cmd.run(&ctx).await,
        Command::Ingest(cmd) => cmd.run(&ctx).await,
        Command::Quarantine(cmd) => cmd.run(&ctx).await,
        Command::Export(cmd) => cmd.run(&ctx).await,
        Command::Stats => ingest::stats(&ctx).await,
        Command::Models(cmd) => cmd.run(&ctx).await,
        Command::Sentiment(cmd) => cmd.run(&ctx).await,
        Command::Recommend(cmd) => cmd.run(&ctx).await,
        Command::Feedback(cmd) => cmd.run(&ctx).await,
        Command::Campaign(cmd) => cmd.run(&ctx).await,
        Command::Points(cmd) => cmd.run(&ctx).await,
        Command::Workers => runs::workers(&ctx).await,
        Command::Audit(cmd) => cmd.run(&ctx).await,
    }
}

/// Logs go to stderr; `RUST_LOG` wins over the configured level.
fn init_tracing(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},sqlx=warn,sqlx::pool::acquire=error,sea_orm=warn,tokio_cron_scheduler=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Short commands die quietly on a closed pipe (`patron runs list | head`), like other Unix
/// tools. Rust ignores SIGPIPE by default, which turns the first write after `head` exits into
/// a panic. The daemon keeps ignoring it: a dropped socket must not kill it.
fn restore_sigpipe() {
    // SAFETY: resetting a signal disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
