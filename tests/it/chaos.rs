//! Chaos on PostgreSQL: three daemons run many runs of a wide pipeline while one of them,
//! picked at random, is `kill -9`ed and restarted every second or so. At the end every run
//! has succeeded, no job run has two succeeded attempts, and nothing is left running.
//!
//! CI runs 2,000 jobs; `PATRON_CHAOS_JOBS=20000` runs the full size.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};

use crate::common::*;

/// Jobs per run: a root, the fan, a sink.
const WIDTH: usize = 98;

fn count(env: &Env, sql: &str) -> i64 {
    block_on(async {
        let db = patron::db::connect(&env.db.url, 2).await.unwrap();
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
    })
}

#[test]
fn three_daemons_killed_at_random_finish_every_run_exactly_once() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("chaos test skipped: PATRON_TEST_DATABASE_URL is not set");
        return;
    }
    let env = Env::new(Backend::Postgres);
    let jobs: usize = std::env::var("PATRON_CHAOS_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let runs = jobs.div_ceil(WIDTH + 2);
    let mut text = header("chaos", "max_active_runs = 1000");
    text += "[[job]]\nname = \"root\"\nkind = \"noop\"\n";
    for i in 0..WIDTH {
        // Every tenth job takes a little while, so kills land on running jobs.
        if i % 10 == 0 {
            text += &sh_job(&format!("f{i}"), &["root"], "sleep 0.2", "retries = 1");
        } else {
            text += &format!("[[job]]\nname = \"f{i}\"\nkind = \"noop\"\nafter = [\"root\"]\n");
        }
    }
    let fan: Vec<String> = (0..WIDTH).map(|i| format!("\"f{i}\"")).collect();
    text += &format!(
        "[[job]]\nname = \"sink\"\nkind = \"noop\"\nafter = [{}]\n",
        fan.join(", ")
    );
    env.apply("chaos.toml", &text);

    let settings = [
        ("PATRON__SCHEDULER__LEASE_TTL", "1s"),
        ("PATRON__SCHEDULER__HEARTBEAT_INTERVAL", "200ms"),
        ("PATRON__SCHEDULER__REAPER_INTERVAL", "200ms"),
        ("PATRON__SCHEDULER__MAX_LOST_ATTEMPTS", "100"),
    ];
    let mut seed = std::env::var("PATRON_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    eprintln!("chaos: {runs} runs × {} jobs, seed {seed}", WIDTH + 2);
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    let mut generation = 0;
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|i| env.daemon_with(&format!("chaos-{i}-0"), &settings))
        .collect();
    let started = Instant::now();
    for r in 0..runs {
        env.ok(&["trigger", "chaos", "--key", &format!("chaos-{r}")]);
    }
    let terminal = || {
        count(
            &env,
            "SELECT COUNT(*) FROM runs WHERE state IN ('succeeded', 'failed', 'cancelled')",
        ) as usize
    };
    let mut kills = 0;
    let deadline = Duration::from_secs(600);
    while terminal() < runs && started.elapsed() < deadline {
        std::thread::sleep(Duration::from_millis(700 + next() % 800));
        let victim = (next() % 3) as usize;
        generation += 1;
        let fresh = env.daemon_with(&format!("chaos-{victim}-{generation}"), &settings);
        let old = std::mem::replace(&mut daemons[victim], fresh);
        old.kill9();
        kills += 1;
    }
    let took = started.elapsed();
    eprintln!(
        "chaos: {} jobs in {:.1}s with {kills} kills ({:.0} jobs/s)",
        runs * (WIDTH + 2),
        took.as_secs_f64(),
        (runs * (WIDTH + 2)) as f64 / took.as_secs_f64()
    );

    assert_eq!(terminal(), runs, "runs still unfinished after {deadline:?}");
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM runs WHERE state <> 'succeeded'"),
        0,
        "every run succeeds despite the kills"
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM (SELECT job_run_id FROM attempts WHERE state = 'succeeded' \
             GROUP BY job_run_id HAVING COUNT(*) > 1) t"
        ),
        0,
        "a job run succeeded twice"
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM job_runs WHERE state <> 'succeeded'"
        ),
        0
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM attempts WHERE state = 'running'"
        ),
        0,
        "an attempt is stuck running"
    );
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM job_runs") as usize,
        runs * (WIDTH + 2)
    );
    assert!(kills > 0);
}
