//! Customer intelligence through the binary, on SQLite and PostgreSQL: the nightly pipeline
//! on a demo shop fills profiles, scores, models and review sentiment; retraining by time
//! travel never sees orders after a training date; a challenger that does not beat the
//! champion on the same validation set is registered but not promoted; `patron sentiment`.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::common::*;

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = vec![
        reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect(),
    ];
    for record in reader.records() {
        rows.push(record.unwrap().iter().map(str::to_owned).collect());
    }
    rows
}

fn champion<'a>(models: &'a Value, kind: &str) -> Option<&'a Value> {
    models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == kind && m["status"] == "champion")
}

#[test]
fn the_nightly_pipeline_profiles_scores_and_trains_on_a_demo_shop() {
    for backend in backends() {
        let env = Env::new(backend);
        env.demo_shop(800, 300);

        let profiles = env.path("profiles.csv");
        env.ok(&["export", "profiles", "--out", profiles.to_str().unwrap()]);
        let rows = csv_rows(&std::fs::read_to_string(&profiles).unwrap());
        assert_eq!(
            rows[0],
            [
                "customer_id",
                "segment",
                "segment_label",
                "pc1",
                "pc2",
                "r_score",
                "f_score",
                "m_score"
            ]
        );
        assert!(rows.len() > 500, "{} profiles", rows.len());
        let mut sizes: HashMap<&str, usize> = HashMap::new();
        for row in &rows[1..] {
            *sizes.entry(row[2].as_str()).or_default() += 1;
            for score in &row[5..8] {
                let s: u8 = score.parse().unwrap();
                assert!((1..=5).contains(&s), "{row:?}");
            }
            assert!(row[3].parse::<f64>().unwrap().is_finite());
        }
        assert!(sizes.len() >= 2, "{sizes:?}");

        let scores = env.path("scores.csv");
        env.ok(&["export", "scores", "--out", scores.to_str().unwrap()]);
        let rows = csv_rows(&std::fs::read_to_string(&scores).unwrap());
        assert_eq!(
            rows[0],
            [
                "customer_id",
                "churn_probability",
                "intent_probability",
                "churn_model",
                "intent_model"
            ]
        );
        assert!(rows.len() > 500);
        for row in &rows[1..] {
            let p: f64 = row[1].parse().unwrap();
            assert!((0.0..=1.0).contains(&p), "{row:?}");
            assert!(row[3].starts_with("churn v"), "{row:?}");
            assert!(row[4].starts_with("intent v"), "{row:?}");
        }

        let models = env.json(&["models", "list"]);
        for kind in ["segments", "churn", "intent", "sentiment"] {
            assert!(
                champion(&models, kind).is_some(),
                "no {kind} champion: {models:#}"
            );
        }
        let churn = env.json(&["models", "show", "churn"]);
        assert_eq!(churn["status"], "champion");
        let auc = churn["metrics"]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{churn:#}");
        assert!(churn["metrics"]["baseline_recency_auc"].is_number());

        // Recommendations: ten per customer, never something they bought.
        let recs = env.path("recs.csv");
        env.ok(&["export", "recommendations", "--out", recs.to_str().unwrap()]);
        let rows = csv_rows(&std::fs::read_to_string(&recs).unwrap());
        assert_eq!(
            rows[0],
            ["customer_id", "rank", "product_id", "score", "source"]
        );
        assert!(rows.len() > 5_000, "{} recommendations", rows.len());
        let first = &rows[1][0];
        one_customer_exports(&env, first, &rows);
        let mine = env.json(&["recommend", first]);
        let list = mine["recommendations"].as_array().unwrap();
        assert_eq!(list.len(), 10, "{mine:#}");
        assert_eq!(list[0]["rank"], 1);
        for r in list {
            let source = r["source"].as_str().unwrap();
            assert!(
                ["item_knn", "als", "content", "popularity"].contains(&source),
                "{r}"
            );
        }
        let bought: std::collections::HashSet<String> = env
            .lake_rows(
                "SELECT DISTINCT customer_id, product_id FROM clean_orders WHERE status = 'paid'",
            )
            .into_iter()
            .collect();
        let recommended_bought = env
            .lake_rows("SELECT customer_id, product_id FROM recommendations")
            .into_iter()
            .filter(|r| bought.contains(r))
            .count();
        assert_eq!(
            recommended_bought, 0,
            "recommended products the customer had bought"
        );
        reasons_are_true(&env);
        let r = &list[0];
        assert!(r["because_kind"].is_string(), "{r}");
        assert!(!r["reason"].as_str().unwrap().is_empty(), "{r}");
        assert_ne!(r["because"], r["product_id"], "{r}");
        let model = env.json(&["models", "show", "recommend"]);
        assert_eq!(model["status"], "champion");
        for key in ["ndcg_at_10", "precision_at_10", "recall_at_10", "coverage"] {
            assert!(model["metrics"][key].is_number(), "{key}: {model:#}");
        }
        assert!(model["metrics"]["popularity"]["ndcg"].is_number());
        // The first customer clicks their first recommendation, then buys it.
        let product = list[0]["product_id"].as_str().unwrap();
        env.write(
            "clicks.csv",
            &format!("event_id,customer_id,product_id,kind,occurred_at\nRC1,{first},{product},rec_click,2030-01-01T10:00:00Z\n"),
        );
        env.write(
            "bought.csv",
            &format!("order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\nRO1,{first},{product},1,9.99,2030-01-01T11:00:00Z,paid\n"),
        );
        env.ok(&["ingest", "events", env.path("clicks.csv").to_str().unwrap()]);
        env.ok(&["ingest", "orders", env.path("bought.csv").to_str().unwrap()]);
        let model = env.json(&["models", "show", "recommend"]);
        assert!(
            model["click_through"]["clicked"].as_i64().unwrap() >= 1,
            "{model:#}"
        );
        assert!(
            model["click_through"]["bought_after_click"]
                .as_i64()
                .unwrap()
                >= 1
        );
        let shown = model["click_through"]["recommendations"].as_i64().unwrap();
        assert_eq!(shown as usize, rows.len() - 1, "{model:#}");
        let clicked = model["click_through"]["clicked"].as_i64().unwrap();
        assert!(clicked <= shown);
        assert!(
            model["click_through"]["bought_after_click"]
                .as_i64()
                .unwrap()
                <= clicked
        );

        feedback_folds_new_loads_in_once(&env, first);

        // Every review has a score; product means exist.
        let stats = env.json(&["sentiment", "this is not good at all", "--lexicon-only"]);
        assert_eq!(stats["label"], "negative", "{stats}");
        let stats = env.json(&["sentiment", "非常好，物超所值"]);
        assert_eq!(stats["label"], "positive", "{stats}");
        assert_eq!(stats["classifier"], true, "{stats}");
    }
}

const FEEDBACK: &str = r#"
[pipeline]
name = "fb"

[[job]]
name = "feedback"
kind = "feedback"
"#;

fn recommendations_csv(env: &Env, name: &str) -> Vec<Vec<String>> {
    let path = env.path(name);
    env.ok(&["export", "recommendations", "--out", path.to_str().unwrap()]);
    csv_rows(&std::fs::read_to_string(&path).unwrap())
}

fn frequency(env: &Env, customer: &str) -> i64 {
    let path = env.path("features.csv");
    env.ok(&["export", "features", "--out", path.to_str().unwrap()]);
    let rows = csv_rows(&std::fs::read_to_string(&path).unwrap());
    let col = rows[0].iter().position(|c| c == "frequency").unwrap();
    rows[1..]
        .iter()
        .find(|r| r[0] == customer)
        .map_or(0, |r| r[col].parse().unwrap())
}

/// Every stored recommendation's reason is something its customer really did, checked
/// against their orders and events: a product they bought (a paid order line), carted or
/// viewed (`view`, `click` or `rec_click` events) as the reason's kind says, never the
/// recommended product itself; or, naming no product, what they did with the recommended
/// product; or a popularity pick that says so. And the reasons are not all of one kind.
fn reasons_are_true(env: &Env) {
    use std::collections::HashSet;
    // Dealings and recommendations from the lake.
    let pairs = |sql: &str| -> HashSet<String> { env.lake_rows(sql).into_iter().collect() };
    let bought =
        pairs("SELECT DISTINCT customer_id, product_id FROM clean_orders WHERE status = 'paid'");
    let carted = pairs(
        "SELECT DISTINCT customer_id, product_id FROM clean_events \
         WHERE kind = 'cart' AND product_id IS NOT NULL",
    );
    let viewed = pairs(
        "SELECT DISTINCT customer_id, product_id FROM clean_events \
         WHERE kind IN ('view', 'click', 'rec_click') AND product_id IS NOT NULL",
    );
    let did = |kind: &str, customer: &str, product: &str| {
        let key = format!("{customer}|{product}");
        match kind {
            "bought" => bought.contains(&key),
            "carted" => carted.contains(&key),
            "viewed" => viewed.contains(&key),
            _ => false,
        }
    };
    let mut false_reasons = Vec::new();
    for row in env.lake_rows(
        "SELECT customer_id, product_id, COALESCE(because_product_id, '-'), \
           COALESCE(because_kind, '-'), source FROM recommendations",
    ) {
        let f: Vec<&str> = row.split('|').collect();
        let (customer, product, because, kind, source) = (f[0], f[1], f[2], f[3], f[4]);
        let true_reason = if because != "-" {
            because != product && did(kind, customer, because)
        } else {
            did(kind, customer, product)
                || (source == "popularity" && matches!(kind, "popular_in_segment" | "popular"))
        };
        if !true_reason {
            false_reasons.push(row.clone());
        }
    }
    assert!(
        false_reasons.is_empty(),
        "recommendations with a false reason: {:?}",
        &false_reasons[..false_reasons.len().min(5)]
    );
    let kinds = env.lake_ints(
        "SELECT COUNT(*), \
           SUM(CASE WHEN because_kind = 'bought' AND because_product_id IS NOT NULL THEN 1 ELSE 0 END), \
           SUM(CASE WHEN because_kind = 'viewed' THEN 1 ELSE 0 END), \
           SUM(CASE WHEN because_kind LIKE 'popular%' THEN 1 ELSE 0 END) \
         FROM recommendations",
    );
    assert!(
        kinds[0] > 0 && kinds[1..].iter().all(|&n| n > 0),
        "{kinds:?}"
    );
}

/// A first pass folds everything in; then a customer buys one of their recommendations:
/// the next pass touches only them (their features count the order, the product leaves
/// their list); a pass with nothing new changes nothing; and redoing every customer from the
/// same model gives exactly the lists the incremental passes left.
fn feedback_folds_new_loads_in_once(env: &Env, customer: &str) {
    env.apply("fb.toml", FEEDBACK);
    let _daemon = env.daemon("fb-worker");
    let run = |env: &Env| {
        let out = env.json(&["trigger", "fb", "--wait"]);
        assert_eq!(out["state"], "succeeded", "{out:#}");
        env.json(&["feedback", "passes", "--limit", "1"])[0].clone()
    };
    let first = run(env);
    assert!(
        first["arrived"]["customers"].as_i64().unwrap() > 500,
        "{first:#}"
    );
    assert!(
        first["arrived"]["rec_clicks"].as_i64().unwrap() >= 1,
        "{first:#}"
    );
    let before = recommendations_csv(env, "before.csv");
    let orders_before = frequency(env, customer);
    let product = before
        .iter()
        .find(|r| r[0] == customer)
        .map(|r| r[2].clone())
        .unwrap();
    let product = product.as_str();

    let at = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    env.write(
        "new.csv",
        &format!("order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\nFB1,{customer},{product},2,4.50,{at},paid\n"),
    );
    env.ok(&["ingest", "orders", env.path("new.csv").to_str().unwrap()]);
    let second = run(env);
    assert_eq!(second["arrived"]["orders"], 1, "{second:#}");
    assert_eq!(second["arrived"]["customers"], 1, "{second:#}");
    assert_eq!(second["features"], 1, "{second:#}");
    assert_eq!(second["recommendations"], 10, "{second:#}");
    assert_eq!(frequency(env, customer), orders_before + 1);
    let after = recommendations_csv(env, "after.csv");
    let mine = |rows: &[Vec<String>]| -> Vec<String> {
        rows.iter()
            .filter(|r| r[0] == customer)
            .map(|r| r[2].clone())
            .collect()
    };
    assert!(mine(&before).iter().any(|p| p == product));
    assert!(
        mine(&after).iter().all(|p| p != product),
        "{:?}",
        mine(&after)
    );
    assert_eq!(mine(&after).len(), 10);
    let others = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter().filter(|r| r[0] != customer).cloned().collect()
    };
    assert_eq!(
        others(&before),
        others(&after),
        "other customers' lists changed"
    );

    // Nothing new: nothing touched, nothing changed.
    let third = run(env);
    assert_eq!(third["arrived"]["customers"], 0, "{third:#}");
    assert_eq!(third["recommendations"], 0);
    assert_eq!(recommendations_csv(env, "again.csv"), after);

    // A full recompute from the same model equals the incremental result.
    block_on(async {
        let db = patron::db::connect(&env.db.url, 2).await.unwrap();
        db.execute_unprepared("DELETE FROM watermarks")
            .await
            .unwrap();
    });
    let full = run(env);
    assert!(full["arrived"]["customers"].as_i64().unwrap() > 500);
    assert_eq!(recommendations_csv(env, "full.csv"), after);
    // The lists the feedback passes wrote give true reasons too.
    reasons_are_true(env);
}

/// 80 customers. Even ones spend 20.00 on their first order, buy again on 2024-04-01 and
/// 2024-06-01; odd ones spend 5.00 once. As of 2024-07-01 with a 60-day horizon, models train
/// on features as of 2024-03-03 (labels from the following 60 days) and validate on features
/// as of 2024-05-02 (labels to 2024-07-01).
fn time_travel_shop(env: &Env) {
    let mut orders =
        String::from("order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n");
    let mut customers = String::from("customer_id,signup_at\n");
    for i in 0..80 {
        customers.push_str(&format!("C{i},2023-12-01\n"));
        let day = 1 + i % 28;
        let price = if i % 2 == 0 { "20.00" } else { "5.00" };
        orders.push_str(&format!("A{i},C{i},P1,1,{price},2024-01-{day:02},paid\n"));
        if i % 2 == 0 {
            orders.push_str(&format!("B{i},C{i},P1,1,7.00,2024-04-01,paid\n"));
            orders.push_str(&format!("D{i},C{i},P1,1,9.00,2024-06-01,paid\n"));
        }
    }
    env.write("inbox/customers.csv", &customers);
    env.write("inbox/orders.csv", &orders);
    env.ok(&[
        "ingest",
        "customers",
        env.path("inbox/customers.csv").to_str().unwrap(),
    ]);
    env.ok(&[
        "ingest",
        "orders",
        env.path("inbox/orders.csv").to_str().unwrap(),
    ]);
}

const RETRAIN: &str = r#"
[pipeline]
name = "retrain"

[[job]]
name = "retrain"
kind = "retrain"
params = { as_of = "2024-07-01", horizon_days = 60, intent_days = 30, trees = 5, max_depth = 4 }
"#;

#[test]
fn retraining_never_sees_later_orders_and_keeps_a_champion_that_is_not_beaten() {
    for backend in backends() {
        let env = Env::new(backend);
        time_travel_shop(&env);
        env.apply("retrain.toml", RETRAIN);
        let _daemon = env.daemon("w1");
        let out = env.json(&["trigger", "retrain", "--wait"]);
        assert_eq!(out["state"], "succeeded", "{backend:?}");

        // The training features as of 2024-03-03 count only the first order, though the
        // database holds later ones for half the customers.
        let csv = env.path("train.csv");
        env.ok(&[
            "export",
            "features",
            "--as-of",
            "2024-03-03",
            "--out",
            csv.to_str().unwrap(),
        ]);
        let rows = csv_rows(&std::fs::read_to_string(&csv).unwrap());
        let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
        let (frequency, monetary, recency) =
            (col("frequency"), col("monetary"), col("recency_days"));
        assert_eq!(rows.len(), 81);
        for row in &rows[1..] {
            let i: usize = row[0][1..].parse().unwrap();
            assert_eq!(row[frequency], "1", "{row:?}");
            let spent = if i.is_multiple_of(2) { "20" } else { "5" };
            assert_eq!(row[monetary], spent, "{row:?}");
            // Cut-off 2024-03-04 00:00; the first order was on day 1 + i % 28 of January.
            let days = 31 - (i % 28) as i64 + 29 + 3;
            assert_eq!(row[recency].parse::<i64>().unwrap(), days, "{row:?}");
        }

        // Spend tells who comes back: the models separate validation perfectly, and the
        // registry says what they were trained and validated on.
        let churn = env.json(&["models", "show", "churn"]);
        assert_eq!(churn["metrics"]["train_as_of"], "2024-03-03");
        assert_eq!(churn["metrics"]["validation_as_of"], "2024-05-02");
        assert_eq!(churn["metrics"]["validation_rows"], 80);
        assert_eq!(churn["metrics"]["validation_positives"], 40);
        assert!(
            churn["metrics"]["auc"].as_f64().unwrap() > 0.99,
            "{churn:#}"
        );
        let first_champion = churn["id"].as_i64().unwrap();

        // Everyone is scored as of 2024-07-01: the even customers (bought on 06-01) are less
        // likely to churn than the odd ones.
        let scores = env.path("scores.csv");
        env.ok(&["export", "scores", "--out", scores.to_str().unwrap()]);
        let rows = csv_rows(&std::fs::read_to_string(&scores).unwrap());
        assert_eq!(rows.len(), 81);
        let p = |id: &str| -> f64 {
            rows.iter().find(|r| r[0] == id).unwrap()[1]
                .parse()
                .unwrap()
        };
        assert!(p("C0") < p("C1"), "C0 {} C1 {}", p("C0"), p("C1"));

        // The same data again: the challengers tie the champion, which stays.
        let out = env.json(&["trigger", "retrain", "--wait"]);
        assert_eq!(out["state"], "succeeded");
        let models = env.json(&["models", "list", "--kind", "churn"]);
        let models = models.as_array().unwrap();
        assert_eq!(models.len(), 4, "{models:#?}");
        let champions: Vec<i64> = models
            .iter()
            .filter(|m| m["status"] == "champion")
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(champions, [first_champion]);
        let logs = env.ok(&["logs", &out["run_id"].to_string()]);
        assert!(logs.contains("champion kept"), "{logs}");
    }
}

#[test]
fn sentiment_scores_text_and_whole_files() {
    let env = Env::new(Backend::Sqlite);
    let good = env.json(&["sentiment", "The fit is great and I love the colour!"]);
    assert_eq!(good["label"], "positive");
    let bad = env.json(&["sentiment", "质量不好，但是物流太慢了"]);
    assert_eq!(bad["label"], "negative", "{bad}");
    assert_eq!(bad["classifier"], false);
    let plain = env.ok(&["sentiment", "not good"]);
    assert!(plain.contains("negative"), "{plain}");

    let input = env.write(
        "reviews.csv",
        "id,body,stars\n1,\"Lovely dress,\nfits perfectly\",5\n2,Terrible quality. Returned it.,1\n3,,3\n",
    );
    let out = env.path("scored.csv");
    let summary = env.json(&[
        "sentiment",
        "--file",
        input.to_str().unwrap(),
        "--text-column",
        "body",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(summary["rows"], 3);
    let rows = csv_rows(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(rows[0], ["id", "body", "stars", "score", "label"]);
    assert_eq!(rows[1][1], "Lovely dress,\nfits perfectly");
    assert_eq!(rows[1][4], "positive");
    assert_eq!(rows[2][4], "negative");
    assert_eq!(rows[3][4], "neutral");

    let missing = env.run(&[
        "sentiment",
        "--file",
        input.to_str().unwrap(),
        "--text-column",
        "review",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no column `review`") && err.contains("body"),
        "{err}"
    );
}

#[test]
fn a_lexicon_file_in_settings_extends_the_scorer_and_a_bad_one_names_its_line() {
    let env = Env::new(Backend::Sqlite);
    assert_eq!(env.json(&["sentiment", "zorbly"])["label"], "neutral");
    env.write("shop.tsv", "# our shop's words\nzorbly\t3.0\n不香\t-2.5\n");
    let settings = std::fs::read_to_string(env.path("patron.toml")).unwrap();
    env.write(
        "patron.toml",
        &format!("{settings}\n[sentiment]\nlexicon_paths = [\"shop.tsv\"]\n"),
    );
    assert_eq!(env.json(&["sentiment", "zorbly"])["label"], "positive");
    assert_eq!(env.json(&["sentiment", "not zorbly"])["label"], "negative");

    env.write("shop.tsv", "zorbly\t3.0\nmeh 1\n");
    let out = env.run(&["sentiment", "zorbly"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shop.tsv") && err.contains("line 2"), "{err}");
}

/// `export … --customer C` writes C's rows only: their recommendations as the whole export
/// has them, and their one row of features, profile and scores; an unknown id is an error.
fn one_customer_exports(env: &Env, customer: &str, all_recommendations: &[Vec<String>]) {
    let out = env.path("one.csv");
    let export = |what: &str, who: &str| {
        env.ok(&[
            "export",
            what,
            "--customer",
            who,
            "--out",
            out.to_str().unwrap(),
        ]);
        csv_rows(&std::fs::read_to_string(&out).unwrap())
    };
    let mine = export("recommendations", customer);
    let expected: Vec<Vec<String>> = all_recommendations
        .iter()
        .filter(|r| r[0] == customer)
        .cloned()
        .collect();
    assert_eq!(mine[1..], expected[..]);
    let profiled = export("profiles", customer);
    let someone = match profiled.get(1) {
        Some(row) => row[0].clone(),
        None => {
            let all = env.path("profiles-all.csv");
            env.ok(&["export", "profiles", "--out", all.to_str().unwrap()]);
            csv_rows(&std::fs::read_to_string(&all).unwrap())[1][0].clone()
        }
    };
    for what in ["features", "profiles", "scores"] {
        let rows = export(what, &someone);
        assert_eq!(rows.len(), 2, "{what}: {rows:?}");
        assert_eq!(rows[1][0], someone, "{what}");
    }
    let failed = env.run(&[
        "export",
        "profiles",
        "--customer",
        "NOSUCH",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("unknown customer NOSUCH"),
        "{failed:?}"
    );
}
