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
    jobs::Registry,
    pipeline::{self, LoadedPipeline},
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
    /// Customers in the synthetic shop.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Products in the synthetic shop.
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// Mean orders per customer.
    #[arg(long, default_value_t = 10)]
    orders_per_customer: usize,
    /// Seed of every random choice: the same seed makes the same shop.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder for the inbox and, unless --database-url is given, the demo's SQLite database
    /// (DIR/patron.db). A second demo reuses what is there.
    #[arg(long, default_value = "demo")]
    dir: PathBuf,
    /// Delete the demo's own database (DIR/patron.db) first and start over.
    #[arg(long)]
    fresh: bool,
    /// Run on a database the demo did not create (it adds the shop to what is there). The
    /// cron pipelines are then not installed: the shop goes through the manual, unscheduled
    /// pipeline `demo-nightly`.
    #[arg(long)]
    force: bool,
}

/// The pipeline a forced demo runs in: `nightly` without its schedule, under its own name.
const FORCED_PIPELINE: &str = "demo-nightly";

/// What the demo found in its database.
enum Found {
    /// Empty: the demo sets it up (and marks it as its own).
    New,
    /// Set up by an earlier demo, from this shop spec.
    Demo(ShopKey),
    /// Someone's data, and `--force`: add the shop, install no cron pipeline.
    Forced(Vec<&'static str>),
}

/// The parts of a shop spec that the demo's database was made from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ShopKey {
    customers: usize,
    products: usize,
    orders_per_customer: usize,
    seed: u64,
    /// The shop's last day (the day the demo first ran): its files are made again the same.
    end: chrono::NaiveDate,
}

impl ShopKey {
    fn flags(&self) -> String {
        format!(
            "--customers {} --products {} --orders-per-customer {} --seed {}",
            self.customers, self.products, self.orders_per_customer, self.seed
        )
    }

    fn same_shop(&self, other: &ShopKey) -> bool {
        (
            self.customers,
            self.products,
            self.orders_per_customer,
            self.seed,
        ) == (
            other.customers,
            other.products,
            other.orders_per_customer,
            other.seed,
        )
    }
}

/// The shop an earlier demo (one that wrote no marker) left in `inbox/.shop.json`, whose key
/// is the spec's `Debug` text.
fn legacy_shop(inbox: &std::path::Path) -> Option<ShopKey> {
    let bytes = std::fs::read(inbox.join(".shop.json")).ok()?;
    let (key, _): (String, serde_json::Value) = serde_json::from_slice(&bytes).ok()?;
    let field = |name: &str| -> Option<&str> {
        let start = key.find(&format!("{name}: "))? + name.len() + 2;
        let rest = &key[start..];
        Some(&rest[..rest.find([',', ' ', '}']).unwrap_or(rest.len())])
    };
    Some(ShopKey {
        customers: field("customers")?.parse().ok()?,
        products: field("products")?.parse().ok()?,
        orders_per_customer: field("orders_per_customer")?.parse().ok()?,
        seed: field("seed")?.parse().ok()?,
        end: field("end")?.parse().ok()?,
    })
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let started = Instant::now();
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut settings: Settings = ctx.settings.clone();
        let own_file = settings.database.url == crate::config::DEFAULT_DATABASE_URL;
        let db_file = self.dir.join("patron.db");
        if own_file {
            settings.database.url = format!("sqlite://{}?mode=rwc", db_file.display());
        }
        // The demo's lake lives in its folder, whichever database holds the catalog.
        let lake_dir = self.dir.join("patron.lake");
        if settings.lake.path.trim().is_empty() {
            settings.lake.path = lake_dir.display().to_string();
        }
        if self.fresh {
            if !own_file {
                return Err(anyhow::anyhow!(
                    "--fresh deletes the demo's own SQLite file ({}); it does not empty {}: drop and create that database yourself",
                    db_file.display(),
                    crate::config::redact_url(&settings.database.url)
                )
                .into());
            }
            for suffix in ["", "-wal", "-shm"] {
                let path = self.dir.join(format!("patron.db{suffix}"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("deleting {}", path.display()))
                            .into());
                    }
                }
            }
            match std::fs::remove_dir_all(&lake_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("deleting {}", lake_dir.display()))
                        .into());
                }
            }
            if !ctx.json {
                println!(
                    "--fresh: deleted {} and {} to start over",
                    db_file.display(),
                    lake_dir.display()
                );
            }
        }
        let inbox = self.dir.join("inbox");
        settings.ingest.inbox = inbox.display().to_string();
        let shown_db = crate::config::redact_url(&settings.database.url);

        // 1. What the database holds: nothing is deleted, whatever it is.
        let db = db::open(&settings.database).await?;
        db::migrate(&db).await?;
        let today = chrono::Utc::now().date_naive();
        let asked = ShopKey {
            customers: self.customers,
            products: self.products,
            orders_per_customer: self.orders_per_customer,
            seed: self.seed,
            end: today,
        };
        let marker = repo::demo::marker(&db).await?;
        let made_from = match &marker {
            Some(details) => Some(serde_json::from_value::<ShopKey>(details.clone()).map_err(
                |e| anyhow::anyhow!("{shown_db}: the demo marker cannot be read ({e})"),
            )?),
            None if repo::demo::has_demo_runs(&db).await? => {
                // An earlier patron's demo: reusable if its inbox says which shop it holds.
                Some(legacy_shop(&inbox).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{shown_db} was made by an earlier patron demo whose shop cannot be told from {}; add --fresh to start over (it deletes the database), or use another --dir",
                        inbox.display()
                    )
                })?)
            }
            None => None,
        };
        let found = match made_from {
            Some(made) => {
                if !made.same_shop(&asked) {
                    return Err(anyhow::anyhow!(
                        "{shown_db} holds the demo shop made with {}; run the demo with those, add --fresh to start over (it deletes the database), or use another --dir",
                        made.flags()
                    )
                    .into());
                }
                if marker.is_none() {
                    repo::demo::mark(&db, serde_json::to_value(&made)?).await?;
                }
                Found::Demo(made)
            }
            None => {
                let tables = repo::demo::tables_with_rows(&db).await?;
                if tables.is_empty() {
                    repo::demo::mark(&db, serde_json::to_value(&asked)?).await?;
                    Found::New
                } else if self.force {
                    Found::Forced(tables)
                } else {
                    return Err(anyhow::anyhow!(
                        "{shown_db} is not a demo database: it already holds {}. The demo would add a synthetic shop to it; use an empty database, or add --force (the cron pipelines are then not installed)",
                        tables.join(", ")
                    )
                    .into());
                }
            }
        };
        let shop_key = match &found {
            Found::Demo(made) => made.clone(),
            Found::New | Found::Forced(_) => asked,
        };
        if !ctx.json {
            match &found {
                Found::New => println!("new demo database {shown_db}"),
                Found::Demo(made) => println!(
                    "reusing the demo database {shown_db} (shop of {}): nothing is deleted, only what is missing is added; --fresh starts over",
                    made.end
                ),
                Found::Forced(tables) => println!(
                    "--force: {shown_db} is not a demo database (it holds {}); the shop is added to it",
                    tables.join(", ")
                ),
            }
        }

        // 2. The shop, as files.
        let spec = ShopSpec {
            customers: shop_key.customers,
            products: shop_key.products,
            orders_per_customer: shop_key.orders_per_customer,
            seed: shop_key.seed,
            end: shop_key.end,
            ..Default::default()
        };
        let today = shop_key.end;
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

        // 3. The pipelines: the demo's own database gets the cron pipelines of jobs/ (each
        // stored only if it changed); another database gets none, only `demo-nightly`.
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
        let demo_pipeline = match &found {
            Found::New | Found::Demo(_) => {
                for l in &loaded {
                    let outcome = repo::pipelines::apply(&db, l).await?;
                    if !ctx.json {
                        let schedule = l.spec.schedule.as_ref().map_or_else(
                            || "no schedule".to_owned(),
                            |s| format!("schedule {} {}", s.cron, s.timezone),
                        );
                        println!(
                            "pipeline {} {} (version {}, {schedule})",
                            outcome.name,
                            if outcome.changed {
                                "applied"
                            } else {
                                "unchanged"
                            },
                            outcome.version
                        );
                    }
                    applied.push(outcome);
                }
                if !ctx.json {
                    println!(
                        "  scheduled pipelines run whenever a daemon runs on this database (`patron pipelines pause NAME` stops one)"
                    );
                }
                DEMO_PIPELINE
            }
            Found::Forced(_) => {
                let nightly = loaded
                    .iter()
                    .find(|l| l.spec.name == DEMO_PIPELINE)
                    .with_context(|| {
                        format!("{} has no `{DEMO_PIPELINE}` pipeline", jobs_dir.display())
                    })?;
                let forced = unscheduled_copy(nightly)?;
                applied.push(repo::pipelines::apply(&db, &forced).await?);
                if !ctx.json {
                    let names: Vec<&str> = loaded.iter().map(|l| l.spec.name.as_str()).collect();
                    println!(
                        "not installed: the cron pipelines of {} ({}), as this is not a demo database; the shop runs through the manual pipeline `{FORCED_PIPELINE}`, which has no schedule",
                        jobs_dir.display(),
                        names.join(", ")
                    );
                }
                FORCED_PIPELINE
            }
        };

        // 3. The nightly run, through the daemon, as of the shop's last day.
        let specs = SpecCache::default();
        let view = repo::pipelines::get(&db, &specs, demo_pipeline)
            .await
            .with_context(|| format!("{} has no `{demo_pipeline}` pipeline", jobs_dir.display()))?;
        let now = db::now();
        let (run_id, _) = repo::runs::create(
            &db,
            view.pipeline.id,
            view.version.id,
            &view.spec,
            NewRun {
                run_key: match found {
                    Found::Forced(_) => format!("forced-demo__{}", now.to_rfc3339()),
                    Found::New | Found::Demo(_) => format!("demo__{}", now.to_rfc3339()),
                },
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
        let stats =
            crate::lake::read::stats(&crate::lake::Lake::open(&settings, db.clone())?).await?;
        let mut champions = Vec::new();
        for kind in ["segments", "churn", "intent", "sentiment"] {
            if let Some(m) = repo::models::champion(&db, kind).await? {
                champions.push(m);
            }
        }
        let peak_mb = crate::memory::peak_mb();
        if ctx.json {
            ctx.print_json(&json!({
                "database": crate::config::redact_url(&settings.database.url),
                "database_state": match &found {
                    Found::New => "new",
                    Found::Demo(_) => "reused",
                    Found::Forced(_) => "forced",
                },
                "cron_pipelines_installed": !matches!(found, Found::Forced(_)),
                "pipeline": demo_pipeline,
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
                "ran {demo_pipeline} through the scheduler in {pipeline_seconds:.2}s (peak memory {}); explore with:",
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
            super::print_error(format!(
                "run {run_id} of {demo_pipeline} {state} (patron logs {run_id})"
            ));
            Err(CliError::Exit(1))
        }
    }
}

/// `nightly` as the manual pipeline `demo-nightly`: the same jobs, no schedule.
fn unscheduled_copy(nightly: &LoadedPipeline) -> anyhow::Result<LoadedPipeline> {
    let mut doc: toml::Table = toml::from_str(&nightly.source)
        .with_context(|| format!("{}: reading the pipeline", nightly.path))?;
    let header = doc
        .get_mut("pipeline")
        .and_then(toml::Value::as_table_mut)
        .with_context(|| format!("{}: no [pipeline] table", nightly.path))?;
    for key in ["schedule", "timezone", "catchup"] {
        header.remove(key);
    }
    header.insert("name".to_owned(), FORCED_PIPELINE.into());
    header.insert(
        "description".to_owned(),
        "The demo's nightly jobs, without a schedule (`patron demo --force`)".into(),
    );
    let source = format!(
        "# Made by `patron demo --force` from {}: nightly without its schedule.\n{}",
        nightly.path,
        toml::to_string(&doc)?
    );
    let path = format!("{FORCED_PIPELINE}.toml (made from {})", nightly.path);
    let spec =
        pipeline::parse_source(&path, &source, &Registry::builtin()).map_err(|problems| {
            anyhow::anyhow!(
                "{path}: {}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    Ok(LoadedPipeline { path, source, spec })
}
