//! The console without a terminal or a database: fixture snapshots fed through
//! `App::update` exactly as loads arrive, screens rendered into ratatui's `TestBackend` and
//! read back as text, keys checked as state transitions.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use ratatui::{
    Terminal,
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    layout::Rect,
};

use super::{
    actions::Action,
    app::{App, Connection, Overlay, PromptFor, View},
    data::*,
    event::{Effect, Event},
    views,
};
use crate::{
    db::{
        entities::{AttemptState, JobState, LogStream, RunState, Trigger},
        repo::logs::LogEntry,
    },
    pipeline::recovery::Liveness,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn ago(secs: i64) -> DateTime<Utc> {
    now() - chrono::Duration::seconds(secs)
}

fn pipeline(name: &str) -> PipelineRow {
    PipelineRow {
        name: name.to_owned(),
        cron: Some("0 30 2 * * *".to_owned()),
        timezone: Some("Asia/Shanghai".to_owned()),
        next_fire: Some(Utc.with_ymd_and_hms(2026, 3, 1, 18, 30, 0).unwrap()),
        paused: false,
        jobs: 6,
        last_run: Some(RunBrief {
            id: 42,
            state: RunState::Succeeded,
            started_at: Some(ago(3_600)),
            finished_at: Some(ago(3_600 - 184)),
        }),
        recent_ms: vec![150_000, 170_000, 160_000, 184_000, 90_000],
    }
}

fn pipelines() -> Vec<PipelineRow> {
    let mut feedback = pipeline("feedback");
    feedback.paused = true;
    feedback.last_run = Some(RunBrief {
        id: 41,
        state: RunState::Failed,
        started_at: Some(ago(900)),
        finished_at: Some(ago(890)),
    });
    let mut manual = pipeline("campaign-launch");
    manual.cron = None;
    manual.timezone = None;
    manual.next_fire = None;
    manual.last_run = None;
    manual.recent_ms.clear();
    vec![manual, feedback, pipeline("nightly")]
}

fn run(id: i64, pipeline: &str, state: RunState, trigger: Trigger) -> RunRow {
    RunRow {
        id,
        pipeline: pipeline.to_owned(),
        state,
        trigger,
        reruns: 0,
        run_key: format!("2026-03-01T02:30:00Z#{id}"),
        logical_time: ago(30_000),
        started_at: Some(ago(600 + id)),
        finished_at: (state.is_terminal()).then(|| ago(400)),
        cancel_requested: false,
    }
}

fn runs() -> RunsSnapshot {
    let mut rerun = run(40, "nightly", RunState::Succeeded, Trigger::Cron);
    rerun.reruns = 1;
    RunsSnapshot {
        rows: vec![
            run(43, "nightly", RunState::Running, Trigger::Manual),
            run(42, "nightly", RunState::Failed, Trigger::Cron),
            run(41, "feedback", RunState::Cancelled, Trigger::Backfill),
            rerun,
        ],
        scanned: 4,
        query: RunQuery::default(),
    }
}

fn job(name: &str, state: JobState, after: &[usize], attempts: &[AttemptState]) -> JobNode {
    JobNode {
        name: name.to_owned(),
        kind: "noop".to_owned(),
        state,
        after: after.to_vec(),
        attempts: attempts
            .iter()
            .enumerate()
            .map(|(i, &s)| AttemptRow {
                number: i as i32 + 1,
                state: s,
                worker_id: "w-eu-1".to_owned(),
                started_at: ago(500 - i as i64 * 60),
                finished_at: (s != AttemptState::Running).then(|| ago(450 - i as i64 * 60)),
                error: (s == AttemptState::Failed).then(|| "exit status 3: disk full".to_owned()),
            })
            .collect(),
        started_at: Some(ago(500)),
        finished_at: (state.is_terminal()).then(|| ago(380)),
        error: (state == JobState::Failed).then(|| "exit status 3: disk full".to_owned()),
    }
}

fn detail(state: RunState) -> RunDetailSnapshot {
    use AttemptState as A;
    use JobState as J;
    RunDetailSnapshot {
        run: run(42, "nightly", state, Trigger::Cron),
        params: vec![("as_of".to_owned(), "2026-03-01".to_owned())],
        jobs: vec![
            job("ingest-orders", J::Succeeded, &[], &[A::Succeeded]),
            job("ingest-events", J::Succeeded, &[], &[A::Succeeded]),
            job("clean", J::Failed, &[0, 1], &[A::Failed, A::Failed]),
            job("features", J::UpstreamFailed, &[2], &[]),
            job("profile", J::UpstreamFailed, &[3], &[]),
            job("report", J::Succeeded, &[0], &[A::Succeeded]),
        ],
    }
}

fn log_lines() -> Vec<LogEntry> {
    let mut out = Vec::new();
    for (i, (attempt, stream, line)) in [
        (1, LogStream::Patron, "attempt 1 of clean on worker w-eu-1"),
        (1, LogStream::Stdout, "cleaning 120000 orders"),
        (1, LogStream::Stderr, "write failed: disk full"),
        (2, LogStream::Patron, "attempt 2 of clean on worker w-eu-1"),
        (2, LogStream::Stdout, "cleaning 120000 orders"),
        (2, LogStream::Stderr, "timeout waiting for the disk"),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(LogEntry {
            id: i as i64 + 1,
            job: "clean".to_owned(),
            attempt,
            stream,
            at: ago(500 - i as i64),
            line: line.to_owned(),
        });
    }
    out
}

fn workers() -> Vec<WorkerRow> {
    vec![
        WorkerRow {
            id: "w-eu-1".to_owned(),
            host: "sched-eu-1.internal".to_owned(),
            pid: 4242,
            liveness: Liveness::Running,
            started_at: ago(86_400),
            heartbeat_at: ago(2),
            running: vec![
                (43, "ingest-orders".to_owned()),
                (43, "ingest-events".to_owned()),
            ],
        },
        WorkerRow {
            id: "w-us-2".to_owned(),
            host: "sched-us-2.internal".to_owned(),
            pid: 77,
            liveness: Liveness::Stale,
            started_at: ago(7_200),
            heartbeat_at: ago(300),
            running: Vec::new(),
        },
    ]
}

fn loyalty() -> LoyaltySnapshot {
    let first = NaiveDate::from_ymd_opt(2026, 2, 16).unwrap();
    LoyaltySnapshot {
        campaigns: Panel::Data(vec![
            CampaignRow {
                id: 1,
                name: "win-back 2026-02".to_owned(),
                state: "launched".to_owned(),
                customers: Some(1_204),
                points: Some(120_400),
                run_id: Some(17),
            },
            CampaignRow {
                id: 2,
                name: "spring double points".to_owned(),
                state: "draft".to_owned(),
                customers: None,
                points: None,
                run_id: None,
            },
        ]),
        points_per_day: Panel::Data(
            (0..14)
                .map(|i| (first + chrono::Duration::days(i), 1_000 + i * 250))
                .collect(),
        ),
        tiers: Panel::Data(vec![
            ("bronze".to_owned(), 6_000),
            ("silver".to_owned(), 3_000),
            ("gold".to_owned(), 1_000),
        ]),
        segments: Panel::Data(Some((
            "2026-03-01".to_owned(),
            vec![("champions".to_owned(), 900), ("at risk".to_owned(), 2_100)],
        ))),
        churn: Panel::NoTable,
    }
}

fn loaded(app: &mut App, request: Request, snapshot: Snapshot) -> Vec<Effect> {
    app.update(Event::Loaded {
        request,
        result: Ok(snapshot),
        took: Duration::from_millis(7),
    })
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(key(code))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

/// An app at `w`×`h` with every view's fixture loaded, showing `view`.
fn app_with(view: View, w: u16, h: u16) -> App {
    let mut app = App::new(now(), Rect::new(0, 0, w, h));
    loaded(
        &mut app,
        Request::Pipelines,
        Snapshot::Pipelines(pipelines()),
    );
    loaded(
        &mut app,
        Request::Runs(RunQuery::default()),
        Snapshot::Runs(runs()),
    );
    loaded(&mut app, Request::Workers, Snapshot::Workers(workers()));
    loaded(
        &mut app,
        Request::Loyalty,
        Snapshot::Loyalty(Box::new(loyalty())),
    );
    // Runs → Enter on run 42 → its detail.
    app.view = View::Runs;
    press(&mut app, KeyCode::Down);
    app.loading = false;
    press(&mut app, KeyCode::Enter);
    loaded(
        &mut app,
        Request::RunDetail(42),
        Snapshot::RunDetail(Box::new(detail(RunState::Failed))),
    );
    // The failed job `clean`, then its log.
    app.detail.job = 2;
    press(&mut app, KeyCode::Enter);
    loaded(
        &mut app,
        Request::Logs {
            run_id: 42,
            job: "clean".to_owned(),
            after: 0,
        },
        Snapshot::Logs(Box::new(LogsChunk {
            run_id: 42,
            job: "clean".to_owned(),
            after: 0,
            lines: log_lines(),
            detail: detail(RunState::Failed),
        })),
    );
    app.view = view;
    app.loading = false;
    app.status = None;
    app
}

/// The screen as text, one string per row.
fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| views::render(app, f)).unwrap();
    let buf = terminal.backend().buffer();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect()
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[track_caller]
fn assert_has(lines: &[String], needles: &[&str]) {
    for n in needles {
        assert!(has(lines, n), "`{n}` not on screen:\n{}", lines.join("\n"));
    }
}

// ---- rendering ----

#[test]
fn pipelines_view_shows_schedule_in_its_zone_next_fire_last_run_and_sparkline() {
    let mut app = app_with(View::Pipelines, 140, 24);
    press(&mut app, KeyCode::End);
    let s = screen(&app, 140, 24);
    assert_has(
        &s,
        &[
            "1 Pipelines",
            "PIPELINE",
            "0 30 2 * * * Asia/Shanghai",
            // 18:30 UTC is 02:30 the next day in Shanghai.
            "03-02 02:30 CST in 6h",
            "#42 succeeded 3m04s",
            "#41 failed",
            "paused",
            "manual",
            "never run",
            "▆▇▇█▄",
            "durations of the last 5 runs",
            "t trigger",
        ],
    );
}

#[test]
fn runs_view_lists_state_trigger_started_and_duration() {
    let app = app_with(View::Runs, 120, 20);
    let s = screen(&app, 120, 20);
    assert_has(
        &s,
        &[
            "4 runs shown",
            "RUN",
            "STATE",
            "43      nightly",
            "running",
            "failed",
            "cancelled",
            "backfill",
            "rerun (cron)",
            "03-01 11:49:17",
            "/ filter",
        ],
    );
}

#[test]
fn run_detail_draws_layers_left_to_right_and_the_selected_jobs_attempts() {
    let mut app = app_with(View::RunDetail, 140, 24);
    let s = screen(&app, 140, 24);
    assert_has(
        &s,
        &[
            "run 42",
            "as_of=2026-03-01",
            "stage 1 →",
            "stage 4",
            "✓ ingest-or",
            "✗ clean",
            "⊘ features",
            "job clean",
            "after: ingest-orders, ingest-events",
            "before: features",
            "error: exit status 3: disk full",
            "w-eu-1",
        ],
    );
    // Upstream jobs sit left of downstream ones on the same row.
    let row = s.iter().find(|l| l.contains("✓ ingest-or")).unwrap();
    assert!(row.find("✓ ingest-or") < row.find("✗ clean"));
    // Top to bottom with `v`.
    press(&mut app, KeyCode::Char('v'));
    let s = screen(&app, 140, 24);
    assert_has(&s, &["↓ stage 2", "↓ stage 4"]);
    let clean = s.iter().position(|l| l.contains("✗ clean")).unwrap();
    let orders = s.iter().position(|l| l.contains("✓ ingest-or")).unwrap();
    assert!(orders < clean);
}

#[test]
fn logs_view_shows_the_latest_attempt_and_highlights_search() {
    let mut app = app_with(View::Logs, 100, 14);
    let s = screen(&app, 100, 14);
    assert_has(
        &s,
        &[
            "run 42 · job clean",
            "attempt 2 (1,2 with lines",
            "timeout waiting for the disk",
            "stderr",
        ],
    );
    assert!(!has(&s, "write failed"), "attempt 1 is not shown");
    press(&mut app, KeyCode::Char('a'));
    assert_has(&screen(&app, 100, 14), &["write failed: disk full"]);
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "disk");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.logs.hit, Some(2));
    assert_has(&screen(&app, 100, 14), &["search `disk`"]);
}

#[test]
fn workers_view_shows_heartbeat_age_and_running_jobs() {
    let app = app_with(View::Workers, 130, 10);
    let s = screen(&app, 130, 10);
    assert_has(
        &s,
        &[
            "w-eu-1",
            "sched-eu-1.internal",
            "2s ago",
            "2: 43/ingest-orders",
            "stale",
            "5m ago",
        ],
    );
}

#[test]
fn loyalty_view_shows_campaigns_points_tiers_and_segments() {
    let app = app_with(View::Loyalty, 130, 30);
    let s = screen(&app, 130, 30);
    assert_has(
        &s,
        &[
            "win-back 2026-02",
            "launched",
            "120,400",
            "spring double points",
            "points earned per day",
            "4k",
            "bronze",
            "60%",
            "champions",
            "as of 2026-03-01",
            "churn probability",
            "not in this database",
        ],
    );
}

#[test]
fn help_confirm_and_prompt_overlays_render() {
    let mut app = app_with(View::Pipelines, 100, 30);
    press(&mut app, KeyCode::Char('?'));
    assert_has(
        &screen(&app, 100, 30),
        &["help", "rerun from the selected job"],
    );
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.overlay, None);
    press(&mut app, KeyCode::Char('t'));
    typed(&mut app, "as_of=2026-03-01");
    assert_has(
        &screen(&app, 100, 30),
        &["Trigger campaign-launch", "as_of=2026-03-01"],
    );
}

#[test]
fn a_lost_database_shows_a_banner_and_retries_with_backoff() {
    let mut app = app_with(View::Runs, 100, 12);
    let effects = app.update(Event::Tick(now() + chrono::Duration::seconds(1)));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Load(Request::Runs(_))]
    ));
    let effects = app.update(Event::Loaded {
        request: Request::Runs(RunQuery::default()),
        result: Err(LoadFailure::Database("connection refused".to_owned())),
        took: Duration::from_secs(5),
    });
    assert!(effects.is_empty());
    assert!(matches!(
        app.connection,
        Connection::Lost { retries: 1, .. }
    ));
    let s = screen(&app, 100, 12);
    assert_has(&s, &["database unreachable", "connection refused"]);
    // The last data stays on screen under the banner.
    assert_has(&s, &["nightly"]);
    // A second failure waits 2 s before the next try.
    app.update(Event::Tick(now() + chrono::Duration::seconds(1)));
    app.update(Event::Loaded {
        request: Request::Runs(RunQuery::default()),
        result: Err(LoadFailure::Database("connection refused".to_owned())),
        took: Duration::ZERO,
    });
    assert!(
        app.update(Event::Tick(now() + chrono::Duration::seconds(2)))
            .is_empty()
    );
    let effects = app.update(Event::Tick(now() + chrono::Duration::seconds(3)));
    assert_eq!(effects.len(), 1);
    loaded(
        &mut app,
        Request::Runs(RunQuery::default()),
        Snapshot::Runs(runs()),
    );
    assert_eq!(app.connection, Connection::Up);
    let s = screen(&app, 100, 12);
    assert!(!has(&s, "unreachable"));
    assert_has(&s, &["connection is back"]);
}

#[test]
fn tiny_terminals_and_very_long_names_do_not_panic() {
    let long = "x".repeat(400);
    let wide = "客户画像".repeat(50);
    let mut app = app_with(View::Pipelines, 200, 50);
    let mut p = pipeline(&long);
    p.timezone = Some("Not/AZone".to_owned());
    p.cron = Some(wide.clone());
    loaded(&mut app, Request::Pipelines, Snapshot::Pipelines(vec![p]));
    let mut r = run(7, &wide, RunState::Running, Trigger::Manual);
    r.run_key = long.clone();
    r.cancel_requested = true;
    let mut snapshot = runs();
    snapshot.rows.push(r);
    loaded(
        &mut app,
        Request::Runs(RunQuery::default()),
        Snapshot::Runs(snapshot),
    );
    let mut d = detail(RunState::Failed);
    d.jobs[2].name = long.clone();
    d.jobs[2].error = Some(format!("{wide}\nsecond line"));
    d.params.push((long.clone(), wide.clone()));
    loaded(
        &mut app,
        Request::RunDetail(42),
        Snapshot::RunDetail(Box::new(d)),
    );
    app.status = Some(super::app::Status {
        text: long.clone(),
        error: true,
    });
    let sizes = [
        (0, 0),
        (1, 1),
        (20, 5),
        (10, 3),
        (200, 3),
        (40, 60),
        (300, 100),
    ];
    for view in View::ALL {
        app.view = view;
        for overlay in [
            None,
            Some(Overlay::Help),
            Some(Overlay::Confirm {
                question: long.clone(),
                action: Action::Cancel { run_id: 1 },
            }),
            Some(Overlay::Prompt {
                purpose: PromptFor::RunsFilter,
                input: wide.clone(),
            }),
        ] {
            app.overlay = overlay;
            for (w, h) in sizes {
                app.update(Event::Resize(w, h));
                let s = screen(&app, w, h);
                assert_eq!(s.len(), h as usize);
            }
        }
    }
    app.overlay = None;
    app.view = View::Pipelines;
    app.update(Event::Resize(100, 20));
    let s = screen(&app, 100, 20);
    assert_has(&s, &["xxx…"]);
}

#[test]
fn thousands_of_runs_scroll_and_render_only_the_window() {
    let mut app = App::new(now(), Rect::new(0, 0, 120, 30));
    app.view = View::Runs;
    let rows: Vec<RunRow> = (1..=5_000)
        .rev()
        .map(|id| run(id, "nightly", RunState::Succeeded, Trigger::Cron))
        .collect();
    let snapshot = RunsSnapshot {
        scanned: rows.len(),
        rows,
        query: RunQuery::default(),
    };
    loaded(
        &mut app,
        Request::Runs(RunQuery::default()),
        Snapshot::Runs(snapshot),
    );
    press(&mut app, KeyCode::End);
    assert_eq!(app.runs.cursor.selected, 4_999);
    let s = screen(&app, 120, 30);
    assert_has(&s, &["1       nightly"]);
    assert!(!has(&s, "5000    nightly"));
    press(&mut app, KeyCode::PageUp);
    let page = app.page();
    assert_eq!(app.runs.cursor.selected, 4_999 - page);
    let s = screen(&app, 120, 30);
    let shown = format!("{:<7} nightly", 5_000 - (4_999 - page));
    assert_has(&s, &[&shown]);
    press(&mut app, KeyCode::Home);
    assert_eq!(app.runs.cursor, Default::default());
    // Hundreds of pipelines the same way.
    let many: Vec<PipelineRow> = (0..500).map(|i| pipeline(&format!("p{i:03}"))).collect();
    app.view = View::Pipelines;
    loaded(&mut app, Request::Pipelines, Snapshot::Pipelines(many));
    for _ in 0..250 {
        press(&mut app, KeyCode::Down);
    }
    assert_has(&screen(&app, 120, 30), &["p250"]);
}

// ---- keys as state transitions ----

#[test]
fn number_keys_and_tab_switch_views_and_load_them() {
    let mut app = App::new(now(), Rect::new(0, 0, 100, 30));
    assert_eq!(app.start(), vec![Effect::Load(Request::Pipelines)]);
    loaded(
        &mut app,
        Request::Pipelines,
        Snapshot::Pipelines(pipelines()),
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('2')),
        vec![Effect::Load(Request::Runs(RunQuery::default()))]
    );
    assert_eq!(app.view, View::Runs);
    // A second switch while loading waits for the first load, then loads.
    assert!(press(&mut app, KeyCode::Char('5')).is_empty());
    assert_eq!(app.view, View::Workers);
    let effects = loaded(
        &mut app,
        Request::Runs(RunQuery::default()),
        Snapshot::Runs(runs()),
    );
    assert_eq!(effects, vec![Effect::Load(Request::Workers)]);
    app.loading = false;
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Loyalty);
    app.loading = false;
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Pipelines);
    app.loading = false;
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Loyalty);
    assert_eq!(press(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
    let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    app.overlay = Some(Overlay::Help);
    assert_eq!(app.update(ctrl_c), vec![Effect::Quit]);
}

#[test]
fn ticks_refresh_the_current_view_one_load_at_a_time() {
    let mut app = app_with(View::Runs, 100, 30);
    let effects = app.update(Event::Tick(now() + chrono::Duration::seconds(1)));
    assert_eq!(
        effects,
        vec![Effect::Load(Request::Runs(RunQuery::default()))]
    );
    assert!(
        app.update(Event::Tick(now())).is_empty(),
        "one load in flight"
    );
    // Loyalty reloads every 10 s, not every tick.
    app.loading = false;
    app.view = View::Loyalty;
    let t = now() + chrono::Duration::seconds(1);
    assert!(app.update(Event::Tick(t)).is_empty());
    let t = now() + chrono::Duration::seconds(11);
    assert_eq!(
        app.update(Event::Tick(t)),
        vec![Effect::Load(Request::Loyalty)]
    );
    // A load that took 2 s is repeated after 10 s, not every second.
    app.view = View::Workers;
    app.update(Event::Loaded {
        request: Request::Workers,
        result: Ok(Snapshot::Workers(workers())),
        took: Duration::from_secs(2),
    });
    app.loading = false;
    let t = t + chrono::Duration::seconds(1);
    assert!(app.update(Event::Tick(t)).is_empty());
    let t = t + chrono::Duration::seconds(9);
    assert_eq!(
        app.update(Event::Tick(t)),
        vec![Effect::Load(Request::Workers)]
    );
}

#[test]
fn trigger_asks_for_params_and_performs_without_confirmation() {
    let mut app = app_with(View::Pipelines, 100, 30);
    press(&mut app, KeyCode::End);
    press(&mut app, KeyCode::Char('t'));
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Prompt { purpose: PromptFor::TriggerParams { pipeline }, .. }) if pipeline == "nightly"
    ));
    typed(&mut app, "oops");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.status.as_ref().is_some_and(|s| s.error));
    assert!(
        app.overlay.is_some(),
        "the prompt stays open to fix the input"
    );
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "as_of=2026-03-01 full=yes");
    let effects = press(&mut app, KeyCode::Enter);
    let params: BTreeMap<String, String> = [("as_of", "2026-03-01"), ("full", "yes")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        effects,
        vec![Effect::Perform(Action::Trigger {
            pipeline: "nightly".to_owned(),
            params
        })]
    );
    assert!(app.acting);
    let effects = app.update(Event::ActionDone(Ok("run 44 of nightly queued".to_owned())));
    assert!(!app.acting);
    assert_eq!(effects, vec![Effect::Load(Request::Pipelines)]);
    assert_has(&screen(&app, 100, 30), &["run 44 of nightly queued"]);
    // Esc abandons a prompt.
    press(&mut app, KeyCode::Char('t'));
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.overlay, None);
}

#[test]
fn pause_and_cancel_ask_first_and_no_does_nothing() {
    let mut app = app_with(View::Pipelines, 100, 30);
    press(&mut app, KeyCode::Down); // feedback, paused
    press(&mut app, KeyCode::Char('p'));
    let Some(Overlay::Confirm { action, .. }) = &app.overlay else {
        panic!("no confirmation: {:?}", app.overlay);
    };
    assert_eq!(
        action,
        &Action::SetPaused {
            pipeline: "feedback".to_owned(),
            paused: false
        }
    );
    assert_has(&screen(&app, 100, 30), &["Resume pipeline `feedback`?"]);
    assert!(press(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(app.overlay, None);
    app.view = View::Runs;
    press(&mut app, KeyCode::Home);
    press(&mut app, KeyCode::Char('c'));
    assert!(
        press(&mut app, KeyCode::Char('x')).is_empty(),
        "other keys keep asking"
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        vec![Effect::Perform(Action::Cancel { run_id: 43 })]
    );
    // While it runs, a second action is refused.
    press(&mut app, KeyCode::Char('r'));
    assert!(app.status.as_ref().is_some_and(|s| s.error));
    let effects = app.update(Event::ActionDone(
        Err("run 43 already succeeded".to_owned()),
    ));
    assert_eq!(effects.len(), 1);
    assert_has(&screen(&app, 100, 30), &["✗ run 43 already succeeded"]);
}

#[test]
fn runs_filter_goes_to_the_query_and_esc_clears_it() {
    let mut app = app_with(View::Runs, 100, 30);
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "failed nightly");
    let effects = press(&mut app, KeyCode::Enter);
    let query = RunQuery {
        state: Some(RunState::Failed),
        pipeline: None,
        words: vec!["nightly".to_owned()],
    };
    assert_eq!(effects, vec![Effect::Load(Request::Runs(query.clone()))]);
    // A result for the old filter arriving late is not shown.
    loaded(
        &mut app,
        Request::Runs(RunQuery::default()),
        Snapshot::Runs(runs()),
    );
    assert_eq!(app.runs.snapshot.as_ref().map(|s| s.rows.len()), Some(4));
    app.loading = false;
    let mut only = runs();
    only.rows.retain(|r| r.state == RunState::Failed);
    loaded(&mut app, Request::Runs(query), Snapshot::Runs(only));
    assert_has(
        &screen(&app, 100, 30),
        &["1 run shown", "filter: failed nightly"],
    );
    app.loading = false;
    assert_eq!(
        press(&mut app, KeyCode::Esc),
        vec![Effect::Load(Request::Runs(RunQuery::default()))]
    );
    assert!(app.runs.filter.is_empty());
}

#[test]
fn run_detail_moves_through_the_dag_and_reruns_from_the_selected_job() {
    let mut app = app_with(View::RunDetail, 140, 30);
    assert_eq!(app.detail.job, 2); // clean
    press(&mut app, KeyCode::Right);
    assert_eq!(app.detail.job, 3); // features, one stage downstream
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.detail.job, 0); // ingest-orders
    press(&mut app, KeyCode::Down);
    assert_eq!(app.detail.job, 1);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.detail.job, 5); // report: stage 2, after clean in file order
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Up);
    assert_eq!(app.detail.job, 1);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('R'));
    let Some(Overlay::Confirm { action, .. }) = app.overlay.clone() else {
        panic!("no confirmation");
    };
    assert_eq!(
        action,
        Action::RerunFrom {
            run_id: 42,
            job: "clean".to_owned()
        }
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('r'));
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm {
            action: Action::RerunFailed { run_id: 42 },
            ..
        })
    ));
    press(&mut app, KeyCode::Esc);
    // A running run cannot be rerun from a job: said at once, nothing asked.
    loaded(
        &mut app,
        Request::RunDetail(42),
        Snapshot::RunDetail(Box::new(detail(RunState::Running))),
    );
    press(&mut app, KeyCode::Char('R'));
    assert_eq!(app.overlay, None);
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.text.contains("still running"))
    );
    // Esc goes back to Runs.
    app.loading = false;
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Runs);
}

#[test]
fn logs_follow_scroll_and_read_new_lines_after_the_last_one() {
    let mut app = app_with(View::Logs, 100, 8);
    assert!(app.logs.follow);
    assert_eq!(app.logs.after, 6);
    assert_eq!(
        app.request(),
        Some(Request::Logs {
            run_id: 42,
            job: "clean".to_owned(),
            after: 6
        })
    );
    press(&mut app, KeyCode::Char('f'));
    assert!(!app.logs.follow);
    press(&mut app, KeyCode::Char('G'));
    assert!(app.logs.follow);
    press(&mut app, KeyCode::Up);
    assert!(!app.logs.follow, "scrolling up stops following");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::RunDetail);
}

#[test]
fn launch_refuses_launched_and_cancelled_campaigns() {
    let mut app = app_with(View::Loyalty, 130, 30);
    press(&mut app, KeyCode::Char('L'));
    assert_eq!(app.overlay, None);
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.error && s.text.contains("already launched"))
    );
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('L'));
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Confirm {
            action: Action::Launch { campaign_id: 2, .. },
            ..
        })
    ));
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        vec![Effect::Perform(Action::Launch {
            campaign_id: 2,
            name: "spring double points".to_owned()
        })]
    );
}

#[test]
fn adjust_asks_for_customer_points_reason_and_confirms_big_ones() {
    let mut app = app_with(View::Loyalty, 130, 30);
    press(&mut app, KeyCode::Char('a'));
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Prompt {
            purpose: PromptFor::Adjust,
            ..
        })
    ));
    assert_has(
        &screen(&app, 130, 30),
        &["Adjust points: CUSTOMER POINTS REASON"],
    );
    typed(&mut app, "C000123 lots");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.status.as_ref().is_some_and(|s| s.error));
    assert!(
        app.overlay.is_some(),
        "the prompt stays open to fix the input"
    );
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "-999999 wrong import");
    let unconfirmed = Action::Adjust {
        customer: "C000123".to_owned(),
        points: -999_999,
        reason: "wrong import".to_owned(),
        confirmed: false,
    };
    // The first try goes to the database unconfirmed: only it knows the balance.
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Effect::Perform(unconfirmed)]
    );
    assert!(app.acting);
    // It comes back as a question; the screen shows it, and only `y` performs it, confirmed.
    let confirmed = Action::Adjust {
        customer: "C000123".to_owned(),
        points: -999_999,
        reason: "wrong import".to_owned(),
        confirmed: true,
    };
    let question = "Adjust C000123 by -999999 points? -999999 points is more than loyalty.adjust_confirm_points (10000), and it would take the spendable balance from 100 to -999899. The audit log records that you confirmed.".to_owned();
    assert!(
        app.update(Event::ConfirmFirst {
            question: question.clone(),
            action: confirmed.clone(),
        })
        .is_empty()
    );
    assert!(!app.acting);
    let text = screen(&app, 130, 30).join("\n");
    for needle in [
        "Adjust C000123 by -999999 points?",
        "adjust_confirm_points",
        "to -999899",
        "y: yes",
    ] {
        assert!(text.contains(needle), "{needle:?} not on screen:\n{text}");
    }
    assert!(
        press(&mut app, KeyCode::Char('x')).is_empty(),
        "other keys keep asking"
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        vec![Effect::Perform(confirmed.clone())]
    );
    // No leaves it undone.
    app.acting = false;
    app.update(Event::ConfirmFirst {
        question,
        action: confirmed,
    });
    assert!(press(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(app.overlay, None);
}

#[test]
fn a_run_that_is_gone_is_a_status_line_not_a_banner() {
    let mut app = app_with(View::RunDetail, 100, 20);
    app.update(Event::Tick(now()));
    let effects = app.update(Event::Loaded {
        request: Request::RunDetail(42),
        result: Err(LoadFailure::Request("unknown run 42".to_owned())),
        took: Duration::ZERO,
    });
    assert!(effects.is_empty());
    assert_eq!(app.connection, Connection::Up);
    assert_has(&screen(&app, 100, 20), &["✗ unknown run 42"]);
}

/// Text captures of every view, for the README: `cargo test --lib console::tests::captures
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn captures() {
    for view in View::ALL {
        let app = app_with(view, 130, 22);
        println!("---- {} ----", view.title());
        for line in screen(&app, 130, 22) {
            println!("{line}");
        }
    }
}
