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
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};

use super::{CHUNK, pipelines::SpecCache, runs};
use crate::{
    db::{
        Db, Result, begin_write,
        entities::{AttemptState, JobState, attempt, job_run, run},
        has_row_locks, now,
    },
    pipeline::progress,
};

/// A job run this worker now holds, with its new attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub number: i32,
    pub job_run_id: i64,
    pub run_id: i64,
    pub job_name: String,
    pub kind: String,
}

fn lease_until(t: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30))
}

/// Claims up to `limit` ready job runs whose `not_before` has passed: each becomes
/// `running` with a new attempt leased to `worker_id` until `now + lease_ttl`.
/// PostgreSQL skips rows other daemons are claiming (`FOR UPDATE SKIP LOCKED`); SQLite's
/// `BEGIN IMMEDIATE` makes the whole claim one writer.
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
    let mut query = job_run::Entity::find()
        .filter(job_run::Column::State.eq(JobState::Ready))
        .filter(
            Condition::any()
                .add(job_run::Column::NotBefore.is_null())
                .add(job_run::Column::NotBefore.lte(t)),
        )
        .order_by_asc(job_run::Column::Id)
        .limit(limit as u64);
    if has_row_locks(&txn) {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(&txn).await?;
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
        .map(|r| attempt::ActiveModel {
            job_run_id: Set(r.id),
            number: Set(r.attempts + 1),
            state: Set(AttemptState::Running),
            worker_id: Set(worker_id.to_owned()),
            started_at: Set(t),
            finished_at: Set(None),
            lease_expires_at: Set(Some(lease)),
            error: Set(None),
            ..Default::default()
        })
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
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (attempt_id, number) = attempt_ids.get(&r.id).copied()?;
            Some(Claimed {
                attempt_id,
                number,
                job_run_id: r.id,
                run_id: r.run_id,
                job_name: r.job_name,
                kind: r.kind,
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

/// Records a batch of attempt ends in one transaction and moves the affected runs forward.
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
    let t = now();
    let mut live = Vec::with_capacity(batch.len());
    for f in batch {
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
        let updated = attempt::Entity::update_many()
            .col_expr(attempt::Column::State, Expr::value(state))
            .col_expr(attempt::Column::FinishedAt, Expr::value(f.at))
            .col_expr(attempt::Column::Error, Expr::value(error))
            .col_expr(
                attempt::Column::LeaseExpiresAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .filter(attempt::Column::Id.eq(f.attempt_id))
            .filter(attempt::Column::State.eq(AttemptState::Running))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 1 {
            live.push(f);
        } else {
            report.stale += 1;
        }
    }

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
    let run_ids: HashSet<i64> = jobs.values().map(|j| j.run_id).collect();
    let mut run_rows: HashMap<i64, run::Model> = HashMap::new();
    let run_ids_vec: Vec<i64> = run_ids.iter().copied().collect();
    for chunk in run_ids_vec.chunks(CHUNK) {
        for r in run::Entity::find()
            .filter(run::Column::Id.is_in(chunk.to_vec()))
            .all(&txn)
            .await?
        {
            run_rows.insert(r.id, r);
        }
    }

    for f in live {
        let Some(job) = jobs.get(&f.job_run_id) else {
            continue;
        };
        let Some(run) = run_rows.get(&job.run_id) else {
            continue;
        };
        let spec = specs.get(&txn, run.pipeline_version_id).await?;
        let job_spec = spec.spec.job(&job.job_name);
        let retries = job_spec.map_or(0, |j| j.retries);
        let base = job_spec.map_or(Duration::from_secs(10), |j| j.retry_backoff);

        let mut failures = job.failures;
        let mut losses = job.losses;
        let mut not_before = None;
        let mut error = None;
        let next = match &f.outcome {
            _ if run.cancel_requested && f.outcome != Outcome::Succeeded => JobState::Cancelled,
            Outcome::Succeeded => JobState::Succeeded,
            Outcome::Cancelled => JobState::Cancelled,
            Outcome::Interrupted => JobState::Ready,
            Outcome::Failed {
                error: e,
                retryable,
            } => {
                failures += 1;
                error = Some(e.clone());
                if *retryable && failures as u32 <= retries {
                    let jitter = rand::random_range(0.5..=1.0);
                    let wait = progress::backoff(base, failures as u32, policy.max_backoff, jitter);
                    not_before = Some(t + chrono::Duration::from_std(wait).unwrap_or_default());
                    JobState::Ready
                } else {
                    JobState::Failed
                }
            }
            Outcome::TimedOut { error: e } => {
                failures += 1;
                error = Some(e.clone());
                if failures as u32 <= retries {
                    let jitter = rand::random_range(0.5..=1.0);
                    let wait = progress::backoff(base, failures as u32, policy.max_backoff, jitter);
                    not_before = Some(t + chrono::Duration::from_std(wait).unwrap_or_default());
                    JobState::Ready
                } else {
                    JobState::Failed
                }
            }
            Outcome::Lost => {
                losses += 1;
                if losses as u32 <= policy.max_lost_attempts {
                    JobState::Ready
                } else {
                    error = Some(format!(
                        "lost {losses} times with its worker (scheduler.max_lost_attempts = {})",
                        policy.max_lost_attempts
                    ));
                    JobState::Failed
                }
            }
        };
        if next == JobState::Ready {
            report.retried += 1;
        }
        let mut update = job_run::Entity::update_many()
            .col_expr(job_run::Column::State, Expr::value(next))
            .col_expr(job_run::Column::Failures, Expr::value(failures))
            .col_expr(job_run::Column::Losses, Expr::value(losses))
            .col_expr(job_run::Column::NotBefore, Expr::value(not_before))
            .col_expr(job_run::Column::Error, Expr::value(error))
            .filter(job_run::Column::Id.eq(job.id))
            .filter(job_run::Column::State.eq(JobState::Running))
            .filter(job_run::Column::Attempts.eq(f.number));
        if next.is_terminal() {
            update = update.col_expr(job_run::Column::FinishedAt, Expr::value(f.at));
        }
        update.exec(&txn).await?;
    }

    for run_id in run_ids {
        let state = runs::advance(&txn, specs, run_id).await?;
        report.runs.push((run_id, state));
    }
    txn.commit().await?;
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

/// Running attempts recorded under `worker_id`: at start-up a worker reusing an id knows
/// these died with its previous process, and need not wait for their leases to expire.
pub async fn orphans_of(db: &Db, worker_id: &str) -> Result<Vec<Finished>> {
    let rows: Vec<(i64, i64, i32)> = attempt::Entity::find()
        .select_only()
        .column(attempt::Column::Id)
        .column(attempt::Column::JobRunId)
        .column(attempt::Column::Number)
        .filter(attempt::Column::State.eq(AttemptState::Running))
        .filter(attempt::Column::WorkerId.eq(worker_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(lost(rows, now()))
}

fn lost(rows: Vec<(i64, i64, i32)>, at: DateTime<Utc>) -> Vec<Finished> {
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
