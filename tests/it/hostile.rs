//! Bad input, tried on purpose, on SQLite and PostgreSQL: SQL-looking strings, LIKE
//! wildcards, quotes, backslashes, very long strings and unicode in every id and filter
//! argument are data, never SQL (a normal empty result or one clean `error:` line, the tables
//! intact, `%` and `_` matching only themselves); and hostile input files are refused by
//! line and reason without losing what was stored before them.

use std::{collections::BTreeMap, process::Output};

use chrono::Utc;
use patron::{
    console::data::{self, LoadFailure, Request, RunQuery, Snapshot},
    db::{self, repo, repo::pipelines::SpecCache},
};
use serde_json::Value;

use crate::common::*;

/// What users and attackers type. No NUL here: a command line cannot carry one (files and
/// the console's filter get NULs below).
fn hostile() -> Vec<String> {
    let mut out: Vec<String> = [
        "'; DROP TABLE runs; --",
        "\"; DROP TABLE runs; --",
        "' OR '1'='1",
        "1 OR 1=1",
        "%",
        "_",
        "%%",
        "C%",
        "C_1%",
        "h%stile-p",
        "h_stile_p",
        "\\",
        "\\%",
        "a\\",
        "'",
        "\"",
        "''",
        "`",
        ";",
        "--",
        "/*",
        "$1",
        "?",
        "客户🙂",
        "\u{202e}C1",
        "C\u{200b}1",
        "Ｃ1",
        "C1\n",
        " C1",
        "-",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.push("x".repeat(20_000));
    out.push("%_".repeat(5_000));
    out
}

/// Words databases use when they fail, that must never reach a user.
const SQL_ERROR_WORDS: &[&str] = &[
    "syntax error",
    "SQLSTATE",
    "sqlx",
    "DbErr",
    "unrecognized token",
    "Execution Error",
    "error returned from database",
    "escape",
    "panicked",
    "RUST_BACKTRACE",
];

/// Asserts `out` is either a success whose JSON `empty` accepts, or a clean refusal: a
/// non-zero exit (1, or clap's 2 for a value of the wrong type) whose first stderr line is
/// `error: …`, with no database error text and no panic.
fn data_not_sql(args: &[&str], out: &Output, empty: impl Fn(&Value) -> bool) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown: Vec<String> = args.iter().map(|a| a.chars().take(40).collect()).collect();
    for word in SQL_ERROR_WORDS {
        assert!(
            !stderr.contains(word) && !stdout.contains(word),
            "patron {shown:?} leaked `{word}`:\nstdout: {stdout}\nstderr: {stderr}"
        );
    }
    match out.status.code() {
        Some(0) => {
            let v: Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("patron {shown:?}: not JSON ({e}): {stdout}"));
            assert!(empty(&v), "patron {shown:?} found something: {v:#}");
        }
        Some(1) => {
            assert!(stderr.starts_with("error: "), "patron {shown:?}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{shown:?}: {stderr}");
        }
        Some(2) => assert!(stderr.starts_with("error: "), "patron {shown:?}: {stderr}"),
        other => panic!("patron {shown:?} exited {other:?}: {stderr}"),
    }
}

/// Whether a command's JSON is its normal empty result.
type Empty = fn(&Value) -> bool;

fn is_empty_array(v: &Value) -> bool {
    v.as_array().is_some_and(Vec::is_empty)
}

/// Row counts of the tables the commands read, to show they are intact.
fn counts(env: &Env) -> BTreeMap<&'static str, i64> {
    [
        "pipelines",
        "runs",
        "job_runs",
        "attempts",
        "customers",
        "orders",
        "quarantine",
        "point_ledger",
        "recommendations",
        "models",
        "campaigns",
        "audit_log",
    ]
    .into_iter()
    .map(|t| {
        let sql = format!("SELECT COUNT(*) FROM {t}");
        // Customers, orders and recommendations live in the lake.
        let n = if matches!(t, "customers" | "orders" | "recommendations") {
            env.lake_ints(&sql)
        } else {
            env.sql_ints(&sql)
        };
        (t, n[0])
    })
    .collect()
}

const PIPELINE: &str = r#"
[pipeline]
name = "h_stile-p"

[[job]]
name = "a_b"
kind = "command"
params = { program = "sh", args = ["-c", "echo from a_b"] }

[[job]]
name = "aXb"
kind = "command"
params = { program = "sh", args = ["-c", "echo from aXb"] }
"#;

/// A pipeline whose name differs from the first only where the first has `_`.
const LOOKALIKE: &str = r#"
[pipeline]
name = "hXstile-p"

[[job]]
name = "a_b"
kind = "noop"
"#;

const CAMPAIGN: &str = r#"
[campaign]
name = "hostile"
starts = "2026-01-01"
ends = "2026-01-31"
budget_points = 100

[reward]
fixed_points = 10
"#;

/// Customers whose ids differ only where a wildcard would match, each with a point and a
/// recommendation; a run with two jobs whose names differ the same way; quarantined rows;
/// a model; a campaign.
fn shop(env: &Env) -> i64 {
    env.write(
        "customers.csv",
        "customer_id,region\nC_1,north\nCX1,south\nC1,east\n",
    );
    env.ok(&[
        "ingest",
        "customers",
        env.path("customers.csv").to_str().unwrap(),
    ]);
    env.write(
        "orders.csv",
        "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n\
         O1,C_1,P1,1,9.99,2026-01-02,paid\n\
         O2,CX1,P1,x,9.99,2026-01-02,paid\n\
         O3,C1,P2,1,9.99,2026-01-02,paid\n\
         O4,C1,P3,1,9.99,2026-01-02,paid\n\
         O5,C1,P4,1,9.99,2026-01-02,paid\n",
    );
    env.ok(&[
        "ingest",
        "orders",
        env.path("orders.csv").to_str().unwrap(),
        "--max-bad-ratio",
        "1",
    ]);
    for (customer, points) in [("C_1", "7"), ("CX1", "11"), ("C1", "13")] {
        env.ok(&[
            "points",
            "adjust",
            customer,
            points,
            "--reason",
            "hostile test",
        ]);
    }
    block_on(async {
        let db = db::connect(&env.db.url, 1).await.unwrap();
        let mut lists = patron::lake::recommendations::Lists::new(1);
        lists.push("C_1", 1, "P2", 1.0, "popularity", None, None);
        lists.push("CX1", 1, "P3", 1.0, "popularity", None, None);
        patron::lake::recommendations::store(
            &env.lake(db.clone()),
            lists,
            patron::lake::recommendations::Replaces::Everyone,
        )
        .await
        .unwrap();
        repo::models::register(
            &db,
            repo::models::NewModel {
                kind: "churn".to_owned(),
                algorithm: "test".to_owned(),
                params: serde_json::json!({}),
                metrics: serde_json::json!({}),
                as_of: None,
                payload: String::new(),
            },
        )
        .await
        .unwrap();
    });
    env.write("campaign.toml", CAMPAIGN);
    env.ok(&[
        "campaign",
        "create",
        env.path("campaign.toml").to_str().unwrap(),
    ]);
    env.apply("p.toml", PIPELINE);
    env.apply("q.toml", LOOKALIKE);
    let _daemon = env.daemon("hostile-w");
    let run = env.json(&["trigger", "h_stile-p", "--wait"]);
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let other = env.json(&["trigger", "hXstile-p", "--wait"]);
    assert_eq!(other["state"], "succeeded", "{other:#}");
    run["run_id"].as_i64().unwrap()
}

#[test]
fn ids_and_filters_are_data_never_sql() {
    for backend in backends() {
        let env = Env::new(backend);
        let run = shop(&env);
        let run_text = run.to_string();

        // The exact names find exactly their own rows: `_` is not a wildcard.
        let runs = env.json(&["runs", "list", "--pipeline", "h_stile-p"]);
        assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
        let logs = env.json(&["logs", &run_text, "--job", "a_b"]);
        let lines: Vec<&str> = logs
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["stream"] == "stdout")
            .filter_map(|l| l["line"].as_str())
            .collect();
        assert_eq!(lines, ["from a_b"], "{logs:#}");
        let history = env.json(&["points", "history", "C_1"]);
        assert_eq!(history.as_array().unwrap().len(), 1, "{history:#}");
        assert_eq!(env.json(&["points", "balance", "C_1"])["balance"], 7);
        let recs = env.json(&["recommend", "C_1"]);
        assert_eq!(recs["recommendations"].as_array().unwrap().len(), 1);
        let bad_number = env.json(&["quarantine", "list", "--reason", "bad number"]);
        assert_eq!(bad_number.as_array().unwrap().len(), 1, "{bad_number:#}");
        // A reason filter is a prefix, of letters only.
        assert_eq!(
            env.json(&["quarantine", "list", "--reason", "bad"])
                .as_array()
                .unwrap()
                .len(),
            1
        );
        for like in ["bad_number", "bad%", "%", "_ad number", "%number"] {
            let rows = env.json(&["quarantine", "list", "--reason", like]);
            assert!(is_empty_array(&rows), "--reason {like}: {rows:#}");
        }

        let before = counts(&env);
        for h in hostile() {
            let h = h.as_str();
            let cases: Vec<(Vec<&str>, Empty)> = vec![
                (vec!["runs", "list", "--pipeline", h], is_empty_array),
                (vec!["logs", &run_text, "--job", h], is_empty_array),
                (vec!["recommend", h], |v| {
                    is_empty_array(&v["recommendations"])
                }),
                (vec!["points", "balance", h], |v| v["balance"] == 0),
                (vec!["points", "history", h], is_empty_array),
                (vec!["quarantine", "list", "--entity", h], is_empty_array),
                (vec!["quarantine", "list", "--reason", h], is_empty_array),
                (vec!["models", "list", "--kind", h], is_empty_array),
                (vec!["models", "show", h], |_| false),
                (vec!["campaign", "show", h], |_| false),
                (vec!["runs", "show", h], |_| false),
                (vec!["pipelines", "show", h], |_| false),
            ];
            for (args, empty) in cases {
                // First, so a value like `--` cannot turn it into the value.
                let mut with = vec!["--json"];
                with.extend(&args);
                data_not_sql(&args, &env.run(&with), empty);
            }
        }
        assert_eq!(counts(&env), before, "{backend:?}: a table changed");

        // The console's `/` filter goes to the same queries, NUL included: a run is shown
        // exactly when its pipeline and state are the ones named and every other word is
        // literally in its id, pipeline, state, trigger or key (no wildcard matches more).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = rt.block_on(db::connect(&env.db.url, 1)).unwrap();
        let lake = Some(env.lake(db.clone()));
        let specs = SpecCache::default();
        let try_load = |text: &str| match rt.block_on(data::load(
            &db,
            lake.as_ref(),
            &specs,
            &Request::Runs(RunQuery::parse(text)),
            Utc::now(),
            std::time::Duration::from_secs(30),
        )) {
            Ok(Snapshot::Runs(s)) => Ok(s),
            Err(LoadFailure::Request(why)) => Err(why),
            other => panic!("filter {text:?}: {other:?}"),
        };
        let load = |text: &str| try_load(text).unwrap();
        let all = load("").rows;
        assert_eq!(all.len(), 2);
        let mut typed = hostile();
        typed.extend(
            [
                "\0",
                "a\0b",
                "pipeline=a\0b",
                "pipeline=%",
                "p=h_stile%",
                "state=%",
                "h_stile-p",
                "pipeline=h_stile-p",
                "manual_",
            ]
            .map(str::to_owned),
        );
        for text in &typed {
            let short: String = text.chars().take(40).collect();
            let s = match try_load(text) {
                Ok(s) => s,
                Err(why) => {
                    // `pipeline=NAME` of no pipeline: a status line, as the console shows it.
                    assert!(
                        RunQuery::parse(text).pipeline.is_some()
                            && why.starts_with("unknown pipeline"),
                        "filter {short:?}: {why}"
                    );
                    assert!(!why.contains('\0') && !why.contains('\n'), "{why:?}");
                    continue;
                }
            };
            let shown: Vec<i64> = s.rows.iter().map(|r| r.id).collect();
            let expected: Vec<i64> = all
                .iter()
                .filter(|r| {
                    let hay = format!(
                        "{} {} {} {} {}",
                        r.id,
                        r.pipeline,
                        r.state,
                        r.trigger_label(),
                        r.run_key
                    )
                    .to_lowercase();
                    s.query.pipeline.as_ref().is_none_or(|p| *p == r.pipeline)
                        && s.query.state.is_none_or(|st| st == r.state)
                        && s.query
                            .words
                            .iter()
                            .all(|w| hay.contains(&w.to_lowercase()))
                })
                .map(|r| r.id)
                .collect();
            assert_eq!(shown, expected, "filter {short:?}: {:?}", s.query);
        }
        assert_eq!(load("pipeline=h_stile-p").rows.len(), 1);
        assert_eq!(load("h_stile-p").rows.len(), 1);
        assert!(load("%").rows.is_empty());
        drop(db);
        assert_eq!(counts(&env), before, "{backend:?}: a table changed");
    }
}

const GOOD_ORDERS: &str = "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n\
    G1,C1,P1,1,9.99,2026-01-02,paid\n\
    G2,C2,P2,2,5.00,2026-01-03 10:00:00,paid\n\
    G3,C3,P3,3,1.50,2026-01-04T10:00:00Z,paid\n";

fn good_rows(env: &Env) -> Vec<String> {
    env.lake_rows(
        "SELECT order_id, customer_id, product_id, quantity, unit_price_cents, ordered_at, status \
         FROM orders WHERE order_id IN ('G1', 'G2', 'G3') ORDER BY order_id",
    )
}

/// `ingest orders FILE --json`: a report, or a clean refusal naming the file; never a panic
/// or database text. Returns the report, or the refusal.
fn ingest_hostile(env: &Env, file: &str, extra: &[&str]) -> Result<Value, String> {
    let path = env.path(file);
    let mut args = vec!["ingest", "orders", path.to_str().unwrap(), "--json"];
    args.extend(extra);
    let out = env.run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for word in SQL_ERROR_WORDS {
        assert!(
            !stderr.contains(word) && !stdout.contains(word),
            "{file}: leaked `{word}`:\nstdout: {stdout}\nstderr: {stderr}"
        );
    }
    match out.status.code() {
        Some(0 | 1) if !stdout.trim().is_empty() => {
            let report: Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{file}: not JSON ({e}): {stdout}"));
            assert_eq!(
                out.status.success(),
                report["rejected"] == false,
                "{report:#}"
            );
            Ok(report)
        }
        Some(1) => {
            assert!(stderr.starts_with("error: "), "{file}: {stderr}");
            assert!(
                stderr.contains(file),
                "{file}: the error names no file: {stderr}"
            );
            Err(stderr.into_owned())
        }
        other => panic!("{file}: exit {other:?}: {stderr}"),
    }
}

/// `(line, reason)` of every quarantined row of a file, by line.
fn quarantined(env: &Env, file: &str) -> Vec<(i64, String)> {
    let rows = env.json(&["quarantine", "list", "--limit", "0"]);
    let mut out: Vec<(i64, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source"].as_str().is_some_and(|s| s.ends_with(file)))
        .map(|r| {
            let line = r["line"].as_i64().unwrap();
            let reason = r["reason"].as_str().unwrap().to_owned();
            assert!(line >= 1 && !reason.is_empty(), "{r}");
            (line, reason)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn hostile_files_are_refused_by_line_and_keep_what_was_stored() {
    for backend in backends() {
        let env = Env::new(backend);
        env.write("good.csv", GOOD_ORDERS);
        env.ok(&["ingest", "orders", env.path("good.csv").to_str().unwrap()]);
        let good = good_rows(&env);
        assert_eq!(good.len(), 3, "{good:?}");
        let header = "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n";
        let row = |id: &str| format!("{id},C9,P9,1,1.00,2026-02-01,paid\n");

        // NUL bytes (in a field, and in a JSON string) are refused by line, never stored.
        let mut nul = format!("{header}{}", row("N1"));
        nul.push_str("N2,C\0X,P9,1,1.00,2026-02-01,paid\n");
        nul.push_str(&row("N3"));
        env.write("nul.csv", &nul);
        ingest_hostile(&env, "nul.csv", &["--max-bad-ratio", "1"]).unwrap();
        assert_eq!(quarantined(&env, "nul.csv"), [(3, "NUL byte".to_owned())]);

        // Invalid UTF-8, an unbalanced quote, short and long rows.
        let mut bytes = format!("{header}{}", row("U1")).into_bytes();
        bytes.extend_from_slice(b"U2,C\xff\xfe,P9,1,1.00,2026-02-01,paid\n");
        bytes.extend_from_slice(b"U3,C9,P9\n");
        bytes.extend_from_slice(b"U4,C9,P9,1,1.00,2026-02-01,paid,extra\n");
        bytes.extend_from_slice(row("U5").as_bytes());
        bytes.extend_from_slice(b"U6,\"C9,P9,1,1.00,2026-02-01,paid\n");
        bytes.extend_from_slice(row("U7").as_bytes());
        std::fs::write(env.path("mixed.csv"), &bytes).unwrap();
        ingest_hostile(&env, "mixed.csv", &["--max-bad-ratio", "1"]).unwrap();
        assert_eq!(
            quarantined(&env, "mixed.csv"),
            [
                (3, "invalid UTF-8".to_owned()),
                (4, "wrong column count".to_owned()),
                (5, "wrong column count".to_owned()),
                (7, "wrong column count".to_owned()),
            ]
        );

        // Numbers and dates at and past every limit.
        let mut limits = header.to_owned();
        for (i, (qty, price, at)) in [
            ("99999999999999999999", "1.00", "2026-02-01"),
            ("1", "79228162514264337593543950335", "2026-02-01"),
            ("1", "7.9e27", "2026-02-01"),
            ("1", "1e400", "2026-02-01"),
            ("1", "NaN", "2026-02-01"),
            ("1", "1.00", "99999999999999999999999"),
            ("1", "1.00", "9999-99-99"),
            ("1", "1.00", "+262143-12-31T23:59:59"),
            ("1", "1.00", "262143-12-31 23:59:59"),
            ("-1", "-0", "0"),
        ]
        .iter()
        .enumerate()
        {
            limits.push_str(&format!("L{i},C9,P9,{qty},{price},{at},paid\n"));
        }
        env.write("limits.csv", &limits);
        let report = ingest_hostile(
            &env,
            "limits.csv",
            &["--max-bad-ratio", "1", "--timezone", "Pacific/Kiritimati"],
        )
        .unwrap();
        assert_eq!(report["loaded"], 1, "{report:#}");
        let lines: Vec<i64> = quarantined(&env, "limits.csv")
            .into_iter()
            .map(|(line, _)| line)
            .collect();
        assert_eq!(lines, (2..=10).collect::<Vec<_>>());

        // SQL-looking ids are data: stored as written, tables intact.
        let sql_ids = ["'; DROP TABLE runs; --", "%", "_", "\\", "O'Brien", "\"q\""];
        let mut text = header.to_owned();
        for (i, id) in sql_ids.iter().enumerate() {
            let quoted = format!("\"{}\"", id.replace('"', "\"\""));
            text.push_str(&format!("{quoted},{quoted},P{i},1,1.00,2026-02-01,paid\n"));
        }
        text.push_str(&format!(
            "LONG,{},P9,1,1.00,2026-02-01,paid\n",
            "c".repeat(200_000)
        ));
        env.write("sql.csv", &text);
        let report = ingest_hostile(&env, "sql.csv", &[]).unwrap();
        assert_eq!(report["loaded"], 7, "{report:#}");
        for id in sql_ids {
            let found = env.lake_ints(&format!(
                "SELECT COUNT(*) FROM orders WHERE order_id = '{}' AND customer_id = order_id",
                id.replace('\'', "''")
            ));
            assert_eq!(found, [1], "{id}");
        }
        assert_eq!(env.sql_ints("SELECT COUNT(*) FROM runs"), [0]);

        // JSON Lines: every shape that is not an object of scalars.
        let jsonl = [
            r#"{"order_id": "J1", "customer_id": "C9", "product_id": "P9", "quantity": 1, "unit_price": 1.0, "ordered_at": "2026-02-01"}"#,
            "[1, 2]",
            "null",
            r#""a string""#,
            r#"{"order_id": {"nested": 1}, "customer_id": "C9", "product_id": "P9", "quantity": 1, "unit_price": 1, "ordered_at": "2026-02-01"}"#,
            r#"{"order_id": "J2", "customer_id": "C9", "product_id": "P9", "quantity": 1e999, "unit_price": 1, "ordered_at": "2026-02-01"}"#,
            r#"{"order_id": "J3\u0000", "customer_id": "C9", "product_id": "P9", "quantity": 1, "unit_price": 1, "ordered_at": "2026-02-01"}"#,
            r#"{"order_id": "J4", "order_id": "J5", "customer_id": "C9", "product_id": "P9", "quantity": 1, "unit_price": 1, "ordered_at": "2026-02-01"}"#,
            r#"{"order_id": "J6""#,
        ]
        .join("\n");
        env.write("hostile.jsonl", &jsonl);
        ingest_hostile(&env, "hostile.jsonl", &["--max-bad-ratio", "1"]).unwrap();
        let q = quarantined(&env, "hostile.jsonl");
        let lines: Vec<i64> = q.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 6, 7, 9], "{q:?}");

        // A compressed file broken half-way: refused, naming the file.
        let mut gz = Vec::new();
        {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
            enc.write_all(header.as_bytes()).unwrap();
            for i in 0..20_000 {
                enc.write_all(row(&format!("Z{i}")).as_bytes()).unwrap();
            }
            enc.finish().unwrap();
        }
        let half = gz.len() / 2;
        gz[half..half + 64].iter_mut().for_each(|b| *b = !*b);
        std::fs::write(env.path("broken.csv.gz"), &gz).unwrap();
        let why = ingest_hostile(&env, "broken.csv.gz", &[]).unwrap_err();
        let at = why.rfind("broken.csv.gz:").unwrap();
        assert!(
            why[at + "broken.csv.gz:".len()..].starts_with(|c: char| c.is_ascii_digit()),
            "the error names no line: {why}"
        );
        assert_eq!(
            env.lake_ints("SELECT COUNT(*) FROM orders WHERE order_id LIKE 'Z%'"),
            [0],
            "a refused file left rows behind"
        );

        // Empty, header-only, BOM and CRLF files.
        env.write("empty.csv", "");
        let _ = ingest_hostile(&env, "empty.csv", &[]);
        env.write("header.csv", header);
        let _ = ingest_hostile(&env, "header.csv", &[]);
        env.write(
            "bom.csv",
            &format!(
                "\u{feff}{}",
                format!("{header}{}", row("B1")).replace('\n', "\r\n")
            ),
        );
        let report = ingest_hostile(&env, "bom.csv", &[]).unwrap();
        assert_eq!(report["loaded"], 1, "{report:#}");

        // A file refused for too many bad rows changes nothing already stored, not even the
        // status of a line it repeats.
        let mut flip = header.to_owned();
        flip.push_str("G1,C1,P1,1,9.99,2026-01-02,cancelled\n");
        for i in 0..10 {
            flip.push_str(&format!("F{i},C9,P9,not a number,1.00,2026-02-01,paid\n"));
        }
        env.write("flip.csv", &flip);
        let report = ingest_hostile(&env, "flip.csv", &[]).unwrap();
        assert_eq!(report["rejected"], true, "{report:#}");

        assert_eq!(good_rows(&env), good, "{backend:?}: a stored row changed");
    }
}
