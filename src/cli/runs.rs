//! `patron trigger`, `backfill`, `runs list|show`, `rerun`, `cancel`, `workers`, `audit`.
//! Each changes or reads rows; a daemon (now or later) does the work.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use chrono::{NaiveDate, TimeZone, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, CliResult, Ctx, output};
use crate::db::{
    Db,
    entities::{RunState, Trigger},
    repo::{
        self,
        pipelines::SpecCache,
        runs::{NewRun, RerunScope, RunFilter, tick_key},
    },
};

/// A daemon whose heartbeat is older than this is presumed gone.
const LIVE_WORKER: Duration = Duration::from_secs(60);

/// Most runs one backfill may create.
const MAX_BACKFILL_RUNS: usize = 10_000;

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[derive(Debug, Args)]
pub struct TriggerCmd {
    /// The pipeline's name.
    pipeline: String,
    /// Run parameter; replaces the same-named param of every job in this run, or is read by
    /// the job's kind (`as_of`, `campaign`; `command` jobs get every one). A param no job
    /// takes is refused. Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_kv)]
    params: Vec<(String, String)>,
    /// Wait for the run to finish; exit 0 only if it succeeded.
    #[arg(long)]
    wait: bool,
    /// Run key: triggering twice with the same key makes one run.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

impl TriggerCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let specs = SpecCache::default();
        let view = repo::pipelines::get(&db, &specs, &self.pipeline).await?;
        let now = crate::db::now();
        let key = self.key.clone().unwrap_or_else(|| {
            format!(
                "manual__{}__{:04x}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                rand::random::<u16>()
            )
        });
        let params: BTreeMap<String, String> = self.params.into_iter().collect();
        crate::pipeline::check_run_params(
            &view.spec.spec,
            &crate::jobs::Registry::builtin(),
            params.keys(),
        )
        .map_err(anyhow::Error::msg)?;
        let (run_id, created) = repo::runs::create(
            &db,
            view.pipeline.id,
            view.version.id,
            &view.spec,
            NewRun {
                run_key: key.clone(),
                trigger: Trigger::Manual,
                logical_time: now,
                params: params.clone(),
            },
        )
        .await?;
        if created {
            repo::audit::record(
                &db,
                "trigger",
                &self.pipeline,
                json!({ "run_id": run_id, "params": params }),
            )
            .await?;
        }
        if view.pipeline.paused {
            eprintln!(
                "note: {} is paused; the run waits until `patron pipelines resume {}`",
                self.pipeline, self.pipeline
            );
        }
        if !repo::workers::any_alive(&db, LIVE_WORKER).await? {
            eprintln!(
                "note: no daemon has heartbeated recently; the run starts when `patron daemon` runs"
            );
        }
        if !self.wait {
            if ctx.json {
                ctx.print_json(&json!({ "run_id": run_id, "created": created, "run_key": key }))?;
            } else if created {
                println!(
                    "run {run_id} of {} queued (patron runs show {run_id})",
                    self.pipeline
                );
            } else {
                println!(
                    "run {run_id} of {} already exists for key {key}",
                    self.pipeline
                );
            }
            return Ok(());
        }
        let state = wait_for(&db, run_id, ctx.json).await?;
        if ctx.json {
            ctx.print_json(
                &json!({ "run_id": run_id, "created": created, "run_key": key, "state": state }),
            )?;
        } else {
            let detail = repo::runs::show(&db, &specs, run_id).await?;
            output::print_run_detail(&detail);
        }
        if state == RunState::Succeeded {
            Ok(())
        } else {
            super::print_error(format!(
                "run {run_id} of {} {state} (patron runs show {run_id})",
                self.pipeline
            ));
            Err(CliError::Exit(1))
        }
    }
}

/// Polls until the run is terminal, with a spinner on a terminal.
pub async fn wait_for(db: &Db, run_id: i64, quiet: bool) -> anyhow::Result<RunState> {
    use std::io::IsTerminal as _;
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    loop {
        let run = repo::runs::get(db, run_id).await?;
        if let Some(bar) = &bar {
            bar.set_message(format!("run {run_id}: {}", run.state));
        }
        if run.state.is_terminal() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok(run.state);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, Args)]
pub struct BackfillCmd {
    /// The pipeline's name (it must have a schedule).
    pipeline: String,
    /// First day (YYYY-MM-DD, in the pipeline's time zone), inclusive.
    #[arg(long)]
    from: NaiveDate,
    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: NaiveDate,
}

impl BackfillCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        if self.to < self.from {
            return Err(anyhow::anyhow!("--to {} is before --from {}", self.to, self.from).into());
        }
        let db = ctx.db().await?;
        let view = repo::pipelines::get(&db, &SpecCache::default(), &self.pipeline).await?;
        let Some(schedule) = &view.spec.spec.schedule else {
            return Err(anyhow::anyhow!("pipeline {} has no schedule; backfill follows its cron ticks (use `patron trigger` instead)", self.pipeline).into());
        };
        let schedule = schedule.compile().map_err(anyhow::Error::msg)?;
        let tz = schedule.timezone();
        let start_of = |d: NaiveDate| -> anyhow::Result<chrono::DateTime<Utc>> {
            let midnight = d.and_hms_opt(0, 0, 0).context("bad date")?;
            Ok(tz
                .from_local_datetime(&midnight)
                .earliest()
                .context("midnight does not exist in this time zone")?
                .with_timezone(&Utc))
        };
        let from = start_of(self.from)? - chrono::Duration::seconds(1);
        let to = start_of(self.to + chrono::Duration::days(1))? - chrono::Duration::seconds(1);
        let ticks = schedule.ticks_between(from, to, MAX_BACKFILL_RUNS + 1);
        if ticks.len() > MAX_BACKFILL_RUNS {
            return Err(anyhow::anyhow!("this backfill would create more than {MAX_BACKFILL_RUNS} runs; use a narrower range").into());
        }
        let mut created_runs = Vec::new();
        for tick in &ticks {
            let (run_id, created) = repo::runs::create(
                &db,
                view.pipeline.id,
                view.version.id,
                &view.spec,
                NewRun {
                    run_key: tick_key(*tick),
                    trigger: Trigger::Backfill,
                    logical_time: *tick,
                    params: BTreeMap::new(),
                },
            )
            .await?;
            created_runs
                .push(json!({ "run_id": run_id, "run_key": tick_key(*tick), "created": created }));
        }
        let new = created_runs.iter().filter(|r| r["created"] == true).count();
        repo::audit::record(
            &db,
            "backfill",
            &self.pipeline,
            json!({ "from": self.from, "to": self.to, "runs": ticks.len(), "created": new }),
        )
        .await?;
        if ctx.json {
            ctx.print_json(&json!({ "pipeline": self.pipeline, "runs": created_runs }))?;
        } else {
            println!(
                "{} ticks of {} between {} and {}: {} runs created, {} already existed",
                ticks.len(),
                self.pipeline,
                self.from,
                self.to,
                new,
                ticks.len() - new
            );
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// Recent runs, newest first.
    List {
        /// Only runs of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// queued, running, succeeded, failed or cancelled.
        #[arg(long)]
        state: Option<RunState>,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// One run with its jobs and attempts.
    Show {
        /// The run id.
        run: i64,
    },
}

impl RunsCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        match self {
            RunsCmd::List {
                pipeline,
                state,
                limit,
            } => {
                let rows = repo::runs::list(
                    &db,
                    &RunFilter {
                        pipeline,
                        state,
                        limit,
                    },
                )
                .await?;
                if ctx.json {
                    let rows: Vec<_> = rows.iter().map(output::RunJson::from_row).collect();
                    ctx.print_json(&rows)?;
                    return Ok(());
                }
                let mut t = output::table(&[
                    "run",
                    "pipeline",
                    "state",
                    "trigger",
                    "logical time",
                    "started",
                    "duration",
                ]);
                for r in &rows {
                    let run = &r.run;
                    t.add_row(vec![
                        run.id.to_string(),
                        r.pipeline.clone(),
                        run.state.to_string(),
                        if run.reruns > 0 {
                            format!("{} (rerun {})", run.trigger, run.reruns)
                        } else {
                            run.trigger.to_string()
                        },
                        output::time(Some(run.logical_time)),
                        output::time(run.started_at),
                        output::duration(run.started_at, run.finished_at),
                    ]);
                }
                println!("{t}");
            }
            RunsCmd::Show { run } => {
                let detail = repo::runs::show(&db, &SpecCache::default(), run).await?;
                if ctx.json {
                    ctx.print_json(&output::RunJson::from_detail(&detail))?;
                } else {
                    output::print_run_detail(&detail);
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct RerunCmd {
    /// The run id.
    run: i64,
    /// Only failed, upstream-failed and cancelled jobs (succeeded ones are kept).
    #[arg(long, conflicts_with = "from")]
    failed_only: bool,
    /// This job and everything downstream of it.
    #[arg(long, value_name = "JOB")]
    from: Option<String>,
}

impl RerunCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let scope = match (self.failed_only, self.from) {
            (true, _) => RerunScope::FailedOnly,
            (false, Some(job)) => RerunScope::From(job),
            (false, None) => RerunScope::All,
        };
        let jobs = repo::runs::rerun(&db, &SpecCache::default(), self.run, &scope).await?;
        repo::audit::record(
            &db,
            "rerun",
            &self.run.to_string(),
            json!({ "scope": format!("{scope:?}"), "jobs": jobs }),
        )
        .await?;
        if ctx.json {
            ctx.print_json(&json!({ "run_id": self.run, "jobs": jobs }))?;
        } else {
            println!("run {} queued again: {}", self.run, jobs.join(", "));
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct CancelCmd {
    /// The run id.
    run: i64,
}

impl CancelCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let db = ctx.db().await?;
        let state = repo::runs::request_cancel(&db, &SpecCache::default(), self.run).await?;
        repo::audit::record(&db, "cancel", &self.run.to_string(), json!({})).await?;
        if ctx.json {
            ctx.print_json(&json!({ "run_id": self.run, "state": state }))?;
        } else if state == RunState::Cancelled {
            println!("run {} cancelled", self.run);
        } else {
            println!(
                "run {} is cancelling: running jobs are being stopped",
                self.run
            );
        }
        Ok(())
    }
}

pub async fn workers(ctx: &Ctx) -> CliResult {
    let db = ctx.db().await?;
    let rows = repo::workers::list(&db).await?;
    let now = crate::db::now();
    let state = |w: &crate::db::entities::worker::Model| {
        crate::pipeline::recovery::liveness(
            w.state == crate::db::entities::WorkerState::Stopped,
            w.heartbeat_at,
            now,
            ctx.settings.scheduler.lease_ttl,
        )
    };
    if ctx.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|w| json!({
                "id": w.id, "host": w.host, "pid": w.pid, "version": w.version, "state": state(w),
                "started_at": w.started_at, "heartbeat_at": w.heartbeat_at, "stopped_at": w.stopped_at,
            }))
            .collect();
        ctx.print_json(&rows)?;
        return Ok(());
    }
    let mut t = output::table(&[
        "worker",
        "host",
        "pid",
        "state",
        "last heartbeat",
        "started",
    ]);
    for w in &rows {
        t.add_row(vec![
            w.id.clone(),
            w.host.clone(),
            w.pid.to_string(),
            state(w).to_string(),
            format!("{} ago", output::duration(Some(w.heartbeat_at), None)),
            output::time(Some(w.started_at)),
        ]);
    }
    println!("{t}");
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Recent admin actions, newest first.
    List {
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

impl AuditCmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        let AuditCmd::List { limit } = self;
        let db = ctx.db().await?;
        let rows = repo::audit::list(&db, limit).await?;
        if ctx.json {
            let rows: Vec<_> = rows
                .iter()
                .map(|a| json!({
                    "id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "target": a.target,
                    "details": serde_json::from_str::<serde_json::Value>(&a.details).unwrap_or_default(),
                }))
                .collect();
            ctx.print_json(&rows)?;
            return Ok(());
        }
        let mut t = output::table(&["at", "actor", "action", "target", "details"]);
        for a in &rows {
            t.add_row(vec![
                output::time(Some(a.at)),
                a.actor.clone(),
                a.action.clone(),
                a.target.clone(),
                a.details.clone(),
            ]);
        }
        println!("{t}");
        Ok(())
    }
}
