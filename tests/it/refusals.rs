//! Mistakes are refused by name (issue 13): unknown settings keys, run params no job takes,
//! campaign targets that do not exist, every unknown key of a pipeline file, a cron field out
//! of range, an empty CSV, and an HTTP job's error with its cause.

use std::time::Duration;

use crate::common::{Backend, Env, backends, job};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails with exit 1; returns stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "patron {args:?} should fail:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    stderr(&out)
}

#[test]
fn an_unknown_settings_key_is_named_with_the_file_or_the_variable() {
    let env = Env::new(Backend::Sqlite);
    let settings = env.path("patron.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    // `[scheduler]` is the last table of the test settings.
    std::fs::write(&settings, format!("{text}bogus_key = 1\n")).unwrap();
    let err = refused(&env, &["runs", "list"]);
    assert_eq!(
        err,
        "error: loading settings: unknown setting `scheduler.bogus_key` in patron.toml\n"
    );
    std::fs::write(&settings, &text).unwrap();

    let out = env
        .command(&["runs", "list"])
        .env("PATRON__SCHEDULER__MAX_CONCURENCY", "4")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: loading settings: unknown setting `scheduler.max_concurency` from environment variable PATRON__SCHEDULER__MAX_CONCURENCY (did you mean `max_concurrency`?)\n"
    );

    // A pool is any name.
    let out = env
        .command(&["runs", "list"])
        .env("PATRON__POOLS__WAREHOUSE", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn validate_reports_every_unknown_key_and_misspelt_header_at_its_line() {
    let env = Env::new(Backend::Sqlite);
    let file = env.write(
        "typos.toml",
        "[pipeline]\n\
         name = \"typos\"\n\
         shedule = \"0 0 2 * * *\"\n\
         \n\
         [[job]]\n\
         name = \"a\"\n\
         kind = \"noop\"\n\
         afer = [\"b\"]\n\
         \n\
         [[job]]\n\
         name = \"b\"\n\
         kind = \"noop\"\n",
    );
    let path = file.display().to_string();
    let err = refused(&env, &["pipelines", "validate", &path]);
    assert_eq!(
        err,
        format!(
            "error: {path}:3: unknown key `shedule` in [pipeline] (did you mean `schedule`?)\n\
             error: {path}:8: unknown key `afer` in [[job]] `a` (did you mean `after`?)\n\
             error: 2 problems in pipeline files\n"
        )
    );

    let file = env.write(
        "headers.toml",
        "[pipline]\nname = \"h\"\n\n[[jobs]]\nname = \"a\"\nkind = \"noop\"\n",
    );
    let path = file.display().to_string();
    let err = refused(&env, &["pipelines", "validate", &path]);
    assert!(
        err.contains(&format!(
            "error: {path}:1: unknown table `[pipline]` (did you mean `[pipeline]`?)\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "error: {path}:4: unknown table `[[jobs]]` (did you mean `[[job]]`?)\n"
        )),
        "{err}"
    );
}

#[test]
fn a_bad_cron_field_is_named_with_its_range() {
    let env = Env::new(Backend::Sqlite);
    for (cron, reason) in [
        ("61 * * * *", "minute 61 is outside 0–59"),
        ("0 0 25 * * *", "hour 25 is outside 0–23"),
        ("0 0 32 * *", "day-of-month 32 is outside 1–31"),
        ("0 0 1 13 *", "month 13 is outside 1–12"),
        ("0 0 * * 8", "day-of-week 8 is outside 0–7"),
        ("*/0 * * * *", "minute step `*/0` is 0"),
    ] {
        let file = env.write(
            "cron.toml",
            &format!(
                "[pipeline]\nname = \"c\"\nschedule = \"{cron}\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n"
            ),
        );
        let path = file.display().to_string();
        let err = refused(&env, &["pipelines", "validate", &path]);
        assert!(
            err.starts_with(&format!(
                "error: {path}:3: invalid cron expression `{cron}`: {reason}"
            )),
            "{err}"
        );
    }
}

#[test]
fn trigger_refuses_a_param_no_job_takes() {
    for backend in backends() {
        let env = Env::new(backend);
        env.apply(
            "dated.toml",
            "[pipeline]\nname = \"dated\"\n\
             [[job]]\nname = \"features\"\nkind = \"features\"\n\
             [[job]]\nname = \"ping\"\nkind = \"http\"\nparams = { url = \"http://127.0.0.1:9/\" }\n",
        );
        let err = refused(&env, &["trigger", "dated", "--param", "as_off=2026-01-31"]);
        assert_eq!(
            err,
            "error: no job of pipeline `dated` takes param `as_off` (did you mean `as_of`?); it takes: as_of, url\n",
            "{backend:?}"
        );
        // Nothing was created.
        let runs = env.json(&["runs", "list", "--pipeline", "dated"]);
        assert_eq!(runs.as_array().unwrap().len(), 0, "{backend:?}");
        // What a job takes is accepted.
        let run = env.json(&["trigger", "dated", "--param", "as_of=2026-01-31"]);
        assert_eq!(run["created"], true, "{backend:?}");

        // A pipeline of jobs that read nothing takes nothing; a command job takes anything.
        env.apply(
            "quiet.toml",
            "[pipeline]\nname = \"quiet\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n",
        );
        let err = refused(&env, &["trigger", "quiet", "--param", "as_of=2026-01-31"]);
        assert!(err.contains("it takes no params"), "{err}");
        env.apply(
            "open.toml",
            "[pipeline]\nname = \"open\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n\
             [[job]]\nname = \"export\"\nkind = \"command\"\nparams = { program = \"true\" }\n",
        );
        env.json(&["trigger", "open", "--param", "anything=1"]);
    }
}

#[test]
fn campaign_create_refuses_unknown_segments_and_tiers() {
    for backend in backends() {
        let env = Env::new(backend);
        let campaign = |target: &str| {
            format!(
                "[campaign]\nname = \"c\"\nstarts = \"2026-07-01\"\nends = \"2026-07-31\"\nbudget_points = 100\n[target]\n{target}\n[reward]\nfixed_points = 10\n"
            )
        };
        let file = env.write("champs.toml", &campaign("segments = [\"champs\"]"));
        let err = refused(&env, &["campaign", "create", file.to_str().unwrap()]);
        assert!(
            err.contains("unknown segment `champs`")
                && err.contains("champions, loyal, promising")
                && err.contains(":7:"),
            "{err}"
        );
        let file = env.write("diamond.toml", &campaign("tiers = [\"gold\", \"diamond\"]"));
        let err = refused(&env, &["campaign", "create", file.to_str().unwrap()]);
        assert!(
            err.contains("unknown tier `diamond`")
                && err.contains("bronze, silver, gold, platinum"),
            "{err}"
        );
        assert_eq!(
            env.json(&["campaign", "list"]).as_array().unwrap().len(),
            0,
            "{backend:?}"
        );
        // Labels the segment model gives are accepted before any profile has run, qualified
        // ones too.
        let file = env.write(
            "ok.toml",
            &campaign("segments = [\"at risk\", \"loyal (lower spend)\"]\ntiers = [\"gold\"]"),
        );
        let created = env.json(&["campaign", "create", file.to_str().unwrap()]);
        assert_eq!(created["created"], true, "{backend:?}");
    }
}

const ORDERS_HEADER: &str =
    "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n";

#[test]
fn an_empty_csv_is_refused_as_empty() {
    for backend in backends() {
        let env = Env::new(backend);
        let empty = env.write("empty.csv", "");
        let err = refused(&env, &["ingest", "orders", empty.to_str().unwrap()]);
        assert!(
            err.contains(&format!(
                "{} is empty: a CSV file needs at least its header row",
                empty.display()
            )),
            "{backend:?}: {err}"
        );
        let blank = env.write("blank.csv", "\n\n");
        let err = refused(&env, &["ingest", "orders", blank.to_str().unwrap()]);
        assert!(err.contains("blank.csv is empty"), "{backend:?}: {err}");
        // A header without rows reads nothing, and is no error.
        let header = env.write("header.csv", ORDERS_HEADER);
        let out = env.json(&["ingest", "orders", header.to_str().unwrap()]);
        assert_eq!(out["read"], 0, "{backend:?}");

        // The same through an ingest job.
        env.write("inbox/orders.csv", "");
        env.apply(
            "load.toml",
            "[pipeline]\nname = \"load\"\n[[job]]\nname = \"orders\"\nkind = \"ingest\"\nparams = { entity = \"orders\", path = \"orders.csv\" }\n",
        );
        let _daemon = env.daemon_with(
            "w1",
            &[("PATRON__INGEST__INBOX", env.path("inbox").to_str().unwrap())],
        );
        let run = env.trigger("load");
        let run = env.wait_run(run, Duration::from_secs(60));
        assert_eq!(run["state"], "failed", "{backend:?}: {run:#}");
        let error = job(&run, "orders")["attempts"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("orders.csv is empty"),
            "{backend:?}: {error}"
        );
    }
}

#[test]
fn an_http_job_error_says_the_connection_was_refused() {
    let env = Env::new(Backend::Sqlite);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.apply(
        "ping.toml",
        &format!(
            "[pipeline]\nname = \"ping\"\n[[job]]\nname = \"ping\"\nkind = \"http\"\nparams = {{ url = \"http://127.0.0.1:{port}/health\" }}\n"
        ),
    );
    let _daemon = env.daemon("w1");
    let run = env.trigger("ping");
    let run = env.wait_run(run, Duration::from_secs(60));
    assert_eq!(run["state"], "failed", "{run:#}");
    let error = job(&run, "ping")["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.starts_with(&format!(
            "GET http://127.0.0.1:{port}/health: connection refused by 127.0.0.1 ("
        )),
        "{error}"
    );
}
