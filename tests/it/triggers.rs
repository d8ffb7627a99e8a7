//! Cron triggers through the daemon: firing, catch-up after downtime, and picking up applied
//! changes and pauses without a restart.

use std::{collections::HashSet, time::Duration};

use chrono::{DurationRound, Utc};
use patron::db::{self, repo};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

fn cron_runs(env: &Env, pipeline: &str) -> Vec<serde_json::Value> {
    env.json(&["runs", "list", "--pipeline", pipeline, "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "cron")
        .cloned()
        .collect()
}

#[test]
fn a_cron_schedule_fires_repeatedly_with_one_run_per_tick() {
    for backend in backends() {
        let env = Env::new(backend);
        env.apply(
            "tick.toml",
            &(header("tick", "schedule = \"* * * * * *\"\nmax_active_runs = 10")
                + "[[job]]\nname = \"n\"\nkind = \"noop\"\n"),
        );
        // Two daemons fire the same ticks; the run key makes one run each.
        let _a = env.daemon("a");
        let _b = env.daemon("b");
        assert!(wait_until(WAIT, || cron_runs(&env, "tick").len() >= 3));
        let runs = cron_runs(&env, "tick");
        let keys: HashSet<&str> = runs
            .iter()
            .map(|r| r["run_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), runs.len(), "duplicate run keys: {runs:#?}");
        for r in &runs {
            let key: chrono::DateTime<Utc> = r["run_key"].as_str().unwrap().parse().unwrap();
            assert_eq!(key.timestamp_subsec_nanos(), 0);
        }
        assert!(wait_until(WAIT, || cron_runs(&env, "tick")
            .iter()
            .filter(|r| r["state"] == "succeeded")
            .count()
            >= 2));
        let list = env.json(&["pipelines", "list"]);
        assert!(list[0]["next_fire_at"].is_string(), "{list}");
    }
}

#[test]
fn missed_ticks_are_caught_up_or_skipped_as_configured() {
    for catchup in [true, false] {
        let env = Env::new(Backend::Sqlite);
        env.apply(
            "minutely.toml",
            &(header(
                "minutely",
                &format!("schedule = \"0 * * * * *\"\ncatchup = {catchup}\nmax_active_runs = 10"),
            ) + "[[job]]\nname = \"n\"\nkind = \"noop\"\n"),
        );
        // Pretend the last daemon stopped five minutes ago, before firing that minute's tick.
        let missed_from = (Utc::now() - chrono::Duration::minutes(5))
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap();
        block_on(async {
            let conn = db::connect(&env.db.url, 1).await.unwrap();
            let p = repo::pipelines::find(&conn, "minutely").await.unwrap();
            repo::pipelines::set_next_fire(&conn, p.id, Some(missed_from))
                .await
                .unwrap();
        });
        let _daemon = env.daemon("w1");
        let expected_min = if catchup { 6 } else { 1 };
        assert!(wait_until(WAIT, || cron_runs(&env, "minutely").len() >= expected_min));
        std::thread::sleep(Duration::from_millis(500));
        let runs = cron_runs(&env, "minutely");
        let mut keys: Vec<String> = runs
            .iter()
            .map(|r| r["run_key"].as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        if catchup {
            // 6 ticks from missed_from to now (7 if a minute turned while the test ran).
            assert!((6..=7).contains(&keys.len()), "{keys:?}");
            assert_eq!(keys[0], repo::runs::tick_key(missed_from));
        } else {
            // Only the latest missed tick (plus a new one if a minute turned meanwhile).
            assert!((1..=2).contains(&keys.len()), "{keys:?}");
            assert_ne!(keys[0], repo::runs::tick_key(missed_from));
        }
    }
}

#[test]
fn applied_schedules_and_pauses_are_picked_up_without_a_restart() {
    let env = Env::new(Backend::Sqlite);
    let yearly = header("live", "schedule = \"0 0 0 1 1 *\"\nmax_active_runs = 10")
        + "[[job]]\nname = \"n\"\nkind = \"noop\"\n";
    env.apply("live.toml", &yearly);
    let _daemon = env.daemon("w1");
    assert!(wait_until(WAIT, || {
        env.json(&["pipelines", "list"])[0]["next_fire_at"].is_string()
    }));
    let next: chrono::DateTime<Utc> = env.json(&["pipelines", "list"])[0]["next_fire_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > Utc::now() + chrono::Duration::days(1));

    env.apply("live.toml", &yearly.replace("0 0 0 1 1 *", "* * * * * *"));
    assert!(wait_until(WAIT, || cron_runs(&env, "live").len() >= 2));

    env.ok(&["pipelines", "pause", "live"]);
    std::thread::sleep(Duration::from_millis(1500));
    let paused_count = cron_runs(&env, "live").len();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        cron_runs(&env, "live").len(),
        paused_count,
        "a paused pipeline made cron runs"
    );

    env.ok(&["pipelines", "resume", "live"]);
    assert!(wait_until(WAIT, || cron_runs(&env, "live").len() > paused_count));
}
