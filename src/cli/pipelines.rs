//! `patron pipelines validate|apply|list|show|graph|pause|resume`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{CliError, CliResult, Ctx, output};
use crate::{
    db::repo::{self, pipelines::SpecCache},
    jobs::Registry,
    pipeline::{self, LoadedPipeline, graph},
};

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Check pipeline files and folders; print every problem as FILE:LINE: reason.
    Validate {
        /// Pipeline files, or folders of them (*.toml).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Validate, then store each pipeline as a new version (unchanged files are skipped).
    Apply {
        /// Files or folders (default: pipelines.dir, i.e. ./jobs).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Applied pipelines with their schedule, next fire time and last run.
    List,
    /// A pipeline's current version: schedule, jobs, and its source file.
    Show {
        /// The pipeline's name.
        name: String,
    },
    /// The DAG as an ASCII tree (or Graphviz DOT with --dot).
    Graph {
        /// The pipeline's name.
        name: String,
        /// Print Graphviz DOT instead of a tree.
        #[arg(long)]
        dot: bool,
    },
    /// Stop creating cron runs; queued runs wait until resumed.
    Pause {
        /// The pipeline's name.
        name: String,
    },
    /// Undo `pause`; the schedule restarts from now (ticks missed while paused are skipped).
    Resume {
        /// The pipeline's name.
        name: String,
    },
}

/// Loads and validates; prints problems and fails if there are any.
pub fn load_or_report(ctx: &Ctx, paths: &[PathBuf]) -> CliResult<Vec<LoadedPipeline>> {
    let (loaded, problems) = pipeline::load_paths(paths, &Registry::builtin());
    if problems.is_empty() {
        return Ok(loaded);
    }
    if ctx.json {
        ctx.print_json(&json!({ "ok": false, "problems": problems }))?;
    } else {
        for p in &problems {
            super::print_error(p);
        }
    }
    super::print_error(format!(
        "{} problem{} in pipeline files",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    ));
    Err(CliError::Exit(1))
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> CliResult {
        match self {
            Cmd::Validate { paths } => {
                let loaded = load_or_report(ctx, &paths)?;
                if ctx.json {
                    let names: Vec<&str> = loaded.iter().map(|l| l.spec.name.as_str()).collect();
                    ctx.print_json(&json!({ "ok": true, "pipelines": names, "problems": [] }))?;
                } else {
                    for l in &loaded {
                        println!(
                            "ok  {}  ({} jobs)  {}",
                            l.spec.name,
                            l.spec.jobs.len(),
                            l.path
                        );
                    }
                }
                Ok(())
            }
            Cmd::Apply { paths } => {
                let paths = if paths.is_empty() {
                    vec![PathBuf::from(&ctx.settings.pipelines.dir)]
                } else {
                    paths
                };
                let loaded = load_or_report(ctx, &paths)?;
                let db = ctx.db().await?;
                let mut outcomes = Vec::new();
                for l in &loaded {
                    let outcome = repo::pipelines::apply(&db, l).await?;
                    if outcome.changed {
                        repo::audit::record(
                            &db,
                            "pipelines.apply",
                            &outcome.name,
                            json!({ "version": outcome.version, "path": outcome.path }),
                        )
                        .await?;
                    }
                    outcomes.push(outcome);
                }
                if ctx.json {
                    ctx.print_json(&outcomes)?;
                } else {
                    for o in &outcomes {
                        let what = if o.changed { "applied" } else { "unchanged" };
                        println!("{what:9}  {}  version {}  ({})", o.name, o.version, o.path);
                    }
                }
                Ok(())
            }
            Cmd::List => {
                let db = ctx.db().await?;
                let views = repo::pipelines::list(&db, &SpecCache::default()).await?;
                if ctx.json {
                    let rows: Vec<_> = views
                        .iter()
                        .map(|v| {
                            let s = &v.spec.spec;
                            json!({
                                "name": s.name,
                                "version": v.version.version,
                                "schedule": s.schedule.as_ref().map(|x| &x.cron),
                                "timezone": s.schedule.as_ref().map(|x| &x.timezone),
                                "paused": v.pipeline.paused,
                                "next_fire_at": v.pipeline.next_fire_at,
                                "jobs": s.jobs.len(),
                                "last_run": v.last_run.as_ref().map(|r| json!({
                                    "id": r.id, "state": r.state, "started_at": r.started_at,
                                    "finished_at": r.finished_at,
                                })),
                            })
                        })
                        .collect();
                    ctx.print_json(&rows)?;
                    return Ok(());
                }
                let mut t = output::table(&[
                    "pipeline",
                    "version",
                    "schedule",
                    "timezone",
                    "next fire (utc)",
                    "paused",
                    "last run",
                ]);
                for v in &views {
                    let s = &v.spec.spec;
                    t.add_row(vec![
                        s.name.clone(),
                        v.version.version.to_string(),
                        s.schedule.as_ref().map_or("-".into(), |x| x.cron.clone()),
                        s.schedule
                            .as_ref()
                            .map_or("-".into(), |x| x.timezone.clone()),
                        output::time(v.pipeline.next_fire_at),
                        if v.pipeline.paused { "yes" } else { "no" }.to_owned(),
                        v.last_run.as_ref().map_or("-".into(), |r| {
                            format!(
                                "{} {} ({})",
                                r.id,
                                r.state,
                                output::duration(r.started_at, r.finished_at)
                            )
                        }),
                    ]);
                }
                println!("{t}");
                Ok(())
            }
            Cmd::Show { name } => {
                let db = ctx.db().await?;
                let v = repo::pipelines::get(&db, &SpecCache::default(), &name).await?;
                if ctx.json {
                    ctx.print_json(&json!({
                        "name": v.spec.spec.name,
                        "version": v.version.version,
                        "paused": v.pipeline.paused,
                        "next_fire_at": v.pipeline.next_fire_at,
                        "source_path": v.version.source_path,
                        "spec": v.spec.spec,
                        "source": v.version.source,
                    }))?;
                    return Ok(());
                }
                let s = &v.spec.spec;
                println!(
                    "pipeline {}  version {}  ({})",
                    s.name, v.version.version, v.version.source_path
                );
                if let Some(d) = &s.description {
                    println!("{d}");
                }
                match &s.schedule {
                    Some(x) => println!(
                        "schedule {} in {}  next fire {} UTC  catchup {}  max_active_runs {}",
                        x.cron,
                        x.timezone,
                        output::time(v.pipeline.next_fire_at),
                        s.catchup,
                        s.max_active_runs
                    ),
                    None => println!("no schedule (trigger it by hand)"),
                }
                if v.pipeline.paused {
                    println!("PAUSED");
                }
                let mut t = output::table(&["job", "kind", "after", "retries", "timeout"]);
                for j in &s.jobs {
                    t.add_row(vec![
                        j.name.clone(),
                        j.kind.clone(),
                        j.after.join(", "),
                        j.retries.to_string(),
                        j.timeout
                            .map_or("-".into(), |d| humantime::format_duration(d).to_string()),
                    ]);
                }
                println!("{t}");
                Ok(())
            }
            Cmd::Graph { name, dot } => {
                let db = ctx.db().await?;
                let v = repo::pipelines::get(&db, &SpecCache::default(), &name).await?;
                let edges = &v.spec.edges;
                if ctx.json {
                    let nodes: Vec<_> = v
                        .spec
                        .spec
                        .jobs
                        .iter()
                        .map(|j| json!({"name": j.name, "kind": j.kind, "after": j.after}))
                        .collect();
                    let layers = graph::layers(edges).unwrap_or_default();
                    ctx.print_json(&json!({ "pipeline": name, "jobs": nodes, "layers": layers }))?;
                } else if dot {
                    print!("{}", graph::render_dot(&name, edges));
                } else {
                    print!("{}", graph::render_tree(edges));
                }
                Ok(())
            }
            Cmd::Pause { name } => set_paused(ctx, &name, true).await,
            Cmd::Resume { name } => set_paused(ctx, &name, false).await,
        }
    }
}

async fn set_paused(ctx: &Ctx, name: &str, paused: bool) -> CliResult {
    let db = ctx.db().await?;
    let changed = repo::pipelines::set_paused(&db, name, paused).await?;
    if changed {
        let action = if paused {
            "pipelines.pause"
        } else {
            "pipelines.resume"
        };
        repo::audit::record(&db, action, name, json!({})).await?;
    }
    if ctx.json {
        ctx.print_json(&json!({ "name": name, "paused": paused, "changed": changed }))?;
    } else {
        let word = if paused { "paused" } else { "resumed" };
        if changed {
            println!("{name} {word}");
        } else {
            println!("{name} was already {word}");
        }
    }
    Ok(())
}
