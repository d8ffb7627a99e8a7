//! The daemon: cron triggers, the dispatcher that claims and runs ready jobs, the recorder
//! that writes their outcomes, lease heartbeats, the reaper, and shutdown.
//!
//! ```text
//! triggers ──(runs)──▶ database ◀──(claim / finish)── dispatcher ──▶ attempts (tokio tasks)
//!                         ▲                                              │
//!                         └──────────── recorder ◀──(outcomes)───────────┘
//! ```
//!
//! Everything the daemon knows lives in the database; this process only holds the attempts
//! it is running. Shutdown is a parameter: `run` returns once `shutdown` is cancelled and
//! running jobs have finished or been cancelled after `scheduler.shutdown_grace`.

mod dispatch;
mod execute;
mod http;
mod listen;
pub mod metrics;
mod notify;
mod reaper;
mod recorder;
mod triggers;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    config::{SchedulerSettings, Settings},
    db::{
        Db,
        repo::{self, dispatch::RetryPolicy, pipelines::SpecCache},
    },
    jobs::Registry,
};

type Service = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// After the grace period and a cancel, how long jobs get to clean up before the daemon
/// exits without them (their leases then expire and another daemon retries them).
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Why a running attempt was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    RunCancelled,
    LeaseLost,
}

struct RunningAttempt {
    run_id: i64,
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

/// What every subsystem of one daemon shares.
struct Shared {
    db: Db,
    /// The connection pool jobs use (on SQLite a separate one; see `db::connect_sized`).
    jobs_db: Db,
    settings: SchedulerSettings,
    all_settings: Arc<Settings>,
    worker_id: String,
    specs: SpecCache,
    registry: Registry,
    http: reqwest::Client,
    /// Wakes the dispatcher: a job finished, a permit freed, something became ready.
    wake: Notify,
    /// Asks the dispatcher to look for queued runs and cancel requests now, not at the next
    /// poll.
    housekeeping: AtomicBool,
    running: Mutex<HashMap<i64, RunningAttempt>>,
    records: mpsc::UnboundedSender<recorder::Record>,
    /// Cancelled when running jobs must stop (after the shutdown grace).
    hard_stop: CancellationToken,
    metrics: metrics::Metrics,
    /// Failure notifications for the notifier task.
    notifications: mpsc::Sender<serde_json::Value>,
}

impl Shared {
    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_lost_attempts: self.settings.max_lost_attempts,
            max_backoff: self.settings.max_backoff,
        }
    }

    fn kick(&self) {
        self.housekeeping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn running_ids(&self) -> Vec<i64> {
        self.running
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Stops local attempts matching `pick`, recording why.
    fn stop_where(&self, reason: StopReason, pick: impl Fn(i64, &RunningAttempt) -> bool) -> usize {
        let Ok(map) = self.running.lock() else {
            return 0;
        };
        let mut n = 0;
        for (&id, attempt) in map.iter() {
            if pick(id, attempt) && !attempt.token.is_cancelled() {
                if let Ok(mut r) = attempt.reason.lock() {
                    r.get_or_insert(reason);
                }
                attempt.token.cancel();
                n += 1;
            }
        }
        n
    }
}

/// Options a caller may set beyond the settings file.
#[derive(Clone)]
pub struct DaemonOptions {
    pub worker_id: Option<String>,
    pub registry: Registry,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        Self {
            worker_id: None,
            registry: Registry::builtin(),
        }
    }
}

pub fn default_worker_id() -> String {
    format!(
        "{}-{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}

/// Runs a daemon on `db` until `shutdown` is cancelled.
pub async fn run(
    settings: &Settings,
    db: Db,
    options: DaemonOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    crate::db::migrate(&db)
        .await
        .context("applying migrations")?;
    let worker_id = options
        .worker_id
        .or_else(|| settings.daemon.worker_id.clone())
        .unwrap_or_else(default_worker_id);
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    repo::workers::register(&db, &worker_id, &host, std::process::id())
        .await
        .context("registering this worker")?;
    repo::dispatch::sync_pools(&db, &settings.pools)
        .await
        .context("storing the pool sizes")?;

    let (records_tx, records_rx) = mpsc::unbounded_channel();
    let (notify_tx, notify_rx) = notify::channel();
    let http = reqwest::Client::builder()
        .user_agent(concat!("patron/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let jobs_db = if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        crate::db::connect_sized(&settings.database.url, settings.database.max_connections, 4)
            .await
            .context("opening the jobs' database pool")?
    } else {
        db.clone()
    };
    let shared = Arc::new(Shared {
        db: db.clone(),
        jobs_db,
        settings: settings.scheduler.clone(),
        all_settings: Arc::new(settings.clone()),
        worker_id: worker_id.clone(),
        specs: SpecCache::default(),
        registry: options.registry,
        http,
        wake: Notify::new(),
        housekeeping: AtomicBool::new(true),
        running: Mutex::new(HashMap::new()),
        records: records_tx,
        hard_stop: CancellationToken::new(),
        metrics: metrics::Metrics::default(),
        notifications: notify_tx,
    });

    // Attempts recorded under this worker id belong to a previous process that died.
    let orphans = repo::dispatch::orphans_of(&db, &worker_id).await?;
    if !orphans.is_empty() {
        let report = repo::dispatch::finish(&db, &shared.specs, shared.policy(), &orphans).await?;
        warn!(
            count = orphans.len(),
            retried = report.retried,
            "recovered attempts of a previous process with this worker id"
        );
    }
    info!(
        worker_id,
        max_concurrency = settings.scheduler.max_concurrency,
        "daemon started"
    );

    let attempts = TaskTracker::new();
    let drained = CancellationToken::new();
    let mut services = tokio::task::JoinSet::new();
    let named = |name: &'static str, fut| async move { (name, fut.await) };
    services.spawn(named(
        "recorder",
        Box::pin(recorder::record(
            shared.clone(),
            records_rx,
            drained.clone(),
        )) as Service,
    ));
    services.spawn(named(
        "heartbeat",
        Box::pin(reaper::heartbeat(shared.clone(), drained.clone())),
    ));
    let loops = shutdown.child_token();
    services.spawn(named(
        "reaper",
        Box::pin(reaper::reap(shared.clone(), loops.clone())),
    ));
    services.spawn(named(
        "triggers",
        Box::pin(triggers::run(shared.clone(), loops.clone())),
    ));
    services.spawn(named(
        "wake-up listener",
        Box::pin(listen::run(shared.clone(), loops.clone())),
    ));
    services.spawn(named(
        "notifier",
        Box::pin(notify::run(shared.clone(), notify_rx, drained.clone())),
    ));
    services.spawn(named(
        "http endpoint",
        Box::pin(http::serve(shared.clone(), drained.clone())),
    ));
    services.spawn(named(
        "dispatcher",
        Box::pin(dispatch::run(
            shared.clone(),
            attempts.clone(),
            loops.clone(),
        )),
    ));

    // Wait for shutdown, or for a subsystem to fail (which stops the others).
    let mut failure = None;
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => {}
        Some(done) = services.join_next() => {
            failure = (!shutdown.is_cancelled()).then(|| match done {
                Ok((name, Ok(()))) => anyhow::anyhow!("the {name} stopped unexpectedly"),
                Ok((name, Err(e))) => e.context(format!("the {name} failed")),
                Err(e) => anyhow::anyhow!("a scheduler subsystem panicked: {e}"),
            });
        }
    }
    loops.cancel();
    info!(running = shared.running_ids().len(), grace = ?settings.scheduler.shutdown_grace, "stopping: no new jobs are claimed");

    attempts.close();
    if tokio::time::timeout(settings.scheduler.shutdown_grace, attempts.wait())
        .await
        .is_err()
    {
        let n = shared.running_ids().len();
        warn!(
            running = n,
            "shutdown grace is over; cancelling running jobs"
        );
        shared.hard_stop.cancel();
        if tokio::time::timeout(CANCEL_GRACE, attempts.wait())
            .await
            .is_err()
        {
            warn!(
                abandoned = shared.running_ids().len(),
                "jobs did not stop; their leases will expire and they will be retried"
            );
        }
    }
    drained.cancel();
    while let Some(done) = services.join_next().await {
        match done {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => {
                warn!(error = %e, name, "subsystem ended with an error during shutdown")
            }
            Err(e) => warn!(error = %e, "subsystem panicked during shutdown"),
        }
    }
    if let Err(e) = repo::workers::stop(&db, &worker_id).await {
        warn!(error = %e, "could not mark this worker stopped");
    }
    info!(worker_id, "daemon stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Retries a database step forever while the database is unreachable, a few times for other
/// errors; returns the last error if it keeps failing for another reason.
async fn with_db_retry<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut step: F,
) -> Result<T, crate::db::RepoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::db::RepoError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut other_failures = 0;
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let connection = matches!(
                    &e,
                    crate::db::RepoError::Db(
                        sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
                    )
                );
                if !connection {
                    other_failures += 1;
                    if other_failures >= 3 {
                        return Err(e);
                    }
                }
                warn!(error = %e, what, retry_in = ?delay, "database step failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Err(e),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
