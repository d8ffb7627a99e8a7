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
