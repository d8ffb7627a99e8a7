//! `patron demo`: a database in a folder, the pipelines of `jobs/` applied, and the nightly
//! pipeline run end to end through the real scheduler.

use std::{path::PathBuf, time::Instant};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{CliError, CliResult, Ctx, output, pipelines::load_or_report, runs::wait_for};
use crate::{
    config::Settings,
    db::{
        self,
        entities::{RunState, Trigger},
        repo::{self, pipelines::SpecCache, runs::NewRun},
    },
    scheduler::{self, DaemonOptions},
};

/// The default pipelines, built in so `patron demo` works outside a checkout too.
const DEFAULT_PIPELINES: &[(&str, &str)] =
    &[("nightly.toml", include_str!("../../jobs/nightly.toml"))];

/// The pipeline the demo runs.
const DEMO_PIPELINE: &str = "nightly";

#[derive(Debug, Args)]
pub struct Cmd {
    /// Folder for the demo database (unless --database-url is given) and files.
    #[arg(long, default_value = "demo")]
    dir: PathBuf,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let started = Instant::now();
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut settings: Settings = ctx.settings.clone();
        if settings.database.url == crate::config::DEFAULT_DATABASE_URL {
            settings.database.url = format!("sqlite://{}/patron.db?mode=rwc", self.dir.display());
        }
        let db = db::connect(&settings.database.url, settings.database.max_connections).await?;
        db::migrate(&db).await?;

        let jobs_dir = PathBuf::from(&settings.pipelines.dir);
        let jobs_dir = if jobs_dir.is_dir() {
            jobs_dir
        } else {
            let dir = self.dir.join("jobs");
            std::fs::create_dir_all(&dir)?;
            for (name, text) in DEFAULT_PIPELINES {
                std::fs::write(dir.join(name), text)?;
            }
            dir
        };
        let loaded = load_or_report(ctx, std::slice::from_ref(&jobs_dir))?;
        let mut applied = Vec::new();
        for l in &loaded {
            applied.push(repo::pipelines::apply(&db, l).await?);
        }

        let specs = SpecCache::default();
        let view = repo::pipelines::get(&db, &specs, DEMO_PIPELINE)
            .await
            .with_context(|| format!("{} has no `{DEMO_PIPELINE}` pipeline", jobs_dir.display()))?;
        let now = db::now();
        let (run_id, _) = repo::runs::create(
            &db,
            view.pipeline.id,
            view.version.id,
            &view.spec,
            NewRun {
                run_key: format!("demo__{}", now.to_rfc3339()),
                trigger: Trigger::Manual,
                logical_time: now,
                params: Default::default(),
            },
        )
        .await?;

        // The real daemon, in this process, until the run is over.
        let shutdown = CancellationToken::new();
        let daemon = tokio::spawn({
            let settings = settings.clone();
            let db = db.clone();
            let shutdown = shutdown.clone();
            async move {
                let options = DaemonOptions {
                    worker_id: Some(format!("demo-{}", std::process::id())),
                    ..Default::default()
                };
                scheduler::run(&settings, db, options, shutdown).await
            }
        });
        let state = wait_for(&db, run_id, ctx.json).await;
        shutdown.cancel();
        daemon.await.context("the demo daemon panicked")??;
        let state = state?;

        let detail = repo::runs::show(&db, &specs, run_id).await?;
        if ctx.json {
            ctx.print_json(&json!({
                "database": crate::config::redact_url(&settings.database.url),
                "pipelines": applied,
                "run": output::RunJson::from_detail(&detail),
                "elapsed_ms": started.elapsed().as_millis() as u64,
            }))?;
        } else {
            println!(
                "database   {}",
                crate::config::redact_url(&settings.database.url)
            );
            for a in &applied {
                println!("pipeline   {} version {} ({})", a.name, a.version, a.path);
            }
            println!();
            output::print_run_detail(&detail);
            println!();
            println!(
                "ran {DEMO_PIPELINE} through the scheduler in {}; explore with:",
                output::human_ms(started.elapsed().as_millis() as i64)
            );
            let flag = format!("--database-url '{}'", settings.database.url);
            println!("  patron {flag} runs show {run_id}");
            println!("  patron {flag} logs {run_id}");
            println!("  patron {flag} pipelines graph {DEMO_PIPELINE}");
        }
        if state == RunState::Succeeded {
            Ok(())
        } else {
            Err(CliError::Exit(1))
        }
    }
}
