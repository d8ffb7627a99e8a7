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
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
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
    jobs::{
        Registry,
        command::host::{self, this_host},
    },
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
    /// Attempts that ended here whose outcome the recorder has not written yet. They are
    /// still this worker's: their leases are renewed and the reaper leaves them alone, so a
    /// result kept through a database outage longer than the lease is written when the
    /// database returns instead of the job being taken for lost and run again.
    recording: Mutex<HashSet<i64>>,
    records: mpsc::UnboundedSender<recorder::Record>,
    /// Cancelled when running jobs must stop (after the shutdown grace).
    hard_stop: CancellationToken,
    metrics: metrics::Metrics,
    /// Failure notifications for the notifier task.
    notifications: mpsc::Sender<notify::Notice>,
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

    /// The attempts this worker holds: running, or ended with the outcome not yet written.
    fn held_ids(&self) -> Vec<i64> {
        // Read `running` first: an attempt enters `recording` before it leaves `running`.
        let mut ids = self.running_ids();
        if let Ok(recording) = self.recording.lock() {
            ids.extend(recording.iter().copied());
        }
        ids.sort_unstable();
        ids.dedup();
        ids
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
    /// Whether to serve `daemon.http_addr`. A daemon that runs inside another command for
    /// the length of one run (the demo, a campaign launch) does not: the address belongs to
    /// the long-running daemons.
    pub serve_http: bool,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        Self {
            worker_id: None,
            registry: Registry::builtin(),
            serve_http: true,
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
    // Before anything is registered: a daemon that cannot have its address stops here, rather
    // than run without /healthz while the probe answers for another daemon.
    let listener = if options.serve_http {
        http::bind(&settings.daemon.http_addr).await?
    } else {
        None
    };
    crate::db::migrate(&db)
        .await
        .context("applying migrations")?;
    // A database from before the lake: its raw rows move into the lake before any job runs.
    if let Ok(lake) = crate::lake::Lake::open(settings, db.clone()) {
        for (entity, rows) in crate::lake::legacy::import(&lake)
            .await
            .context("moving the legacy raw tables into the lake")?
        {
            tracing::info!(%entity, rows, "moved legacy rows into the lake");
        }
    }
    let worker_id = options
        .worker_id
        .or_else(|| settings.daemon.worker_id.clone())
        .unwrap_or_else(default_worker_id);
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    repo::workers::register(
        &db,
        &worker_id,
        repo::workers::Process {
            host: &host,
            pid: std::process::id(),
            host_key: this_host().as_str(),
            start: host::start_of(std::process::id()),
        },
    )
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
        crate::db::connect_sized(
            &settings.database.url,
            settings.database.max_connections,
            4,
            settings.database.connect_timeout,
        )
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
        recording: Mutex::new(HashSet::new()),
        records: records_tx,
        hard_stop: CancellationToken::new(),
        metrics: metrics::Metrics::default(),
        notifications: notify_tx,
    });

    // Attempts of daemons that died on this host (or under this worker id): their process
    // groups are ended and the jobs retried now, not when their leases expire.
    let orphans = reaper::dead_holders(&shared).await?;
    if !orphans.is_empty() {
        let report = repo::dispatch::finish(&db, &shared.specs, shared.policy(), &orphans).await?;
        notify::runs_failed(&shared, &report);
        warn!(
            count = orphans.len(),
            retried = report.retried,
            "recovered the attempts of daemons that died on this host"
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
        Box::pin(http::serve(shared.clone(), listener, drained.clone())),
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

/// Longest wait between tries of a failing database step.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// While a database step keeps failing, how often its warning is repeated.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Waits and warnings for a loop whose database step keeps failing (the database is away).
/// The wait doubles from the loop's own interval up to [`MAX_BACKOFF`], so the database is not
/// hammered while it is away and the step is retried within seconds once it is back. The
/// warning is logged at the first failure and then at most every [`WARN_EVERY`], so an
/// outage of an hour is a few lines per loop rather than one per poll; an info line says
/// when the step works again.
struct Backoff {
    what: &'static str,
    base: Duration,
    max: Duration,
    delay: Duration,
    failures: u32,
    since: Option<Instant>,
    warned: Option<Instant>,
}

impl Backoff {
    fn new(what: &'static str, base: Duration) -> Self {
        Self {
            what,
            base,
            max: MAX_BACKOFF.max(base),
            delay: base,
            failures: 0,
            since: None,
            warned: None,
        }
    }

    /// For a loop that keeps its interval while failing (the step is cheap, or must be
    /// retried as soon as the database is back): only the warnings back off.
    fn steady(what: &'static str, interval: Duration) -> Self {
        Self {
            max: interval,
            ..Self::new(what, interval)
        }
    }

    /// Notes a failure, warns if due, and returns how long to wait before the next try.
    fn failed(&mut self, error: &dyn std::fmt::Display) -> Duration {
        self.failures += 1;
        self.since.get_or_insert_with(Instant::now);
        let wait = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        if self.warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.warned = Some(Instant::now());
            warn!(error = %error, what = self.what, failures = self.failures, retry_in = ?wait, "database step failed");
        }
        wait
    }

    /// Notes a success; says so if the step had been failing.
    fn succeeded(&mut self) {
        if let Some(since) = self.since.take() {
            info!(what = self.what, failures = self.failures, failing_for = ?since.elapsed(), "database step works again");
        }
        self.failures = 0;
        self.delay = self.base;
        self.warned = None;
    }
}

/// Retries a database step forever while the database is unreachable, a few times for other
/// errors; returns the last error if it keeps failing for another reason, or once `stop` is
/// cancelled.
async fn with_db_retry<T, F, Fut>(
    what: &'static str,
    stop: &CancellationToken,
    mut step: F,
) -> Result<T, crate::db::RepoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::db::RepoError>>,
{
    let mut backoff = Backoff::new(what, Duration::from_millis(100));
    let mut other_failures = 0;
    loop {
        match step().await {
            Ok(v) => {
                backoff.succeeded();
                return Ok(v);
            }
            Err(e) => {
                if !e.is_unreachable() {
                    other_failures += 1;
                    if other_failures >= 3 {
                        return Err(e);
                    }
                }
                let delay = backoff.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Err(e),
                }
            }
        }
    }
}
