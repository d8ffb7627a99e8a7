//! The dispatcher: starts queued runs, forwards cancel requests to local attempts, and claims
//! ready jobs up to `scheduler.max_concurrency`, each run as a task.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

use super::{Backoff, Shared, StopReason, execute};
use crate::db::repo;

pub(super) async fn run(
    shared: Arc<Shared>,
    attempts: TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(shared.settings.max_concurrency));
    let mut last_housekeeping = Instant::now() - shared.settings.poll_interval;
    // While the database is away claims back off (a wake-up still cuts the wait short: the
    // recorder's first write after an outage brings the dispatcher back at once).
    let poll = shared.settings.poll_interval;
    let mut claiming = Backoff::new("claiming jobs", poll);
    let mut housekeeping_trouble = Backoff::steady("dispatcher housekeeping", poll);
    loop {
        shared
            .metrics
            .loop_turned(crate::db::now().timestamp_millis());
        let due = last_housekeeping.elapsed() >= shared.settings.poll_interval
            || shared.housekeeping.swap(false, Ordering::AcqRel);
        if due {
            last_housekeeping = Instant::now();
            match housekeeping(&shared).await {
                Ok(()) => housekeeping_trouble.succeeded(),
                // Retried at the next turn, paced by the claims' backoff.
                Err(e) => {
                    housekeeping_trouble.failed(&e);
                }
            }
        }
        let free = permits.available_permits();
        if free > 0 {
            let claim_started = Instant::now();
            let claimed = repo::dispatch::claim(
                &shared.db,
                &shared.worker_id,
                free,
                shared.settings.lease_ttl,
            )
            .await;
            shared.metrics.claimed(claim_started.elapsed());
            match claimed {
                Ok(claimed) => {
                    claiming.succeeded();
                    if !claimed.is_empty() {
                        debug!(count = claimed.len(), "claimed jobs");
                    }
                    let full = claimed.len() == free;
                    for job in claimed {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            // Cannot happen: only this loop takes permits. Hand the job back
                            // through its lease rather than overrun the limit.
                            warn!(attempt = job.attempt_id, "no permit for a claimed job");
                            continue;
                        };
                        attempts.spawn(execute::attempt(shared.clone(), job, permit));
                    }
                    if !full {
                        // Nothing more is ready now; wait for a wake-up or the next poll.
                        wait(&shared, &stop, poll).await;
                    }
                }
                Err(e) => {
                    let delay = claiming.failed(&e);
                    wait(&shared, &stop, delay).await;
                }
            }
        } else {
            wait(&shared, &stop, poll).await;
        }
        if stop.is_cancelled() {
            return Ok(());
        }
    }
}

async fn wait(shared: &Shared, stop: &CancellationToken, at_most: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = shared.wake.notified() => {}
        _ = tokio::time::sleep(at_most) => {}
    }
}

async fn housekeeping(shared: &Shared) -> crate::db::Result {
    let started = repo::runs::start_queued(&shared.db, &shared.specs).await?;
    if !started.is_empty() {
        debug!(runs = ?started, "started queued runs");
    }
    let cancelled = repo::runs::cancel_requested(&shared.db).await?;
    if !cancelled.is_empty() {
        let n = shared.stop_where(StopReason::RunCancelled, |_, a| {
            cancelled.contains(&a.run_id)
        });
        if n > 0 {
            debug!(attempts = n, "stopping attempts of cancelled runs");
        }
    }
    Ok(())
}
