//! `patron console`: refuses to start without a terminal; its loads and actions go through
//! the real database (SQLite, and PostgreSQL when configured) and render; and, where tmux is
//! installed, `scripts/console-e2e.sh` drives the real binary: `t` triggers a run that a
//! daemon runs, and the console shows it `succeeded`.

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use chrono::Utc;
use patron::{
    console::{
        actions::{Action, perform},
        data::{self, Panel, Request, RunQuery, Snapshot},
    },
    db::{self, repo, repo::pipelines::SpecCache},
};
use ratatui::{Terminal, backend::TestBackend};

use crate::common::{BIN, Backend, Env, backends, wait_until};

/// `scheduler.lease_ttl` for the console's loads (workers silent for longer are stale).
const LEASE: Duration = Duration::from_secs(30);

const PIPELINE: &str = r#"
[pipeline]
name = "console-it"

[[job]]
name = "first"
kind = "command"
params = { program = "sh", args = ["-c", "echo one line from first"] }

[[job]]
name = "second"
kind = "noop"
after = ["first"]
"#;

#[test]
fn console_without_a_terminal_fails_with_a_one_line_reason() {
    let env = Env::new(Backend::Sqlite);
    let out = env
        .command(&["console"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run patron console");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("needs an interactive terminal"), "{err}");
    // It says so before touching the database.
    assert!(!env.path("patron.db").exists());
}

/// One runtime per test: a PostgreSQL pool's connections belong to the runtime that opened
/// them, so every call must run on the same one.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The app's screen at 120×30, as text.
fn render(app: &patron::console::app::App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    terminal
        .draw(|f| patron::console::views::render(app, f))
        .unwrap();
    let buf = terminal.backend().buffer();
    (0..30)
        .map(|y| (0..120).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn console_loads_and_acts_through_the_database() {
    for backend in backends() {
        let env = Env::new(backend);
        let rt = runtime();
        env.apply("console-it.toml", PIPELINE);
        let specs = SpecCache::default();
        let db = rt.block_on(db::connect(&env.db.url, 2)).unwrap();
        let lake = Some(env.lake(db.clone()));

        // `t` with a parameter: a queued manual run, audited.
        let action = Action::Trigger {
            pipeline: "console-it".to_owned(),
            params: BTreeMap::from([("who".to_owned(), "it".to_owned())]),
        };
        let text = rt.block_on(perform(&db, &specs, &action)).unwrap();
        assert!(text.starts_with("run 1 of console-it queued"), "{text}");
        let audit = rt.block_on(repo::audit::list(&db, 10)).unwrap();
        assert_eq!(audit[0].action, "trigger");
        assert!(audit[0].details.contains("console"), "{}", audit[0].details);

        let runs = |q: &str| match rt.block_on(data::load(
            &db,
            lake.as_ref(),
            &specs,
            &Request::Runs(RunQuery::parse(q)),
            Utc::now(),
            LEASE,
        )) {
            Ok(Snapshot::Runs(s)) => s,
            other => panic!("{other:?}"),
        };
        let queued = runs("");
        assert_eq!(queued.rows.len(), 1);
        assert_eq!(queued.rows[0].pipeline, "console-it");
        assert_eq!(queued.rows[0].trigger_label(), "manual");
        // A bare pipeline name narrows the query; a state that matches nothing empties it.
        assert_eq!(
            runs("console-it").query.pipeline.as_deref(),
            Some("console-it")
        );
        assert!(runs("failed").rows.is_empty());
        assert!(runs("no-such-word").rows.is_empty());

        // A daemon runs it; the detail shows both jobs succeeded, the log has the line.
        let daemon = env.daemon("console-it-w");
        let shown = env.wait_run(1, Duration::from_secs(60));
        assert_eq!(shown["state"], "succeeded", "{shown:#}");
        let detail = match rt.block_on(data::load(
            &db,
            lake.as_ref(),
            &specs,
            &Request::RunDetail(1),
            Utc::now(),
            LEASE,
        )) {
            Ok(Snapshot::RunDetail(d)) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(detail.params, [("who".to_owned(), "it".to_owned())]);
        assert_eq!(detail.jobs.len(), 2);
        assert_eq!(detail.jobs[1].after, [0]);
        assert!(
            detail
                .jobs
                .iter()
                .all(|j| j.state.to_string() == "succeeded")
        );
        let logs = Request::Logs {
            run_id: 1,
            job: "first".to_owned(),
            after: 0,
        };
        match rt.block_on(data::load(
            &db,
            lake.as_ref(),
            &specs,
            &logs,
            Utc::now(),
            LEASE,
        )) {
            Ok(Snapshot::Logs(chunk)) => {
                assert!(
                    chunk.lines.iter().any(|l| l.line == "one line from first"),
                    "{:?}",
                    chunk.lines
                );
            }
            other => panic!("{other:?}"),
        }

        // The views render what was loaded.
        let mut app =
            patron::console::app::App::new(Utc::now(), ratatui::layout::Rect::new(0, 0, 120, 30));
        for request in [Request::Pipelines, Request::Workers, Request::Loyalty] {
            let snapshot = rt
                .block_on(data::load(
                    &db,
                    lake.as_ref(),
                    &specs,
                    &request,
                    Utc::now(),
                    LEASE,
                ))
                .unwrap();
            app.update(patron::console::event::Event::Loaded {
                request,
                result: Ok(snapshot),
                took: Duration::ZERO,
            });
        }
        assert_eq!(app.pipelines.rows.len(), 1);
        assert_eq!(app.pipelines.rows[0].recent_ms.len(), 1);
        assert!(app.workers.rows.iter().any(|w| w.id == "console-it-w"));
        let loyalty = app.loyalty.snapshot.as_ref().unwrap();
        assert_eq!(loyalty.campaigns, Panel::Data(Vec::new()));
        assert!(matches!(&loyalty.points_per_day, Panel::Data(days) if days.len() == 14));
        assert_eq!(loyalty.segments, Panel::Data(None));
        assert_eq!(loyalty.churn, Panel::Data(None));
        let screen = render(&app);
        assert!(screen.contains("#1 succeeded"), "{screen}");
        drop(daemon);

        // Refusals come back as text for the status line.
        let err = rt
            .block_on(perform(&db, &specs, &Action::Cancel { run_id: 1 }))
            .unwrap_err();
        assert!(err.contains("already succeeded"), "{err}");
        let err = rt
            .block_on(perform(&db, &specs, &Action::RerunFailed { run_id: 1 }))
            .unwrap_err();
        assert!(err.contains("no failed"), "{err}");
        let text = rt
            .block_on(perform(
                &db,
                &specs,
                &Action::RerunFrom {
                    run_id: 1,
                    job: "second".to_owned(),
                },
            ))
            .unwrap();
        assert!(text.contains("queued again: 1 job (second)"), "{text}");
        let pause = Action::SetPaused {
            pipeline: "console-it".to_owned(),
            paused: true,
        };
        assert_eq!(
            rt.block_on(perform(&db, &specs, &pause)).unwrap(),
            "console-it paused"
        );
        assert_eq!(
            rt.block_on(perform(&db, &specs, &pause)).unwrap(),
            "console-it was already paused"
        );
        let actions: Vec<String> = rt
            .block_on(repo::audit::list(&db, 10))
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(actions[..2], ["pipelines.pause", "rerun"]);
    }
}

#[test]
fn launching_a_campaign_starts_its_run_once_and_refuses_a_launched_one() {
    for backend in backends() {
        let env = Env::new(backend);
        let rt = runtime();
        env.write(
            "spring.toml",
            "[campaign]\nname = \"spring\"\nstarts = \"2026-03-01\"\nends = \"2026-03-31\"\nbudget_points = 1000\n[reward]\nfixed_points = 10\n",
        );
        let id = env.json(&[
            "campaign",
            "create",
            env.path("spring.toml").to_str().unwrap(),
        ])["id"]
            .as_i64()
            .unwrap();
        let specs = SpecCache::default();
        let db = rt.block_on(db::connect(&env.db.url, 2)).unwrap();
        let lake = Some(env.lake(db.clone()));
        let launch = Action::Launch {
            campaign_id: id,
            name: "spring".to_owned(),
        };
        let text = rt.block_on(perform(&db, &specs, &launch)).unwrap();
        assert!(
            text.contains(&format!("campaign {id} launching in run")),
            "{text}"
        );
        let c = rt.block_on(repo::loyalty::campaign(&db, id)).unwrap();
        assert_eq!(c.state, "launching");
        let run_id = c.run_id.unwrap();
        let run = rt.block_on(repo::runs::get(&db, run_id)).unwrap();
        assert_eq!(run.run_key, format!("campaign-{id}"));
        assert!(
            run.params.contains(&format!("\"campaign\":\"{id}\"")),
            "{}",
            run.params
        );
        // Twice finds the same run.
        let again = rt.block_on(perform(&db, &specs, &launch)).unwrap();
        assert!(again.contains("already launching"), "{again}");
        let audit = rt.block_on(repo::audit::list(&db, 10)).unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|a| a.action == "campaign launch")
                .count(),
            1
        );
        // A launched campaign is refused.
        assert!(
            rt.block_on(repo::loyalty::set_campaign_state(
                &db,
                id,
                &["launching"],
                "launched"
            ))
            .unwrap()
        );
        let err = rt.block_on(perform(&db, &specs, &launch)).unwrap_err();
        assert!(err.contains("already launched"), "{err}");
        // The Loyalty view lists it.
        match rt.block_on(data::load(
            &db,
            lake.as_ref(),
            &specs,
            &Request::Loyalty,
            Utc::now(),
            LEASE,
        )) {
            Ok(Snapshot::Loyalty(l)) => {
                let Panel::Data(rows) = &l.campaigns else {
                    panic!("{:?}", l.campaigns);
                };
                assert_eq!(rows[0].state, "launched");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The real binary in tmux (skipped, saying so, where tmux is not installed).
#[test]
fn console_in_tmux_triggers_a_run_and_shows_it_succeeded() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/console-e2e.sh");
    let mut child = std::process::Command::new("bash")
        .arg(script)
        .env("PATRON", BIN)
        .env_remove("TMUX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/console-e2e.sh");
    let finished = wait_until(Duration::from_secs(180), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !finished {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("e2e output");
    assert!(
        out.status.success(),
        "console-e2e failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
