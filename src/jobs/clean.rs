//! `clean`: marks anomalous rows with a reason instead of dropping them, so features and
//! models can leave them out while people can still see them.
//!
//! Rules: a paid order line with a non-positive quantity or price; an order dated before its
//! customer's signup; any row dated in the future (after `as_of` plus `future_tolerance`).
//! The marks are recomputed from scratch each run, so the job is idempotent and a fixed
//! row loses its mark.
//!
//! Row-level cleaning happens as rows are loaded (see `crate::ingest`): timestamps become UTC
//! (naive ones read in the source's zone), text is NFKC-normalised with collapsed whitespace,
//! statuses and kinds are normalised, and exact duplicate lines are stored once. Doing it there
//! writes every row once instead of twice, which the scale case needs.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, parse_params};

pub struct Clean;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Rows dated after the end of this day (plus the tolerance) are "future". Default: the
    /// run's logical date.
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default = "tolerance")]
    future_tolerance: String,
}

/// Rows per UPDATE on SQLite.
const SLICE: i64 = 500_000;

fn tolerance() -> String {
    "1d".to_owned()
}

/// `(table, timestamp column, extra rules as SQL CASE arms)`.
const TABLES: &[(&str, &str, &str)] = &[
    (
        "orders",
        "ordered_at",
        "WHEN status = 'paid' AND quantity <= 0 THEN 'non_positive_quantity' \
         WHEN status = 'paid' AND unit_price_cents <= 0 THEN 'non_positive_price' \
         WHEN ordered_at < (SELECT c.signup_at FROM customers c WHERE c.customer_id = orders.customer_id) THEN 'before_signup'",
    ),
    ("events", "occurred_at", ""),
    ("reviews", "created_at", ""),
    ("customers", "signup_at", ""),
];

#[async_trait::async_trait]
impl Job for Clean {
    fn kind(&self) -> &'static str {
        "clean"
    }

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        crate::pipeline::load::parse_duration(&p.future_tolerance)
            .map_err(|e| format!("future_tolerance: {e}"))?;
        if let Some(a) = &p.as_of {
            chrono::NaiveDate::parse_from_str(a, "%Y-%m-%d")
                .map_err(|e| format!("as_of `{a}`: {e}"))?;
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let tolerance =
            crate::pipeline::load::parse_duration(&p.future_tolerance).map_err(JobError::Fatal)?;
        let as_of = ctx.as_of()?;
        let limit = as_of
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp())
            .ok_or_else(|| JobError::Fatal(format!("as_of {as_of} is out of range")))?
            + tolerance.as_secs() as i64;
        let db = &ctx.db;
        let backend = db.get_database_backend();
        for (table, at, rules) in TABLES {
            let case = format!("CASE WHEN {at} > {limit} THEN 'future_date' {rules} ELSE NULL END");
            let differs = match backend {
                DbBackend::Postgres => "IS DISTINCT FROM",
                _ => "IS NOT",
            };
            let update =
                format!("UPDATE {table} SET anomaly = {case} WHERE anomaly {differs} {case}");
            let changed = if backend == DbBackend::Sqlite {
                // In slices of rowids, each its own statement: one UPDATE over tens of millions
                // of rows would hold SQLite's only write lock for a minute, and the scheduler's
                // heartbeats with it.
                let range = db
                    .query_one_raw(Statement::from_string(
                        backend,
                        format!("SELECT MIN(rowid), MAX(rowid) FROM {table}"),
                    ))
                    .await
                    .map_err(|e| JobError::Failed(format!("sizing {table}: {e}")))?;
                let (lo, hi) = match range {
                    Some(r) => (
                        r.try_get_by_index::<Option<i64>>(0)
                            .ok()
                            .flatten()
                            .unwrap_or(0),
                        r.try_get_by_index::<Option<i64>>(1)
                            .ok()
                            .flatten()
                            .unwrap_or(-1),
                    ),
                    None => (0, -1),
                };
                let mut changed = 0;
                let mut start = lo;
                while start <= hi {
                    let end = start.saturating_add(SLICE - 1);
                    changed += db
                        .execute_raw(Statement::from_string(
                            backend,
                            format!("{update} AND rowid BETWEEN {start} AND {end}"),
                        ))
                        .await
                        .map_err(|e| JobError::Failed(format!("marking {table}: {e}")))?
                        .rows_affected();
                    if ctx.cancel.is_cancelled() {
                        return Err(JobError::Cancelled);
                    }
                    start = end.saturating_add(1);
                }
                changed
            } else {
                db.execute_raw(Statement::from_string(backend, update))
                    .await
                    .map_err(|e| JobError::Failed(format!("marking {table}: {e}")))?
                    .rows_affected()
            };
            let counts = db
                .query_all_raw(Statement::from_string(
                    backend,
                    format!("SELECT anomaly, COUNT(*) AS n FROM {table} WHERE anomaly IS NOT NULL GROUP BY anomaly ORDER BY anomaly"),
                ))
                .await
                .map_err(|e| JobError::Failed(format!("counting {table}: {e}")))?;
            let mut parts = Vec::new();
            for row in counts {
                let reason: String = row.try_get("", "anomaly").unwrap_or_default();
                let n: i64 = row.try_get("", "n").unwrap_or_default();
                parts.push(format!("{reason} {n}"));
            }
            ctx.log.info(format!(
                "{table}: {changed} marks changed; anomalies now: {}",
                if parts.is_empty() {
                    "none".to_owned()
                } else {
                    parts.join(", ")
                }
            ));
            if ctx.cancel.is_cancelled() {
                return Err(JobError::Cancelled);
            }
        }
        Ok(())
    }
}
