//! Scheduler benchmarks (run with `cargo bench --bench scheduler`):
//!
//! 1. fan-out: one root, 998 parallel `noop` jobs, one sink, through the daemon; jobs/s from
//!    trigger to the run's success;
//! 2. chain: 10 `noop` jobs in a row; median hand-off (one job's end to the next one's start)
//!    and trigger-to-first-start;
//! 3. recovery: `kill -9` of a daemon running a job, restart, time until the job runs again,
//!    with `lease_ttl = 3s`.
//!
//! SQLite by default; set `PATRON_BENCH_DATABASE_URL` to a PostgreSQL database to measure it
//! instead (it must be empty or hold only earlier bench runs). Figures go to stdout as a
//! table and, with `--json`, as one JSON document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use patron::{
    config::{Overrides, Settings},
    db::{
        self, Db,
        entities::Trigger,
        repo::{
            self,
            pipelines::SpecCache,
            runs::{NewRun, RunDetail},
        },
    },
    pipeline::{LoadedPipeline, parse_source},
    scheduler::{self, DaemonOptions},
};
use tokio_util::sync::CancellationToken;

fn settings(url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.insert("PATRON__DATABASE__URL".into(), url.to_owned());
    env.insert("PATRON__DAEMON__HTTP_ADDR".into(), "off".to_owned());
    Settings::load_with_env(&Overrides::default(), Some(env)).unwrap()
}

async fn apply(db: &Db, source: &str) {
    let spec = parse_source("bench.toml", source, &patron::jobs::Registry::builtin()).unwrap();
    repo::pipelines::apply(
        db,
        &LoadedPipeline {
            path: "bench.toml".into(),
            source: source.to_owned(),
            spec,
        },
    )
    .await
    .unwrap();
}

async fn trigger_and_wait(db: &Db, name: &str) -> (Duration, RunDetail) {
    let specs = SpecCache::default();
    let view = repo::pipelines::get(db, &specs, name).await.unwrap();
    let started = Instant::now();
    let (run_id, _) = repo::runs::create(
        db,
        view.pipeline.id,
        view.version.id,
        &view.spec,
        NewRun {
            run_key: format!(
                "bench-{}",
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
            trigger: Trigger::Manual,
            logical_time: Utc::now(),
            params: Default::default(),
        },
    )
    .await
    .unwrap();
    loop {
        let run = repo::runs::get(db, run_id).await.unwrap();
        if run.state.is_terminal() {
            assert_eq!(run.state.to_string(), "succeeded");
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    (elapsed, repo::runs::show(db, &specs, run_id).await.unwrap())
}

fn ms(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or_default() as f64 / 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1]
    }
}

async fn in_process(url: &str) -> serde_json::Value {
    let conc = std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "16".into());
    let s = settings(
        url,
        &[("PATRON__SCHEDULER__MAX_CONCURRENCY", conc.as_str())],
    );
    let db = db::connect(&s.database.url, s.database.max_connections)
        .await
        .unwrap();
    db::migrate(&db).await.unwrap();

    // BENCH_FANOUT parallel jobs between the root and the sink (default 998: 1,000 jobs);
    // BENCH_DAEMONS daemons share the database (default 1).
    let width: usize = std::env::var("BENCH_FANOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(998);
    let daemons: usize = std::env::var("BENCH_DAEMONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = (width + 2) as f64;
    let mut fan =
        String::from("[pipeline]\nname = \"fanout\"\n[[job]]\nname = \"root\"\nkind = \"noop\"\n");
    for i in 0..width {
        fan += &format!("[[job]]\nname = \"j{i}\"\nkind = \"noop\"\nafter = [\"root\"]\n");
    }
    fan += "[[job]]\nname = \"sink\"\nkind = \"noop\"\nafter = [";
    fan += &(0..width)
        .map(|i| format!("\"j{i}\""))
        .collect::<Vec<_>>()
        .join(",");
    fan += "]\n";
    apply(&db, &fan).await;
    let mut chain = String::from("[pipeline]\nname = \"chain\"\n");
    for i in 0..10 {
        let after = if i == 0 {
            String::new()
        } else {
            format!("after = [\"c{}\"]\n", i - 1)
        };
        chain += &format!("[[job]]\nname = \"c{i}\"\nkind = \"noop\"\n{after}");
    }
    apply(&db, &chain).await;

    let shutdown = CancellationToken::new();
    let mut running = Vec::new();
    for d in 0..daemons {
        // Each daemon gets its own pool, as separate processes would.
        let db = db::connect(&s.database.url, s.database.max_connections)
            .await
            .unwrap();
        running.push(tokio::spawn({
            let (s, shutdown) = (s.clone(), shutdown.clone());
            async move {
                let options = DaemonOptions {
                    worker_id: Some(format!("bench-{}-{d}", std::process::id())),
                    serve_http: false,
                    ..DaemonOptions::default()
                };
                scheduler::run(&s, db, options, shutdown).await
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut fan_rates = Vec::new();
    for _ in 0..3 {
        let (elapsed, detail) = trigger_and_wait(&db, "fanout").await;
        let db_span = ms(detail.run.created_at, detail.run.finished_at.unwrap());
        fan_rates.push((
            total / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0,
            db_span,
        ));
    }
    let mut handoffs = Vec::new();
    let mut first_starts = Vec::new();
    for _ in 0..20 {
        let (_, detail) = trigger_and_wait(&db, "chain").await;
        let attempts: Vec<_> = detail.jobs.iter().map(|(_, a)| a[0].clone()).collect();
        first_starts.push(ms(detail.run.created_at, attempts[0].started_at));
        for w in attempts.windows(2) {
            handoffs.push(ms(w[0].finished_at.unwrap(), w[1].started_at));
        }
    }
    shutdown.cancel();
    for daemon in running {
        daemon.await.unwrap().unwrap();
    }

    let best = fan_rates.iter().map(|r| r.0).fold(0.0, f64::max);
    println!(
        "fan-out {} noop jobs, {daemons} daemon(s) (3 runs):",
        width + 2
    );
    for (rate, wall, span) in &fan_rates {
        println!(
            "  {rate:8.0} jobs/s   trigger→success {wall:7.1} ms (created→finished in the db {span:7.1} ms)"
        );
    }
    println!(
        "chain of 10 noop jobs (20 runs, {} hand-offs):",
        handoffs.len()
    );
    println!(
        "  median hand-off          {:6.1} ms   (max {:.1} ms)",
        median(handoffs.clone()),
        handoffs.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "  median trigger→first start {:6.1} ms   (p99 {:.1} ms)",
        median(first_starts.clone()),
        p99(first_starts.clone())
    );
    serde_json::json!({
        "fanout_jobs_per_s": fan_rates.iter().map(|r| r.0).collect::<Vec<_>>(),
        "fanout_best_jobs_per_s": best,
        "chain_median_handoff_ms": median(handoffs),
        "chain_median_trigger_to_first_start_ms": median(first_starts.clone()),
        "chain_p99_trigger_to_first_start_ms": p99(first_starts),
        "daemons": daemons,
        "fanout_jobs": width + 2,
    })
}

/// kill -9 a daemon while a job runs; restart another; time until the job is running again.
fn recovery(url: &str) -> serde_json::Value {
    let bin = env!("CARGO_BIN_EXE_patron");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("patron.toml"),
        "[scheduler]\nlease_ttl = \"3s\"\nheartbeat_interval = \"1s\"\nreaper_interval = \"1s\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("crash.toml"),
        "[pipeline]\nname = \"crash\"\n[[job]]\nname = \"work\"\nkind = \"command\"\nparams = { program = \"sleep\", args = [\"2\"] }\n",
    )
    .unwrap();
    let run = |args: &[&str]| -> String {
        let out = Command::new(bin)
            .args(args)
            .current_dir(dir.path())
            .env("PATRON__DATABASE__URL", url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let daemon = |worker: &str| {
        Command::new(bin)
            .args(["daemon", "--worker-id", worker])
            .current_dir(dir.path())
            .env("PATRON__DATABASE__URL", url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    run(&["pipelines", "apply", "crash.toml"]);
    let mut first = daemon(&format!("bench-a-{}", std::process::id()));
    let trig: serde_json::Value =
        serde_json::from_str(&run(&["trigger", "crash", "--json"])).unwrap();
    let run_id = trig["run_id"].to_string();
    let show = || -> serde_json::Value {
        serde_json::from_str(&run(&["runs", "show", &run_id, "--json"])).unwrap()
    };
    while show()["jobs"][0]["state"] != "running" {
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let restarted = Utc::now();
    let mut second = daemon(&format!("bench-b-{}", std::process::id()));
    let again = loop {
        let s = show();
        if let Some(a) = s["jobs"][0]["attempts"].as_array().and_then(|a| a.get(1)) {
            break a["started_at"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = second.kill();
    let _ = second.wait();
    let secs = ms(restarted, again) / 1000.0;
    println!("recovery with lease_ttl = 3s:");
    println!("  killed job running again {secs:.2} s after the restart");
    serde_json::json!({ "recovery_seconds_after_restart": secs })
}

async fn fresh_postgres(url: &str) -> String {
    use sea_orm::ConnectionTrait as _;
    let admin = db::connect(url, 1).await.unwrap();
    for sql in [
        "DROP DATABASE IF EXISTS patron_bench WITH (FORCE)",
        "CREATE DATABASE patron_bench",
    ] {
        admin.execute_unprepared(sql).await.unwrap();
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = base.rsplit_once('/').unwrap();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{server}/patron_bench{query}")
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let json = std::env::args().any(|a| a == "--json");
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("PATRON_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()));
    let backend = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    println!(
        "patron scheduler benchmark on {backend}, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Every measurement starts from an empty database (`patron_bench` beside the one given),
    // so earlier runs' rows do not slow this one.
    let url = if backend == "postgres" {
        runtime.block_on(fresh_postgres(&url))
    } else {
        url
    };
    let mut figures = runtime.block_on(in_process(&url));
    let rec = recovery(&url);
    if let (Some(f), Some(r)) = (figures.as_object_mut(), rec.as_object()) {
        f.extend(r.clone());
        f.insert("backend".into(), backend.into());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&figures).unwrap());
    }
}
