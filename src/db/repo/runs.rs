//! Runs: creating them (idempotent on the run key), starting queued ones within
//! `max_active_runs`, moving them forward, cancelling and re-running.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TryInsertResult,
    sea_query::{Expr, ExprTrait, LockType},
};

use super::{
    CHUNK,
    pipelines::{self, CompiledSpec, SpecCache},
};
use crate::{
    db::{
        Db, RepoError, Result, begin_write,
        entities::{JobState, RunState, Trigger, attempt, job_run, pipeline, run, run_rerun},
        has_row_locks, now,
    },
    pipeline::progress,
};

/// The run key of a cron or backfill tick: its UTC instant, so a backfill never duplicates
/// a cron run of the same tick.
pub fn tick_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_key: String,
    pub trigger: Trigger,
    pub logical_time: DateTime<Utc>,
    pub params: BTreeMap<String, String>,
}

/// Creates a run of the pipeline's current version, with all its job runs `waiting`, in state
/// `queued`. A run with the same key already existing is not an error: its id is returned
/// with `created = false` (two daemons firing the same tick make one run).
pub async fn create(
    db: &Db,
    pipeline_id: i64,
    spec_version: i64,
    spec: &CompiledSpec,
    new: NewRun,
) -> Result<(i64, bool)> {
    let params = serde_json::to_string(&new.params)
        .map_err(|e| RepoError::Corrupt(format!("run params: {e}")))?;
    let txn = begin_write(db).await?;
    let t = now();
    let inserted = run::Entity::insert(run::ActiveModel {
        pipeline_id: Set(pipeline_id),
        pipeline_version_id: Set(spec_version),
        run_key: Set(new.run_key.clone()),
        trigger: Set(new.trigger),
        logical_time: Set(new.logical_time),
        params: Set(params),
        state: Set(RunState::Queued),
        cancel_requested: Set(false),
        reruns: Set(0),
        created_at: Set(t),
        started_at: Set(None),
        finished_at: Set(None),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([run::Column::PipelineId, run::Column::RunKey])
    .exec(&txn)
    .await?;
    let run_id = match inserted {
        TryInsertResult::Inserted(r) => r.last_insert_id,
        TryInsertResult::Conflicted | TryInsertResult::Empty => {
            let existing = run::Entity::find()
                .filter(run::Column::PipelineId.eq(pipeline_id))
                .filter(run::Column::RunKey.eq(new.run_key.as_str()))
                .one(&txn)
                .await?
                .ok_or_else(|| {
                    RepoError::Conflict(format!(
                        "run key {} conflicted but no run has it",
                        new.run_key
                    ))
                })?;
            return Ok((existing.id, false));
        }
    };
    let jobs: Vec<job_run::ActiveModel> = spec
        .spec
        .jobs
        .iter()
        .map(|j| job_run::ActiveModel {
            run_id: Set(run_id),
            job_name: Set(j.name.clone()),
            kind: Set(j.kind.clone()),
            state: Set(JobState::Waiting),
            attempts: Set(0),
            failures: Set(0),
            losses: Set(0),
            pending_upstreams: Set(j.after.len() as i32),
            not_before: Set(None),
            started_at: Set(None),
            finished_at: Set(None),
            error: Set(None),
            pool: Set(j.pool.clone()),
            ..Default::default()
        })
        .collect();
    for chunk in jobs.chunks(CHUNK) {
        job_run::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    crate::db::wake_daemons(db).await;
    Ok((run_id, true))
}

/// Starts queued runs of unpaused pipelines, oldest logical time first, as far as each
/// pipeline's `max_active_runs` allows. Returns the ids started.
pub async fn start_queued(db: &Db, specs: &SpecCache) -> Result<Vec<i64>> {
    let queued: Vec<(i64, i64)> = run::Entity::find()
        .select_only()
        .column(run::Column::PipelineId)
        .column(run::Column::Id)
        .filter(run::Column::State.eq(RunState::Queued))
        .order_by_asc(run::Column::LogicalTime)
        .order_by_asc(run::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut by_pipeline: Vec<(i64, Vec<i64>)> = Vec::new();
    for (pipeline_id, run_id) in queued {
        match by_pipeline.iter_mut().find(|(p, _)| *p == pipeline_id) {
            Some((_, runs)) => runs.push(run_id),
            None => by_pipeline.push((pipeline_id, vec![run_id])),
        }
    }
    let mut started = Vec::new();
    for (pipeline_id, candidates) in by_pipeline {
        let txn = begin_write(db).await?;
        let p = pipelines::lock(&txn, pipeline_id).await?;
        let Some(version_id) = p.current_version_id else {
            continue;
        };
        if p.paused {
            continue;
        }
        let limit = specs.get(&txn, version_id).await?.spec.max_active_runs as u64;
        let running = run::Entity::find()
            .filter(run::Column::PipelineId.eq(pipeline_id))
            .filter(run::Column::State.eq(RunState::Running))
            .count(&txn)
            .await?;
        let t = now();
        for run_id in candidates
            .into_iter()
            .take(limit.saturating_sub(running) as usize)
        {
            // A rerun keeps the run's first start (its own start goes on its rerun row).
            let updated = run::Entity::update_many()
                .col_expr(run::Column::State, Expr::value(RunState::Running))
                .col_expr(
                    run::Column::StartedAt,
                    Expr::col(run::Column::StartedAt).if_null(t),
                )
                .filter(run::Column::Id.eq(run_id))
                .filter(run::Column::State.eq(RunState::Queued))
                .exec(&txn)
                .await?;
            if updated.rows_affected == 1 {
                let run = lock_run(&txn, run_id).await?;
                if run.reruns > 0 {
                    run_rerun::Entity::update_many()
                        .col_expr(run_rerun::Column::StartedAt, Expr::value(t))
                        .filter(run_rerun::Column::RunId.eq(run_id))
                        .filter(run_rerun::Column::Number.eq(run.reruns))
                        .filter(run_rerun::Column::StartedAt.is_null())
                        .exec(&txn)
                        .await?;
                }
                progress_after(&txn, specs, &run, &[], &[]).await?;
                started.push(run_id);
            }
        }
        txn.commit().await?;
    }
    Ok(started)
}

async fn lock_run(db: &impl ConnectionTrait, run_id: i64) -> Result<run::Model> {
    let mut query = run::Entity::find_by_id(run_id);
    if has_row_locks(db) {
        query = query.lock(LockType::Update);
    }
    query
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("run", run_id))
}

/// Moves a running run forward after some of its jobs settled (inside the caller's write
/// transaction, with the run row already locked): `succeeded` and `failed` are spec indices of
/// jobs that just became succeeded, and failed or cancelled. Downstream jobs' pending counts
/// drop, jobs at zero become ready, everything below a failure becomes `upstream_failed`, and
/// the run finishes when no job is left. Costs a few statements whatever the run's size.
/// Returns the run's state and how many jobs became ready.
pub async fn progress_after(
    txn: &impl ConnectionTrait,
    specs: &SpecCache,
    run: &run::Model,
    succeeded: &[usize],
    failed: &[usize],
) -> Result<(RunState, u64)> {
    if run.state != RunState::Running {
        return Ok((run.state, 0));
    }
    let compiled = specs.get(txn, run.pipeline_version_id).await?;
    let t = now();
    let mut readied = 0;
    let names = |idx: &[usize]| -> Vec<String> {
        idx.iter().map(|&i| compiled.edges[i].0.clone()).collect()
    };
    if run.cancel_requested {
        job_run::Entity::update_many()
            .col_expr(job_run::Column::State, Expr::value(JobState::Cancelled))
            .col_expr(job_run::Column::FinishedAt, Expr::value(t))
            .filter(job_run::Column::RunId.eq(run.id))
            .filter(job_run::Column::State.is_in([JobState::Waiting, JobState::Ready]))
            .exec(txn)
            .await?;
    } else {
        let mut by_amount: HashMap<i32, Vec<usize>> = HashMap::new();
        let decrements = progress::upstream_decrements(&compiled.down, succeeded);
        for &(job, amount) in &decrements {
            by_amount.entry(amount).or_default().push(job);
        }
        for (amount, jobs) in by_amount {
            for chunk in names(&jobs).chunks(CHUNK) {
                job_run::Entity::update_many()
                    .col_expr(
                        job_run::Column::PendingUpstreams,
                        Expr::col(job_run::Column::PendingUpstreams).sub(amount),
                    )
                    .filter(job_run::Column::RunId.eq(run.id))
                    .filter(job_run::Column::JobName.is_in(chunk.to_vec()))
                    .exec(txn)
                    .await?;
            }
        }
        let doomed = progress::downstream_closure(&compiled.down, failed);
        for chunk in names(&doomed).chunks(CHUNK) {
            job_run::Entity::update_many()
                .col_expr(
                    job_run::Column::State,
                    Expr::value(JobState::UpstreamFailed),
                )
                .col_expr(job_run::Column::FinishedAt, Expr::value(t))
                .filter(job_run::Column::RunId.eq(run.id))
                .filter(job_run::Column::State.eq(JobState::Waiting))
                .filter(job_run::Column::JobName.is_in(chunk.to_vec()))
                .exec(txn)
                .await?;
        }
        // Only jobs whose count just dropped can have reached zero; when nothing settled
        // (a run starting), every waiting job is looked at. Naming the jobs keeps this an
        // index lookup: by state, a wide run's index holds thousands of stale entries.
        let touched: Vec<usize> = decrements.iter().map(|&(job, _)| job).collect();
        let ready = || {
            job_run::Entity::update_many()
                .col_expr(job_run::Column::State, Expr::value(JobState::Ready))
                .filter(job_run::Column::RunId.eq(run.id))
                .filter(job_run::Column::State.eq(JobState::Waiting))
                .filter(job_run::Column::PendingUpstreams.lte(0))
        };
        if succeeded.is_empty() && failed.is_empty() {
            readied = ready().exec(txn).await?.rows_affected;
        } else {
            for chunk in names(&touched).chunks(CHUNK) {
                readied += ready()
                    .filter(job_run::Column::JobName.is_in(chunk.to_vec()))
                    .exec(txn)
                    .await?
                    .rows_affected;
            }
        }
    }
    if readied > 0 {
        // A ready job is unfinished work: the run goes on.
        return Ok((RunState::Running, readied));
    }
    Ok((finish_if_done(txn, run, t).await?, readied))
}

/// Ends the run if every job is terminal; returns its state.
async fn finish_if_done(
    txn: &impl ConnectionTrait,
    run: &run::Model,
    t: DateTime<Utc>,
) -> Result<RunState> {
    // Most completions leave work in the run: one probe of the (run, state) index says so
    // without counting every job of the run at every completion.
    let open: Vec<JobState> = JobState::iter().filter(|s| !s.is_terminal()).collect();
    let unfinished: Option<i64> = job_run::Entity::find()
        .select_only()
        .column(job_run::Column::Id)
        .filter(job_run::Column::RunId.eq(run.id))
        .filter(job_run::Column::State.is_in(open))
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    if unfinished.is_some() {
        return Ok(RunState::Running);
    }
    let counts: Vec<(JobState, i64)> = job_run::Entity::find()
        .select_only()
        .column(job_run::Column::State)
        .column_as(job_run::Column::Id.count(), "n")
        .filter(job_run::Column::RunId.eq(run.id))
        .group_by(job_run::Column::State)
        .into_tuple()
        .all(txn)
        .await?;
    // Presence is enough: the outcome asks whether all or any jobs are in some state.
    let states = counts.iter().map(|(state, _)| *state);
    match progress::run_outcome_of(states, run.cancel_requested) {
        Some(outcome) => {
            run::Entity::update_many()
                .col_expr(run::Column::State, Expr::value(outcome))
                .col_expr(run::Column::FinishedAt, Expr::value(t))
                .filter(run::Column::Id.eq(run.id))
                .exec(txn)
                .await?;
            Ok(outcome)
        }
        None => Ok(RunState::Running),
    }
}

/// Recomputes a run from all its job states (the slow, self-correcting path, for cancels and
/// repairs): readies, fails or cancels waiting jobs, resets pending counts, and finishes the
/// run when every job is terminal. Locks the run row (PostgreSQL). Returns the run's state.
pub async fn advance(
    txn: &impl ConnectionTrait,
    specs: &SpecCache,
    run_id: i64,
) -> Result<RunState> {
    let run = lock_run(txn, run_id).await?;
    if run.state != RunState::Running {
        return Ok(run.state);
    }
    let compiled = specs.get(txn, run.pipeline_version_id).await?;
    let (ids, mut states, pending) = load_states(txn, &compiled, run_id).await?;
    let changes = progress::advance(&compiled.edges, &states, run.cancel_requested);
    let t = now();
    let mut grouped: HashMap<JobState, Vec<i64>> = HashMap::new();
    for (i, next) in &changes {
        states[*i] = *next;
        grouped.entry(*next).or_default().push(ids[*i]);
    }
    for (next, job_ids) in grouped {
        for chunk in job_ids.chunks(CHUNK) {
            let mut update = job_run::Entity::update_many()
                .col_expr(job_run::Column::State, Expr::value(next))
                .filter(job_run::Column::Id.is_in(chunk.to_vec()))
                .filter(job_run::Column::State.is_in([JobState::Waiting, JobState::Ready]));
            if next.is_terminal() {
                update = update.col_expr(job_run::Column::FinishedAt, Expr::value(t));
            }
            update.exec(txn).await?;
        }
    }
    store_pending(txn, &compiled, &ids, &states, &pending).await?;
    finish_if_done(txn, &run, t).await
}

/// Job run ids, states and pending counts of a run, in spec order.
async fn load_states(
    txn: &impl ConnectionTrait,
    compiled: &CompiledSpec,
    run_id: i64,
) -> Result<(Vec<i64>, Vec<JobState>, Vec<i32>)> {
    let rows: Vec<(i64, String, JobState, i32)> = job_run::Entity::find()
        .select_only()
        .column(job_run::Column::Id)
        .column(job_run::Column::JobName)
        .column(job_run::Column::State)
        .column(job_run::Column::PendingUpstreams)
        .filter(job_run::Column::RunId.eq(run_id))
        .into_tuple()
        .all(txn)
        .await?;
    let n = compiled.edges.len();
    let (mut ids, mut states, mut pending) =
        (vec![0i64; n], vec![JobState::Waiting; n], vec![0; n]);
    for (id, name, state, p) in rows {
        if let Some(&i) = compiled.index.get(&name) {
            ids[i] = id;
            states[i] = state;
            pending[i] = p;
        }
    }
    Ok((ids, states, pending))
}

/// Writes pending-upstream counts that differ from `stored`, grouped by value.
async fn store_pending(
    txn: &impl ConnectionTrait,
    compiled: &CompiledSpec,
    ids: &[i64],
    states: &[JobState],
    stored: &[i32],
) -> Result {
    let want = progress::pending_upstreams(&compiled.edges, states);
    let mut by_value: HashMap<i32, Vec<i64>> = HashMap::new();
    for (i, &w) in want.iter().enumerate() {
        if w != stored[i] {
            by_value.entry(w).or_default().push(ids[i]);
        }
    }
    for (value, job_ids) in by_value {
        for chunk in job_ids.chunks(CHUNK) {
            job_run::Entity::update_many()
                .col_expr(job_run::Column::PendingUpstreams, Expr::value(value))
                .filter(job_run::Column::Id.is_in(chunk.to_vec()))
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}

/// Filters for `runs list`.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub pipeline: Option<String>,
    pub state: Option<RunState>,
    pub limit: u64,
}

/// A run with its pipeline's name.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run: run::Model,
    pub pipeline: String,
}

pub async fn list(db: &Db, filter: &RunFilter) -> Result<Vec<RunRow>> {
    let mut query = run::Entity::find()
        .order_by_desc(run::Column::Id)
        .limit(Ord::max(filter.limit, 1));
    if let Some(name) = &filter.pipeline {
        let p = pipelines::find(db, name).await?;
        query = query.filter(run::Column::PipelineId.eq(p.id));
    }
    if let Some(state) = filter.state {
        query = query.filter(run::Column::State.eq(state));
    }
    let runs = query.all(db).await?;
    let names: HashMap<i64, String> = pipeline::Entity::find()
        .select_only()
        .column(pipeline::Column::Id)
        .column(pipeline::Column::Name)
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(runs
        .into_iter()
        .map(|run| RunRow {
            pipeline: names.get(&run.pipeline_id).cloned().unwrap_or_default(),
            run,
        })
        .collect())
}

pub async fn get(db: &impl ConnectionTrait, run_id: i64) -> Result<run::Model> {
    run::Entity::find_by_id(run_id)
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("run", run_id))
}

/// A run with every job (in DAG order) and every attempt.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: run::Model,
    pub pipeline: String,
    pub spec: std::sync::Arc<CompiledSpec>,
    pub jobs: Vec<(job_run::Model, Vec<attempt::Model>)>,
    /// Its reruns, oldest first.
    pub reruns: Vec<run_rerun::Model>,
}

/// One execution of a run: the first, or a rerun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// 0 for the first execution, then the rerun's number.
    pub number: i32,
    /// What the rerun reran (`all`, `failed_only`, `from:JOB`); none for the first.
    pub scope: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub state: RunState,
}

impl RunDetail {
    pub fn params(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.run.params).unwrap_or_default()
    }

    /// The first execution and each rerun, with their own times and outcomes. Each rerun row
    /// holds how the execution before it ended; the last one's end is the run's.
    pub fn executions(&self) -> Vec<Execution> {
        let mut out = Vec::with_capacity(self.reruns.len() + 1);
        let mut current = Execution {
            number: 0,
            scope: None,
            requested_at: self.run.created_at,
            started_at: self.run.started_at,
            finished_at: None,
            state: self.run.state,
        };
        for rerun in &self.reruns {
            current.finished_at = rerun.previous_finished_at;
            current.state = rerun.previous_state;
            out.push(current);
            current = Execution {
                number: rerun.number,
                scope: Some(rerun.scope.clone()),
                requested_at: rerun.requested_at,
                started_at: rerun.started_at,
                finished_at: None,
                state: self.run.state,
            };
        }
        current.finished_at = self.run.finished_at;
        current.state = self.run.state;
        out.push(current);
        out
    }
}

pub async fn show(db: &Db, specs: &SpecCache, run_id: i64) -> Result<RunDetail> {
    let run = get(db, run_id).await?;
    let pipeline = pipeline::Entity::find_by_id(run.pipeline_id)
        .one(db)
        .await?
        .ok_or_else(|| RepoError::not_found("pipeline", run.pipeline_id))?;
    let spec = specs.get(db, run.pipeline_version_id).await?;
    let mut jobs = job_run::Entity::find()
        .filter(job_run::Column::RunId.eq(run_id))
        .all(db)
        .await?;
    let order: HashMap<String, usize> = spec
        .spec
        .topo_order()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.clone(), i))
        .collect();
    jobs.sort_by_key(|j| order.get(&j.job_name).copied().unwrap_or(usize::MAX));
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let mut attempts: HashMap<i64, Vec<attempt::Model>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        for a in attempt::Entity::find()
            .filter(attempt::Column::JobRunId.is_in(chunk.to_vec()))
            .order_by_asc(attempt::Column::Number)
            .all(db)
            .await?
        {
            attempts.entry(a.job_run_id).or_default().push(a);
        }
    }
    let jobs = jobs
        .into_iter()
        .map(|j| {
            let a = attempts.remove(&j.id).unwrap_or_default();
            (j, a)
        })
        .collect();
    let reruns = run_rerun::Entity::find()
        .filter(run_rerun::Column::RunId.eq(run_id))
        .order_by_asc(run_rerun::Column::Number)
        .all(db)
        .await?;
    Ok(RunDetail {
        run,
        pipeline: pipeline.name,
        spec,
        jobs,
        reruns,
    })
}

/// Asks for a run to stop. Jobs not started are cancelled now; running ones are stopped by
/// the daemon that runs them. A queued run is cancelled at once.
pub async fn request_cancel(db: &Db, specs: &SpecCache, run_id: i64) -> Result<RunState> {
    let txn = begin_write(db).await?;
    let run = lock_run(&txn, run_id).await?;
    if run.state.is_terminal() {
        return Err(RepoError::Conflict(format!(
            "run {run_id} already {}; nothing to cancel",
            run.state
        )));
    }
    let t = now();
    run::Entity::update_many()
        .col_expr(run::Column::CancelRequested, Expr::value(true))
        .filter(run::Column::Id.eq(run_id))
        .exec(&txn)
        .await?;
    let state = if run.state == RunState::Queued {
        job_run::Entity::update_many()
            .col_expr(job_run::Column::State, Expr::value(JobState::Cancelled))
            .col_expr(job_run::Column::FinishedAt, Expr::value(t))
            .filter(job_run::Column::RunId.eq(run_id))
            .filter(job_run::Column::State.is_in([JobState::Waiting, JobState::Ready]))
            .exec(&txn)
            .await?;
        run::Entity::update_many()
            .col_expr(run::Column::State, Expr::value(RunState::Cancelled))
            .col_expr(run::Column::FinishedAt, Expr::value(t))
            .filter(run::Column::Id.eq(run_id))
            .exec(&txn)
            .await?;
        RunState::Cancelled
    } else {
        advance(&txn, specs, run_id).await?
    };
    txn.commit().await?;
    Ok(state)
}

/// Which jobs of a finished run to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RerunScope {
    /// Every job.
    All,
    /// Failed, upstream-failed and cancelled jobs (succeeded ones are kept).
    FailedOnly,
    /// This job and everything downstream of it.
    From(String),
}

impl std::fmt::Display for RerunScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::FailedOnly => f.write_str("failed_only"),
            Self::From(job) => write!(f, "from:{job}"),
        }
    }
}

/// Resets the chosen jobs to `waiting` and queues the run again; returns the reset job names.
pub async fn rerun(
    db: &Db,
    specs: &SpecCache,
    run_id: i64,
    scope: &RerunScope,
) -> Result<Vec<String>> {
    let txn = begin_write(db).await?;
    let run = lock_run(&txn, run_id).await?;
    if !run.state.is_terminal() {
        return Err(RepoError::Conflict(format!(
            "run {run_id} is still {}; wait for it or cancel it first",
            run.state
        )));
    }
    let compiled = specs.get(&txn, run.pipeline_version_id).await?;
    let jobs = job_run::Entity::find()
        .filter(job_run::Column::RunId.eq(run_id))
        .all(&txn)
        .await?;
    let names: Vec<String> = match scope {
        RerunScope::All => jobs.iter().map(|j| j.job_name.clone()).collect(),
        RerunScope::FailedOnly => jobs
            .iter()
            .filter(|j| {
                matches!(
                    j.state,
                    JobState::Failed | JobState::UpstreamFailed | JobState::Cancelled
                )
            })
            .map(|j| j.job_name.clone())
            .collect(),
        RerunScope::From(job) => {
            // A sharded job's name means all its shards.
            let from = compiled.spec.resolve(job);
            if from.is_empty() {
                return Err(RepoError::not_found(
                    "job",
                    format!("{job} in run {run_id}"),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            from.iter()
                .flat_map(|f| compiled.spec.downstream_of(f))
                .filter(|name| seen.insert(name.clone()))
                .collect()
        }
    };
    if names.is_empty() {
        return Err(RepoError::Conflict(format!(
            "run {run_id} has no failed or cancelled jobs to rerun"
        )));
    }
    for chunk in names.chunks(CHUNK) {
        job_run::Entity::update_many()
            .col_expr(job_run::Column::State, Expr::value(JobState::Waiting))
            .col_expr(job_run::Column::Failures, Expr::value(0))
            .col_expr(job_run::Column::Losses, Expr::value(0))
            .col_expr(
                job_run::Column::NotBefore,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(
                job_run::Column::StartedAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(
                job_run::Column::FinishedAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(job_run::Column::Error, Expr::value(None::<String>))
            .filter(job_run::Column::RunId.eq(run_id))
            .filter(job_run::Column::JobName.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
    }
    let (ids, states, pending) = load_states(&txn, &compiled, run_id).await?;
    store_pending(&txn, &compiled, &ids, &states, &pending).await?;
    run_rerun::Entity::insert(run_rerun::ActiveModel {
        run_id: Set(run_id),
        number: Set(run.reruns + 1),
        scope: Set(scope.to_string()),
        requested_at: Set(now()),
        started_at: Set(None),
        previous_state: Set(run.state),
        previous_finished_at: Set(run.finished_at),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    run::Entity::update_many()
        .col_expr(run::Column::State, Expr::value(RunState::Queued))
        .col_expr(run::Column::CancelRequested, Expr::value(false))
        .col_expr(run::Column::Reruns, Expr::col(run::Column::Reruns).add(1))
        .col_expr(run::Column::FinishedAt, Expr::value(None::<DateTime<Utc>>))
        .filter(run::Column::Id.eq(run_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    crate::db::wake_daemons(db).await;
    Ok(names)
}

/// Runs asked to stop that are still running: the daemon cancels their local attempts.
pub async fn cancel_requested(db: &Db) -> Result<Vec<i64>> {
    Ok(run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::CancelRequested.eq(true))
        .filter(run::Column::State.eq(RunState::Running))
        .into_tuple()
        .all(db)
        .await?)
}

/// Running runs whose jobs are all terminal (a completion that raced a crash); the reaper
/// finishes them so no run stays `running` forever.
pub async fn settle_stuck(db: &Db, specs: &SpecCache) -> Result<usize> {
    let running: Vec<i64> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::State.eq(RunState::Running))
        .into_tuple()
        .all(db)
        .await?;
    let mut settled = 0;
    for run_id in running {
        let open = job_run::Entity::find()
            .filter(job_run::Column::RunId.eq(run_id))
            .filter(job_run::Column::State.is_in([JobState::Running, JobState::Ready]))
            .count(db)
            .await?;
        if open > 0 {
            continue;
        }
        let txn = begin_write(db).await?;
        let state = advance(&txn, specs, run_id).await?;
        txn.commit().await?;
        if state.is_terminal() {
            settled += 1;
        }
    }
    Ok(settled)
}

/// A run still queued or running: `(id, pipeline version, created at)`, for SLA checks.
pub async fn unfinished(db: &Db) -> Result<Vec<(i64, i64, DateTime<Utc>)>> {
    Ok(run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .column(run::Column::PipelineVersionId)
        .column(run::Column::CreatedAt)
        .filter(run::Column::State.is_in([RunState::Queued, RunState::Running]))
        .filter(run::Column::SlaMissedAt.is_null())
        .into_tuple()
        .all(db)
        .await?)
}

/// Marks a run as past its SLA; true for the one caller that marked it.
pub async fn mark_sla_missed(db: &Db, run_id: i64) -> Result<bool> {
    let res = run::Entity::update_many()
        .col_expr(run::Column::SlaMissedAt, Expr::value(now()))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::SlaMissedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
