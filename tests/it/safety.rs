//! Operator safety (issue 13) through the binary: the demo never wipes a database, unknown
//! ids are errors, big manual adjustments must be confirmed, every failure is one
//! `error: …` line with exit code 1, and `init`, `migrate` and `completions` say what they do.

use std::process::Output;

use patron::{
    config::LoyaltySettings,
    console::actions::{Action, Reply, perform_with},
    db::{self, repo::pipelines::SpecCache},
};
use serde_json::Value;

use crate::common::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the error contract: exit 1, nothing on stdout, and stderr one `error: …` line.
#[track_caller]
fn one_error(out: &Output, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit {:?}\nstderr: {err}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout not empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line:\n{err}");
    assert!(lines[0].starts_with("error: "), "{what}: {err}");
    lines[0].to_owned()
}

/// A small shop: customers C1 and C2 (C3 only in an order), pipeline `p`, and a queued run 1.
fn small_shop(env: &Env) {
    env.write(
        "customers.csv",
        "customer_id,signup_at,region\nC1,2024-01-01,east\nC2,2024-01-01,west\n",
    );
    env.ok(&[
        "ingest",
        "customers",
        env.path("customers.csv").to_str().unwrap(),
    ]);
    env.write(
        "orders.csv",
        "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\nO1,C3,P1,1,5.00,2025-01-01,paid\n",
    );
    env.ok(&["ingest", "orders", env.path("orders.csv").to_str().unwrap()]);
    env.apply(
        "p.toml",
        "[pipeline]\nname = \"p\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n",
    );
    assert_eq!(env.trigger("p"), 1);
}

fn demo_args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "demo",
        "--customers",
        "60",
        "--products",
        "80",
        "--orders-per-customer",
        "3",
        "--dir",
        dir,
    ];
    args.extend_from_slice(extra);
    args
}

fn ledger_keys(env: &Env, url_flag: &[&str], customer: &str) -> Vec<String> {
    let mut args = url_flag.to_vec();
    args.extend(["points", "history", customer]);
    env.json(&args)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_second_demo_reuses_its_database_and_only_fresh_starts_over() {
    // The README's first command: `demo` on its own SQLite file in DIR (no database set).
    let env = Env::new(Backend::Sqlite);
    let dir = env.path("d");
    let dir = dir.to_str().unwrap();
    let demo = |extra: &[&str]| {
        env.command(&[&demo_args(dir, extra)[..], &["--json"]].concat())
            .env_remove("PATRON__DATABASE__URL")
            .output()
            .unwrap()
    };
    let json = |out: &Output| -> Value {
        assert!(out.status.success(), "demo failed: {}", stderr(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = json(&demo(&[]));
    assert_eq!(first["database_state"], "new", "{first:#}");
    assert_eq!(first["run"]["state"], "succeeded");

    // What someone did with it: a campaign, an adjustment, an audit trail.
    let url = format!("sqlite://{dir}/patron.db?mode=rwc");
    let flag = ["--database-url", url.as_str()];
    env.ok(&[
        &flag[..],
        &["points", "adjust", "C000001", "7", "--reason", "keep me"],
    ]
    .concat());
    env.write(
        "c.toml",
        "[campaign]\nname = \"mine\"\nstarts = \"2026-01-01\"\nends = \"2026-12-31\"\nbudget_points = 100\n[reward]\nfixed_points = 5\n",
    );
    env.ok(&[
        &flag[..],
        &["campaign", "create", env.path("c.toml").to_str().unwrap()],
    ]
    .concat());
    let keys = ledger_keys(&env, &flag, "C000001");
    let stats = env.json(&[&flag[..], &["stats"]].concat());

    // The second run reuses all of it: nothing is lost, nothing is loaded twice.
    let second = json(&demo(&[]));
    assert_eq!(second["database_state"], "reused", "{second:#}");
    assert_eq!(second["run"]["state"], "succeeded");
    assert_eq!(second["run"]["id"], 2, "the nightly ran again as run 2");
    assert_eq!(ledger_keys(&env, &flag, "C000001"), keys);
    assert_eq!(
        env.json(&[&flag[..], &["stats"]].concat())["rows"],
        stats["rows"]
    );
    let campaigns = env.json(&[&flag[..], &["campaign", "list"]].concat());
    assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns:#}");
    let pipelines: Vec<bool> = second["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["changed"].as_bool().unwrap())
        .collect();
    assert_eq!(
        pipelines,
        [false, false],
        "unchanged pipelines are not stored again"
    );

    // Another shop in the same folder is refused, naming --fresh; nothing changes.
    let other = demo(&["--seed", "43"]);
    let line = one_error(&other, "demo of another shop");
    assert!(
        line.contains("--fresh") && line.contains("--seed 42"),
        "{line}"
    );
    assert_eq!(ledger_keys(&env, &flag, "C000001"), keys);

    // --fresh is the one way to start over, and says so.
    let fresh = json(&demo(&["--fresh"]));
    assert_eq!(fresh["database_state"], "new");
    assert_eq!(fresh["run"]["id"], 1);
    let campaigns = env.json(&[&flag[..], &["campaign", "list"]].concat());
    assert!(campaigns.as_array().unwrap().is_empty());
}

#[test]
fn demo_on_a_database_it_did_not_make_refuses_unless_forced_and_installs_no_cron_pipeline() {
    for backend in backends() {
        // An empty database becomes a demo database, and a second demo reuses it.
        let env = Env::new(backend);
        let dir = env.path("d");
        let dir = dir.to_str().unwrap();
        let first = env.json(&demo_args(dir, &[]));
        assert_eq!(first["database_state"], "new", "{backend:?}");
        env.ok(&["points", "adjust", "C000002", "3", "--reason", "keep me"]);
        let keys = ledger_keys(&env, &[], "C000002");
        let second = env.json(&demo_args(dir, &[]));
        assert_eq!(second["database_state"], "reused", "{backend:?}");
        assert_eq!(ledger_keys(&env, &[], "C000002"), keys);
        assert!(keys.iter().any(|k| k.starts_with("adjust:")), "{keys:?}");
        let out = env.run(&demo_args(dir, &["--fresh"]));
        let line = one_error(&out, "--fresh on --database-url");
        assert!(line.contains("does not empty"), "{line}");

        // Someone's database: refused, naming --force; nothing is added.
        let env = Env::new(backend);
        env.apply(
            "mine.toml",
            "[pipeline]\nname = \"mine\"\n[[job]]\nname = \"a\"\nkind = \"noop\"\n",
        );
        let out = env.run(&demo_args(dir, &[]));
        let line = one_error(&out, "demo on someone's database");
        assert!(
            line.contains("not a demo database") && line.contains("--force"),
            "{line}"
        );
        let names = |env: &Env| -> Vec<(String, Value)> {
            env.json(&["pipelines", "list"])
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["schedule"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(names(&env), [("mine".to_owned(), Value::Null)]);

        // --force: the shop goes through `demo-nightly`, which has no schedule; no cron
        // pipeline (nightly, feedback, win-back) is installed, and stdout says so.
        let out = env.run(&demo_args(dir, &["--force"]));
        assert!(out.status.success(), "{backend:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("not installed: the cron pipelines") && text.contains("demo-nightly"),
            "{text}"
        );
        let forced = env.json(&demo_args(dir, &["--force"]));
        assert_eq!(forced["database_state"], "forced");
        assert_eq!(forced["cron_pipelines_installed"], false);
        assert_eq!(forced["run"]["pipeline"], "demo-nightly");
        assert_eq!(forced["run"]["state"], "succeeded");
        assert_eq!(
            names(&env),
            [
                ("demo-nightly".to_owned(), Value::Null),
                ("mine".to_owned(), Value::Null)
            ]
        );
        // A forced demo does not make it a demo database: the next one is refused again.
        let out = env.run(&demo_args(dir, &[]));
        one_error(&out, "demo after a forced one");
    }
}

#[test]
fn unknown_ids_are_errors_everywhere() {
    for backend in backends() {
        let env = Env::new(backend);
        small_shop(&env);
        for (args, expected) in [
            (
                &["points", "balance", "NOSUCH"][..],
                "unknown customer NOSUCH",
            ),
            (&["points", "history", "NOSUCH"], "unknown customer NOSUCH"),
            (
                &["points", "adjust", "NOSUCH", "5", "--reason", "x"],
                "unknown customer NOSUCH",
            ),
            (&["recommend", "NOSUCH"], "unknown customer NOSUCH"),
            (
                &["recommend", "'; DROP TABLE runs; --"],
                "unknown customer '; DROP TABLE runs; --",
            ),
            (
                &["logs", "1", "--job", "nosuch"],
                "unknown job nosuch in run 1",
            ),
            (&["logs", "1", "--job", "%"], "unknown job % in run 1"),
            (&["logs", "999999"], "unknown run 999999"),
            (&["runs", "show", "999999"], "unknown run 999999"),
            (&["rerun", "999999"], "unknown run 999999"),
            (&["cancel", "999999"], "unknown run 999999"),
            (&["campaign", "show", "999"], "unknown campaign 999"),
            (&["campaign", "preview", "999"], "unknown campaign 999"),
            (
                &["campaign", "launch", "999", "--yes"],
                "unknown campaign 999",
            ),
            (&["campaign", "cancel", "999"], "unknown campaign 999"),
            (&["models", "show", "999"], "unknown model 999"),
            (&["models", "show", "nosuch"], "unknown model kind nosuch"),
            (
                &["quarantine", "show", "999"],
                "unknown quarantined row 999",
            ),
            (&["pipelines", "show", "nosuch"], "unknown pipeline nosuch"),
            (&["pipelines", "graph", "nosuch"], "unknown pipeline nosuch"),
            (&["pipelines", "pause", "nosuch"], "unknown pipeline nosuch"),
            (&["trigger", "nosuch"], "unknown pipeline nosuch"),
            (
                &["runs", "list", "--pipeline", "nosuch"],
                "unknown pipeline nosuch",
            ),
        ] {
            let line = one_error(&env.run(args), &format!("{backend:?} {args:?}"));
            assert_eq!(line, format!("error: {expected}"), "{backend:?} {args:?}");
        }
        // Known customers: from `customers`, or only from an order.
        for customer in ["C1", "C3"] {
            let b = env.json(&["points", "balance", customer]);
            assert_eq!(b["balance"], 0, "{backend:?} {b:#}");
            assert!(
                env.json(&["points", "history", customer])
                    .as_array()
                    .unwrap()
                    .is_empty()
            );
            let r = env.json(&["recommend", customer]);
            assert!(r["recommendations"].as_array().unwrap().is_empty());
        }
        assert!(
            env.json(&["logs", "1", "--job", "a"])
                .as_array()
                .unwrap()
                .is_empty()
        );
        // A model kind with no champion yet says so, rather than "unknown".
        let line = one_error(&env.run(&["models", "show", "churn"]), "models show churn");
        assert!(
            line.contains("no champion model of kind churn yet"),
            "{line}"
        );
    }
}

#[test]
fn big_or_overdrawing_adjustments_need_yes_in_the_cli_and_a_yes_in_the_console() {
    for backend in backends() {
        let env = Env::new(backend);
        small_shop(&env);
        env.ok(&["points", "adjust", "C1", "500", "--reason", "welcome"]);
        let balance = |c: &str| {
            env.json(&["points", "balance", c])["balance"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(balance("C1"), 500);
        for (points, why) in [
            (
                "-999999",
                "is more than loyalty.adjust_confirm_points (10000)",
            ),
            ("-501", "from 500 to -1"),
            ("10001", "+10001 points is more than"),
        ] {
            let out = env.run(&["points", "adjust", "C1", points, "--reason", "typo"]);
            let line = one_error(&out, &format!("adjust {points}"));
            assert!(line.contains("--yes") && line.contains(why), "{line}");
        }
        assert_eq!(balance("C1"), 500, "a refused adjustment writes nothing");
        // Within the limit and the balance: no question.
        env.ok(&[
            "points",
            "adjust",
            "C1",
            "-500",
            "--reason",
            "spent in store",
        ]);
        assert_eq!(balance("C1"), 0);
        // Confirmed: written, and the audit row says it was confirmed and why.
        let done = env.json(&[
            "points", "adjust", "C1", "-20000", "--reason", "fraud", "--yes",
        ]);
        assert_eq!(done["balance"]["balance"], -20000);
        let audit = env.json(&["audit", "list"]);
        let details = &audit[0]["details"];
        assert_eq!(audit[0]["action"], "points adjust");
        assert_eq!(details["confirmed"], true, "{audit:#}");
        assert_eq!(details["via"], "cli");
        assert!(
            details["confirmed_because"]
                .as_str()
                .unwrap()
                .contains("adjust_confirm_points"),
            "{details:#}"
        );
        // The setting moves the limit.
        let strict =
            Env::new(Backend::Sqlite).with_env("PATRON__LOYALTY__ADJUST_CONFIRM_POINTS", "100");
        small_shop(&strict);
        one_error(
            &strict.run(&["points", "adjust", "C2", "150", "--reason", "x"]),
            "adjust beyond a limit of 100",
        );
        strict.ok(&["points", "adjust", "C2", "100", "--reason", "x"]);

        // The console: unconfirmed, it comes back as a question and writes nothing; confirmed,
        // it is written and audited as confirmed, from the console.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = rt.block_on(db::connect(&env.db.url, 2)).unwrap();
        let lake = env.lake(db.clone());
        let specs = SpecCache::default();
        let loyalty = LoyaltySettings::default();
        let adjust = |points: i64, confirmed: bool| Action::Adjust {
            customer: "C2".to_owned(),
            points,
            reason: "console".to_owned(),
            confirmed,
        };
        let reply = rt
            .block_on(perform_with(
                &db,
                &specs,
                &loyalty,
                Some(&lake),
                &adjust(-50_000, false),
            ))
            .unwrap();
        let Reply::Confirm { question, action } = reply else {
            panic!("{backend:?}: no question: {reply:?}");
        };
        assert!(
            question.contains("Adjust C2 by -50000 points?"),
            "{question}"
        );
        assert!(question.contains("from 0 to -50000"), "{question}");
        assert_eq!(action, adjust(-50_000, true));
        assert_eq!(balance("C2"), 0);
        let reply = rt
            .block_on(perform_with(&db, &specs, &loyalty, Some(&lake), &action))
            .unwrap();
        assert!(
            matches!(&reply, Reply::Done(t) if t.contains("balance -50000")),
            "{reply:?}"
        );
        let reply = rt
            .block_on(perform_with(
                &db,
                &specs,
                &loyalty,
                Some(&lake),
                &adjust(20, false),
            ))
            .unwrap();
        assert!(
            matches!(reply, Reply::Done(_)),
            "small ones need no question"
        );
        assert_eq!(balance("C2"), -49_980);
        let audit = env.json(&["audit", "list"]);
        let confirmed = audit
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["details"]["points"] == -50_000)
            .unwrap();
        assert_eq!(confirmed["details"]["via"], "console");
        assert_eq!(confirmed["details"]["confirmed"], true);
        let err = rt
            .block_on(perform_with(
                &db,
                &specs,
                &loyalty,
                Some(&lake),
                &Action::Adjust {
                    customer: "NOSUCH".to_owned(),
                    points: 5,
                    reason: "x".to_owned(),
                    confirmed: false,
                },
            ))
            .unwrap_err();
        assert_eq!(err, "unknown customer NOSUCH");
    }
}

#[test]
fn failing_commands_print_error_lines_on_stderr_and_exit_1() {
    let env = Env::new(Backend::Sqlite);
    small_shop(&env);
    let campaign = env.write(
        "bad-campaign.toml",
        "[campaign]\nname = \"x\"\nstarts = \"someday\"\nends = \"2026-12-31\"\nbudget_points = 100\n[reward]\nfixed_points = -5\n",
    );
    let pipeline = env.write(
        "bad-pipeline.toml",
        "[pipeline]\nname = \"q\"\nschedule = \"61 * * * *\"\n[[job]]\nname = \"a\"\nkind = \"nosuchkind\"\n",
    );
    // More than 5% of its rows unreadable: the file is rejected.
    let rejected = env.write(
        "rejected.csv",
        "customer_id,signup_at,region\nC8,2024-01-01,east\nC9,2024-01-01\nC10,2024-01-01\n",
    );
    let mapping = env.write("bad-mapping.toml", "[columns]\ncustomer_id = 5\n");
    let customers = env.path("customers.csv");
    let settings = env.write("broken.toml", "[scheduler\nmax_concurrency = 4\n");
    let (campaign, pipeline, rejected, mapping, customers, settings) = (
        campaign.to_str().unwrap(),
        pipeline.to_str().unwrap(),
        rejected.to_str().unwrap(),
        mapping.to_str().unwrap(),
        customers.to_str().unwrap(),
        settings.to_str().unwrap(),
    );
    // (arguments, a part of the reason, whether it reports several problems as FILE:LINE lines)
    let table: &[(&[&str], &str, bool)] = &[
        (
            &["campaign", "create", campaign],
            &format!("error: {campaign}:3: "),
            true,
        ),
        (
            &["pipelines", "validate", pipeline],
            &format!("error: {pipeline}:3: "),
            true,
        ),
        (
            &["pipelines", "apply", pipeline],
            &format!("error: {pipeline}:"),
            true,
        ),
        (&["ingest", "customers", rejected], "rejected", false),
        (
            &["ingest", "customers", customers, "--mapping", mapping],
            &format!("error: {mapping}"),
            true,
        ),
        (
            &["ingest", "customers", "/nonexistent.csv"],
            "no such file",
            false,
        ),
        (
            &["points", "balance", "NOSUCH"],
            "unknown customer NOSUCH",
            false,
        ),
        (
            &["points", "adjust", "C1", "-5", "--reason", "x"],
            "--yes",
            false,
        ),
        (
            &["points", "adjust", "C1", "0", "--reason", "x"],
            "non-zero",
            false,
        ),
        (&["runs", "show", "999"], "unknown run 999", false),
        (&["runs", "show", "abc"], "invalid value 'abc'", false),
        (
            &["runs"],
            "`patron runs` needs a subcommand: list, show",
            false,
        ),
        (
            &["frobnicate"],
            "unrecognized subcommand 'frobnicate'",
            false,
        ),
        (
            &["runs", "show"],
            "required arguments were not provided: <RUN>",
            false,
        ),
        (&["completions", "tcsh"], "invalid value 'tcsh'", false),
        (&["init"], "already exists", false),
        (
            &["--config", "/nonexistent/patron.toml", "runs", "list"],
            "does not exist",
            false,
        ),
        (
            &["--config", settings, "runs", "list"],
            "TOML parse error",
            false,
        ),
        (
            &[
                "backfill",
                "p",
                "--from",
                "2026-03-02",
                "--to",
                "2026-03-01",
            ],
            "is before",
            false,
        ),
        (
            &["export", "features", "--out", "f.csv"],
            "no features are stored yet",
            false,
        ),
    ];
    for (args, reason, several) in table {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {:?}\n{err}",
            out.status
        );
        // `ingest` prints its report of the file on stdout before it fails.
        assert!(
            out.stdout.is_empty() || args[0] == "ingest",
            "{args:?}: stdout {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let lines: Vec<&str> = err.lines().collect();
        assert!(!lines.is_empty(), "{args:?}: nothing on stderr");
        assert!(
            lines.iter().all(|l| l.starts_with("error: ")),
            "{args:?}: a line without `error: `:\n{err}"
        );
        assert!(
            !err.contains("\n\n") && !err.contains("  |"),
            "{args:?}:\n{err}"
        );
        assert!(err.contains(reason), "{args:?}: no {reason:?} in:\n{err}");
        if *several {
            // Each problem on its own `error: FILE:LINE: reason` line (a count may follow).
            let file_lines = lines
                .iter()
                .filter(|l| {
                    l.split(": ").nth(1).is_some_and(|loc| {
                        loc.rsplit_once(':')
                            .is_some_and(|(_, n)| n.parse::<u32>().is_ok())
                    })
                })
                .count();
            assert!(file_lines >= 1, "{args:?}: no FILE:LINE line in:\n{err}");
        } else {
            assert_eq!(lines.len(), 1, "{args:?}: not one line:\n{err}");
        }
    }
    // A PostgreSQL error is said once, without the server's source line (`at line 948`).
    if let Ok(admin) = std::env::var("PATRON_TEST_DATABASE_URL")
        && !admin.is_empty()
    {
        let url = match admin.split_once('?') {
            Some((base, query)) => format!(
                "{}/patron_no_such_database?{query}",
                &base[..base.rfind('/').unwrap()]
            ),
            None => format!(
                "{}/patron_no_such_database",
                &admin[..admin.rfind('/').unwrap()]
            ),
        };
        let line = one_error(
            &env.run(&["--database-url", &url, "runs", "list"]),
            "a database that does not exist",
        );
        assert!(line.contains("does not exist"), "{line}");
        assert!(!line.contains(" at line "), "{line}");
        assert_eq!(line.matches("does not exist").count(), 1, "{line}");
    }
    // The two bad lines of the campaign file are two lines of stderr.
    let err = stderr(&env.run(&["campaign", "create", campaign]));
    assert!(err.contains(&format!("error: {campaign}:3: ")), "{err}");
    assert!(err.contains(&format!("error: {campaign}:7: ")), "{err}");
}

#[test]
fn init_migrate_and_completions_say_what_they_did() {
    let env = Env::new(Backend::Sqlite);
    // Every section of the settings, [loyalty] included, with its keys commented out.
    let path = env.path("fresh.toml");
    let p = path.to_str().unwrap();
    env.ok(&["--config", p, "init"]);
    let text = std::fs::read_to_string(&path).unwrap();
    for section in [
        "[database]",
        "[scheduler]",
        "[daemon]",
        "[pipelines]",
        "[ingest]",
        "[sentiment]",
        "[loyalty]",
        "[notify]",
        "[pools]",
        "[log]",
    ] {
        assert!(text.lines().any(|l| l == section), "no {section}:\n{text}");
    }
    assert!(text.contains("#adjust_confirm_points = 10000"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains(" = ") && !l.starts_with('#')),
        "a key is not commented out:\n{text}"
    );
    // Uncommenting every key changes nothing: the settings load, and the database is found.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, &uncommented).unwrap();

    let first = env.json(&["--config", p, "migrate"]);
    let applied: Vec<&str> = first["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        applied.first(),
        Some(&"m20261128_000001_scheduler"),
        "{first:#}"
    );
    assert!(applied.len() >= 11, "{first:#}");
    let again = env.json(&["--config", p, "migrate"]);
    assert_eq!(again["applied"], serde_json::json!([]));
    let human = env.ok(&["--config", p, "migrate"]);
    assert!(human.contains("already up to date"), "{human}");

    for shell in ["bash", "zsh", "fish"] {
        let out = env.ok(&["completions", shell]);
        assert!(out.contains("patron"), "{shell}: {out}");
        assert!(
            out.contains("adjust") && out.contains("fresh"),
            "{shell}: {out}"
        );
    }
}
