//! `features`: customer features as of a date (`params.as_of`, else the run's `as_of`, else
//! its logical date), stored per (customer, as_of). Rows dated on or after the day after
//! `as_of` do not count, and anomalous rows (see `clean`) are left out. The computation is
//! `analytics::features`; this file loads and stores.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::DbBackend;
use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, parse_params};
use crate::{
    analytics::features::{self as compute, Browsing, Ordering, Reviewing},
    db::{
        Db,
        bulk::{self, Cell, TableSpec},
    },
    pipeline::Shard,
};

pub struct Features;

/// Checks an `as_of` param at validation time (the job reads it through
/// [`JobContext::as_of`]).
pub fn check_as_of(as_of: Option<&str>) -> Result<(), String> {
    match as_of {
        Some(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
            .map(|_| ())
            .map_err(|e| format!("as_of `{t}` is not a YYYY-MM-DD date: {e}")),
        None => Ok(()),
    }
}

/// The job's as-of date ([`JobContext::as_of`]), with features computed for it if they are
/// not stored yet.
pub async fn ensure_features(ctx: &JobContext) -> Result<String, JobError> {
    ensure_features_at(&ctx.db, ctx.as_of()?)
        .await
        .map_err(super::failed)
}

/// Features as of `date`, computed unless already stored; returns the date as text.
pub async fn ensure_features_at(db: &Db, date: NaiveDate) -> anyhow::Result<String> {
    let as_of = date.format("%Y-%m-%d").to_string();
    if !crate::db::repo::intelligence::has_features(db, &as_of).await? {
        compute_and_store(db, date).await?;
    }
    Ok(as_of)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    as_of: Option<String>,
}

/// Feature rows written per transaction.
const WRITE_BATCH: usize = 20_000;

pub static FEATURES_TABLE: TableSpec = TableSpec {
    table: "customer_features",
    columns: &[
        "customer_id",
        "as_of",
        "recency_days",
        "frequency",
        "monetary",
        "tenure_days",
        "avg_basket",
        "distinct_products",
        "cancel_rate",
        "n_events",
        "browse_seconds",
        "n_reviews",
        "mean_rating",
        "mean_sentiment",
        "computed_at",
    ],
    pg_types: &[
        "text",
        "text",
        "double precision",
        "bigint",
        "double precision",
        "double precision",
        "double precision",
        "bigint",
        "double precision",
        "bigint",
        "double precision",
        "bigint",
        "double precision",
        "double precision",
        "timestamptz",
    ],
    on_conflict: "ON CONFLICT (customer_id, as_of) DO NOTHING",
    sqlite_upsert: None,
    pg_distinct_on: None,
};

/// Feature columns in export order (after `customer_id`).
pub const FEATURE_COLUMNS: [&str; 12] = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_basket",
    "distinct_products",
    "cancel_rate",
    "n_events",
    "browse_seconds",
    "n_reviews",
    "mean_rating",
    "mean_sentiment",
];

#[async_trait::async_trait]
impl Job for Features {
    fn kind(&self) -> &'static str {
        "features"
    }

    /// Its `as_of` (`JobContext::as_of`) may come from the run.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        if let Some(a) = &p.as_of {
            NaiveDate::parse_from_str(a, "%Y-%m-%d").map_err(|e| format!("as_of `{a}`: {e}"))?;
        }
        Ok(())
    }

    fn shardable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let as_of = ctx.as_of()?;
        let started = std::time::Instant::now();
        let n = compute_and_store_of(&ctx.db, as_of, None, ctx.shard)
            .await
            .map_err(|e| JobError::Failed(e.to_string()))?;
        ctx.log.info(format!(
            "features as of {as_of}{}: {n} customers in {:.2}s",
            ctx.shard_note(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

/// The cut-off for features as of a date: the start of the next day, UTC.
pub fn cutoff(as_of: NaiveDate) -> i64 {
    as_of
        .succ_opt()
        .unwrap_or(as_of)
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

/// Loads the rows, computes features on a blocking thread, replaces the stored features for
/// `as_of`. Returns the number of customers.
pub async fn compute_and_store(db: &Db, as_of: NaiveDate) -> anyhow::Result<usize> {
    compute_and_store_of(db, as_of, None, None).await
}

/// As [`compute_and_store`], for the customers a subquery selects (`None`: everyone), and
/// of those only `shard`'s, if given; the other customers' features for `as_of` are left as
/// they are.
pub async fn compute_and_store_of(
    db: &Db,
    as_of: NaiveDate,
    customers: Option<&str>,
    shard: Option<Shard>,
) -> anyhow::Result<usize> {
    let cutoff = cutoff(as_of);
    let data = load(db, cutoff, customers, shard).await?;
    let (ids, features) = tokio::task::spawn_blocking(move || {
        let Loaded {
            ids,
            signups,
            ordering,
            browsing,
            reviewing,
        } = data;
        let features = compute::compute(&signups, &ordering, &browsing, &reviewing, cutoff);
        (ids, features)
    })
    .await?;

    let backend = db.get_database_backend();
    let as_of_text = as_of.format("%Y-%m-%d").to_string();
    let only = customers
        .map(|q| format!(" AND customer_id IN ({q})"))
        .unwrap_or_default();
    crate::db::repo::shards::delete_where(
        db,
        "customer_features",
        &format!("as_of = ?{only}"),
        vec![as_of_text.clone().into()],
        shard,
    )
    .await?;
    let now = crate::db::now();
    let computed_at = match backend {
        // Stored the way sea-orm stores timestamps on each backend.
        DbBackend::Postgres => now.to_rfc3339(),
        _ => now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
    };
    let mut written = 0;
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    for (id, f) in ids.into_iter().zip(features) {
        let Some(id) = id else {
            continue; // did not exist yet at the cut-off
        };
        batch.push(vec![
            Cell::Text(id),
            Cell::Text(as_of_text.clone()),
            Cell::OptFloat(Some(f.recency_days)),
            Cell::Int(f.frequency as i64),
            Cell::OptFloat(Some(f.monetary)),
            Cell::OptFloat(Some(f.tenure_days)),
            Cell::OptFloat(Some(f.avg_basket)),
            Cell::Int(f.distinct_products as i64),
            Cell::OptFloat(Some(f.cancel_rate)),
            Cell::Int(f.n_events as i64),
            Cell::OptFloat(Some(f.browse_seconds)),
            Cell::Int(f.n_reviews as i64),
            Cell::OptFloat(f.mean_rating),
            Cell::OptFloat(f.mean_sentiment),
            Cell::Text(computed_at.clone()),
        ]);
        if batch.len() == WRITE_BATCH {
            written +=
                bulk::write(db, &FEATURES_TABLE, &std::mem::take(&mut batch)).await? as usize;
        }
    }
    written += bulk::write(db, &FEATURES_TABLE, &batch).await? as usize;
    Ok(written)
}

struct Loaded {
    /// Customer id per dense index; `None` for customers who did not exist at the cut-off.
    ids: Vec<Option<String>>,
    signups: Vec<Option<i64>>,
    ordering: Vec<Ordering>,
    browsing: Vec<Browsing>,
    reviewing: Vec<Reviewing>,
}

/// Dense indices for customers, in order of first appearance.
#[derive(Default)]
struct Index {
    of: HashMap<String, u32>,
    ids: Vec<String>,
    signups: Vec<Option<i64>>,
    first_seen: Vec<Option<i64>>,
}

impl Index {
    fn get(&mut self, id: String, at: Option<i64>) -> u32 {
        let i = match self.of.get(&id) {
            Some(&i) => i,
            None => {
                let i = self.ids.len() as u32;
                self.of.insert(id.clone(), i);
                self.ids.push(id);
                self.signups.push(None);
                self.first_seen.push(None);
                i
            }
        };
        if let Some(at) = at {
            let f = &mut self.first_seen[i as usize];
            *f = Some(f.map_or(at, |x| x.min(at)));
        }
        i
    }
}

async fn load(
    db: &Db,
    cutoff: i64,
    only: Option<&str>,
    shard: Option<Shard>,
) -> anyhow::Result<Loaded> {
    // Another shard's customers are skipped as their rows stream past: the grouped scans
    // are the database's, the rest of the work is split.
    let mine = |id: &str| shard.is_none_or(|s| s.owns(id));
    let only = |alias: &str| {
        only.map(|q| format!(" AND {alias}customer_id IN ({q})"))
            .unwrap_or_default()
    };
    let mut customers = Index::default();
    bulk::fetch_each::<(String, Option<i64>)>(
        db,
        &format!(
            "SELECT customer_id, signup_at FROM customers WHERE anomaly IS NULL{}",
            only("")
        ),
        None,
        |(id, signup)| {
            if !mine(&id) {
                return;
            }
            let i = customers.get(id, None);
            customers.signups[i as usize] = signup;
        },
    )
    .await?;
    // Counts and sums per customer in one grouped scan: a row per customer leaves the
    // database, not a row per order line.
    let mut ordering = Vec::new();
    bulk::fetch_each::<(String, i64, i64, i64, Option<i64>, i64, Option<i64>, i64)>(
        db,
        &format!(
            "SELECT customer_id, \
                COUNT(DISTINCT order_id), \
                COUNT(DISTINCT CASE WHEN status = 'paid' THEN order_id END), \
                COUNT(DISTINCT CASE WHEN status <> 'paid' THEN order_id END), \
                CAST(SUM(CASE WHEN status = 'paid' THEN quantity * unit_price_cents END) AS BIGINT), \
                COUNT(DISTINCT CASE WHEN status = 'paid' THEN product_id END), \
                MAX(CASE WHEN status = 'paid' THEN ordered_at END), \
                MIN(ordered_at) \
         FROM orders WHERE anomaly IS NULL AND ordered_at < $1{} GROUP BY customer_id",
            only("")
        ),
        Some(cutoff),
        |(customer, orders, paid, cancelled, spend, products, last_paid, first_at)| {
            if !mine(&customer) {
                return;
            }
            ordering.push(Ordering {
                customer: customers.get(customer, Some(first_at)),
                orders: orders.max(0) as u64,
                paid_orders: paid.max(0) as u64,
                cancelled_orders: cancelled.max(0) as u64,
                spend_cents: spend.unwrap_or(0),
                products: products.max(0) as u64,
                last_paid_at: last_paid,
                first_at,
            })
        },
    )
    .await?;
    // Browsing and reviews are summed by the database: a row per customer, not per event.
    let mut browsing = Vec::new();
    bulk::fetch_each::<(String, i64, Option<f64>, i64)>(
        db,
        &format!(
            "SELECT customer_id, COUNT(*), SUM(duration_s), MIN(occurred_at) FROM events \
             WHERE anomaly IS NULL AND occurred_at < $1{} GROUP BY customer_id",
            only("")
        ),
        Some(cutoff),
        |(customer, n, seconds, first_at)| {
            if !mine(&customer) {
                return;
            }
            browsing.push(Browsing {
                customer: customers.get(customer, Some(first_at)),
                events: n.max(0) as u64,
                seconds: seconds.unwrap_or(0.0),
                first_at,
            })
        },
    )
    .await?;
    let mut reviewing = Vec::new();
    bulk::fetch_each::<(String, i64, i64, i64, Option<f64>, i64)>(
        db,
        &format!(
            "SELECT r.customer_id, COUNT(*), SUM(r.rating), MIN(r.created_at), SUM(s.score), COUNT(s.score) \
             FROM reviews r LEFT JOIN review_sentiment s ON s.review_id = r.review_id \
             WHERE r.anomaly IS NULL AND r.created_at < $1{} GROUP BY r.customer_id",
            only("r.")
        ),
        Some(cutoff),
        |(customer, n, rating_sum, first_at, sentiment_sum, sentiment_n)| {
            if !mine(&customer) {
                return;
            }
            reviewing.push(Reviewing {
                customer: customers.get(customer, Some(first_at)),
                reviews: n.max(0) as u64,
                rating_sum: rating_sum.max(0) as u64,
                first_at,
                sentiment_sum: sentiment_sum.unwrap_or(0.0),
                sentiment_n: sentiment_n.max(0) as u64,
            })
        },
    )
    .await?;
    let ids = customers
        .ids
        .into_iter()
        .zip(customers.signups.iter().zip(&customers.first_seen))
        .map(|(id, (signup, first))| {
            let existed = match signup {
                Some(t) => *t < cutoff,
                None => first.is_some_and(|t| t < cutoff),
            };
            existed.then_some(id)
        })
        .collect();
    Ok(Loaded {
        ids,
        signups: customers.signups,
        ordering,
        browsing,
        reviewing,
    })
}
