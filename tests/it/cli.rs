//! The CLI without a daemon: validation, apply, listing, pause, trigger, cancel, errors.

use serde_json::Value;

use crate::common::*;

const TWO_JOBS: &str = "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n[[job]]\nname = \"b\"\nkind = \"noop\"\nafter = [\"a\"]\n";

#[test]
fn validate_prints_file_line_reason_and_fails() {
    let env = Env::new(Backend::Sqlite);
    let bad = env.write(
        "bad.toml",
        "[pipeline]\nname = \"p\"\nschedule = \"0 0 25 * * *\"\ntimezone = \"Nowhere/City\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\nafter = [\"b\"]\n[[job]]\nname = \"b\"\nkind = \"noop\"\nafter = [\"a\"]\n[[job]]\nname = \"b\"\nkind = \"http\"\nparams = { url = 42 }\ntimeout = \"soon\"\n",
    );
    let out = env.run(&["pipelines", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    for expected in [
        format!("{file}:3: invalid cron expression `0 0 25 * * *`"),
        format!("{file}:4: unknown time zone `Nowhere/City`"),
        format!("{file}:14: duplicate job name `b` (first defined on line 10)"),
        format!("{file}:16: bad params for kind `http`"),
        format!("{file}:17: bad timeout `soon`"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }

    let cyclic = env.write(
        "cyclic.toml",
        &TWO_JOBS.replace(
            "name = \"a\"\nkind = \"noop\"\n",
            "name = \"a\"\nkind = \"noop\"\nafter = [\"b\"]\n",
        ),
    );
    let out = env.run(&["pipelines", "validate", cyclic.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let message = json["problems"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("dependency cycle: "), "{message}");
    assert!(
        message.contains("a -> b") || message.contains("b -> a"),
        "{message}"
    );
}

#[test]
fn every_default_pipeline_in_jobs_is_valid() {
    let jobs = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipelines");
    let env = Env::new(Backend::Sqlite);
    let json = env.json(&["pipelines", "validate", jobs, examples]);
    assert_eq!(json["ok"], true);
    assert!(
        json["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "nightly")
    );
}

#[test]
fn apply_list_show_graph_pause_resume() {
    for backend in backends() {
        let env = Env::new(backend);
        let path = env.write(
            "jobs/p.toml",
            &TWO_JOBS.replace(
                "name = \"p\"\n",
                "name = \"p\"\nschedule = \"0 30 2 * * *\"\ntimezone = \"Europe/Berlin\"\n",
            ),
        );
        let applied = env.json(&["pipelines", "apply", path.to_str().unwrap()]);
        assert_eq!(applied[0]["name"], "p");
        assert_eq!(applied[0]["version"], 1);
        assert_eq!(applied[0]["changed"], true);
        // Applying the same file again stores nothing new; `apply` alone reads ./jobs.
        let again = env.json(&["pipelines", "apply"]);
        assert_eq!(again[0]["changed"], false);
        assert_eq!(again[0]["version"], 1);

        let list = env.json(&["pipelines", "list"]);
        assert_eq!(list[0]["name"], "p");
        assert_eq!(list[0]["version"], 1);
        assert_eq!(list[0]["schedule"], "0 30 2 * * *");
        assert_eq!(list[0]["paused"], false);

        let show = env.json(&["pipelines", "show", "p"]);
        assert_eq!(show["spec"]["jobs"][1]["after"][0], "a");
        let graph = env.ok(&["pipelines", "graph", "p"]);
        assert_eq!(graph, "a\n└─> b\n");

        let paused = env.json(&["pipelines", "pause", "p"]);
        assert_eq!(paused["changed"], true);
        assert_eq!(env.json(&["pipelines", "list"])[0]["paused"], true);
        assert_eq!(env.json(&["pipelines", "pause", "p"])["changed"], false);
        env.ok(&["pipelines", "resume", "p"]);
        assert_eq!(env.json(&["pipelines", "list"])[0]["paused"], false);

        // A changed file becomes version 2.
        std::fs::write(
            &path,
            std::fs::read_to_string(&path).unwrap() + "\n# edited\n",
        )
        .unwrap();
        assert_eq!(env.json(&["pipelines", "apply"])[0]["version"], 2);

        let audit = env.json(&["audit", "list"]);
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "pipelines.apply",
                "pipelines.resume",
                "pipelines.pause",
                "pipelines.apply"
            ],
            "{backend:?}"
        );
    }
}

#[test]
fn trigger_and_cancel_work_without_a_daemon() {
    for backend in backends() {
        let env = Env::new(backend);
        // `features` reads the run's `as_of` (a noop pipeline would refuse the param).
        env.apply(
            "p.toml",
            &TWO_JOBS.replace("\"b\"\nkind = \"noop\"", "\"b\"\nkind = \"features\""),
        );
        let trig = env.json(&["trigger", "p", "--param", "as_of=2026-01-31", "--key", "k1"]);
        let run = trig["run_id"].as_i64().unwrap();
        assert_eq!(trig["created"], true);
        // The same key makes no second run.
        let again = env.json(&["trigger", "p", "--key", "k1"]);
        assert_eq!(again["run_id"].as_i64(), Some(run));
        assert_eq!(again["created"], false);

        let shown = env.show(run);
        assert_eq!(shown["state"], "queued");
        assert_eq!(shown["pipeline"], "p");
        assert_eq!(shown["params"]["as_of"], "2026-01-31");
        assert_eq!(shown["jobs"].as_array().unwrap().len(), 2);
        assert_eq!(job(&shown, "a")["state"], "waiting");

        let listed = env.json(&["runs", "list", "--pipeline", "p", "--state", "queued"]);
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert!(listed[0].get("jobs").is_none());

        let cancelled = env.json(&["cancel", &run.to_string()]);
        assert_eq!(cancelled["state"], "cancelled");
        let shown = env.show(run);
        assert_eq!(shown["state"], "cancelled");
        assert_eq!(job(&shown, "b")["state"], "cancelled");

        // Cancelling twice, or re-running what is not finished, fails with a reason.
        let out = env.run(&["cancel", &run.to_string()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("already cancelled"));
        let queued = env.trigger("p");
        let out = env.run(&["rerun", &queued.to_string()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("is still queued"));

        // A cancelled run can be rerun; it is queued again.
        let rerun = env.json(&["rerun", &run.to_string()]);
        assert_eq!(rerun["jobs"].as_array().unwrap().len(), 2);
        assert_eq!(env.show(run)["state"], "queued");
        assert_eq!(env.show(run)["reruns"], 1);
    }
}

#[test]
fn errors_are_one_line_with_a_reason() {
    let env = Env::new(Backend::Sqlite);
    let out = env.run(&["runs", "show", "999"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "error: unknown run 999");
    let out = env.run(&["trigger", "nope"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: unknown pipeline nope"
    );
}

#[test]
fn init_writes_a_commented_file_and_settings_layer() {
    let env = Env::new(Backend::Sqlite);
    let path = env.path("custom.toml");
    let p = path.to_str().unwrap();
    env.ok(&["--config", p, "init"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# Precedence"));
    let out = env.run(&["--config", p, "init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // The file's URL loses to PATRON__DATABASE__URL (set by the harness), which loses to the flag.
    std::fs::write(
        &path,
        text.replace(
            "#url = \"sqlite://patron.db?mode=rwc\"",
            "url = \"sqlite://from-file.db?mode=rwc\"",
        ),
    )
    .unwrap();
    env.ok(&["--config", p, "migrate"]);
    assert!(!env.path("from-file.db").exists());
    assert!(env.path("patron.db").exists());
    let flag_url = format!(
        "sqlite://{}/from-flag.db?mode=rwc",
        env.dir.path().display()
    );
    env.ok(&["--config", p, "--database-url", &flag_url, "migrate"]);
    assert!(env.path("from-flag.db").exists());
    // Without the env variable, the file wins over the default.
    let out = std::process::Command::new(BIN)
        .args(["--config", p, "migrate"])
        .current_dir(env.dir.path())
        .env_remove("PATRON__DATABASE__URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.path("from-file.db").exists());
}

#[test]
fn backfill_creates_one_run_per_tick_once() {
    for backend in backends() {
        let env = Env::new(backend);
        // 02:30 every day in Berlin, across the 2026-03-29 spring-forward (02:30 is skipped
        // that day and fires at 03:00 CEST = 01:00 UTC).
        env.apply(
            "daily.toml",
            &TWO_JOBS.replace(
                "name = \"p\"\n",
                "name = \"p\"\nschedule = \"0 30 2 * * *\"\ntimezone = \"Europe/Berlin\"\n",
            ),
        );
        let out = env.json(&[
            "backfill",
            "p",
            "--from",
            "2026-03-28",
            "--to",
            "2026-03-30",
        ]);
        let keys: Vec<&str> = out["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        assert!(
            out["runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["created"] == true)
        );
        let again = env.json(&[
            "backfill",
            "p",
            "--from",
            "2026-03-29",
            "--to",
            "2026-03-31",
        ]);
        let created: Vec<bool> = again["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["created"].as_bool().unwrap())
            .collect();
        assert_eq!(created, [false, false, true]);
        let runs = env.json(&["runs", "list", "--limit", "100"]);
        assert_eq!(runs.as_array().unwrap().len(), 4);
        assert!(
            runs.as_array()
                .unwrap()
                .iter()
                .all(|r| r["trigger"] == "backfill")
        );
        let out = env.run(&[
            "backfill",
            "p",
            "--from",
            "2026-03-30",
            "--to",
            "2026-03-01",
        ]);
        assert_eq!(out.status.code(), Some(1));
    }
}

#[test]
fn concurrent_migrations_on_a_fresh_database_all_succeed() {
    for backend in backends() {
        let env = Env::new(backend);
        let children: Vec<_> = (0..3)
            .map(|_| {
                env.command(&["migrate"])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{backend:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
