//! Aggregate reads the console needs and no command prints: recent run durations per
//! pipeline, jobs running per worker, points issued per day, tier, segment and churn
//! distributions. Everything else the console shows comes from the CLI's query functions.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use super::intelligence::placeholder;
use crate::db::{Db, Result};

/// Only this many latest runs are scanned for the duration sparklines, so the query costs the
/// same with ten thousand runs or ten million; a pipeline idle for that long shows none.
const SPARKLINE_SCAN: i64 = 5_000;

async fn query(db: &Db, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>> {
    let backend = db.get_database_backend();
    Ok(db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            placeholder(backend, sql),
            values,
        ))
        .await?)
}

/// Durations in milliseconds of each pipeline's latest finished runs (at most `per_pipeline`),
/// oldest first, keyed by pipeline id.
pub async fn recent_durations(db: &Db, per_pipeline: u32) -> Result<HashMap<i64, Vec<u64>>> {
    let rows = query(
        db,
        "SELECT pipeline_id, started_at, finished_at FROM ( \
           SELECT pipeline_id, started_at, finished_at, \
                  ROW_NUMBER() OVER (PARTITION BY pipeline_id ORDER BY id DESC) AS rn \
           FROM (SELECT id, pipeline_id, started_at, finished_at FROM runs \
                 ORDER BY id DESC LIMIT ?) latest \
           WHERE started_at IS NOT NULL AND finished_at IS NOT NULL \
         ) ranked WHERE rn <= ? ORDER BY pipeline_id, rn DESC",
        vec![SPARKLINE_SCAN.into(), i64::from(per_pipeline).into()],
    )
    .await?;
    let mut out: HashMap<i64, Vec<u64>> = HashMap::new();
    for r in rows {
        let pipeline: i64 = r.try_get_by_index(0)?;
        let started: DateTime<Utc> = r.try_get_by_index(1)?;
        let finished: DateTime<Utc> = r.try_get_by_index(2)?;
        let ms = (finished - started).num_milliseconds().max(0) as u64;
        out.entry(pipeline).or_default().push(ms);
    }
    Ok(out)
}

/// A job attempt running now, and the worker running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    pub worker_id: String,
    pub run_id: i64,
    pub job: String,
    pub started_at: DateTime<Utc>,
}

/// Every running attempt, oldest first.
pub async fn running_jobs(db: &Db) -> Result<Vec<RunningJob>> {
    let rows = query(
        db,
        "SELECT a.worker_id, j.run_id, j.job_name, a.started_at \
         FROM attempts a JOIN job_runs j ON j.id = a.job_run_id \
         WHERE a.state = 'running' ORDER BY a.started_at, a.id",
        vec![],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RunningJob {
                worker_id: r.try_get_by_index(0)?,
                run_id: r.try_get_by_index(1)?,
                job: r.try_get_by_index(2)?,
                started_at: r.try_get_by_index(3)?,
            })
        })
        .collect()
}

/// Which of `names` exist as tables (the loyalty and intelligence tables come with later
/// migrations than the scheduler's; a console may look at an older database).
pub async fn existing_tables(db: &Db, names: &[&str]) -> Result<HashSet<String>> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let rows = query(db, sql, vec![]).await?;
    let mut out = HashSet::new();
    for r in rows {
        let name: String = r.try_get_by_index(0)?;
        if names.contains(&name.as_str()) {
            out.insert(name);
        }
    }
    Ok(out)
}

/// Points earned (orders and campaign awards) per UTC day since `since` (epoch seconds), as
/// `(day number since the epoch, points)`, oldest first; days without any are absent.
pub async fn points_per_day(db: &Db, since: i64) -> Result<Vec<(i64, i64)>> {
    let rows = query(
        db,
        "SELECT at / 86400 AS day, CAST(SUM(points) AS BIGINT) FROM point_ledger \
         WHERE kind = 'earn' AND points > 0 AND at >= ? GROUP BY at / 86400 ORDER BY day",
        vec![since.into()],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect()
}

/// Customers per tier, largest first.
pub async fn tier_counts(db: &Db) -> Result<Vec<(String, i64)>> {
    let rows = query(
        db,
        "SELECT tier, COUNT(*) AS n FROM customer_tiers GROUP BY tier ORDER BY n DESC, tier",
        vec![],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect()
}

/// Buckets of the churn histogram: `[0, 0.1)`, `[0.1, 0.2)` … `[0.9, 1]`.
pub const CHURN_BUCKETS: usize = 10;
