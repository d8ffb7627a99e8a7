//! `patron demo`: a synthetic shop written as CSV and JSON Lines into an inbox, the pipelines
//! of `jobs/` applied, and the nightly pipeline run end to end through the real scheduler.

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
    demo::shop::{self, ShopSpec},
    scheduler::{self, DaemonOptions},
};

/// The default pipelines, built in so `patron demo` works outside a checkout too.
const DEFAULT_PIPELINES: &[(&str, &str)] = &[
    ("nightly.toml", include_str!("../../jobs/nightly.toml")),
    ("feedback.toml", include_str!("../../jobs/feedback.toml")),
];

/// The pipeline the demo runs.
const DEMO_PIPELINE: &str = "nightly";

#[derive(Debug, Args)]
pub struct Cmd {
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// Mean orders per customer.
    #[arg(long, default_value_t = 10)]
    orders_per_customer: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder for the inbox and, unless --database-url is given, a fresh SQLite database.
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
            // The demo's own database starts empty each time, so reruns show the same thing.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(self.dir.join(format!("patron.db{suffix}")));
            }
            settings.database.url = format!("sqlite://{}/patron.db?mode=rwc", self.dir.display());
        }
        let inbox = self.dir.join("inbox");
        settings.ingest.inbox = inbox.display().to_string();

        // 1. The shop, as files.
        let today = chrono::Utc::now().date_naive();
        let spec = ShopSpec {
            customers: self.customers,
            products: self.products,
            orders_per_customer: self.orders_per_customer,
            seed: self.seed,
            end: today,
            ..Default::default()
        };
        let generated_at = Instant::now();
        // The shop is deterministic: an inbox made from the same spec is reused as it is.
        let marker = inbox.join(".shop.json");
        let key = format!("{spec:?}");
        let previous: Option<(String, shop::ShopSummary)> = std::fs::read(&marker)
            .ok()
            .and_then(|b| serde_json::from_slice::<(String, serde_json::Value)>(&b).ok())
            .and_then(|(k, v)| Some((k, serde_json::from_value(v).ok()?)));
        let (shop, reused) = match previous {
            Some((k, summary)) if k == key => (summary, true),
            _ => {
                let inbox = inbox.clone();
                let summary =
                    tokio::task::spawn_blocking(move || shop::generate(&spec, &inbox)).await??;
                std::fs::write(&marker, serde_json::to_vec(&(key, &summary))?)?;
                (summary, false)
            }
        };
        let generate_seconds = generated_at.elapsed().as_secs_f64();
        if !ctx.json && reused {
            println!("reusing the shop in {} (same spec)", inbox.display());
        }
        if !ctx.json {
            println!(
                "generated a shop in {} ({generate_seconds:.2}s): {} customers, {} products, {} order lines, {} events, {} reviews, plus dirty rows {:?}",
                inbox.display(),
                shop.customers,
                shop.products,
                shop.order_lines,
                shop.events,
                shop.reviews,
                shop.dirty
            );
        }

        // 2. The database and the pipelines.
        let db = db::open(&settings.database).await?;
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

        // 3. The nightly run, through the daemon, as of the shop's last day.
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
                params: [("as_of".to_owned(), today.to_string())].into(),
            },
        )
        .await?;
        let pipeline_started = Instant::now();
        let shutdown = CancellationToken::new();
        let daemon = tokio::spawn({
            let settings = settings.clone();
            let db = db.clone();
            let shutdown = shutdown.clone();
            async move {
                let options = DaemonOptions {
                    worker_id: Some(format!("demo-{}", std::process::id())),
                    serve_http: false,
                    ..Default::default()
                };
                scheduler::run(&settings, db, options, shutdown).await
            }
        });
        let state = wait_for(&db, run_id, ctx.json).await;
        let pipeline_seconds = pipeline_started.elapsed().as_secs_f64();
        shutdown.cancel();
        daemon.await.context("the demo daemon panicked")??;
        let state = state?;

        // 4. What happened.
        let detail = repo::runs::show(&db, &specs, run_id).await?;
        let stats = repo::sources::stats(&db).await?;
        let mut champions = Vec::new();
        for kind in ["segments", "churn", "intent", "sentiment"] {
            if let Some(m) = repo::models::champion(&db, kind).await? {
                champions.push(m);
            }
        }
        let peak_mb = peak_memory_mb();
        if ctx.json {
            ctx.print_json(&json!({
                "database": crate::config::redact_url(&settings.database.url),
                "shop": shop,
                "pipelines": applied,
                "run": output::RunJson::from_detail(&detail),
                "data": stats,
                "champions": champions.iter().map(|m| json!({
                    "kind": m.kind, "id": m.id, "version": m.version, "algorithm": m.algorithm,
                    "metrics": serde_json::from_str::<serde_json::Value>(&m.metrics).unwrap_or_default(),
                })).collect::<Vec<_>>(),
                "generate_seconds": generate_seconds,
                "pipeline_seconds": pipeline_seconds,
                "elapsed_seconds": started.elapsed().as_secs_f64(),
                "peak_memory_mb": peak_mb,
            }))?;
        } else {
            println!(
                "database   {}",
                crate::config::redact_url(&settings.database.url)
            );
            println!();
            output::print_run_detail(&detail);
            println!();
            let rows: Vec<String> = stats.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
            println!("stored       {}", rows.join(", "));
            for (what, map) in [
                ("quarantined", &stats.quarantined),
                ("anomalies", &stats.anomalies),
            ] {
                if map.is_empty() {
                    println!("{what:12} none");
                }
                for (i, (k, n)) in map.iter().enumerate() {
                    println!("{:12} {n:>7}  {k}", if i == 0 { what } else { "" });
                }
            }
            for (as_of, n) in &stats.features {
                println!("features     {n} customers as of {as_of}");
            }
            for (i, m) in champions.iter().enumerate() {
                let metrics: serde_json::Value =
                    serde_json::from_str(&m.metrics).unwrap_or_default();
                println!(
                    "{:12} {} v{}: {} {}",
                    if i == 0 { "champions" } else { "" },
                    m.kind,
                    m.version,
                    m.algorithm,
                    super::models::headline(&metrics)
                );
                if let Some(segments) = metrics.get("segments").and_then(|s| s.as_array()) {
                    let sizes: Vec<String> = segments
                        .iter()
                        .map(|s| {
                            format!("{} {}", s["label"].as_str().unwrap_or("?"), s["customers"])
                        })
                        .collect();
                    println!("{:12}   {}", "", sizes.join(", "));
                }
            }
            println!();
            println!(
                "ran {DEMO_PIPELINE} through the scheduler in {pipeline_seconds:.2}s (peak memory {}); explore with:",
                peak_mb.map_or("n/a".to_owned(), |m| format!("{m:.0} MB"))
            );
            let flag = format!("--database-url '{}'", settings.database.url);
            println!("  patron {flag} runs show {run_id}");
            println!("  patron {flag} logs {run_id}");
            println!("  patron {flag} quarantine list");
            println!("  patron {flag} export features --out features.csv");
            println!("  patron {flag} export profiles --out profiles.csv");
            println!("  patron {flag} export scores --out scores.csv");
            println!("  patron {flag} models list");
        }
        if state == RunState::Succeeded {
            Ok(())
        } else {
            Err(CliError::Exit(1))
        }
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), in MB.
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
