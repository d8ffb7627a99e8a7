//! Chaos on PostgreSQL: three daemons run many runs of a wide pipeline while one of them,
//! picked at random, is `kill -9`ed and restarted every second or so. Each run also pays
//! loyalty points: a `points` job and a `points-sharded` job (`shards = 2`) after the root,
//! so every run redoes the nightly points work on the same shop (about 1,500 orders loaded
//! with `patron ingest` beforehand). The runs are queued before the daemons start, so the
//! points passes of many runs overlap, and kills cut some of them short.
//!
//! At the end every run has succeeded, no job run has two succeeded attempts, nothing is
//! left running, no `points` attempt failed, and the ledger is what one clean pass pays: no
//! duplicate key, exactly one `earn:` row per paid, clean order worth a point (counted from
//! the `orders` table the way `unearned_orders` decides), the points those orders are worth,
//! and the same rows and tiers as an undisturbed `points` run on the same data in a second
//! database.
//!
//! CI runs 2,000 jobs; `PATRON_CHAOS_JOBS=20000` runs the full size.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};

use crate::common::*;

/// Plain fan jobs per run, besides the root, the three `points` job runs and the sink.
const WIDTH: usize = 95;
/// Job runs per run: root, the fan, `points`, `points-sharded:0`, `points-sharded:1`, sink.
const PER_RUN: usize = WIDTH + 5;
/// The shop the points are earned on.
const CUSTOMERS: usize = 300;
const ORDERS: usize = 1_500;

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

/// The first column, as text, of every row of `sql`.
fn lines(env: &Env, sql: &str) -> Vec<String> {
    block_on(async {
        let db = patron::db::connect(&env.db.url, 2).await.unwrap();
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
    })
}

/// Customers and order lines, placed over the last 60 days (pending or spendable, none
/// expired): one to three lines an order, some worth no point (under 1.00), some refunded
/// or cancelled whole, some with one refunded line, and enough spend for some customers to
/// pass the silver threshold.
fn shop_files() -> (String, String) {
    let now = chrono::Utc::now();
    let mut customers = String::from("customer_id,signup_at,region\n");
    for c in 0..CUSTOMERS {
        let region = ["north", "south", "east", "west"][c % 4];
        customers += &format!("C{c:03},2024-01-01,{region}\n");
    }
    let mut orders =
        String::from("order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n");
    for o in 0..ORDERS {
        let customer = (o * 7) % CUSTOMERS;
        let at = (now
            - chrono::Duration::days(1 + (o % 60) as i64)
            - chrono::Duration::minutes((o * 13 % 600) as i64))
        .to_rfc3339();
        let n = 1 + o % 3;
        for l in 0..n {
            let cents = if o % 9 == 0 {
                40
            } else {
                50 + (o * 37 + l * 1_111) % 30_000
            };
            let status = if o % 13 == 0 {
                "refunded"
            } else if o % 19 == 0 {
                "cancelled"
            } else if o % 17 == 0 && n > 1 && l == n - 1 {
                "refunded"
            } else {
                "paid"
            };
            orders += &format!(
                "O{o:05},C{customer:03},P{:02},{},{}.{:02},{at},{status}\n",
                (o + l) % 50,
                1 + l % 2,
                cents / 100,
                cents % 100
            );
        }
    }
    (customers, orders)
}

/// Loads the shop through the CLI; every 23rd order is then flagged an anomaly, as `clean`
/// would, and must not earn.
fn load_shop(env: &Env, (customers, orders): &(String, String)) {
    let c = env.write("customers.csv", customers);
    let o = env.write("orders.csv", orders);
    env.ok(&["ingest", "customers", c.to_str().unwrap()]);
    env.ok(&["ingest", "orders", o.to_str().unwrap()]);
    block_on(async {
        let db = patron::db::connect(&env.db.url, 2).await.unwrap();
        let lake = env.lake(db);
        let ctx = lake.session().await.unwrap();
        // Order ids are `O<number>`.
        let flagged: Vec<String> = orders
            .lines()
            .filter_map(|l| l.split(',').next())
            .filter(|id| id[1..].parse::<u64>().is_ok_and(|n| n % 23 == 0))
            .map(|id| format!("'{id}'"))
            .collect();
        patron::lake::clean::replace_marks(
            &lake,
            &ctx,
            &format!(
                "SELECT 'orders' AS dataset, order_id AS id, line_key, 'chaos test' AS reason \
                 FROM orders WHERE order_id IN ({})",
                flagged.join(",")
            ),
        )
        .await
        .unwrap();
    });
}

/// Paid, clean orders worth at least one point at the default rules (1 point per whole
/// currency unit, rounded down, bronze ×1: every first earn is at the lowest tier), as
/// `unearned_orders` groups them: `(order_id, paid_cents)`.
const EARNING: &str = "SELECT order_id, CAST(SUM(quantity * unit_price_cents) AS BIGINT) AS paid \
     FROM clean_orders WHERE status = 'paid' GROUP BY order_id \
     HAVING SUM(quantity * unit_price_cents) >= 100";

/// Every ledger row, without what may differ between passes (ids, run ids, reasons).
const LEDGER_ROWS: &str = "SELECT key || ' ' || customer_id || ' ' || kind || ' ' || points \
     || ' ' || at || ' ' || available_at || ' ' || COALESCE(CAST(expires_at AS TEXT), '-') \
     || ' ' || COALESCE(order_id, '-') || ' ' || COALESCE(CAST(basis_cents AS TEXT), '-') \
     FROM point_ledger ORDER BY key, id";

const TIER_ROWS: &str = "SELECT customer_id || ' ' || tier || ' ' || earned_12m \
     FROM customer_tiers ORDER BY customer_id";

/// Asserts two sorted row lists are equal, showing a few differences rather than thousands.
fn assert_same_rows(what: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let only_got: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
    let only_want: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
    panic!(
        "{what}: {} rows under chaos, {} in the clean pass; only under chaos: {only_got:#?}; \
         only in the clean pass: {only_want:#?}",
        got.len(),
        want.len()
    );
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
    let runs = jobs.div_ceil(PER_RUN);
    let shop = shop_files();
    load_shop(&env, &shop);
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
    // No retries: a points attempt that fails is a bug, not bad luck.
    text += "[[job]]\nname = \"points\"\nkind = \"points\"\nafter = [\"root\"]\n";
    text +=
        "[[job]]\nname = \"points-sharded\"\nkind = \"points\"\nshards = 2\nafter = [\"root\"]\n";
    let mut upstream: Vec<String> = (0..WIDTH).map(|i| format!("\"f{i}\"")).collect();
    upstream.push("\"points\"".to_owned());
    upstream.push("\"points-sharded\"".to_owned());
    text += &format!(
        "[[job]]\nname = \"sink\"\nkind = \"noop\"\nafter = [{}]\n",
        upstream.join(", ")
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
    eprintln!("chaos: {runs} runs × {PER_RUN} jobs, seed {seed}");
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    // Every run is queued before a daemon starts, so they all start together: the points
    // passes of many runs overlap, and the first kills land on them.
    for r in 0..runs {
        env.ok(&["trigger", "chaos", "--key", &format!("chaos-{r}")]);
    }
    let mut generation = 0;
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|i| env.daemon_with(&format!("chaos-{i}-0"), &settings))
        .collect();
    let started = Instant::now();
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
    drop(daemons);
    let ledger_rows = count(&env, "SELECT COUNT(*) FROM point_ledger");
    // Points attempts of different runs that ran at the same time (what the ledger's key
    // has to make harmless), and those a kill cut short.
    let points_attempts = "SELECT a.id, a.state, j.run_id, a.started_at, \
         COALESCE(a.finished_at, a.started_at) AS finished_at \
         FROM attempts a JOIN job_runs j ON j.id = a.job_run_id WHERE j.kind = 'points'";
    eprintln!(
        "chaos: {} jobs in {:.1}s with {kills} kills ({:.0} jobs/s); {ledger_rows} ledger rows; \
         points attempts: {} lost, {} overlapping pairs across runs",
        runs * PER_RUN,
        took.as_secs_f64(),
        (runs * PER_RUN) as f64 / took.as_secs_f64(),
        count(
            &env,
            &format!("SELECT COUNT(*) FROM ({points_attempts}) p WHERE state = 'lost'")
        ),
        count(
            &env,
            &format!(
                "SELECT COUNT(*) FROM ({points_attempts}) a JOIN ({points_attempts}) b \
                 ON a.id < b.id AND a.run_id <> b.run_id \
                 AND a.started_at < b.finished_at AND b.started_at < a.finished_at"
            )
        )
    );

    assert_eq!(terminal(), runs, "runs still unfinished after {deadline:?}");
    let failed_points = lines(
        &env,
        "SELECT j.job_name || ' of run ' || j.run_id || ': ' || a.state || ': ' \
         || COALESCE(a.error, '') FROM attempts a JOIN job_runs j ON j.id = a.job_run_id \
         WHERE j.kind = 'points' AND a.state NOT IN ('succeeded', 'lost') ORDER BY a.id",
    );
    assert!(
        failed_points.is_empty(),
        "points attempts failed: {failed_points:#?}"
    );
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
        runs * PER_RUN
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM job_runs WHERE kind = 'points' AND state = 'succeeded'"
        ) as usize,
        runs * 3,
        "every run paid points three times (one whole pass, two shards)"
    );
    assert!(kills > 0);

    // The ledger: every key once, one earn per earning order, nothing else.
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM point_ledger"),
        count(&env, "SELECT COUNT(DISTINCT key) FROM point_ledger"),
        "duplicate ledger keys"
    );
    // Orders are in the lake, the ledger in the database: compared here.
    let orders: Vec<(String, i64)> = env
        .lake_rows(EARNING)
        .into_iter()
        .map(|r| {
            let (id, paid) = r.split_once('|').unwrap();
            (id.to_owned(), paid.parse().unwrap())
        })
        .collect();
    let earning = orders.len() as i64;
    assert!(earning > ORDERS as i64 / 2, "only {earning} orders earn");
    for (id, _) in &orders {
        assert_eq!(
            count(
                &env,
                &format!("SELECT COUNT(*) FROM point_ledger WHERE key = 'earn:{id}'")
            ),
            1,
            "earning order {id} has no earn row, or several"
        );
    }
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM point_ledger WHERE kind = 'earn'"
        ),
        earning,
        "earn rows for orders that earn nothing"
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM point_ledger WHERE kind <> 'earn'"
        ),
        0,
        "nothing was refunded after earning, nothing expired"
    );
    assert_eq!(
        count(
            &env,
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM point_ledger"
        ),
        orders.iter().map(|(_, paid)| paid / 100).sum::<i64>(),
        "the ledger pays more or less than the orders are worth"
    );

    // The same shop through one undisturbed points run pays the same rows and tiers.
    let clean = Env::new(Backend::Postgres);
    load_shop(&clean, &shop);
    clean.apply(
        "points.toml",
        "[pipeline]\nname = \"points\"\n[[job]]\nname = \"points\"\nkind = \"points\"\n",
    );
    let daemon = clean.daemon("clean");
    let out = clean.json(&["trigger", "points", "--wait"]);
    assert_eq!(out["state"], "succeeded", "clean pass: {out:#}");
    drop(daemon);
    let tiers = lines(&clean, TIER_ROWS);
    assert!(
        tiers.iter().any(|t| !t.contains(" bronze ")),
        "no customer passed bronze: {tiers:#?}"
    );
    assert_same_rows(
        "ledger",
        &lines(&env, LEDGER_ROWS),
        &lines(&clean, LEDGER_ROWS),
    );
    assert_same_rows("tiers", &lines(&env, TIER_ROWS), &tiers);
}
