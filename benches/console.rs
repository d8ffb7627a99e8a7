//! Console refresh benchmark (run with `cargo bench --bench console`): an SQLite database with
//! 10,000 runs over 50 pipelines; each frame loads the Runs view through the same function the
//! console uses (the newest 500 runs matching the filter) and renders it into a 200×50
//! `TestBackend`. Prints the median, p99 and worst frame per filter, and the Pipelines view's
//! frame (50 pipelines, sparklines over the runs) for comparison. The bar: under 50 ms a frame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use patron::{
    console::{
        app::{App, View},
        data::{self, Request, RunQuery},
        event::Event,
        views,
    },
    db::{
        self, Db,
        entities::{RunState, Trigger, run},
        repo::{self, pipelines::SpecCache},
    },
    pipeline::{LoadedPipeline, parse_source},
};
use ratatui::{Terminal, backend::TestBackend, layout::Rect};
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};

const RUNS: usize = 10_000;
const PIPELINES: usize = 50;
const FRAMES: usize = 300;
const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;

async fn setup(db: &Db) {
    let mut ids = Vec::new();
    for p in 0..PIPELINES {
        let source = format!(
            "[pipeline]\nname = \"pipeline-{p:02}\"\nschedule = \"0 {} 2 * * *\"\ntimezone = \"Asia/Shanghai\"\n\n[[job]]\nname = \"only\"\nkind = \"noop\"\n",
            p % 60
        );
        let spec = parse_source("bench.toml", &source, &patron::jobs::Registry::builtin()).unwrap();
        repo::pipelines::apply(
            db,
            &LoadedPipeline {
                path: format!("pipeline-{p:02}.toml"),
                source,
                spec,
            },
        )
        .await
        .unwrap();
        let view = repo::pipelines::get(db, &SpecCache::default(), &format!("pipeline-{p:02}"))
            .await
            .unwrap();
        ids.push((view.pipeline.id, view.version.id));
    }
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 2, 30, 0).unwrap();
    let states = [
        RunState::Succeeded,
        RunState::Succeeded,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
        RunState::Running,
        RunState::Queued,
    ];
    let triggers = [Trigger::Cron, Trigger::Manual, Trigger::Backfill];
    let txn = db.begin().await.unwrap();
    let rows: Vec<run::ActiveModel> = (0..RUNS)
        .map(|i| {
            let (pipeline_id, version_id) = ids[i % PIPELINES];
            let at = start + chrono::Duration::minutes(i as i64 * 7);
            let state = states[i % states.len()];
            let started = (state != RunState::Queued).then_some(at);
            let finished = state
                .is_terminal()
                .then(|| at + chrono::Duration::seconds(30 + (i as i64 * 37) % 900));
            run::ActiveModel {
                pipeline_id: Set(pipeline_id),
                pipeline_version_id: Set(version_id),
                run_key: Set(format!("{}#{i}", at.to_rfc3339())),
                trigger: Set(triggers[i % triggers.len()]),
                logical_time: Set(at),
                params: Set("{}".to_owned()),
                state: Set(state),
                cancel_requested: Set(false),
                reruns: Set(i32::from(i % 11 == 0)),
                created_at: Set(at),
                started_at: Set(started),
                finished_at: Set(finished),
                ..Default::default()
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        run::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
}

/// Frame times (load + render) of `view` with `request`, in milliseconds, sorted.
async fn frames(db: &Db, view: View, request: Request) -> Vec<f64> {
    let specs = SpecCache::default();
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    let mut app = App::new(Utc::now(), Rect::new(0, 0, WIDTH, HEIGHT));
    app.view = view;
    if let Request::Runs(q) = &request {
        app.runs.filter = [
            q.state.map(|s| s.to_string()),
            q.pipeline.as_ref().map(|p| format!("pipeline={p}")),
        ]
        .into_iter()
        .flatten()
        .chain(q.words.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    }
    let mut times = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let t = Instant::now();
        let snapshot = data::load(
            db,
            None,
            &specs,
            &request,
            Utc::now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        app.update(Event::Loaded {
            request: request.clone(),
            result: Ok(snapshot),
            took: Duration::ZERO,
        });
        terminal.draw(|f| views::render(&app, f)).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/console.db?mode=rwc", dir.path().display());
    let db = db::connect(&url, 1).await.unwrap();
    db::migrate(&db).await.unwrap();
    let t = Instant::now();
    setup(&db).await;
    println!(
        "console bench: {RUNS} runs over {PIPELINES} pipelines in SQLite (setup {:.1} s); {FRAMES} frames each, load + render into a {WIDTH}x{HEIGHT} TestBackend",
        t.elapsed().as_secs_f64()
    );
    println!(
        "{:<44} {:>9} {:>9} {:>9}",
        "view (filter)", "median ms", "p99 ms", "max ms"
    );
    let cases = [
        ("Runs (none: newest 500)", View::Runs, ""),
        ("Runs (failed: state in SQL)", View::Runs, "failed"),
        (
            "Runs (pipeline-07: pipeline in SQL)",
            View::Runs,
            "pipeline-07",
        ),
        ("Runs (manual: words in memory)", View::Runs, "manual"),
    ];
    for (label, view, filter) in cases {
        let times = frames(&db, view, Request::Runs(RunQuery::parse(filter))).await;
        println!(
            "{label:<44} {:>9.2} {:>9.2} {:>9.2}",
            pct(&times, 0.5),
            pct(&times, 0.99),
            pct(&times, 1.0)
        );
    }
    let times = frames(&db, View::Pipelines, Request::Pipelines).await;
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>9.2}",
        "Pipelines (50, sparklines of 30 runs)",
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&times, 1.0)
    );
}
