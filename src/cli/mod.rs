//! The command line: one file per command group, each with a `Cmd` and `async fn run`.

mod console;
mod daemon;
mod demo;
mod feedback;
mod ingest;
mod init;
mod lake;
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
    /// The lake of analytics data: its committed files; vacuum; compact.
    #[command(subcommand)]
    Lake(lake::Cmd),
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
    /// Print a shell completion script, e.g. `patron completions bash > /etc/bash_completion.d/patron`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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

/// Prints one line of the README's error contract on stderr: `error: <reason>`. A reason that
/// spans lines (a TOML parser's excerpt, say) is put on one line.
pub fn print_error(reason: impl std::fmt::Display) {
    eprintln!("error: {}", one_line(&reason.to_string()));
}

/// The reason of an error as one line: its causes joined with `: `, each said once (a database
/// error repeats its source's text), without the server's C source lines that sqlx appends to
/// PostgreSQL errors (`… at line 664`).
pub fn error_text(err: &anyhow::Error) -> String {
    let server_line = |text: &str| -> String {
        // `message at line N`, at the end or before the next cause.
        let mut out = text.to_owned();
        while let Some(at) = out.find(" at line ") {
            let digits = out[at + 9..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            let end = at + 9 + digits;
            if digits == 0 || !(end == out.len() || out[end..].starts_with(':')) {
                break;
            }
            out.replace_range(at..end, "");
        }
        out
    };
    let mut parts: Vec<String> = Vec::new();
    // From the first database error down, every cause is the database's.
    let mut from_database = false;
    for cause in err.chain() {
        from_database |= cause.downcast_ref::<sea_orm::DbErr>().is_some()
            || cause.downcast_ref::<sea_orm::sqlx::Error>().is_some()
            || cause.downcast_ref::<db::RepoError>().is_some();
        let text = if from_database {
            server_line(&cause.to_string())
        } else {
            cause.to_string()
        };
        if text.is_empty() || parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    one_line(&parts.join(": "))
}

/// `text` on one line: its lines joined, without the source excerpts and carets that parsers
/// print under a message (`  |`, `3 | x =`, `  ^`).
pub fn one_line(text: &str) -> String {
    let excerpt = |line: &str| {
        let t = line.trim();
        t.starts_with('|')
            || t.chars().all(|c| c == '^' || c == '~' || c == ' ')
            || t.split_once(" |")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let mut out = String::new();
    for line in text.lines().filter(|l| !excerpt(l)) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

/// Parses the command line. Help and `--version` print and exit 0; a usage error prints one
/// `error: …` line (with the usage of the command it concerns) and exits 1, like every other
/// error.
pub fn parse_args() -> Cli {
    use clap::{CommandFactory as _, error::ErrorKind};
    let err = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(err) => err,
    };
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => err.exit(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `patron runs`: name the subcommands instead of printing the whole help.
            let rendered = err.render().to_string();
            let path: Vec<String> = rendered
                .lines()
                .find_map(|l| l.trim().strip_prefix("Usage: "))
                .map(|u| {
                    u.split_whitespace()
                        .skip(1)
                        .take_while(|w| !w.starts_with(['[', '<']))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let mut cmd = Cli::command();
            for word in &path {
                match cmd.find_subcommand(word) {
                    Some(sub) => cmd = sub.clone(),
                    None => break,
                }
            }
            let names: Vec<&str> = cmd
                .get_subcommands()
                .map(|c| c.get_name())
                .filter(|n| *n != "help")
                .collect();
            let full = std::iter::once("patron".to_owned())
                .chain(path)
                .collect::<Vec<_>>()
                .join(" ");
            print_error(format!(
                "`{full}` needs a subcommand: {} (see `{full} --help`)",
                names.join(", ")
            ));
        }
        _ => {
            let rendered = err.render().to_string();
            let mut parts = Vec::new();
            for paragraph in rendered.split("\n\n") {
                let p = one_line(paragraph);
                if p.is_empty() || p.starts_with("For more information") {
                    continue;
                }
                parts.push(match p.strip_prefix("Usage: ") {
                    Some(usage) => format!("usage: {usage}"),
                    None => p,
                });
            }
            let text = parts.join("; ");
            print_error(text.strip_prefix("error: ").unwrap_or(&text));
        }
    }
    std::process::exit(1)
}

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

    /// The lake the settings name, on `db`.
    pub fn lake(&self, db: Db) -> anyhow::Result<crate::lake::Lake> {
        Ok(crate::lake::Lake::open(&self.settings, db)?)
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
    match &cli.command {
        Command::Init(cmd) => return init::init(cmd, &overrides, cli.json),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            restore_sigpipe();
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "patron",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        _ => {}
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
        Command::Init(_) | Command::Completions { .. } => Ok(()),
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
        Command::Lake(cmd) => cmd.run(&ctx).await,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every subcommand and every argument, with its path (`patron runs show <run>`).
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let name = arg.get_id().as_str();
            if matches!(name, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} <{name}>"));
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                out.push(sub_path.clone());
            }
            walk(sub, &sub_path, out);
        }
    }

    #[test]
    fn every_subcommand_and_argument_has_a_help_line() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "patron", &mut missing);
        assert!(
            missing.is_empty(),
            "without a help line (add a doc comment):\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn database_errors_are_said_once_without_server_source_lines() {
        let inner = sea_orm::DbErr::Custom(
            "duplicate key value violates unique constraint \"x\" at line 664".to_owned(),
        );
        let err = anyhow::Error::new(inner).context("applying migrations");
        assert_eq!(
            error_text(&err),
            "applying migrations: Custom Error: duplicate key value violates unique constraint \"x\""
        );
        // Our own words keep theirs.
        let ours = anyhow::anyhow!("TOML parse error at line 3, column 5");
        assert_eq!(error_text(&ours), "TOML parse error at line 3, column 5");
        let ours = anyhow::anyhow!("bad.toml: problem at line 4").context("reading");
        assert_eq!(error_text(&ours), "reading: bad.toml: problem at line 4");
    }

    #[test]
    fn multi_line_reasons_become_one_line() {
        let toml_error =
            "TOML parse error at line 3, column 5\n  |\n3 | x =\n  |     ^\nexpected a value\n";
        assert_eq!(
            one_line(toml_error),
            "TOML parse error at line 3, column 5; expected a value"
        );
        assert_eq!(one_line("settings:\n  bad key"), "settings: bad key");
        assert_eq!(one_line("unknown run 9"), "unknown run 9");
    }
}
