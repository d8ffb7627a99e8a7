//! Claiming ready jobs under a lease, recording how attempts ended (fenced by attempt number,
//! so a late result from a worker that lost its lease changes nothing), lease heartbeats and
//! expired-lease lookup for the reaper.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
    sea_query::{CaseStatement, Expr, ExprTrait, LockBehavior, LockType},
};

use super::{CHUNK, pipelines::SpecCache, runs};
use crate::{
    db::{
        Db, Result, begin_write,
        entities::{AttemptState, JobState, attempt, job_run, run},
        has_row_locks, now,
    },
    pipeline::{progress, shard::one_shard_per_job},
};

/// A job run this worker now holds, with its new attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub number: i32,
    pub job_run_id: i64,
    pub job_name: String,
    pub kind: String,
    pub run: std::sync::Arc<run::Model>,
}

fn lease_until(t: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30))
}

/// Claims up to `limit` ready job runs whose `not_before` has passed: each becomes
/// `running` with a new attempt leased to `worker_id` until `now + lease_ttl`.
/// PostgreSQL skips rows other daemons are claiming (`FOR UPDATE SKIP LOCKED`); SQLite's
/// `BEGIN IMMEDIATE` makes the whole claim one writer.
/// Room left in each configured pool: its size less its running job runs. Locks the pool
/// rows on PostgreSQL for the rest of the transaction. Empty when no pool is configured.
async fn pool_room(txn: &DatabaseTransaction) -> Result<HashMap<String, i64>> {
    let backend = txn.get_database_backend();
    let lock = if has_row_locks(txn) {
        " FOR UPDATE"
    } else {
        ""
    };
    let pools = txn
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT name, size FROM pools ORDER BY name{lock}"),
        ))
        .await?;
    if pools.is_empty() {
        return Ok(HashMap::new());
    }
    let mut room: HashMap<String, i64> = HashMap::new();
    for p in &pools {
        let name: String = p.try_get_by_index(0)?;
        let size: i32 = p.try_get_by_index(1)?;
        room.insert(name, i64::from(size));
    }
    for r in txn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT pool, COUNT(*) FROM job_runs WHERE state = 'running' AND pool IS NOT NULL GROUP BY pool",
        ))
        .await?
    {
        let name: String = r.try_get_by_index(0)?;
        let n: i64 = r.try_get_by_index(1)?;
        if let Some(left) = room.get_mut(&name) {
            *left -= n;
        }
    }
    Ok(room)
}

/// Stores the configured pool sizes (every daemon does at start; the last one wins).
pub async fn sync_pools(db: &Db, pools: &std::collections::BTreeMap<String, u32>) -> Result {
    let backend = db.get_database_backend();
    for (name, size) in pools {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            super::intelligence::placeholder(
                backend,
                "INSERT INTO pools (name, size) VALUES (?, ?) \
                 ON CONFLICT (name) DO UPDATE SET size = excluded.size",
            ),
            [name.clone().into(), i64::from(*size).into()],
        ))
        .await?;
    }
    Ok(())
}

pub async fn claim(
    db: &Db,
    worker_id: &str,
    limit: usize,
    lease_ttl: Duration,
) -> Result<Vec<Claimed>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let txn = begin_write(db).await?;
    let t = now();
    // Pools: with any configured, claims take their rows' locks first, so two daemons never
    // both see room for the last slot of a pool (SQLite's write transaction already
    // serialises claims).
    let room = pool_room(&txn).await?;
    if room.is_empty() && has_row_locks(&txn) {
        return claim_returning(txn, worker_id, limit, lease_ttl, t).await;
    }
    let full: Vec<String> = room
        .iter()
        .filter(|(_, r)| **r <= 0)
        .map(|(p, _)| p.clone())
        .collect();
    let mut query = job_run::Entity::find()
        .filter(job_run::Column::State.eq(JobState::Ready))
        .filter(
            Condition::any()
                .add(job_run::Column::NotBefore.is_null())
                .add(job_run::Column::NotBefore.lte(t)),
        )
        .order_by_asc(job_run::Column::Id)
        .limit(limit as u64);
    if !full.is_empty() {
        query = query.filter(
            Condition::any()
                .add(job_run::Column::Pool.is_null())
                .add(job_run::Column::Pool.is_not_in(full)),
        );
    }
    if has_row_locks(&txn) {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let mut rows = query.all(&txn).await?;
    // One shard of a job per claim (before pools count their room, so a shard left behind
    // takes no slot).
    let keep = one_shard_per_job(rows.iter().map(|r| (r.run_id, r.job_name.as_str())));
    let mut keep = keep.into_iter();
    rows.retain(|_| keep.next().unwrap_or(true));
    if !room.is_empty() {
        let mut room = room;
        rows.retain(|r| match r.pool.as_ref().and_then(|p| room.get_mut(p)) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            Some(_) => false,
            None => true,
        });
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    job_run::Entity::update_many()
        .col_expr(job_run::Column::State, Expr::value(JobState::Running))
        .col_expr(
            job_run::Column::Attempts,
            Expr::col(job_run::Column::Attempts).add(1),
        )
        .col_expr(
            job_run::Column::NotBefore,
            Expr::value(None::<DateTime<Utc>>),
        )
        .filter(job_run::Column::Id.is_in(ids.clone()))
        .exec(&txn)
        .await?;
    job_run::Entity::update_many()
        .col_expr(job_run::Column::StartedAt, Expr::value(t))
        .filter(job_run::Column::Id.is_in(ids.clone()))
        .filter(job_run::Column::StartedAt.is_null())
        .exec(&txn)
        .await?;
    let lease = lease_until(t, lease_ttl);
    let attempts: Vec<attempt::ActiveModel> = rows
        .iter()
        .map(|r| new_attempt(r.id, r.attempts + 1, worker_id, t, lease))
        .collect();
    attempt::Entity::insert_many(attempts).exec(&txn).await?;
    // A job run that was `ready` had no running attempt, so (job run, running) is unique.
    let attempt_ids: HashMap<i64, (i64, i32)> = attempt::Entity::find()
        .select_only()
        .column(attempt::Column::JobRunId)
        .column(attempt::Column::Id)
        .column(attempt::Column::Number)
        .filter(attempt::Column::JobRunId.is_in(ids))
        .filter(attempt::Column::State.eq(AttemptState::Running))
        .into_tuple::<(i64, i64, i32)>()
        .all(&txn)
        .await?
        .into_iter()
        .map(|(job_run_id, id, number)| (job_run_id, (id, number)))
        .collect();
    let taken = rows
        .into_iter()
        .map(|r| Taken {
            id: r.id,
            run_id: r.run_id,
            job_name: r.job_name,
            kind: r.kind,
        })
        .collect();
    finish_claim(txn, taken, attempt_ids).await
}

/// A new running attempt of a job run, leased to `worker_id` until `lease`.
fn new_attempt(
    job_run_id: i64,
    number: i32,
    worker_id: &str,
    t: DateTime<Utc>,
    lease: DateTime<Utc>,
) -> attempt::ActiveModel {
    attempt::ActiveModel {
        job_run_id: Set(job_run_id),
        number: Set(number),
        state: Set(AttemptState::Running),
        worker_id: Set(worker_id.to_owned()),
        started_at: Set(t),
        finished_at: Set(None),
        lease_expires_at: Set(Some(lease)),
        error: Set(None),
        ..Default::default()
    }
}

/// A job run a claim took.
struct Taken {
    id: i64,
    run_id: i64,
    job_name: String,
    kind: String,
}

/// The claim on PostgreSQL when no pool is configured: one `UPDATE … RETURNING` takes the
/// oldest ready job runs (skipping rows other daemons are claiming) and one
/// `INSERT … RETURNING` makes their attempts. Claims are the dispatcher's hot path: this is
/// three statements where the general path needs six.
async fn claim_returning(
    txn: DatabaseTransaction,
    worker_id: &str,
    limit: usize,
    lease_ttl: Duration,
    t: DateTime<Utc>,
) -> Result<Vec<Claimed>> {
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE job_runs SET state = 'running', attempts = attempts + 1, not_before = NULL, \
                 started_at = COALESCE(started_at, $1) \
             WHERE id IN (SELECT id FROM job_runs WHERE state = 'ready' \
                 AND (not_before IS NULL OR not_before <= $1) \
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, run_id, job_name, kind, attempts",
            [t.into(), (limit as i64).into()],
        ))
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut taken = Vec::with_capacity(rows.len());
    let mut numbers = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get_by_index(0)?;
        taken.push(Taken {
            id,
            run_id: row.try_get_by_index(1)?,
            job_name: row.try_get_by_index(2)?,
            kind: row.try_get_by_index(3)?,
        });
        numbers.push((id, row.try_get_by_index::<i32>(4)?));
    }
    taken.sort_unstable_by_key(|t| t.id);
    // More than one shard of a job: the others go back to `ready`, as they were, in this
    // transaction (a job run started by this claim had no `started_at` before it).
    let keep = one_shard_per_job(taken.iter().map(|t| (t.run_id, t.job_name.as_str())));
    let back: Vec<i64> = taken
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(t, _)| t.id)
        .collect();
    if !back.is_empty() {
        txn.execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE job_runs SET state = 'ready', attempts = attempts - 1, \
                 started_at = CASE WHEN started_at = $1 THEN NULL ELSE started_at END \
             WHERE id = ANY($2::bigint[])",
            [
                t.into(),
                crate::db::pg_array(
                    sea_orm::sea_query::ArrayType::BigInt,
                    back.iter().map(|&id| id.into()).collect(),
                ),
            ],
        ))
        .await?;
        let mut keep = keep.into_iter();
        taken.retain(|_| keep.next().unwrap_or(true));
        numbers.retain(|(id, _)| !back.contains(id));
    }
    let lease = lease_until(t, lease_ttl);
    let attempts = attempt::Entity::insert_many(
        numbers
            .into_iter()
            .map(|(id, number)| new_attempt(id, number, worker_id, t, lease)),
    )
    .exec_with_returning(&txn)
    .await?;
    let attempt_ids = attempts
        .into_iter()
        .map(|a| (a.job_run_id, (a.id, a.number)))
        .collect();
    finish_claim(txn, taken, attempt_ids).await
}

/// Reads the runs of the job runs taken, commits the claim and pairs each job run with its
/// attempt.
async fn finish_claim(
    txn: DatabaseTransaction,
    taken: Vec<Taken>,
    attempt_ids: HashMap<i64, (i64, i32)>,
) -> Result<Vec<Claimed>> {
    let mut run_ids: Vec<i64> = taken.iter().map(|r| r.run_id).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    let runs: HashMap<i64, std::sync::Arc<run::Model>> = run::Entity::find()
        .filter(run::Column::Id.is_in(run_ids))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| (r.id, std::sync::Arc::new(r)))
        .collect();
    txn.commit().await?;
    Ok(taken
        .into_iter()
        .filter_map(|r| {
            let (attempt_id, number) = attempt_ids.get(&r.id).copied()?;
            Some(Claimed {
                attempt_id,
                number,
                job_run_id: r.id,
                job_name: r.job_name,
                kind: r.kind,
                run: runs.get(&r.run_id)?.clone(),
            })
        })
        .collect())
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// `retryable = false` fails the job at once whatever its `retries`.
    Failed {
        error: String,
        retryable: bool,
    },
    TimedOut {
        error: String,
    },
    /// Stopped because its run was cancelled.
    Cancelled,
    /// Stopped by a daemon shutdown; the job goes back to `ready` at no cost.
    Interrupted,
    /// Its lease expired: the worker died or lost the database.
    Lost,
}

/// One attempt's end, as reported by its executor or by the reaper.
#[derive(Debug, Clone)]
pub struct Finished {
    pub attempt_id: i64,
    pub job_run_id: i64,
    pub number: i32,
    pub outcome: Outcome,
    pub at: DateTime<Utc>,
}

/// Retry limits that come from settings rather than the pipeline file.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_lost_attempts: u32,
    pub max_backoff: Duration,
}

#[derive(Debug, Default)]
pub struct FinishReport {
    /// Results ignored because the attempt was no longer running (its lease was taken).
    pub stale: usize,
    /// Jobs that will run again.
    pub retried: usize,
    pub runs: Vec<(i64, crate::db::entities::RunState)>,
}

/// What happens to a job run when its attempt ends; one UPDATE per kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum JobChange {
    Succeed,
    /// A failure with retries left: back to ready after a backoff.
    RetryFailure,
    /// A failure with no retries left, or not worth retrying.
    Fail,
    /// Lost with its worker; retried at no cost.
    RetryLost,
    /// Lost once too often.
    FailLost,
    Cancel,
    /// Interrupted by a shutdown; ready again at once.
    Requeue,
}

impl JobChange {
    /// The retry counter this change charges.
    fn counter(self) -> Option<job_run::Column> {
        match self {
            Self::RetryFailure | Self::Fail => Some(job_run::Column::Failures),
            Self::RetryLost | Self::FailLost => Some(job_run::Column::Losses),
            _ => None,
        }
    }

    fn records_error(self) -> bool {
        matches!(self, Self::RetryFailure | Self::Fail | Self::FailLost)
    }

    fn state(self) -> JobState {
        match self {
            Self::Succeed => JobState::Succeeded,
            Self::RetryFailure | Self::RetryLost | Self::Requeue => JobState::Ready,
            Self::Fail | Self::FailLost => JobState::Failed,
            Self::Cancel => JobState::Cancelled,
        }
    }
}

/// Per row (attempt or job run): the values that go into a grouped UPDATE.
struct RowUpdate {
    id: i64,
    at: DateTime<Utc>,
    error: Option<String>,
    not_before: Option<DateTime<Utc>>,
}

/// `CASE id WHEN .. THEN .. END` for per-row values in one UPDATE.
fn case_by_id<C: ColumnTrait, V: Into<sea_orm::Value> + Clone>(id: C, rows: &[(i64, V)]) -> Expr {
    let mut case = CaseStatement::new();
    for (row, value) in rows {
        case = case.case(Expr::col(id).eq(*row), Expr::value(value.clone()));
    }
    case.into()
}

/// `UPDATE table AS t SET … FROM (rows) AS v WHERE t.id = v.id` on PostgreSQL, with the rows'
/// values bound as arrays (`v.at`, `v.error`, `v.not_before`; `extra` is bound as `$7`):
/// one statement for any number of rows, whose cost grows with the rows (`t.id = ANY(ids)`
/// makes the planner look rows up by key; joined only with the array, it scans the table).
/// A `CASE id WHEN …`
/// per row, as the portable path writes, is quadratic: at hundreds of rows per batch it was
/// the daemon's largest cost.
async fn update_from_rows(
    txn: &DatabaseTransaction,
    table: &str,
    set: &str,
    and: &str,
    rows: &[RowUpdate],
    extra: Option<sea_orm::Value>,
) -> Result<u64> {
    use crate::db::pg_array as array;
    use sea_orm::{Value, sea_query::ArrayType};
    // Arrays of non-null elements only (the driver cannot bind a NULL element), with a
    // flag per row saying whether the value is there.
    let now = rows.first().map_or_else(now, |r| r.at);
    let mut values = vec![
        array(
            ArrayType::BigInt,
            rows.iter().map(|r| Value::BigInt(Some(r.id))).collect(),
        ),
        array(
            ArrayType::ChronoDateTimeUtc,
            rows.iter()
                .map(|r| Value::ChronoDateTimeUtc(Some(r.at)))
                .collect(),
        ),
        array(
            ArrayType::String,
            rows.iter()
                .map(|r| Value::String(Some(r.error.clone().unwrap_or_default())))
                .collect(),
        ),
        array(
            ArrayType::Bool,
            rows.iter()
                .map(|r| Value::Bool(Some(r.error.is_some())))
                .collect(),
        ),
        array(
            ArrayType::ChronoDateTimeUtc,
            rows.iter()
                .map(|r| Value::ChronoDateTimeUtc(Some(r.not_before.unwrap_or(now))))
                .collect(),
        ),
        array(
            ArrayType::Bool,
            rows.iter()
                .map(|r| Value::Bool(Some(r.not_before.is_some())))
                .collect(),
        ),
    ];
    values.extend(extra);
    let sql = format!(
        "UPDATE {table} AS t SET {set} FROM (\
           SELECT id, at, CASE WHEN has_error THEN error END AS error, \
                  CASE WHEN has_not_before THEN not_before END AS not_before \
           FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::bool[], \
                       $5::timestamptz[], $6::bool[]) \
             AS u(id, at, error, has_error, not_before, has_not_before)) AS v \
         WHERE t.id = v.id AND t.id = ANY($1::bigint[]) {and}"
    );
    Ok(txn
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .rows_affected())
}

/// Records a batch of attempt ends in one transaction and moves the affected runs forward.
///
/// Statements are grouped (one UPDATE per kind of change, per-row values in `CASE`), so a
/// batch of a thousand successes costs a handful of round trips, not thousands.
pub async fn finish(
    db: &Db,
    specs: &SpecCache,
    policy: RetryPolicy,
    batch: &[Finished],
) -> Result<FinishReport> {
    let mut report = FinishReport::default();
    if batch.is_empty() {
        return Ok(report);
    }
    let txn = begin_write(db).await?;
    let locks = has_row_locks(&txn);
    if locks {
        // Plan this transaction's statements for their values. A generic plan, which
        // PostgreSQL settles on after a few runs of a prepared statement, can scan a run's
        // every job row to update one (measured: 100 ms instead of 0.2 ms per statement in
        // a 10,000-job run); planning anew costs far less, at a few statements per batch.
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
    }

    // Only attempts still running count; the rest were taken over (stale results).
    let ids: Vec<i64> = batch.iter().map(|f| f.attempt_id).collect();
    let mut running: HashSet<i64> = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut q = attempt::Entity::find()
            .select_only()
            .column(attempt::Column::Id)
            .filter(attempt::Column::Id.is_in(chunk.to_vec()))
            .filter(attempt::Column::State.eq(AttemptState::Running))
            .order_by_asc(attempt::Column::Id);
        if locks {
            q = q.lock(LockType::Update);
        }
        running.extend(q.into_tuple::<i64>().all(&txn).await?);
    }
    let mut live: Vec<&Finished> = Vec::with_capacity(batch.len());
    for f in batch {
        if running.remove(&f.attempt_id) {
            live.push(f);
        } else {
            report.stale += 1;
        }
    }
    if live.is_empty() {
        txn.commit().await?;
        return Ok(report);
    }

    // Lock the runs first, in id order, so completions in one run serialise (PostgreSQL)
    // and never deadlock on job rows.
    let job_ids: Vec<i64> = live.iter().map(|f| f.job_run_id).collect();
    let mut jobs: HashMap<i64, job_run::Model> = HashMap::new();
    for chunk in job_ids.chunks(CHUNK) {
        for j in job_run::Entity::find()
            .filter(job_run::Column::Id.is_in(chunk.to_vec()))
            .all(&txn)
            .await?
        {
            jobs.insert(j.id, j);
        }
    }
    let mut run_ids: Vec<i64> = jobs.values().map(|j| j.run_id).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    let mut runs_by_id: HashMap<i64, run::Model> = HashMap::new();
    for chunk in run_ids.chunks(CHUNK) {
        let mut q = run::Entity::find()
            .filter(run::Column::Id.is_in(chunk.to_vec()))
            .order_by_asc(run::Column::Id);
        if locks {
            q = q.lock(LockType::Update);
        }
        for r in q.all(&txn).await? {
            runs_by_id.insert(r.id, r);
        }
    }

    // Attempts: one UPDATE per end state.
    let mut attempt_groups: HashMap<AttemptState, Vec<RowUpdate>> = HashMap::new();
    for f in &live {
        let (state, error) = match &f.outcome {
            Outcome::Succeeded => (AttemptState::Succeeded, None),
            Outcome::Failed { error, .. } => (AttemptState::Failed, Some(error.clone())),
            Outcome::TimedOut { error } => (AttemptState::TimedOut, Some(error.clone())),
            Outcome::Cancelled => (AttemptState::Cancelled, None),
            Outcome::Interrupted => (AttemptState::Interrupted, None),
            Outcome::Lost => (
                AttemptState::Lost,
                Some("lease expired: the worker stopped heartbeating".to_owned()),
            ),
        };
        attempt_groups.entry(state).or_default().push(RowUpdate {
            id: f.attempt_id,
            at: f.at,
            error,
            not_before: None,
        });
    }
    for (state, rows) in attempt_groups {
        if locks {
            let set = "state = $7, finished_at = v.at, lease_expires_at = NULL, error = v.error";
            let state = sea_orm::ActiveEnum::to_value(&state);
            update_from_rows(&txn, "attempts", set, "", &rows, Some(state.into())).await?;
            continue;
        }
        for chunk in rows.chunks(CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
            let at: Vec<(i64, DateTime<Utc>)> = chunk.iter().map(|r| (r.id, r.at)).collect();
            let mut update = attempt::Entity::update_many()
                .col_expr(attempt::Column::State, Expr::value(state))
                .col_expr(
                    attempt::Column::FinishedAt,
                    case_by_id(attempt::Column::Id, &at),
                )
                .col_expr(
                    attempt::Column::LeaseExpiresAt,
                    Expr::value(None::<DateTime<Utc>>),
                )
                .filter(attempt::Column::Id.is_in(ids));
            if chunk.iter().any(|r| r.error.is_some()) {
                let errors: Vec<(i64, Option<String>)> =
                    chunk.iter().map(|r| (r.id, r.error.clone())).collect();
                update = update.col_expr(
                    attempt::Column::Error,
                    case_by_id(attempt::Column::Id, &errors),
                );
            }
            update.exec(&txn).await?;
        }
    }

    // Job runs: decide each one's change, then one UPDATE per kind of change.
    let t = now();
    let mut changes: HashMap<JobChange, Vec<RowUpdate>> = HashMap::new();
    let mut settled: HashMap<i64, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for f in &live {
        let Some(job) = jobs.get(&f.job_run_id) else {
            continue;
        };
        let Some(run) = runs_by_id.get(&job.run_id) else {
            continue;
        };
        let spec = specs.get(&txn, run.pipeline_version_id).await?;
        let job_spec = spec.spec.job(&job.job_name);
        let retries = job_spec.map_or(0, |j| j.retries);
        let base = job_spec.map_or(Duration::from_secs(10), |j| j.retry_backoff);
        let backoff_until = |failures: i32| {
            let jitter = rand::random_range(0.5..=1.0);
            let wait = progress::backoff(base, failures as u32, policy.max_backoff, jitter);
            Some(t + chrono::Duration::from_std(wait).unwrap_or_default())
        };
        let (change, error, not_before) = match &f.outcome {
            _ if run.cancel_requested && f.outcome != Outcome::Succeeded => {
                (JobChange::Cancel, None, None)
            }
            Outcome::Succeeded => (JobChange::Succeed, None, None),
            Outcome::Cancelled => (JobChange::Cancel, None, None),
            Outcome::Interrupted => (JobChange::Requeue, None, None),
            Outcome::Failed { error, retryable } => {
                let failures = job.failures + 1;
                if *retryable && failures as u32 <= retries {
                    (
                        JobChange::RetryFailure,
                        Some(error.clone()),
                        backoff_until(failures),
                    )
                } else {
                    (JobChange::Fail, Some(error.clone()), None)
                }
            }
            Outcome::TimedOut { error } => {
                let failures = job.failures + 1;
                if failures as u32 <= retries {
                    (
                        JobChange::RetryFailure,
                        Some(error.clone()),
                        backoff_until(failures),
                    )
                } else {
                    (JobChange::Fail, Some(error.clone()), None)
                }
            }
            Outcome::Lost => {
                let losses = job.losses + 1;
                if losses as u32 <= policy.max_lost_attempts {
                    (JobChange::RetryLost, None, None)
                } else {
                    let error = format!(
                        "lost {losses} times with its worker (scheduler.max_lost_attempts = {})",
                        policy.max_lost_attempts
                    );
                    (JobChange::FailLost, Some(error), None)
                }
            }
        };
        if change.state() == JobState::Ready {
            report.retried += 1;
        }
        if let Some(&i) = spec.index.get(&job.job_name) {
            let entry = settled.entry(run.id).or_default();
            match change.state() {
                JobState::Succeeded => entry.0.push(i),
                JobState::Failed | JobState::Cancelled => entry.1.push(i),
                _ => {}
            }
        }
        changes.entry(change).or_default().push(RowUpdate {
            id: job.id,
            at: f.at,
            error,
            not_before,
        });
    }
    for (change, rows) in changes {
        if locks {
            // The same changes as below, by name.
            let mut set = vec![format!(
                "state = '{}'",
                sea_orm::ActiveEnum::to_value(&change.state())
            )];
            if change.state().is_terminal() {
                set.push("finished_at = v.at".to_owned());
            }
            if let Some(counter) = change.counter() {
                let name = sea_orm::IdenStatic::as_str(&counter);
                set.push(format!("{name} = t.{name} + 1"));
            }
            if change.records_error() {
                set.push("error = v.error".to_owned());
            } else if change == JobChange::Succeed {
                set.push("error = NULL".to_owned());
            }
            if change == JobChange::RetryFailure {
                set.push("not_before = v.not_before".to_owned());
            } else if change.state() != JobState::Failed {
                set.push("not_before = NULL".to_owned());
            }
            let running = "AND t.state = 'running'";
            update_from_rows(&txn, "job_runs", &set.join(", "), running, &rows, None).await?;
            continue;
        }
        for chunk in rows.chunks(CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
            let mut update = job_run::Entity::update_many()
                .col_expr(job_run::Column::State, Expr::value(change.state()))
                .filter(job_run::Column::Id.is_in(ids))
                .filter(job_run::Column::State.eq(JobState::Running));
            if change.state().is_terminal() {
                let at: Vec<(i64, DateTime<Utc>)> = chunk.iter().map(|r| (r.id, r.at)).collect();
                update = update.col_expr(
                    job_run::Column::FinishedAt,
                    case_by_id(job_run::Column::Id, &at),
                );
            }
            let errors: Vec<(i64, Option<String>)> =
                chunk.iter().map(|r| (r.id, r.error.clone())).collect();
            let not_before: Vec<(i64, Option<DateTime<Utc>>)> =
                chunk.iter().map(|r| (r.id, r.not_before)).collect();
            if let Some(counter) = change.counter() {
                update = update.col_expr(counter, Expr::col(counter).add(1));
            }
            if change.records_error() {
                update = update.col_expr(
                    job_run::Column::Error,
                    case_by_id(job_run::Column::Id, &errors),
                );
            } else if change == JobChange::Succeed {
                update = update.col_expr(job_run::Column::Error, Expr::value(None::<String>));
            }
            if change == JobChange::RetryFailure {
                update = update.col_expr(
                    job_run::Column::NotBefore,
                    case_by_id(job_run::Column::Id, &not_before),
                );
            } else if change.state() != JobState::Failed {
                update = update.col_expr(
                    job_run::Column::NotBefore,
                    Expr::value(None::<DateTime<Utc>>),
                );
            }
            update.exec(&txn).await?;
        }
    }

    let mut wake = report.retried > 0;
    for run_id in run_ids {
        let Some(run) = runs_by_id.get(&run_id) else {
            continue;
        };
        let (succeeded, failed) = settled.remove(&run_id).unwrap_or_default();
        let (state, readied) = runs::progress_after(&txn, specs, run, &succeeded, &failed).await?;
        wake |= readied > 0 || state.is_terminal();
        report.runs.push((run_id, state));
    }
    txn.commit().await?;
    // Jobs downstream of these, or retries, are ready, or a run ended (a queued one may
    // start): other daemons need not wait for their poll. Otherwise they are not woken for
    // nothing (in a wide fan-out most completions make nothing ready).
    if wake {
        crate::db::wake_daemons(db).await;
    }
    Ok(report)
}

/// Renews the leases of the attempts this worker runs; returns the ids it no longer holds
/// (the reaper took them), which the worker should stop.
pub async fn heartbeat(db: &Db, attempt_ids: &[i64], lease_ttl: Duration) -> Result<Vec<i64>> {
    let lease = lease_until(now(), lease_ttl);
    let mut held = HashSet::new();
    for chunk in attempt_ids.chunks(CHUNK) {
        attempt::Entity::update_many()
            .col_expr(attempt::Column::LeaseExpiresAt, Expr::value(lease))
            .filter(attempt::Column::Id.is_in(chunk.to_vec()))
            .filter(attempt::Column::State.eq(AttemptState::Running))
            .exec(db)
            .await?;
        let still: Vec<i64> = attempt::Entity::find()
            .select_only()
            .column(attempt::Column::Id)
            .filter(attempt::Column::Id.is_in(chunk.to_vec()))
            .filter(attempt::Column::State.eq(AttemptState::Running))
            .into_tuple()
            .all(db)
            .await?;
        held.extend(still);
    }
    Ok(attempt_ids
        .iter()
        .copied()
        .filter(|id| !held.contains(id))
        .collect())
}

/// Running attempts whose lease has passed, as `Lost` ends for [`finish`].
pub async fn expired(db: &Db, limit: u64) -> Result<Vec<Finished>> {
    let t = now();
    let rows: Vec<(i64, i64, i32)> = attempt::Entity::find()
        .select_only()
        .column(attempt::Column::Id)
        .column(attempt::Column::JobRunId)
        .column(attempt::Column::Number)
        .filter(attempt::Column::State.eq(AttemptState::Running))
        .filter(attempt::Column::LeaseExpiresAt.lt(t))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(lost(rows, t))
}

/// `Lost` ends, at `at`, of the attempts (id, job run, number).
pub fn lost(rows: Vec<(i64, i64, i32)>, at: DateTime<Utc>) -> Vec<Finished> {
    rows.into_iter()
        .map(|(attempt_id, job_run_id, number)| Finished {
            attempt_id,
            job_run_id,
            number,
            outcome: Outcome::Lost,
            at,
        })
        .collect()
}
