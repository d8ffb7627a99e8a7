//! `patron campaign …` and `patron points …`: the loyalty team's commands.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{CliError, CliResult, Ctx, output, runs::wait_for};
use crate::{
    admin::Adjusted,
    db::{
        Db,
        entities::{RunState, Trigger},
        repo::{self, pipelines::SpecCache, runs::NewRun},
    },
    jobs::Registry,
    loyalty::{Campaign, KnownNames},
    pipeline::{self, LoadedPipeline},
    scheduler::{self, DaemonOptions},
};

/// The pipeline a launch runs in, so the console and `runs` show it like any other run.
const LAUNCH_PIPELINE: &str = r#"[pipeline]
name = "campaign-launch"
description = "Pays a campaign's points (started by `patron campaign launch`)"

[[job]]
name = "allocate"
kind = "points"
retries = 5
retry_backoff = "1s"
timeout = "30m"
"#;

#[derive(Debug, Subcommand)]
pub enum CampaignCmd {
    /// Store a campaign from its TOML file (as a draft).
    Create {
        /// The campaign's TOML file.
        file: std::path::PathBuf,
        /// The file is a monthly template (no dates): store the campaign of this month
        /// (YYYY-MM), named `NAME YYYY-MM`, as the `points` job's `campaign_file` would, or
        /// find it if it exists. Preview it ahead, or cancel it to skip the month.
        #[arg(long, value_parser = parse_month)]
        month: Option<chrono::NaiveDate>,
    },
    /// Every campaign.
    List,
    /// One campaign: its rule, state and what it paid.
    Show {
        /// The campaign id.
        id: i64,
    },
    /// Who would get how many points, and what it would cost, without paying anything.
    Preview {
        /// The campaign id.
        id: i64,
        /// Customers shown in the sample.
        #[arg(long, default_value_t = 10)]
        sample: usize,
    },
    /// Pay the campaign through a job run, exactly once.
    Launch {
        /// The campaign id.
        id: i64,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Cancel a campaign that was not launched.
    Cancel {
        /// The campaign id.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum PointsCmd {
    /// Spendable and pending points, and the tier.
    Balance {
        /// The customer id.
        customer: String,
    },
    /// Every ledger row of a customer, oldest first.
    History {
        /// The customer id.
        customer: String,
    },
    /// Add (or with a negative number, remove) points by hand; audited.
    Adjust {
        /// The customer id.
        customer: String,
        /// Points to add; a negative number removes points.
        #[arg(allow_hyphen_values = true)]
        points: i64,
        /// Why, for the ledger and the audit log.
        #[arg(long)]
        reason: String,
        /// Confirm an adjustment beyond loyalty.adjust_confirm_points, or one that takes the
        /// spendable balance below zero.
        #[arg(long)]
        yes: bool,
    },
}

fn rules(ctx: &Ctx) -> anyhow::Result<crate::loyalty::Rules> {
    ctx.settings
        .loyalty
        .rules()
        .map_err(|e| anyhow::anyhow!("settings: {e}"))
}

/// `YYYY-MM` as the first day of that month.
fn parse_month(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
        .map_err(|_| format!("`{text}`: expected a month like 2026-07"))
}

fn parse_campaign(id: i64, source: &str) -> anyhow::Result<Campaign> {
    Campaign::parse(source).map_err(|p| {
        anyhow::anyhow!(
            "campaign {id}: {}",
            p.iter()
                .map(|p| format!("line {}: {}", p.line, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

impl CampaignCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        match self {
            CampaignCmd::Create { file, month } => {
                // What the target may name: the segment labels the profile job's model gives
                // (all of them, whether or not a profile has run yet) and the configured tiers.
                let segments = crate::analytics::segments::plain_labels();
                let tiers: Vec<String> = ctx
                    .settings
                    .loyalty
                    .tiers
                    .iter()
                    .map(|t| t.name.clone())
                    .collect();
                let known = KnownNames {
                    is_segment: &crate::analytics::segments::is_label,
                    segments: &segments,
                    tiers: &tiers,
                };
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("{}: cannot read", file.display()))?;
                let parsed = match month {
                    Some(day) => Campaign::for_month(&source, day),
                    None => Campaign::parse(&source),
                }
                .and_then(|c| Campaign::check_names(&source, &known).map(|()| c));
                let campaign = match parsed {
                    Ok(c) => c,
                    Err(problems) => {
                        for p in &problems {
                            super::print_error(format!(
                                "{}:{}: {}",
                                file.display(),
                                p.line,
                                p.message
                            ));
                        }
                        return Err(CliError::Exit(1));
                    }
                };
                let db = ctx.db().await?;
                let spec = serde_json::to_value(&campaign)?;
                let id = match month {
                    Some(day) => {
                        let stored = format!(
                            "# Made from {} for {}.\n{}",
                            file.display(),
                            day.format("%Y-%m"),
                            campaign.to_toml()
                        );
                        let (id, created) = repo::loyalty::find_or_create_campaign(
                            &db,
                            &campaign.name,
                            &stored,
                            &spec,
                        )
                        .await?;
                        if !created {
                            let c = repo::loyalty::campaign(&db, id).await?;
                            if ctx.json {
                                ctx.print_json(
                                    &json!({ "id": id, "created": false, "state": c.state }),
                                )?;
                            } else {
                                println!("campaign {id} `{}` exists already ({})", c.name, c.state);
                            }
                            return Ok(());
                        }
                        id
                    }
                    None => {
                        repo::loyalty::create_campaign(&db, &campaign.name, &source, &spec).await?
                    }
                };
                repo::audit::record(
                    &db,
                    "campaign create",
                    &format!("campaign {id}"),
                    json!({ "name": campaign.name, "file": file.display().to_string() }),
                )
                .await?;
                if ctx.json {
                    ctx.print_json(&json!({ "id": id, "created": true }))?;
                } else {
                    println!(
                        "campaign {id} `{}` created (draft); preview it with `patron campaign preview {id}`",
                        campaign.name
                    );
                }
            }
            CampaignCmd::List => {
                let db = ctx.db().await?;
                let all = repo::loyalty::campaigns(&db).await?;
                if ctx.json {
                    ctx.print_json(&all)?;
                    return Ok(());
                }
                let mut t = output::table(&["ID", "NAME", "STATE", "CUSTOMERS", "POINTS", "RUN"]);
                for c in &all {
                    t.add_row(vec![
                        c.id.to_string(),
                        c.name.clone(),
                        c.state.clone(),
                        c.customers.map_or_else(String::new, |x| x.to_string()),
                        c.points.map_or_else(String::new, |x| x.to_string()),
                        c.run_id.map_or_else(String::new, |x| x.to_string()),
                    ]);
                }
                println!("{t}");
            }
            CampaignCmd::Show { id } => {
                let db = ctx.db().await?;
                let c = repo::loyalty::campaign(&db, id).await?;
                if ctx.json {
                    ctx.print_json(&c)?;
                } else {
                    println!(
                        "campaign {} `{}`  state {}  created {}",
                        c.id, c.name, c.state, c.created_at
                    );
                    if let (Some(n), Some(p)) = (c.customers, c.points) {
                        println!(
                            "paid {p} points to {n} customers (run {})",
                            c.run_id.unwrap_or_default()
                        );
                    }
                    println!("\n{}", c.source.trim_end());
                }
            }
            CampaignCmd::Preview { id, sample } => {
                let db = ctx.db().await?;
                let stored = repo::loyalty::campaign(&db, id).await?;
                let campaign = parse_campaign(id, &stored.source)?;
                let rules = rules(ctx)?;
                let candidates =
                    crate::lake::read::candidates(&ctx.lake(db.clone())?, &campaign).await?;
                let plan_rules = rules.clone();
                let plan = tokio::task::spawn_blocking(move || {
                    campaign.allocate(&plan_rules, &candidates)
                })
                .await?;
                let points: i64 = plan.iter().map(|a| a.points).sum();
                let cost_cents = rules.cost_cents(points);
                let shown: Vec<_> = plan.iter().take(sample).collect();
                if ctx.json {
                    ctx.print_json(&json!({
                        "id": id,
                        "customers": plan.len(),
                        "points": points,
                        "cost": cost_cents as f64 / 100.0,
                        "cost_cents": cost_cents,
                        "sample": shown,
                    }))?;
                    return Ok(());
                }
                println!(
                    "campaign {id} `{}`: {} customers, {points} points, cost {}.{:02} at {} cents a point",
                    stored.name,
                    plan.len(),
                    cost_cents / 100,
                    cost_cents % 100,
                    rules.point_value_milli_cents
                );
                let mut t = output::table(&["CUSTOMER", "POINTS", "WHY"]);
                for a in shown {
                    t.add_row(vec![
                        a.customer_id.clone(),
                        a.points.to_string(),
                        a.why.join(", "),
                    ]);
                }
                println!("{t}");
            }
            CampaignCmd::Launch { id, yes } => launch(ctx, id, yes).await?,
            CampaignCmd::Cancel { id } => {
                let db = ctx.db().await?;
                let c = repo::loyalty::campaign(&db, id).await?;
                if !repo::loyalty::set_campaign_state(&db, id, &["draft"], "cancelled").await? {
                    return Err(anyhow::anyhow!(
                        "campaign {id} is {}: only a draft can be cancelled",
                        c.state
                    )
                    .into());
                }
                repo::audit::record(&db, "campaign cancel", &format!("campaign {id}"), json!({}))
                    .await?;
                if ctx.json {
                    ctx.print_json(&json!({ "id": id, "state": "cancelled" }))?;
                } else {
                    println!("campaign {id} cancelled");
                }
            }
        }
        Ok(())
    }
}

async fn launch(ctx: &Ctx, id: i64, yes: bool) -> CliResult {
    let db = ctx.db().await?;
    let c = repo::loyalty::campaign(&db, id).await?;
    match c.state.as_str() {
        "launched" => {
            return Err(anyhow::anyhow!(
                "campaign {id} was already launched (run {}): {} points to {} customers; nothing more is paid",
                c.run_id.unwrap_or_default(),
                c.points.unwrap_or_default(),
                c.customers.unwrap_or_default()
            )
            .into());
        }
        "cancelled" => {
            return Err(anyhow::anyhow!("campaign {id} was cancelled: nothing is paid").into());
        }
        _ => {}
    }
    parse_campaign(id, &c.source)?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(anyhow::anyhow!(
                "campaign launch pays points: confirm with --yes when not on a terminal"
            )
            .into());
        }
        eprint!(
            "launch campaign {id} `{}` and pay its points? [y/N] ",
            c.name
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(anyhow::anyhow!("campaign {id} not launched: not confirmed").into());
        }
    }
    // The pipeline the launch runs in.
    let loaded = pipeline::parse_source(
        "campaign-launch.toml",
        LAUNCH_PIPELINE,
        &Registry::builtin(),
    )
    .map_err(|p| anyhow::anyhow!("built-in launch pipeline: {p:?}"))?;
    repo::pipelines::apply(
        &db,
        &LoadedPipeline {
            path: "(built in)".to_owned(),
            source: LAUNCH_PIPELINE.to_owned(),
            spec: loaded,
        },
    )
    .await?;
    let specs = SpecCache::default();
    let view = repo::pipelines::get(&db, &specs, "campaign-launch").await?;
    // One run per campaign: launching twice (or from two terminals) finds the same run.
    let (run_id, created) = repo::runs::create(
        &db,
        view.pipeline.id,
        view.version.id,
        &view.spec,
        NewRun {
            run_key: format!("campaign-{id}"),
            trigger: Trigger::Manual,
            logical_time: crate::db::now(),
            params: [("campaign".to_owned(), id.to_string())].into(),
        },
    )
    .await?;
    repo::loyalty::set_campaign_run(&db, id, run_id).await?;
    repo::loyalty::set_campaign_state(&db, id, &["draft"], "launching").await?;
    if created {
        repo::audit::record(
            &db,
            "campaign launch",
            &format!("campaign {id}"),
            json!({ "run_id": run_id, "name": c.name }),
        )
        .await?;
    }
    let state = wait_with_worker(ctx, &db, run_id).await?;
    let c = repo::loyalty::campaign(&db, id).await?;
    if state != RunState::Succeeded || c.state != "launched" {
        return Err(anyhow::anyhow!(
            "campaign {id}: run {run_id} ended {state}; see `patron logs {run_id}` (a rerun pays only what is missing)"
        )
        .into());
    }
    if ctx.json {
        ctx.print_json(&json!({
            "id": id,
            "run_id": run_id,
            "customers": c.customers,
            "points": c.points,
        }))?;
    } else {
        println!(
            "campaign {id} launched by run {run_id}: {} points to {} customers",
            c.points.unwrap_or_default(),
            c.customers.unwrap_or_default()
        );
    }
    Ok(())
}

/// Waits for a run; with no daemon alive, runs one in this process until the run ends.
async fn wait_with_worker(ctx: &Ctx, db: &Db, run_id: i64) -> anyhow::Result<RunState> {
    let ttl = ctx.settings.scheduler.lease_ttl;
    if repo::workers::any_alive(db, ttl).await? {
        return wait_for(db, run_id, ctx.json).await;
    }
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn({
        let settings = ctx.settings.clone();
        let db = db.clone();
        let shutdown = shutdown.clone();
        async move {
            let options = DaemonOptions {
                worker_id: Some(format!("cli-{}", std::process::id())),
                serve_http: false,
                ..Default::default()
            };
            scheduler::run(&settings, db, options, shutdown).await
        }
    });
    let state = wait_for(db, run_id, ctx.json).await;
    shutdown.cancel();
    daemon.await.context("the launch worker panicked")??;
    state
}

impl PointsCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let now = crate::db::now().timestamp();
        match self {
            PointsCmd::Balance { customer } => {
                crate::lake::read::known_customer(&db, Some(&ctx.lake(db.clone())?), &customer)
                    .await?;
                let b = repo::loyalty::balance(&db, &customer, now).await?;
                if ctx.json {
                    ctx.print_json(&b)?;
                } else {
                    println!(
                        "{}: {} points spendable, {} pending, tier {}",
                        b.customer_id,
                        b.balance,
                        b.pending,
                        b.tier.as_deref().unwrap_or("none yet")
                    );
                }
            }
            PointsCmd::History { customer } => {
                crate::lake::read::known_customer(&db, Some(&ctx.lake(db.clone())?), &customer)
                    .await?;
                let rows = repo::loyalty::history(&db, &customer).await?;
                if ctx.json {
                    ctx.print_json(&rows)?;
                    return Ok(());
                }
                let mut t = output::table(&[
                    "AT",
                    "KIND",
                    "POINTS",
                    "KEY",
                    "AVAILABLE",
                    "EXPIRES",
                    "REASON",
                ]);
                for r in &rows {
                    t.add_row(vec![
                        r.created_at.clone(),
                        r.kind.clone(),
                        r.points.to_string(),
                        r.key.clone(),
                        r.available_at.clone(),
                        r.expires_at.clone().unwrap_or_default(),
                        r.reason.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
            }
            PointsCmd::Adjust {
                customer,
                points,
                reason,
                yes,
            } => {
                let adjustment = crate::admin::Adjustment {
                    customer: customer.clone(),
                    points,
                    reason: reason.clone(),
                    confirmed: yes,
                    via: "cli",
                };
                let adjusted = crate::admin::adjust(
                    &db,
                    Some(&ctx.lake(db.clone())?),
                    &ctx.settings.loyalty,
                    &adjustment,
                )
                .await
                .map_err(anyhow::Error::from)?;
                let (key, b) = match adjusted {
                    Adjusted::NeedsConfirmation(why) => {
                        return Err(anyhow::anyhow!(
                            "adjusting {customer} by {points:+} points needs --yes: {why}"
                        )
                        .into());
                    }
                    Adjusted::Done { key, balance, .. } => (key, balance),
                };
                if ctx.json {
                    ctx.print_json(&json!({ "key": key, "balance": b }))?;
                } else {
                    println!(
                        "{customer}: {points:+} points ({reason}); balance {}",
                        b.balance
                    );
                }
            }
        }
        Ok(())
    }
}
