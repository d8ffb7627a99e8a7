//! The lake: a load killed at each step between writing its files and the catalog commit
//! changes nothing and is redone exactly; vacuum; compaction keeps the newest row per key and
//! never loses a row committed while it ran; two loads at once; and readers other than
//! patron's own see what patron says it wrote.

use std::process::Command;

use patron::{
    db,
    lake::{Dataset, Lake, maintain},
};
use serde_json::Value;

use crate::common::*;

const HEADER: &str = "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n";

fn orders(from: usize, to: usize, price: &str) -> String {
    let mut text = HEADER.to_owned();
    for i in from..to {
        text.push_str(&format!(
            "O{i},C{},P{},1,{price},2024-05-01 10:00:00,paid\n",
            i % 50,
            i % 7
        ));
    }
    text
}

fn stats_orders(env: &Env) -> i64 {
    env.json(&["stats"])["rows"]["orders"].as_i64().unwrap()
}

fn listed(env: &Env, dataset: &str) -> Value {
    env.json(&["lake", "ls", dataset])
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataset"] == dataset)
        .cloned()
        .unwrap()
}

/// How many committed files `lake ls` lists for `dataset`.
fn files_of(env: &Env, dataset: &str) -> usize {
    listed(env, dataset)["files"].as_array().unwrap().len()
}

async fn open(env: &Env) -> Lake {
    let conn = db::connect(&env.db.url, 4).await.unwrap();
    db::migrate(&conn).await.unwrap();
    env.lake(conn)
}

#[test]
fn a_load_killed_before_its_commit_changes_nothing_and_is_redone_exactly() {
    for backend in backends() {
        let env = Env::new(backend);
        let first = env.write("first.csv", &orders(0, 300, "2.50"));
        env.ok(&["ingest", "orders", first.to_str().unwrap()]);
        let before = listed(&env, "orders");
        assert_eq!(stats_orders(&env), 300);

        let second = env.write("second.csv", &orders(300, 1000, "2.50"));
        for point in ["load-written", "load-checked", "commit-open"] {
            let out = env
                .command(&["ingest", "orders", second.to_str().unwrap()])
                .env("PATRON_LAKE_FAULT", point)
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "{backend:?} {point}: the load did not die"
            );
            assert_eq!(stats_orders(&env), 300, "{backend:?} {point}");
            assert_eq!(listed(&env, "orders"), before, "{backend:?} {point}");
        }
        let redone = env.json(&["ingest", "orders", second.to_str().unwrap()]);
        assert_eq!(redone["loaded"], 700, "{backend:?}: {redone:#}");
        assert_eq!(stats_orders(&env), 1000, "{backend:?}");

        // What the killed loads left is removed by vacuum; what is committed stays.
        let parquet_files = || {
            let mut n = 0;
            let mut stack = vec![env.lake_path()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(dir).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.to_string_lossy().contains(".parquet") {
                        n += 1;
                    }
                }
            }
            n
        };
        assert!(
            parquet_files() > 2,
            "{backend:?}: the killed loads left no files"
        );
        let v = env.json(&["lake", "vacuum"]);
        assert_eq!(v["unrecorded"], 0, "{backend:?}: young files are kept: {v}");
        let v = env.json(&["lake", "vacuum", "--now"]);
        assert!(v["unrecorded"].as_i64().unwrap() >= 2, "{backend:?}: {v}");
        assert_eq!(parquet_files(), 2, "{backend:?}");
        assert_eq!(stats_orders(&env), 1000, "{backend:?}");
    }
}

#[test]
fn compaction_keeps_the_newest_row_per_key_and_rows_committed_meanwhile() {
    for backend in backends() {
        let env = Env::new(backend);
        let a = env.write("a.csv", &orders(0, 100, "1.00"));
        env.ok(&["ingest", "orders", a.to_str().unwrap()]);
        // The same lines again, 50 of them now refunded: the refund wins.
        let mut refunds = HEADER.to_owned();
        for i in 0..50 {
            refunds.push_str(&format!(
                "O{i},C{},P{},1,1.00,2024-05-01 10:00:00,refunded\n",
                i % 50,
                i % 7
            ));
        }
        let b = env.write("b.csv", &refunds);
        let r = env.json(&["ingest", "orders", b.to_str().unwrap()]);
        assert_eq!(r["loaded"], 50, "{r:#}");
        // A paid copy of a refunded line adds nothing.
        let c = env.write("c.csv", &orders(0, 10, "1.00"));
        let r = env.json(&["ingest", "orders", c.to_str().unwrap()]);
        assert_eq!(
            (r["loaded"].as_i64(), r["duplicates"].as_i64()),
            (Some(0), Some(10))
        );
        let refunded = "SELECT COUNT(*) FROM orders WHERE status = 'refunded'";
        assert_eq!(env.lake_ints(refunded), [50]);
        assert_eq!(stats_orders(&env), 100);

        block_on(async {
            let lake = open(&env).await;
            // A compaction reads its snapshot; a load commits meanwhile; the compaction's
            // commit replaces exactly the files it read.
            let snapshot = patron::db::repo::lake::live(lake.db(), "orders")
                .await
                .unwrap();
            let d = env.write("d.csv", &orders(100, 130, "1.00"));
            env.ok(&["ingest", "orders", d.to_str().unwrap()]);
            let done = maintain::compact_files(&lake, Dataset::Orders, None, &snapshot)
                .await
                .unwrap();
            assert_eq!(
                (done.files_before, done.rows_before, done.rows_after),
                (2, 150, 100)
            );
            // A second compaction of the same, now stale, snapshot gives way.
            let again = maintain::compact_files(&lake, Dataset::Orders, None, &snapshot).await;
            assert!(again.is_err(), "{backend:?}");
        });
        assert_eq!(stats_orders(&env), 130, "{backend:?}");
        assert_eq!(env.lake_ints(refunded), [50], "{backend:?}");
        assert_eq!(files_of(&env, "orders"), 2);
        let all = env.json(&["lake", "compact"]);
        assert_eq!(all.as_array().unwrap().len(), 1, "{all:#}");
        let orders = listed(&env, "orders");
        assert_eq!(orders["files"].as_array().unwrap().len(), 1);
        assert_eq!(orders["rows"], 130);
        assert_eq!(env.lake_ints(refunded), [50], "{backend:?}");
        assert_eq!(
            env.lake_ints("SELECT COUNT(*) FROM orders WHERE status = 'paid'"),
            [80]
        );
    }
}

#[test]
fn two_loads_committing_at_once_both_land() {
    for backend in backends() {
        let env = Env::new(backend);
        // Overlapping halves: 0..600 and 400..1000.
        let a = env.write("a.csv", &orders(0, 600, "3.00"));
        let b = env.write("b.csv", &orders(400, 1000, "3.00"));
        let spawn = |path: &std::path::Path| {
            env.command(&["ingest", "orders", path.to_str().unwrap(), "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (x, y) = (spawn(&a), spawn(&b));
        for child in [x, y] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{backend:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(stats_orders(&env), 1000, "{backend:?}");
        assert_eq!(
            env.lake_ints("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders"),
            [1000, 1000]
        );
    }
}

/// The committed files as another reader sees them: the `parquet` crate's own reader
/// always, and pyarrow where python3 has it.
#[test]
fn other_readers_see_what_patron_wrote() {
    let env = Env::new(Backend::Sqlite);
    let file = env.write("orders.csv", &orders(0, 1234, "12.34"));
    env.ok(&["ingest", "orders", file.to_str().unwrap()]);
    let listing = listed(&env, "orders");
    let files: Vec<String> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    let mut rows = 0;
    for f in &files {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let reader =
            SerializedFileReader::new(std::fs::File::open(env.lake_path().join(f)).unwrap())
                .unwrap();
        let meta = reader.metadata();
        rows += meta.file_metadata().num_rows();
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
        assert!(names.contains(&"unit_price_cents"), "{names:?}");
        let codec = meta.row_group(0).column(0).compression();
        assert_eq!(format!("{codec:?}").split('(').next(), Some("ZSTD"));
    }
    assert_eq!(rows, 1234);
    assert_eq!(listing["rows"], 1234);

    let has_pyarrow = Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_pyarrow {
        eprintln!("pyarrow not installed: only the parquet crate's reader was checked");
        return;
    }
    let script = "import sys, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1:])\n\
        f = t.schema.field('unit_price_cents')\n\
        print(t.num_rows, sum(t.column('unit_price_cents').to_pylist()), \
              t.schema.field('ordered_at').type, f.metadata[b'unit'].decode())";
    let paths: Vec<String> = files
        .iter()
        .map(|f| env.lake_path().join(f).display().to_string())
        .collect();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1234 1522756 timestamp[ms, tz=UTC] cents"
    );
}

/// A database from before the lake keeps its raw rows through migration 15 (renamed
/// `legacy_orders`), and a starting daemon (or `lake import-legacy`) moves them into the lake.
#[test]
fn raw_rows_of_a_database_from_before_the_lake_move_into_it() {
    use migrations::MigratorTrait;
    for backend in backends() {
        let env = Env::new(backend);
        block_on(async {
            let conn = db::connect(&env.db.url, 2).await.unwrap();
            migrations::Migrator::up(&conn, Some(14)).await.unwrap();
            for i in 0..25 {
                sea_orm::ConnectionTrait::execute_unprepared(
                    &conn,
                    &format!(
                        "INSERT INTO orders (order_id, line_key, customer_id, product_id, quantity, \
                         unit_price_cents, ordered_at, status, source_id) \
                         VALUES ('L{i}', {i}, 'C1', 'P1', 2, 150, 1714521600, 'paid', 1)"
                    ),
                )
                .await
                .unwrap();
            }
        });
        env.ok(&["migrate"]);
        assert_eq!(env.sql_ints("SELECT COUNT(*) FROM legacy_orders"), [25]);
        let moved = env.json(&["lake", "import-legacy"]);
        assert_eq!(moved[0]["rows"], 25, "{backend:?}: {moved}");
        assert_eq!(stats_orders(&env), 25);
        assert_eq!(
            env.lake_ints("SELECT SUM(quantity * unit_price_cents) FROM orders"),
            [25 * 300]
        );
        // The table is gone; a second import finds nothing to move.
        assert_eq!(env.json(&["lake", "import-legacy"]), serde_json::json!([]));
    }
}

/// Review sentiment is a lake dataset: a pass scores only the reviews without a score and
/// commits one file; a rescore replaces the dataset with one file of every review.
#[test]
fn review_sentiment_is_scored_once_per_review_and_a_rescore_replaces_it() {
    for backend in backends() {
        let env = Env::new(backend);
        let reviews = |from: usize, to: usize| {
            let mut text = "review_id,customer_id,product_id,rating,text,created_at\n".to_owned();
            for i in from..to {
                let words = if i % 2 == 0 {
                    "great quality, love it"
                } else {
                    "broken and useless"
                };
                text.push_str(&format!(
                    "R{i},C{},P1,{},\"{words}\",2024-01-11\n",
                    i % 5,
                    1 + i % 5
                ));
            }
            text
        };
        let first = env.write("first.csv", &reviews(0, 40));
        env.ok(&["ingest", "reviews", first.to_str().unwrap()]);
        env.apply(
            "s.toml",
            &(header("score", "") + "[[job]]\nname = \"sentiment\"\nkind = \"sentiment\"\n"),
        );
        env.apply(
            "r.toml",
            &(header("rescore", "")
                + "[[job]]\nname = \"sentiment\"\nkind = \"sentiment\"\nparams = { rescore = true }\n"),
        );
        let daemon = env.daemon("w1");
        let run = |pipeline: &str| {
            let id = env.trigger(pipeline);
            let shown = env.wait_run(id, std::time::Duration::from_secs(60));
            assert_eq!(shown["state"], "succeeded", "{shown:#}");
        };
        let scored =
            || env.lake_ints("SELECT COUNT(*), COUNT(DISTINCT review_id) FROM review_sentiment");

        run("score");
        assert_eq!(scored(), [40, 40]);
        assert_eq!(files_of(&env, "review_sentiment"), 1);
        let negative = env.lake_ints(
            "SELECT COUNT(*) FROM review_sentiment WHERE label = 'negative' AND score < 0",
        );
        assert!(negative[0] >= 15, "{negative:?}");

        // Nothing new: nothing scored, nothing committed.
        run("score");
        assert_eq!(files_of(&env, "review_sentiment"), 1);

        let second = env.write("second.csv", &reviews(40, 50));
        env.ok(&["ingest", "reviews", second.to_str().unwrap()]);
        run("score");
        assert_eq!(scored(), [50, 50]);
        assert_eq!(files_of(&env, "review_sentiment"), 2);

        run("rescore");
        assert_eq!(scored(), [50, 50]);
        assert_eq!(files_of(&env, "review_sentiment"), 1);
        daemon.terminate(std::time::Duration::from_secs(20));
    }
}

/// Scores are a lake dataset partitioned by date: storing a date again replaces it, readers
/// take the newest date, and the console's histogram puts each probability in its tenth.
#[test]
fn scores_replace_their_date_and_readers_take_the_newest() {
    use patron::lake::scores::{self, Scores};
    for backend in backends() {
        let env = Env::new(backend);
        block_on(async {
            let lake = open(&env).await;
            let day = |as_of: &str, churn: Vec<f64>| Scores {
                as_of: as_of.to_owned(),
                customers: (0..churn.len()).map(|i| format!("C{i}")).collect(),
                churn: Some((churn, 7)),
                intent: None,
            };
            scores::store(&lake, day("2026-06-29", vec![0.5, 0.5, 0.5]))
                .await
                .unwrap();
            scores::store(&lake, day("2026-06-30", vec![0.0, 0.1, 0.95]))
                .await
                .unwrap();
            scores::store(&lake, day("2026-06-30", vec![0.0, 0.1, 0.95, 1.0]))
                .await
                .unwrap();
            let latest = scores::latest(&lake).await.unwrap();
            assert_eq!(latest.len(), 4, "{latest:?}");
            assert_eq!(latest[3], ("C3".to_owned(), Some(1.0), None, Some(7), None));
            let (as_of, buckets) = scores::churn_histogram(&lake, 10).await.unwrap().unwrap();
            assert_eq!(as_of, "2026-06-30");
            assert_eq!(buckets, [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        });
        let files = files_of(&env, "customer_scores");
        assert_eq!(files, 2, "one live file per date");
    }
}

/// Lists for `customers`, `n` items each, from model `model`.
fn lists_for(customers: &[(&str, usize)], model: i64) -> patron::lake::recommendations::Lists {
    let mut l = patron::lake::recommendations::Lists::new(model);
    for (c, n) in customers {
        for rank in 1..=*n {
            let product = format!("P{model}-{rank}");
            let score = 1.0 / rank as f64;
            l.push(
                c,
                rank as i64,
                &product,
                score,
                "item_knn",
                Some("P0"),
                Some("bought"),
            );
        }
    }
    l
}

#[test]
fn a_customers_newest_list_wins_whole_and_a_full_run_replaces_every_list() {
    use patron::lake::recommendations::{self as recs, Replaces};
    for backend in backends() {
        let env = Env::new(backend);
        block_on(async {
            let lake = open(&env).await;
            recs::store(
                &lake,
                lists_for(&[("C1", 3), ("C2", 2)], 1),
                Replaces::Everyone,
            )
            .await
            .unwrap();
            // A feedback pass gives C1 a shorter list: none of its old rows shows.
            recs::store(&lake, lists_for(&[("C1", 1)], 2), Replaces::TheirCustomers)
                .await
                .unwrap();
            let c1 = recs::for_customer(&lake, "C1").await.unwrap();
            assert_eq!(c1.len(), 1, "{c1:?}");
            assert_eq!((c1[0].model_id, c1[0].product_id.as_str()), (2, "P2-1"));
            assert_eq!(c1[0].reason, "because you bought P0");
            assert_eq!(recs::for_customer(&lake, "C2").await.unwrap().len(), 2);
            assert!(recs::for_customer(&lake, "C'3").await.unwrap().is_empty());
            let all = recs::all(&lake).await.unwrap();
            let ids: Vec<(&str, i64)> = all.iter().map(|r| (r.0.as_str(), r.1)).collect();
            assert_eq!(ids, [("C1", 1), ("C2", 1), ("C2", 2)]);
            assert_eq!(recs::pairs_of_model(&lake, 1).await.unwrap().len(), 2);

            // Compaction keeps what readers see.
            maintain::compact(&lake, Some(Dataset::Recommendations))
                .await
                .unwrap();
            assert_eq!(recs::all(&lake).await.unwrap(), all);
            assert_eq!(recs::for_customer(&lake, "C1").await.unwrap(), c1);

            recs::store(&lake, lists_for(&[("C3", 2)], 3), Replaces::Everyone)
                .await
                .unwrap();
            assert!(recs::for_customer(&lake, "C1").await.unwrap().is_empty());
            assert_eq!(recs::all(&lake).await.unwrap().len(), 2);
        });
        assert_eq!(files_of(&env, "recommendations"), 1);
    }
}

#[test]
fn a_serving_model_is_a_file_that_goes_when_its_model_can_no_longer_serve() {
    use patron::{db::repo::models, lake::model_files};
    for backend in backends() {
        let env = Env::new(backend);
        block_on(async {
            let lake = open(&env).await;
            let mut ids = Vec::new();
            for _ in 0..2 {
                let new = models::NewModel {
                    kind: "recommend".to_owned(),
                    algorithm: "test".to_owned(),
                    params: serde_json::json!({}),
                    metrics: serde_json::json!({}),
                    as_of: None,
                    payload: String::new(),
                };
                ids.push(models::register(lake.db(), new).await.unwrap().id);
            }
            let (old, new) = (ids[0], ids[1]);
            models::promote(lake.db(), old).await.unwrap();
            model_files::store(&lake, old, "f1", vec![1, 2, 3])
                .await
                .unwrap();
            // A retry stores again: one file stays.
            model_files::store(&lake, old, "f1", vec![1, 2, 3])
                .await
                .unwrap();
            assert_eq!(
                model_files::load(&lake, old, "f1").await.unwrap(),
                Some(vec![1, 2, 3])
            );
            assert_eq!(model_files::load(&lake, old, "f2").await.unwrap(), None);
            models::promote(lake.db(), new).await.unwrap();
            model_files::store(&lake, new, "f1", vec![4; 10])
                .await
                .unwrap();
            assert!(!model_files::has(&lake, old, "f1").await.unwrap());
            assert_eq!(
                model_files::load(&lake, new, "f1").await.unwrap(),
                Some(vec![4; 10])
            );
            // A file a killed job wrote but never recorded goes with `lake vacuum`; the
            // recorded one stays.
            std::fs::write(env.lake_path().join("models/model-9-dead.bin"), b"x").unwrap();
            let swept = maintain::vacuum(&lake, std::time::Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(swept.unrecorded, 1, "{swept:?}");
        });
        let left: Vec<_> = std::fs::read_dir(env.lake_path().join("models"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // A file removed between the lookup and the read (a newer model's run dropped it)
        // reads as none: the feedback pass waits for the next run.
        std::fs::remove_file(env.lake_path().join("models").join(&left[0])).unwrap();
        block_on(async {
            let lake = open(&env).await;
            let new = patron::db::repo::models::champion(lake.db(), "recommend")
                .await
                .unwrap()
                .unwrap()
                .id;
            assert_eq!(model_files::load(&lake, new, "f1").await.unwrap(), None);
        });
    }
}

/// `patron recommend C` reads one row group: compaction writes the lists sorted by customer
/// in groups of at most 65,536 rows, each holding its own range of customers.
#[test]
fn recommendation_files_are_sorted_by_customer_in_small_row_groups() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    use patron::lake::recommendations::{self as recs, Replaces};
    let env = Env::new(Backend::Sqlite);
    let ids: Vec<String> = (0..70_000).map(|i| format!("C{i:06}")).collect();
    let half = |odd: usize| -> Vec<(&str, usize)> {
        ids.iter()
            .skip(odd)
            .step_by(2)
            .map(|c| (c.as_str(), 1))
            .collect()
    };
    block_on(async {
        let lake = open(&env).await;
        recs::store(&lake, lists_for(&half(0), 1), Replaces::Everyone)
            .await
            .unwrap();
        recs::store(&lake, lists_for(&half(1), 2), Replaces::TheirCustomers)
            .await
            .unwrap();
        maintain::compact(&lake, Some(Dataset::Recommendations))
            .await
            .unwrap();
        let one = recs::for_customer(&lake, "C012345").await.unwrap();
        assert_eq!((one.len(), one[0].model_id), (1, 2));
    });
    let files: Vec<String> = listed(&env, "recommendations")["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files.len(), 1);
    let reader =
        SerializedFileReader::new(std::fs::File::open(env.lake_path().join(&files[0])).unwrap())
            .unwrap();
    let meta = reader.metadata();
    let ranges: Vec<(Vec<u8>, Vec<u8>, i64)> = (0..meta.num_row_groups())
        .map(|g| {
            let group = meta.row_group(g);
            let stats = group.column(0).statistics().unwrap();
            (
                stats.min_bytes_opt().unwrap().to_vec(),
                stats.max_bytes_opt().unwrap().to_vec(),
                group.num_rows(),
            )
        })
        .collect();
    assert_eq!(ranges.len(), 2, "70,000 rows in groups of 65,536");
    assert_eq!(ranges[0].2, 65_536);
    assert_eq!(ranges[0].0, b"C000000");
    assert!(
        ranges[0].1 < ranges[1].0,
        "the groups' customer ranges overlap"
    );
    assert_eq!(ranges[1].1, b"C069999");
}
