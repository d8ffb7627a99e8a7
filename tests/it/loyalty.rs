//! Loyalty through the binary, on SQLite and PostgreSQL: the nightly `points` job earns,
//! reverses a refund and is idempotent; a campaign is previewed, launched exactly once, and
//! a second launch pays nothing.

use crate::common::*;

const POINTS: &str = r#"
[pipeline]
name = "points"

[[job]]
name = "points"
kind = "points"
"#;

/// When the orders were placed: a month ago, so the points are spendable and not expired.
fn ordered_at() -> String {
    (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339()
}

fn shop(env: &Env) -> String {
    let at = ordered_at();
    let mut customers = String::from("customer_id,signup_at,region\n");
    let mut orders =
        String::from("order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n");
    for i in 0..20 {
        let region = if i % 2 == 0 { "east" } else { "west" };
        customers.push_str(&format!("C{i:02},2024-01-01,{region}\n"));
        // 12.34 per order: 12 points each (floor).
        orders.push_str(&format!("O{i:02},C{i:02},P1,2,6.17,{at},paid\n"));
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    env.ok(&[
        "ingest",
        "customers",
        env.path("customers.csv").to_str().unwrap(),
    ]);
    env.ok(&["ingest", "orders", env.path("orders.csv").to_str().unwrap()]);
    at
}

fn ledger_sum(env: &Env, customer: &str) -> i64 {
    let rows = env.json(&["points", "history", customer]);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["points"].as_i64().unwrap())
        .sum()
}

#[test]
fn points_earn_reverse_and_campaigns_pay_exactly_once() {
    for backend in backends() {
        let env = Env::new(backend);
        let at = shop(&env);
        env.apply("points.toml", POINTS);
        let _daemon = env.daemon("w1");
        let run = || {
            let out = env.json(&["trigger", "points", "--wait"]);
            assert_eq!(out["state"], "succeeded", "{backend:?}: {out:#}");
        };
        run();
        let b = env.json(&["points", "balance", "C00"]);
        // Earned a month ago, pending 14 days: spendable now, tier bronze.
        assert_eq!(b["balance"], 12, "{b:#}");
        assert_eq!(b["pending"], 0);
        assert_eq!(b["tier"], "bronze");
        let history = env.json(&["points", "history", "C00"]);
        let kinds: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["earn"], "{history:#}");

        // Rerunning earns nothing twice.
        run();
        assert_eq!(ledger_sum(&env, "C00"), 12);

        // C01's order is refunded: the next run takes its points back, once.
        env.write(
            "refund.csv",
            &format!("order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\nO01,C01,P1,2,6.17,{at},refunded\n"),
        );
        env.ok(&["ingest", "orders", env.path("refund.csv").to_str().unwrap()]);
        run();
        run();
        assert_eq!(ledger_sum(&env, "C01"), 0);
        let h = env.json(&["points", "history", "C01"]);
        assert_eq!(h.as_array().unwrap().len(), 2, "{h:#}");
        assert_eq!(h[1]["kind"], "reverse");

        // An adjustment is audited.
        env.ok(&[
            "points",
            "adjust",
            "C02",
            "-5",
            "--reason",
            "goodwill correction",
        ]);
        assert_eq!(ledger_sum(&env, "C02"), 7);
        let audit = env.json(&["audit", "list"]);
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "points adjust"),
            "{audit:#}"
        );

        // A campaign for the east region: 10 customers, 30 points each, budget 250.
        env.write(
            "east.toml",
            "[campaign]\nname = \"east\"\nstarts = \"2024-01-01\"\nends = \"2024-12-31\"\nbudget_points = 250\nper_customer_cap = 30\n[target]\nregions = [\"east\"]\n[reward]\nfixed_points = 40\n",
        );
        let created = env.json(&[
            "campaign",
            "create",
            env.path("east.toml").to_str().unwrap(),
        ]);
        let id = created["id"].as_i64().unwrap().to_string();
        let preview = env.json(&["campaign", "preview", &id]);
        // 30 each (capped) for 8 customers = 240, then 10 for the ninth: the budget.
        assert_eq!(preview["customers"], 9, "{preview:#}");
        assert_eq!(preview["points"], 250);
        assert_eq!(preview["cost"], 2.5);
        assert_eq!(preview["sample"][0]["why"][0], "region east");
        let launched = env.json(&["campaign", "launch", &id, "--yes"]);
        assert_eq!(launched["customers"], 9, "{launched:#}");
        assert_eq!(launched["points"], 250);
        assert!(launched["run_id"].is_number());
        let again = env.run(&["campaign", "launch", &id, "--yes"]);
        assert!(!again.status.success());
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains("already launched"), "{err}");
        assert_eq!(ledger_sum(&env, "C00"), 12 + 30);
        assert_eq!(ledger_sum(&env, "C01"), 0, "west is not targeted");
        // Rerunning the launch run pays nothing more.
        let run_id = launched["run_id"].as_i64().unwrap().to_string();
        env.ok(&["rerun", &run_id]);
        wait_until(std::time::Duration::from_secs(30), || {
            env.show(launched["run_id"].as_i64().unwrap())["state"] == "succeeded"
        });
        assert_eq!(ledger_sum(&env, "C00"), 12 + 30);
        let shown = env.json(&["campaign", "show", &id]);
        assert_eq!(shown["state"], "launched");
        assert_eq!(shown["points"], 250);

        // A bad file names its line.
        env.write("bad.toml", "[campaign]\nname = \"x\"\nstarts = \"2024-13-01\"\nends = \"2024-12-31\"\nbudget_points = 1\n[reward]\nfixed_points = 1\n");
        let bad = env.run(&["campaign", "create", env.path("bad.toml").to_str().unwrap()]);
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("bad.toml:3:"), "{err}");
    }
}

/// The issue bar for launches: 100,000 customers, daemons `kill -9`ed at random moments while
/// the launch plans and pays, restarted, and the ledger still holds exactly one award per
/// customer and the totals the preview announced. On PostgreSQL two daemons share the work
/// and both are killed each round.
#[test]
fn a_launch_pays_exactly_once_through_kill_9_and_restarts() {
    use std::time::{Duration, Instant};

    use rand::{Rng as _, SeedableRng as _};

    const CUSTOMERS: usize = 100_000;
    const ROUNDS: usize = 4;
    let seed: u64 = std::env::var("PATRON_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill schedule seed {seed} (set PATRON_TEST_SEED to replay)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    for backend in backends() {
        let started = Instant::now();
        let env = Env::new(backend)
            .with_env("PATRON__SCHEDULER__LEASE_TTL", "1s")
            .with_env("PATRON__SCHEDULER__HEARTBEAT_INTERVAL", "200ms")
            .with_env("PATRON__SCHEDULER__REAPER_INTERVAL", "200ms")
            // Every kill loses the attempt; the default (3) would fail the run on purpose.
            .with_env("PATRON__SCHEDULER__MAX_LOST_ATTEMPTS", "50");
        let mut csv = String::with_capacity(CUSTOMERS * 30);
        csv.push_str("customer_id,signup_at,region\n");
        for i in 0..CUSTOMERS {
            csv.push_str(&format!("K{i:06},2024-01-01,r{}\n", i % 7));
        }
        env.write("many.csv", &csv);
        env.ok(&[
            "ingest",
            "customers",
            env.path("many.csv").to_str().unwrap(),
        ]);
        env.write(
            "everyone.toml",
            "[campaign]\nname = \"everyone\"\nstarts = \"2026-01-01\"\nends = \"2026-01-31\"\nbudget_points = 100000000\nper_customer_cap = 50\n[reward]\nfixed_points = 7\n",
        );
        let id = env.json(&[
            "campaign",
            "create",
            env.path("everyone.toml").to_str().unwrap(),
        ])["id"]
            .as_i64()
            .unwrap();
        let ids = id.to_string();
        let preview = env.json(&["campaign", "preview", &ids, "--sample", "1"]);
        assert_eq!(preview["customers"], CUSTOMERS, "{preview:#}");
        assert_eq!(preview["points"], 7 * CUSTOMERS as i64);
        let setup = started.elapsed();

        let names: &[&str] = match backend {
            Backend::Sqlite => &["a"],
            Backend::Postgres => &["a", "b"],
        };
        let start_all = |round: usize| -> Vec<(String, Daemon)> {
            names
                .iter()
                .map(|n| {
                    let id = format!("{n}{round}");
                    let d = env.daemon(&id);
                    (id, d)
                })
                .collect()
        };
        let mut daemons = start_all(0);
        env.wait_worker(&daemons[0].0, Duration::from_secs(15));
        // With a daemon alive the CLI only creates the run and waits for it.
        let launch = env.spawn_json(&["campaign", "launch", &ids, "--yes"]);
        let run = {
            let mut run = None;
            assert!(wait_until(Duration::from_secs(15), || {
                run = env.json(&["campaign", "show", &ids])["run_id"].as_i64();
                run.is_some()
            }));
            run.unwrap()
        };
        let finished = |shown: &serde_json::Value| {
            matches!(
                shown["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        };
        let (mut kills, mut stalls) = (0, 0);
        for round in 1..=ROUNDS {
            // Strike while the job runs on a live daemon (a killed daemon's attempt stays
            // `running` until its lease runs out); planning and paying take a second or two.
            let mut holder = None;
            let running = wait_until(Duration::from_secs(20), || {
                let shown = env.show(run);
                holder = job(&shown, "allocate")["attempts"]
                    .as_array()
                    .and_then(|a| a.last())
                    .filter(|a| a["state"] == "running")
                    .and_then(|a| a["worker_id"].as_str())
                    .and_then(|w| daemons.iter().position(|(id, _)| id == w));
                finished(&shown) || holder.is_some()
            });
            assert!(running, "the job never ran again after round {round}");
            let Some(holder) = holder else { break };
            // The first strike comes at once and is a crash, so at least one fault lands
            // on a running attempt however fast the job is; later ones come at random.
            let wait = if round == 1 { 0..50 } else { 0..1_200 };
            std::thread::sleep(Duration::from_millis(rng.random_range(wait)));
            if round > 1 && (round == 2 || rng.random_bool(0.25)) {
                // A stall instead of a crash: the holder freezes past its lease, another
                // daemon takes the job over, and the holder wakes up still running its
                // attempt (a stopped job is given seconds to stop), alongside the new one.
                let id = daemons[holder].0.clone();
                daemons[holder].1.signal(libc::SIGSTOP);
                let fresh = format!("s{round}");
                daemons.push((fresh.clone(), env.daemon(&fresh)));
                std::thread::sleep(Duration::from_millis(rng.random_range(1_300..2_500)));
                daemons[holder].1.signal(libc::SIGCONT);
                eprintln!("{backend:?}: round {round}: stalled {id}");
                stalls += 1;
            } else {
                for (_, d) in daemons.drain(..) {
                    d.kill9();
                    std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
                }
                daemons = start_all(round);
                kills += 1;
            }
        }
        let out = wait_child(launch, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{backend:?}: launch failed\nstdout: {stdout}\nstderr: {}\n{:#}",
            String::from_utf8_lossy(&out.stderr),
            env.show(run)
        );
        let launched: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(launched["customers"], preview["customers"], "{launched:#}");
        assert_eq!(launched["points"], preview["points"]);
        let shown = env.show(run);
        let states = attempt_states(&shown, "allocate");
        eprintln!("{backend:?}: {kills} kills, {stalls} stalls; attempts {states:?}");
        for a in job(&shown, "allocate")["attempts"].as_array().unwrap() {
            if a["state"] == "failed" {
                eprintln!("{backend:?}: a failed attempt (retried): {}", a["error"]);
            }
        }
        // Later faults may find the job already done on a busy machine; the first always
        // lands.
        assert!(
            states.iter().any(|s| s == "lost"),
            "faults did not land during the job: {states:?}"
        );
        assert_eq!(
            states.iter().filter(|s| *s == "succeeded").count(),
            1,
            "{states:?}"
        );

        let ledger = |env: &Env| {
            env.sql_ints(&format!(
                "SELECT COUNT(*), COUNT(DISTINCT customer_id), CAST(COALESCE(SUM(points), 0) AS BIGINT), \
                 COUNT(DISTINCT key) FROM point_ledger WHERE campaign_id = {id}"
            ))
        };
        let [rows, distinct, points, keys] = ledger(&env)[..] else {
            panic!("four columns")
        };
        assert_eq!(rows, distinct, "{backend:?}: a customer was paid twice");
        assert_eq!(rows, keys);
        assert_eq!(rows, CUSTOMERS as i64);
        assert_eq!(Some(points), preview["points"].as_i64());
        assert_eq!(
            env.sql_ints(&format!(
                "SELECT COUNT(*) FROM point_ledger WHERE key LIKE 'campaign:{id}:%'"
            )),
            [rows]
        );
        let plan = env.sql_ints(&format!(
            "SELECT COUNT(*), CAST(SUM(points) AS BIGINT) FROM campaign_allocations WHERE campaign_id = {id}"
        ));
        assert_eq!(plan, [rows, points], "the stored plan is the plan paid");
        let campaign = env.json(&["campaign", "show", &ids]);
        assert_eq!(campaign["state"], "launched");
        assert_eq!(campaign["customers"], rows);
        assert_eq!(campaign["points"], points);

        // A second launch is refused and pays nothing.
        let again = env.run(&["campaign", "launch", &ids, "--yes"]);
        assert!(!again.status.success());
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains("already launched"), "{err}");
        assert_eq!(ledger(&env), [rows, distinct, points, keys]);
        drop(daemons);
        eprintln!(
            "{backend:?}: {:.1}s in all ({:.1}s ingest and preview)",
            started.elapsed().as_secs_f64(),
            setup.as_secs_f64()
        );
    }
}

/// The monthly win-back pipeline as shipped (jobs/win-back.toml, campaigns/win-back.toml):
/// each month gets one campaign `win-back YYYY-MM` for that calendar month, paid once
/// whatever reruns, retries or extra runs that month; a month cancelled ahead pays nothing.
#[test]
fn the_monthly_win_back_makes_and_pays_one_campaign_per_month() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for backend in backends() {
        let env = Env::new(backend);
        shop(&env);
        // Who the models see slipping away: C00..C04 at risk and likely to churn, C05 and C06
        // hibernating (C06 not likely enough), the rest champions.
        let mut labels = Vec::new();
        let mut churns = Vec::new();
        for i in 0..20 {
            let (label, churn) = match i {
                0..5 => ("at risk", 0.8),
                5 => ("hibernating", 0.6),
                6 => ("hibernating", 0.4),
                _ => ("champions", 0.9),
            };
            labels.push(label.to_owned());
            churns.push(churn);
        }
        block_on(async {
            let conn = patron::db::connect(&env.db.url, 1).await.unwrap();
            let profiles = patron::lake::profiles::Profiles {
                as_of: "2026-06-30".to_owned(),
                model_id: 1,
                customers: (0..20).map(|i| format!("C{i:02}")).collect(),
                segments: vec![1; 20],
                labels,
                pc1: vec![0.0; 20],
                pc2: vec![0.0; 20],
                r_scores: vec![1; 20],
                f_scores: vec![1; 20],
                m_scores: vec![1; 20],
            };
            patron::lake::profiles::store(&env.lake(conn.clone()), profiles, true)
                .await
                .unwrap();
            let scores = patron::lake::scores::Scores {
                as_of: "2026-06-30".to_owned(),
                customers: (0..20).map(|i| format!("C{i:02}")).collect(),
                churn: Some((churns, 1)),
                intent: None,
            };
            patron::lake::scores::store(&env.lake(conn), scores)
                .await
                .unwrap();
        });
        env.write(
            "campaigns/win-back.toml",
            &std::fs::read_to_string(repo.join("campaigns/win-back.toml")).unwrap(),
        );
        env.apply(
            "jobs/win-back.toml",
            &std::fs::read_to_string(repo.join("jobs/win-back.toml")).unwrap(),
        );
        let _daemon = env.daemon("w1");

        // The July tick (1 July, 09:00 UTC), as the scheduler would plan it.
        let backfill = env.json(&[
            "backfill",
            "win-back",
            "--from",
            "2026-07-01",
            "--to",
            "2026-07-01",
        ]);
        let july_run = backfill["runs"][0]["run_id"].as_i64().unwrap();
        assert_eq!(
            env.wait_run(july_run, std::time::Duration::from_secs(30))["state"],
            "succeeded"
        );
        let by_name = |name: &str| -> Vec<serde_json::Value> {
            env.json(&["campaign", "list"])
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"] == name)
                .cloned()
                .collect()
        };
        let july = by_name("win-back 2026-07");
        assert_eq!(july.len(), 1, "{july:#?}");
        assert_eq!(july[0]["state"], "launched");
        assert_eq!(july[0]["customers"], 6, "C00-C05: {:#}", july[0]);
        assert_eq!(july[0]["points"], 6 * 200);
        assert_eq!(july[0]["run_id"], july_run);
        let july_id = july[0]["id"].as_i64().unwrap();
        let shown = env.json(&["campaign", "show", &july_id.to_string()]);
        assert_eq!(shown["spec"]["starts"], "2026-07-01", "{shown:#}");
        assert_eq!(shown["spec"]["ends"], "2026-07-31");
        assert_eq!(ledger_sum(&env, "C00"), 200);
        assert_eq!(ledger_sum(&env, "C06"), 0, "churn 0.4 is not targeted");
        assert_eq!(ledger_sum(&env, "C07"), 0, "champions are not targeted");

        // A rerun of the July run, and another run in July: the same campaign, nothing more.
        env.ok(&["rerun", &july_run.to_string()]);
        wait_until(std::time::Duration::from_secs(30), || {
            env.show(july_run)["state"] == "succeeded"
        });
        let again = env.json(&[
            "trigger",
            "win-back",
            "--param",
            "as_of=2026-07-20",
            "--wait",
        ]);
        assert_eq!(again["state"], "succeeded", "{again:#}");
        assert_eq!(by_name("win-back 2026-07").len(), 1);
        assert_eq!(ledger_sum(&env, "C00"), 200);
        // Made ahead from the same file for July: found, not made again.
        let ahead = env.json(&[
            "campaign",
            "create",
            "campaigns/win-back.toml",
            "--month",
            "2026-07",
        ]);
        assert_eq!(ahead["id"], july_id);
        assert_eq!(ahead["created"], false);

        // August is a new campaign, paid to the same customers again.
        let aug = env.json(&[
            "trigger",
            "win-back",
            "--param",
            "as_of=2026-08-01",
            "--wait",
        ]);
        assert_eq!(aug["state"], "succeeded", "{aug:#}");
        let august = by_name("win-back 2026-08");
        assert_eq!(august.len(), 1);
        assert_eq!(august[0]["points"], 6 * 200);
        assert_eq!(ledger_sum(&env, "C00"), 400);

        // September is made ahead, previewed and cancelled: its run pays nothing.
        let sept = env.json(&[
            "campaign",
            "create",
            "campaigns/win-back.toml",
            "--month",
            "2026-09",
        ]);
        assert_eq!(sept["created"], true);
        let sept_id = sept["id"].as_i64().unwrap().to_string();
        let preview = env.json(&["campaign", "preview", &sept_id]);
        assert_eq!(preview["customers"], 6, "{preview:#}");
        env.ok(&["campaign", "cancel", &sept_id]);
        let skipped = env.json(&[
            "trigger",
            "win-back",
            "--param",
            "as_of=2026-09-01",
            "--wait",
        ]);
        assert_eq!(skipped["state"], "succeeded", "{skipped:#}");
        assert_eq!(by_name("win-back 2026-09")[0]["state"], "cancelled");
        assert_eq!(ledger_sum(&env, "C00"), 400);
        assert_eq!(
            env.sql_ints("SELECT COUNT(*) FROM campaigns"),
            [3],
            "July, August, September"
        );
    }
}

/// The storage rules the launch relies on, driven directly: attempts running at once (a
/// daemon that froze past its lease and woke up next to its replacement) make one campaign
/// per name, store one plan (the first; a later, different plan is refused, so a changed
/// data set cannot add customers to a plan part-paid) and pay nothing before the plan is
/// whole.
#[test]
fn one_campaign_per_name_and_one_plan_per_campaign_under_concurrent_attempts() {
    use patron::{db::repo::loyalty as repo, loyalty::Allocation};

    let award = |customer: &str, points: i64| Allocation {
        customer_id: customer.to_owned(),
        points,
        why: vec!["test".to_owned()],
    };
    for backend in backends() {
        let env = Env::new(backend);
        env.ok(&["migrate"]);
        block_on(async {
            let db = patron::db::connect(&env.db.url, 8).await.unwrap();
            let spec = serde_json::json!({});
            let made = futures::future::join_all(
                (0..8).map(|_| repo::find_or_create_campaign(&db, "m 2026-07", "x", &spec)),
            )
            .await;
            let made: Vec<(i64, bool)> = made.into_iter().map(Result::unwrap).collect();
            let id = made[0].0;
            assert!(made.iter().all(|(i, _)| *i == id), "{made:?}");
            assert_eq!(made.iter().filter(|(_, c)| *c).count(), 1, "{made:?}");

            // Not planned yet: paying pays nothing, finishing does not finish.
            assert_eq!(repo::pay_plan(&db, id, "m", 0, None, 1).await.unwrap(), 0);
            assert!(!repo::finish_campaign(&db, id, 0, 0).await.unwrap());

            // Two planners at once with different plans: exactly one plan is stored whole.
            let first: Vec<Allocation> =
                (0..5_000).map(|i| award(&format!("A{i:05}"), 3)).collect();
            let second: Vec<Allocation> =
                (0..7_000).map(|i| award(&format!("B{i:05}"), 5)).collect();
            let (a, b) = futures::join!(
                repo::plan_once(&db, id, &first),
                repo::plan_once(&db, id, &second)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a ^ b, "exactly one plan is stored: {a} {b}");
            let kept = if a { (5_000, 15_000) } else { (7_000, 35_000) };
            assert_eq!(repo::planned(&db, id).await.unwrap(), kept);
            // A planner arriving later changes nothing either.
            assert!(!repo::plan_once(&db, id, &[award("late", 9)]).await.unwrap());
            assert_eq!(repo::planned(&db, id).await.unwrap(), kept);

            assert_eq!(
                repo::pay_plan(&db, id, "m", 0, None, 1).await.unwrap() as i64,
                kept.0
            );
            assert_eq!(repo::pay_plan(&db, id, "m", 0, None, 2).await.unwrap(), 0);
            assert_eq!(repo::paid(&db, id).await.unwrap(), kept);
            assert!(
                repo::finish_campaign(&db, id, kept.0, kept.1)
                    .await
                    .unwrap()
            );
            assert!(
                !repo::finish_campaign(&db, id, kept.0, kept.1)
                    .await
                    .unwrap()
            );
        });
    }
}

/// A nightly pass after another looks only at what changed (orders in later loads, rows
/// leaving the 12-month window), and ends where a pass over everything ends.
#[test]
fn a_later_pass_looks_at_what_changed_and_agrees_with_a_full_pass() {
    for backend in backends() {
        let env = Env::new(backend);
        let header = "order_id,customer_id,product_id,quantity,unit_price,ordered_at,status\n";
        env.write(
            "customers.csv",
            "customer_id,signup_at,region\nC00,2024-01-01,east\nC01,2024-01-01,west\n",
        );
        // C00: 1,200 points on 2025-01-10 (silver); C01: 12 points on 2025-03-01.
        env.write(
            "orders.csv",
            &format!(
                "{header}O00,C00,P1,1,1200.00,2025-01-10T12:00:00Z,paid\n\
                 O01,C01,P1,2,6.17,2025-03-01T12:00:00Z,paid\n"
            ),
        );
        for (entity, file) in [("customers", "customers.csv"), ("orders", "orders.csv")] {
            env.ok(&["ingest", entity, env.path(file).to_str().unwrap()]);
        }
        // Daily at midnight UTC: each backfilled day is one pass at that logical time.
        env.apply(
            "points.toml",
            &POINTS.replace(
                "name = \"points\"\n\n",
                "name = \"points\"\nschedule = \"0 0 0 * * *\"\ntimezone = \"UTC\"\n\n",
            ),
        );
        let _daemon = env.daemon("w1");
        let pass = |day: &str| -> i64 {
            let out = env.json(&["backfill", "points", "--from", day, "--to", day]);
            let run = out["runs"][0]["run_id"].as_i64().unwrap();
            let shown = env.wait_run(run, std::time::Duration::from_secs(60));
            assert_eq!(shown["state"], "succeeded", "{backend:?} {day}: {shown:#}");
            run
        };
        let tier = |c: &str| env.json(&["points", "balance", c])["tier"].clone();

        pass("2025-06-01");
        assert_eq!(tier("C00"), "silver", "{backend:?}");
        assert_eq!(tier("C01"), "bronze", "{backend:?}");

        // A late order, dated before the last pass, arrives in a new load: the next pass
        // earns it (it looks at the load, not only at orders timed since).
        env.write(
            "late.csv",
            &format!("{header}O02,C01,P1,1,1000.00,2025-02-01T12:00:00Z,paid\n"),
        );
        env.ok(&["ingest", "orders", env.path("late.csv").to_str().unwrap()]);
        pass("2025-06-02");
        assert_eq!(ledger_sum(&env, "C01"), 1_012, "{backend:?}");
        assert_eq!(tier("C01"), "silver", "{backend:?}");

        // No new row, but C00's only earn left the window on 2026-01-10: C00 falls to
        // bronze. C01's rows are still in it.
        let last = pass("2026-01-12");
        assert_eq!(tier("C00"), "bronze", "{backend:?}");
        assert_eq!(tier("C01"), "silver", "{backend:?}");
        let tiers = "SELECT COUNT(*), \
             CAST(SUM(CASE WHEN tier = 'silver' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(earned_12m) AS BIGINT) FROM customer_tiers";
        let incremental = env.sql_ints(tiers);
        assert_eq!(incremental, [2, 1, 1_012], "{backend:?}");

        // The same pass over everything (its watermarks forgotten) ends the same.
        env.sql_exec(&["DELETE FROM watermarks WHERE name LIKE 'points-%'".to_owned()]);
        let rows = env.sql_ints("SELECT COUNT(*) FROM point_ledger");
        env.ok(&["rerun", &last.to_string()]);
        wait_until(std::time::Duration::from_secs(60), || {
            let shown = env.show(last);
            shown["state"] == "succeeded" && shown["reruns"] == 1
        });
        assert_eq!(env.sql_ints(tiers), incremental, "{backend:?}");
        assert_eq!(env.sql_ints("SELECT COUNT(*) FROM point_ledger"), rows);
    }
}
