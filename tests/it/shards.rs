//! Sharded jobs through the binary, on SQLite and PostgreSQL: `shards = N` on the heavy kinds
//! splits the customers between job runs (spread over two daemons on PostgreSQL), downstream
//! jobs wait for every shard, and the results equal the unsharded nightly run's on the same
//! data: the same features, segments, recommendations and ledger.

use std::time::Duration;

use crate::common::*;

fn export(env: &Env, what: &str) -> (String, String) {
    let out = env.path(&format!("{what}.csv"));
    let shown = env.json(&["export", what, "--out", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    (shown["what"].as_str().unwrap_or_default().to_owned(), text)
}

/// Recommendation rows without the score column's last digits (the same model ranks the
/// same items; scores are compared to 4 decimals).
fn rounded_recommendations(text: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let score: f64 = r[3].parse().unwrap();
            format!("{},{},{},{score:.4},{}", &r[0], &r[1], &r[2], &r[4])
        })
        .collect()
}

fn ledger(env: &Env) -> Vec<i64> {
    env.sql_ints(
        "SELECT COUNT(*), CAST(COALESCE(SUM(points), 0) AS BIGINT), COUNT(DISTINCT key), \
         (SELECT COUNT(*) FROM customer_tiers) FROM point_ledger",
    )
}

#[test]
fn sharded_jobs_split_the_customers_and_match_the_unsharded_run() {
    for backend in backends() {
        let env = Env::new(backend);
        env.demo_shop(600, 200);
        env.ok(&["pipelines", "pause", "nightly"]);
        env.ok(&["pipelines", "pause", "feedback"]);

        let (what, features) = export(&env, "features");
        let as_of = what.trim_start_matches("features as of ").to_owned();
        let (_, profiles) = export(&env, "profiles");
        let (_, recommendations) = export(&env, "recommendations");
        let before = ledger(&env);
        assert!(before[0] > 0, "{backend:?}: the demo earned no points");
        assert_eq!(before[0], before[2], "{backend:?}: duplicate ledger keys");

        // The outputs go; the sharded pipeline must make them again.
        env.sql_exec(&[
            // Features, profiles and lists live in the lake: forgetting their files in the
            // catalog removes them.
            "DELETE FROM lake_files WHERE dataset IN \
             ('features', 'customer_profiles', 'recommendations')"
                .to_owned(),
            "DELETE FROM point_ledger".to_owned(),
            "DELETE FROM customer_tiers".to_owned(),
            "DELETE FROM watermarks WHERE name LIKE 'points-%'".to_owned(),
        ]);
        env.apply(
            "sharded.toml",
            &format!(
                "[pipeline]\nname = \"sharded\"\n\
                 [[job]]\nname = \"features\"\nkind = \"features\"\nshards = 3\nparams = {{ as_of = \"{as_of}\" }}\n\
                 [[job]]\nname = \"profile\"\nkind = \"profile\"\nshards = 2\nafter = [\"features\"]\nparams = {{ as_of = \"{as_of}\" }}\n\
                 [[job]]\nname = \"recommend\"\nkind = \"recommend\"\nshards = 3\nafter = [\"profile\"]\n\
                 [[job]]\nname = \"points\"\nkind = \"points\"\nshards = 2\n"
            ),
        );
        let daemons: Vec<Daemon> = match backend {
            Backend::Postgres => vec![env.daemon("shard-a"), env.daemon("shard-b")],
            Backend::Sqlite => vec![env.daemon("shard-a")],
        };
        let run = env.json(&["trigger", "sharded", "--param", &format!("as_of={as_of}")])["run_id"]
            .as_i64()
            .unwrap();
        let shown = env.wait_run(run, Duration::from_secs(180));
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        let names: Vec<&str> = shown["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            10,
            "{backend:?}: 3 + 2 + 3 + 2 shards: {names:?}"
        );
        for name in [
            "features:0",
            "features:2",
            "profile:1",
            "recommend:2",
            "points:1",
        ] {
            assert!(names.contains(&name), "{backend:?}: no {name} in {names:?}");
        }
        // Downstream waited for every shard upstream.
        let at = |name: &str, field: &str| {
            chrono::DateTime::parse_from_rfc3339(job(&shown, name)[field].as_str().unwrap())
                .unwrap()
        };
        let finished = |name: &str| at(name, "finished_at");
        let started = |name: &str| at(name, "started_at");
        for f in ["features:0", "features:1", "features:2"] {
            for p in ["profile:0", "profile:1"] {
                assert!(
                    finished(f) <= started(p),
                    "{backend:?}: {p} started before {f} ended"
                );
            }
        }

        // A claim takes one shard of a job and leaves the rest to the other daemons (or to
        // its next claim): no two shards of a job started in the same claim.
        let mut placed: Vec<(String, String, String)> = Vec::new();
        for j in shown["jobs"].as_array().unwrap() {
            let name = j["name"].as_str().unwrap();
            if let Some((base, _)) = name.rsplit_once(':') {
                let first = &j["attempts"][0];
                let claim = (
                    base.to_owned(),
                    first["worker_id"].as_str().unwrap().to_owned(),
                    first["started_at"].as_str().unwrap().to_owned(),
                );
                assert!(
                    !placed.contains(&claim),
                    "{backend:?}: two shards of {base} in one claim: {claim:?}"
                );
                placed.push(claim);
            }
        }
        let workers: std::collections::BTreeSet<&str> =
            placed.iter().map(|(_, w, _)| w.as_str()).collect();
        eprintln!("{backend:?}: shards ran on {workers:?}");

        assert_eq!(
            export(&env, "features").1,
            features,
            "{backend:?}: features differ"
        );
        assert_eq!(
            export(&env, "profiles").1,
            profiles,
            "{backend:?}: profiles differ"
        );
        assert_eq!(
            rounded_recommendations(&export(&env, "recommendations").1),
            rounded_recommendations(&recommendations),
            "{backend:?}: recommendations differ"
        );
        assert_eq!(ledger(&env), before, "{backend:?}: ledger differs");
        // The shards of profile and recommend registered one model version each.
        let shared = env.sql_ints(&format!(
            "SELECT COUNT(*) FROM models WHERE share_key LIKE '{run}.0/%'"
        ));
        assert_eq!(shared, [2], "{backend:?}");

        // A job's name stands for all its shards: logs, and a rerun from it.
        let logs = env.ok(&["logs", &run.to_string(), "--job", "features"]);
        for i in 0..3 {
            assert!(
                logs.contains(&format!("shard {i} of 3")),
                "{backend:?}: no line of shard {i}: {logs}"
            );
        }
        let rerun = env.json(&["rerun", &run.to_string(), "--from", "profile"]);
        let reset = rerun["jobs"].as_array().map_or(0, Vec::len);
        assert_eq!(
            reset, 5,
            "{backend:?}: profile ×2 and recommend ×3: {rerun:#}"
        );
        let shown = env.wait_run(run, Duration::from_secs(180));
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        assert_eq!(
            export(&env, "profiles").1,
            profiles,
            "{backend:?}: rerun profiles differ"
        );
        assert_eq!(
            ledger(&env),
            before,
            "{backend:?}: a rerun changed the ledger"
        );
        drop(daemons);
    }
}

#[test]
fn a_sharded_command_is_told_its_shard_and_its_downstream_waits_for_all() {
    for backend in backends() {
        let env = Env::new(backend);
        let mut text = header("cmd", "");
        text += &sh_job(
            "split",
            &[],
            "echo \"part $PATRON_SHARD_INDEX of $PATRON_SHARD_COUNT\"",
            "shards = 3",
        );
        text += &sh_job("after", &["split"], "echo joined", "");
        env.apply("cmd.toml", &text);
        let _daemon = env.daemon("cmd-a");
        let run = env.trigger("cmd");
        let shown = env.wait_run(run, Duration::from_secs(60));
        assert_eq!(shown["state"], "succeeded", "{backend:?}: {shown:#}");
        let logs = env.ok(&["logs", &run.to_string(), "--job", "split"]);
        for i in 0..3 {
            assert!(
                logs.contains(&format!("part {i} of 3")),
                "{backend:?}: no line of shard {i}: {logs}"
            );
        }
        assert!(!logs.contains("joined"), "{backend:?}: --job split: {logs}");
        let last_shard = ["split:0", "split:1", "split:2"]
            .iter()
            .map(|n| job(&shown, n)["finished_at"].as_str().unwrap().to_owned())
            .map(|t| chrono::DateTime::parse_from_rfc3339(&t).unwrap())
            .max()
            .unwrap();
        let started = chrono::DateTime::parse_from_rfc3339(
            job(&shown, "after")["started_at"].as_str().unwrap(),
        )
        .unwrap();
        assert!(last_shard <= started, "{backend:?}: `after` did not wait");
    }
}
