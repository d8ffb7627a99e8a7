//! Leases: this worker's heartbeat, and the reaper that gives back the jobs of workers that
//! stopped heartbeating.

use std::sync::Arc;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shared, StopReason};
use crate::db::repo;

/// How many reaper rounds between sweeps for runs left `running` with nothing to do.
const SETTLE_EVERY: u32 = 5;

/// Renews this worker's leases until the daemon has drained.
pub(super) async fn heartbeat(
    shared: Arc<Shared>,
    drained: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(shared.settings.heartbeat_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = drained.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = repo::workers::touch(&shared.db, &shared.worker_id).await {
            warn!(error = %e, "worker heartbeat failed");
        }
        let ids = shared.running_ids();
        if ids.is_empty() {
            continue;
        }
        match repo::dispatch::heartbeat(&shared.db, &ids, shared.settings.lease_ttl).await {
            Ok(lost) if !lost.is_empty() => {
                warn!(attempts = ?lost, "lost the lease of running attempts; stopping them");
                shared.stop_where(StopReason::LeaseLost, |id, _| lost.contains(&id));
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "lease heartbeat failed; jobs keep running"),
        }
    }
}

/// Marks attempts with expired leases lost and retries their jobs.
pub(super) async fn reap(shared: Arc<Shared>, stop: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(shared.settings.reaper_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut round = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        round = round.wrapping_add(1);
        match reap_once(&shared).await {
            Ok(0) => {}
            Ok(n) => {
                info!(attempts = n, "reaped attempts whose lease expired");
                shared.kick();
            }
            Err(e) => warn!(error = %e, "reaper round failed"),
        }
        if let Err(e) = super::notify::sla_misses(&shared).await {
            warn!(error = %e, "checking SLAs failed");
        }
        if round.is_multiple_of(SETTLE_EVERY) {
            match repo::runs::settle_stuck(&shared.db, &shared.specs).await {
                Ok(0) => {}
                Ok(n) => info!(runs = n, "finished runs that had nothing left to do"),
                Err(e) => warn!(error = %e, "settling runs failed"),
            }
        }
    }
}

async fn reap_once(shared: &Shared) -> crate::db::Result<usize> {
    // This worker's own running attempts are alive whatever their lease says (a long write by
    // a job may have delayed the heartbeat); only other workers' attempts are reaped.
    let mine = shared.running_ids();
    let mut expired = repo::dispatch::expired(&shared.db, 500).await?;
    expired.retain(|f| !mine.contains(&f.attempt_id));
    if expired.is_empty() {
        return Ok(0);
    }
    repo::dispatch::finish(&shared.db, &shared.specs, shared.policy(), &expired).await?;
    Ok(expired.len())
}
