//! Snapshots of what each view shows, loaded through the repository functions the CLI uses
//! (plus a few aggregates of `repo::console`). Loading happens in tasks of the event loop,
//! never while drawing; the snapshots are plain data, so tests build them by hand.

use crate::lake::Lake;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::db::{
    Db, RepoError,
    entities::{AttemptState, JobState, RunState, Trigger, WorkerState, run},
    repo::{
        self,
        console::CHURN_BUCKETS,
        logs::LogEntry,
        pipelines::SpecCache,
        runs::{RunDetail, RunFilter},
    },
};
use crate::pipeline::recovery::{Liveness, liveness};

/// Runs fetched per refresh of the Runs view: the newest ones matching the SQL part of the
/// filter. Thousands of runs stay fast because only this many are read.
pub const RUNS_LIMIT: u64 = 500;
/// Finished runs per pipeline in its duration sparkline.
pub const SPARK_RUNS: u32 = 30;
/// Log lines read per refresh (the rest follow on the next ones).
pub const LOG_PAGE: u64 = 5_000;
/// Days in the points-per-day chart.
pub const POINT_DAYS: i64 = 14;

/// A pipeline row of the Pipelines view.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRow {
    pub name: String,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub next_fire: Option<DateTime<Utc>>,
    pub paused: bool,
    pub jobs: usize,
    pub last_run: Option<RunBrief>,
    /// Durations (ms) of the latest finished runs, oldest first.
    pub recent_ms: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunBrief {
    pub id: i64,
    pub state: RunState,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run as the Runs and Run detail views show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub pipeline: String,
    pub state: RunState,
    pub trigger: Trigger,
    pub reruns: i32,
    pub run_key: String,
    pub logical_time: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
}

impl RunRow {
    pub fn from_model(run: &run::Model, pipeline: &str) -> Self {
        Self {
            id: run.id,
            pipeline: pipeline.to_owned(),
            state: run.state,
            trigger: run.trigger,
            reruns: run.reruns,
            run_key: run.run_key.clone(),
            logical_time: run.logical_time,
            started_at: run.started_at,
            finished_at: run.finished_at,
            cancel_requested: run.cancel_requested,
        }
    }

    /// `cron`, `manual`, `backfill`, or `rerun` (with what first started it).
    pub fn trigger_label(&self) -> String {
        if self.reruns > 0 {
            format!("rerun ({})", self.trigger)
        } else {
            self.trigger.to_string()
        }
    }

    /// Whether the filter's free words all match this row (case-insensitive).
    fn matches(&self, words: &[String]) -> bool {
        if words.is_empty() {
            return true;
        }
        let hay = format!(
            "{} {} {} {} {}",
            self.id,
            self.pipeline,
            self.state,
            self.trigger_label(),
            self.run_key
        )
        .to_lowercase();
        words.iter().all(|w| hay.contains(&w.to_lowercase()))
    }
}

/// The Runs view's filter, as typed after `/`: a run state (`failed`) or `pipeline=NAME`
/// narrows the SQL query; a word naming a pipeline does too; any other word must appear in
/// the run's id, pipeline, state, trigger or key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    pub state: Option<RunState>,
    pub pipeline: Option<String>,
    pub words: Vec<String>,
}

impl RunQuery {
    pub fn parse(text: &str) -> Self {
        let mut q = RunQuery::default();
        for word in text.split_whitespace() {
            if let Some(name) = word
                .strip_prefix("pipeline=")
                .or_else(|| word.strip_prefix("p="))
            {
                q.pipeline = Some(name.to_owned());
            } else if let Some(state) = word
                .strip_prefix("state=")
                .and_then(|s| s.parse::<RunState>().ok())
                .or_else(|| word.to_lowercase().parse::<RunState>().ok())
            {
                q.state = Some(state);
            } else {
                q.words.push(word.to_owned());
            }
        }
        q
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunsSnapshot {
    pub rows: Vec<RunRow>,
    /// Runs read before the free words were applied.
    pub scanned: usize,
    pub query: RunQuery,
}

/// One job of a run, with its upstreams (indices into the run's job list) and attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct JobNode {
    pub name: String,
    pub kind: String,
    pub state: JobState,
    pub after: Vec<usize>,
    pub attempts: Vec<AttemptRow>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub number: i32,
    pub state: AttemptState,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunDetailSnapshot {
    pub run: RunRow,
    pub params: Vec<(String, String)>,
    /// In the pipeline file's order.
    pub jobs: Vec<JobNode>,
}

impl RunDetailSnapshot {
    fn from_detail(d: &RunDetail) -> Self {
        let by_name: HashMap<&str, usize> = d
            .jobs
            .iter()
            .enumerate()
            .map(|(i, (j, _))| (j.job_name.as_str(), i))
            .collect();
        let jobs = d
            .spec
            .edges
            .iter()
            .enumerate()
            .map(|(i, (name, after))| {
                let kind = d.spec.spec.jobs.get(i).map(|j| j.kind.clone());
                match by_name.get(name.as_str()).map(|&k| &d.jobs[k]) {
                    Some((job, attempts)) => JobNode {
                        name: name.clone(),
                        kind: job.kind.clone(),
                        state: job.state,
                        after: after.clone(),
                        attempts: attempts
                            .iter()
                            .map(|a| AttemptRow {
                                number: a.number,
                                state: a.state,
                                worker_id: a.worker_id.clone(),
                                started_at: a.started_at,
                                finished_at: a.finished_at,
                                error: a.error.clone(),
                            })
                            .collect(),
                        started_at: job.started_at,
                        finished_at: job
                            .finished_at
                            .or(attempts.last().and_then(|a| a.finished_at)),
                        error: job.error.clone(),
                    },
                    None => JobNode {
                        name: name.clone(),
                        kind: kind.unwrap_or_default(),
                        state: JobState::Waiting,
                        after: after.clone(),
                        attempts: Vec::new(),
                        started_at: None,
                        finished_at: None,
                        error: None,
                    },
                }
            })
            .collect();
        Self {
            run: RunRow::from_model(&d.run, &d.pipeline),
            params: d.params().into_iter().collect(),
            jobs,
        }
    }
}

/// New log lines of one job of one run, with the run as it is now.
#[derive(Debug, Clone)]
pub struct LogsChunk {
    pub run_id: i64,
    pub job: String,
    /// The id the read started after (0: from the beginning).
    pub after: i64,
    pub lines: Vec<LogEntry>,
    pub detail: RunDetailSnapshot,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub liveness: Liveness,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// `(run id, job)` of each attempt it runs now.
    pub running: Vec<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub customers: Option<i64>,
    pub points: Option<i64>,
    pub run_id: Option<i64>,
}

/// Customers per segment of the latest profiles, with their as-of date.
pub type Segments = (String, Vec<(String, i64)>);
/// Customers per tenth of churn probability of the latest scores, with their as-of date.
pub type ChurnHistogram = (String, [i64; CHURN_BUCKETS]);

/// One panel of the Loyalty view: its table may not exist (an older database), its query may
/// fail on its own without the whole view failing.
#[derive(Debug, Clone, PartialEq)]
pub enum Panel<T> {
    NoTable,
    Data(T),
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoyaltySnapshot {
    pub campaigns: Panel<Vec<CampaignRow>>,
    /// `(UTC day, points earned)` for each of the last [`POINT_DAYS`] days, zeros included.
    pub points_per_day: Panel<Vec<(NaiveDate, i64)>>,
    pub tiers: Panel<Vec<(String, i64)>>,
    /// `(as of, [(segment, customers)])`; `None` before the first profile run.
    pub segments: Panel<Option<Segments>>,
    /// `(as of, customers per tenth of churn probability)`.
    pub churn: Panel<Option<ChurnHistogram>>,
}

/// What to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Pipelines,
    Runs(RunQuery),
    RunDetail(i64),
    Logs {
        run_id: i64,
        job: String,
        after: i64,
    },
    Workers,
    Loyalty,
}

#[derive(Debug, Clone)]
pub enum Snapshot {
    Pipelines(Vec<PipelineRow>),
    Runs(RunsSnapshot),
    RunDetail(Box<RunDetailSnapshot>),
    Logs(Box<LogsChunk>),
    Workers(Vec<WorkerRow>),
    Loyalty(Box<LoyaltySnapshot>),
}

/// Why a load failed: the database (the console shows a banner and retries) or the request
/// (a run that is gone, a pipeline that does not exist: a status line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadFailure {
    Database(String),
    Request(String),
}

impl From<RepoError> for LoadFailure {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Db(e) => LoadFailure::Database(e.to_string()),
            other => LoadFailure::Request(other.to_string()),
        }
    }
}

/// Loads what `request` asks for.
pub async fn load(
    db: &Db,
    lake: Option<&Lake>,
    specs: &SpecCache,
    request: &Request,
    now: DateTime<Utc>,
    lease_ttl: std::time::Duration,
) -> Result<Snapshot, LoadFailure> {
    Ok(match request {
        Request::Pipelines => Snapshot::Pipelines(pipelines(db, specs).await?),
        Request::Runs(query) => Snapshot::Runs(runs(db, query).await?),
        Request::RunDetail(id) => Snapshot::RunDetail(Box::new(RunDetailSnapshot::from_detail(
            &repo::runs::show(db, specs, *id).await?,
        ))),
        Request::Logs { run_id, job, after } => {
            Snapshot::Logs(Box::new(logs(db, specs, *run_id, job, *after).await?))
        }
        Request::Workers => Snapshot::Workers(workers(db, now, lease_ttl).await?),
        Request::Loyalty => Snapshot::Loyalty(Box::new(loyalty(db, lake, now).await?)),
    })
}

pub async fn pipelines(db: &Db, specs: &SpecCache) -> Result<Vec<PipelineRow>, RepoError> {
    let views = repo::pipelines::list(db, specs).await?;
    let mut recent = repo::console::recent_durations(db, SPARK_RUNS).await?;
    Ok(views
        .into_iter()
        .map(|v| {
            let s = &v.spec.spec;
            PipelineRow {
                name: s.name.clone(),
                cron: s.schedule.as_ref().map(|x| x.cron.clone()),
                timezone: s.schedule.as_ref().map(|x| x.timezone.clone()),
                next_fire: v.pipeline.next_fire_at,
                paused: v.pipeline.paused,
                jobs: s.jobs.len(),
                last_run: v.last_run.as_ref().map(|r| RunBrief {
                    id: r.id,
                    state: r.state,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                }),
                recent_ms: recent.remove(&v.pipeline.id).unwrap_or_default(),
            }
        })
        .collect())
}

pub async fn runs(db: &Db, query: &RunQuery) -> Result<RunsSnapshot, RepoError> {
    let mut query = query.clone();
    let mut words = std::mem::take(&mut query.words);
    // A bare word that names a pipeline narrows the query in SQL, so the filter finds that
    // pipeline's runs among all runs, not only among the latest few hundred.
    if query.pipeline.is_none()
        && let Some(pos) = words
            .iter()
            .position(|w| !w.chars().all(|c| c.is_ascii_digit()))
        && let Ok(p) = repo::pipelines::find(db, &words[pos]).await
    {
        query.pipeline = Some(p.name);
        words.remove(pos);
    }
    let rows = repo::runs::list(
        db,
        &RunFilter {
            pipeline: query.pipeline.clone(),
            state: query.state,
            limit: RUNS_LIMIT,
        },
    )
    .await?;
    let scanned = rows.len();
    let rows = rows
        .iter()
        .map(|r| RunRow::from_model(&r.run, &r.pipeline))
        .filter(|r| r.matches(&words))
        .collect();
    query.words = words;
    Ok(RunsSnapshot {
        rows,
        scanned,
        query,
    })
}

async fn logs(
    db: &Db,
    specs: &SpecCache,
    run_id: i64,
    job: &str,
    after: i64,
) -> Result<LogsChunk, RepoError> {
    let detail = RunDetailSnapshot::from_detail(&repo::runs::show(db, specs, run_id).await?);
    let lines = repo::logs::list(db, run_id, Some(job), after, LOG_PAGE).await?;
    Ok(LogsChunk {
        run_id,
        job: job.to_owned(),
        after,
        lines,
        detail,
    })
}

/// Every daemon, with its liveness at `now` (stale after `lease_ttl` without a heartbeat).
pub async fn workers(
    db: &Db,
    now: DateTime<Utc>,
    lease_ttl: std::time::Duration,
) -> Result<Vec<WorkerRow>, RepoError> {
    let workers = repo::workers::list(db).await?;
    let mut running: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for r in repo::console::running_jobs(db).await? {
        running
            .entry(r.worker_id)
            .or_default()
            .push((r.run_id, r.job));
    }
    Ok(workers
        .into_iter()
        .map(|w| WorkerRow {
            running: running.remove(&w.id).unwrap_or_default(),
            id: w.id,
            host: w.host,
            pid: w.pid,
            liveness: liveness(
                w.state == WorkerState::Stopped,
                w.heartbeat_at,
                now,
                lease_ttl,
            ),
            started_at: w.started_at,
            heartbeat_at: w.heartbeat_at,
        })
        .collect())
}

/// Tables each Loyalty panel reads (the segment and churn panels read the lake).
const LOYALTY_TABLES: [&str; 3] = ["campaigns", "point_ledger", "customer_tiers"];

fn panel<T, E: std::fmt::Display>(present: bool, result: Result<T, E>) -> Panel<T> {
    match (present, result) {
        (false, _) => Panel::NoTable,
        (true, Ok(v)) => Panel::Data(v),
        (true, Err(e)) => Panel::Error(e.to_string()),
    }
}

pub async fn loyalty(
    db: &Db,
    lake: Option<&Lake>,
    now: DateTime<Utc>,
) -> Result<LoyaltySnapshot, RepoError> {
    // This one failing means the database is unreachable: the whole load fails (banner).
    let tables = repo::console::existing_tables(db, &LOYALTY_TABLES).await?;
    let has = |t: &str| tables.contains(t);
    let campaigns = if has("campaigns") {
        repo::loyalty::campaigns(db).await.map(|all| {
            all.into_iter()
                .map(|c| CampaignRow {
                    id: c.id,
                    name: c.name,
                    state: c.state,
                    customers: c.customers,
                    points: c.points,
                    run_id: c.run_id,
                })
                .collect()
        })
    } else {
        Ok(Vec::new())
    };
    let today = now.date_naive();
    let first = today - chrono::Duration::days(POINT_DAYS - 1);
    let since = first
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp());
    let points = if has("point_ledger") {
        repo::console::points_per_day(db, since)
            .await
            .map(|rows| fill_days(first, POINT_DAYS, &rows))
    } else {
        Ok(Vec::new())
    };
    let tiers = if has("customer_tiers") {
        repo::console::tier_counts(db).await
    } else {
        Ok(Vec::new())
    };
    let segments = match lake {
        Some(lake) => crate::lake::profiles::segment_sizes(lake).await,
        None => Ok(None),
    };
    let churn = match lake {
        Some(lake) => crate::lake::scores::churn_histogram(lake, CHURN_BUCKETS)
            .await
            .map(|found| {
                found.map(|(as_of, counts)| {
                    let mut buckets = [0i64; CHURN_BUCKETS];
                    for (slot, n) in buckets.iter_mut().zip(counts) {
                        *slot = n;
                    }
                    (as_of, buckets)
                })
            }),
        None => Ok(None),
    };
    Ok(LoyaltySnapshot {
        campaigns: panel(has("campaigns"), campaigns),
        points_per_day: panel(has("point_ledger"), points),
        tiers: panel(has("customer_tiers"), tiers),
        segments: panel(lake.is_some(), segments),
        churn: panel(lake.is_some(), churn),
    })
}

/// Every day from `first` on for `days` days, with the points of `rows` (day number since the
/// epoch, points) and zero elsewhere.
fn fill_days(first: NaiveDate, days: i64, rows: &[(i64, i64)]) -> Vec<(NaiveDate, i64)> {
    let by_day: HashMap<i64, i64> = rows.iter().copied().collect();
    (0..days)
        .map(|i| {
            let d = first + chrono::Duration::days(i);
            let n = d
                .and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp() / 86_400);
            (d, by_day.get(&n).copied().unwrap_or(0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_words_split_into_sql_and_memory_parts() {
        let q = RunQuery::parse("failed pipeline=nightly manual");
        assert_eq!(q.state, Some(RunState::Failed));
        assert_eq!(q.pipeline.as_deref(), Some("nightly"));
        assert_eq!(q.words, ["manual"]);
        assert_eq!(RunQuery::parse("  "), RunQuery::default());
        assert_eq!(
            RunQuery::parse("state=running").state,
            Some(RunState::Running)
        );
    }

    #[test]
    fn days_without_points_are_zero() {
        let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let day = first.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() / 86_400;
        let filled = fill_days(first, 3, &[(day + 1, 40)]);
        assert_eq!(
            filled.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
            [0, 40, 0]
        );
    }
}
