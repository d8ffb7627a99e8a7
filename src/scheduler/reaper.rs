//! Leases: this worker's heartbeat, and the reaper that gives back the jobs of workers that
//! stopped heartbeating.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Backoff, Shared, StopReason};
use crate::{
    db::{
        RepoError, now,
        repo::{self, dispatch::Finished},
    },
    jobs::command::host::{self, Group, this_host},
    pipeline::recovery,
};

/// How long ending a lost attempt's process group may take before the attempt is left for a
/// later round (a process stuck in the kernel does not die at once even from SIGKILL).
const END_GROUP_PATIENCE: Duration = Duration::from_secs(10);

/// How many reaper rounds between sweeps for runs left `running` with nothing to do.
const SETTLE_EVERY: u32 = 5;

/// Renews this worker's leases (of running attempts, and of ended ones whose outcome is not
/// written yet) until the daemon has drained. While the database is away it keeps its
/// interval (only its warnings back off), so leases are renewed as soon as it returns.
pub(super) async fn heartbeat(
    shared: Arc<Shared>,
    drained: CancellationToken,
) -> anyhow::Result<()> {
    let interval = shared.settings.heartbeat_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut trouble = Backoff::steady("heartbeat (jobs keep running)", interval);
    loop {
        tokio::select! {
            _ = drained.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        // A database that refuses connections raises no error before the pool's acquire
        // timeout (sqlx retries the connection meanwhile), so a heartbeat not answered within
        // its interval is reported as a failure; it is still awaited, as a slow database is
        // no reason to give up a renewal.
        let beat = beat(&shared);
        tokio::pin!(beat);
        let errors = match tokio::time::timeout(interval, &mut beat).await {
            Ok(errors) => errors,
            Err(_) => {
                trouble.failed(&format!("the database did not answer within {interval:?}"));
                beat.await
            }
        };
        if errors.is_empty() {
            trouble.succeeded();
        }
        for e in &errors {
            trouble.failed(e);
        }
    }
}

/// Renews this worker's row and its attempts' leases, and stops running attempts whose lease
/// another worker took; returns what failed.
async fn beat(shared: &Shared) -> Vec<RepoError> {
    let mut errors = Vec::new();
    if let Err(e) = repo::workers::touch(&shared.db, &shared.worker_id).await {
        errors.push(e);
    }
    let ids = shared.held_ids();
    if ids.is_empty() {
        return errors;
    }
    match repo::dispatch::heartbeat(&shared.db, &ids, shared.settings.lease_ttl).await {
        Ok(lost) => {
            // Ended attempts leave the list once their outcome is written; only running ones
            // can have lost their lease.
            let running = shared.running_ids();
            let lost: Vec<i64> = lost.into_iter().filter(|id| running.contains(id)).collect();
            if !lost.is_empty() {
                warn!(attempts = ?lost, "lost the lease of running attempts; stopping them");
                shared.stop_where(StopReason::LeaseLost, |id, _| lost.contains(&id));
            }
        }
        Err(e) => errors.push(e),
    }
    errors
}

/// Marks attempts with expired leases lost and retries their jobs.
///
/// While the database is away no worker can renew its leases, so when it returns every lease
/// may have expired without any worker having died. After a round that could not reach the
/// database the reaper reaps nothing for one `lease_ttl` (it still checks SLAs and settles
/// runs), which gives live workers' heartbeats (every `heartbeat_interval`, shorter than the
/// lease) time to renew theirs first.
pub(super) async fn reap(shared: Arc<Shared>, stop: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(shared.settings.reaper_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut trouble = Backoff::steady("reaper round", shared.settings.reaper_interval);
    let mut reap_after = Instant::now();
    let mut round = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        round = round.wrapping_add(1);
        let (mut failed, mut unreachable) = (false, false);
        if Instant::now() >= reap_after {
            match reap_once(&shared).await {
                Ok(0) => {}
                Ok(n) => {
                    info!(attempts = n, "reaped attempts whose lease expired");
                    shared.kick();
                }
                Err(e) => {
                    trouble.failed(&e);
                    failed = true;
                    unreachable |= e.is_unreachable();
                }
            }
        }
        if let Err(e) = super::notify::sla_misses(&shared).await {
            trouble.failed(&e);
            failed = true;
            unreachable |= e.is_unreachable();
        }
        if round.is_multiple_of(SETTLE_EVERY) {
            match repo::runs::settle_stuck(&shared.db, &shared.specs).await {
                Ok(0) => {}
                Ok(n) => info!(runs = n, "finished runs that had nothing left to do"),
                Err(e) => {
                    trouble.failed(&e);
                    failed = true;
                    unreachable |= e.is_unreachable();
                }
            }
        }
        if unreachable {
            reap_after = Instant::now() + shared.settings.lease_ttl;
        }
        if !failed {
            trouble.succeeded();
        }
    }
}

async fn reap_once(shared: &Shared) -> crate::db::Result<usize> {
    // This worker's own attempts are alive whatever their lease says (a long write by a job
    // may have delayed the heartbeat; an outage may have kept an ended one's outcome from
    // being written); only other workers' attempts are reaped.
    let mine = shared.held_ids();
    let mut expired = repo::dispatch::expired(&shared.db, 500).await?;
    expired.retain(|f| !mine.contains(&f.attempt_id));
    if expired.is_empty() {
        return Ok(0);
    }
    // A retry must not run beside what is left of the lost attempt: its process group, if it
    // is on this host, is ended first (elsewhere its daemon's supervisor ends it, or the
    // daemon starting there next does).
    let groups = repo::processes::groups_of(
        &shared.db,
        &expired.iter().map(|f| f.attempt_id).collect::<Vec<_>>(),
    )
    .await?;
    let here = this_host();
    let mut ended = Vec::with_capacity(expired.len());
    for f in expired {
        let group = groups
            .get(&f.attempt_id)
            .filter(|(h, _, _)| here.is(Some(h)))
            .map(|&(_, pgid, start)| Group { pgid, start });
        if end_group(group).await {
            ended.push(f);
        }
    }
    let expired = ended;
    if expired.is_empty() {
        return Ok(0);
    }
    let report =
        repo::dispatch::finish(&shared.db, &shared.specs, shared.policy(), &expired).await?;
    super::notify::runs_failed(shared, &report);
    Ok(expired.len())
}

/// Ends `group` (if any) off the async runtime; returns whether nothing of it runs any more.
async fn end_group(group: Option<Group>) -> bool {
    let Some(group) = group else {
        return true;
    };
    let gone = tokio::task::spawn_blocking(move || group.end(END_GROUP_PATIENCE))
        .await
        .unwrap_or(false);
    if !gone {
        warn!(
            pgid = group.pgid,
            "the process group of a lost attempt did not end; its job is retried once it has"
        );
    }
    gone
}

/// At start-up: the running attempts whose daemon is dead (this worker id's previous
/// process, or a daemon on this host whose process is gone), with their process groups on
/// this host ended, as `Lost` ends to record. Attempts whose group would not end are left to
/// the reaper.
pub(super) async fn dead_holders(shared: &Shared) -> crate::db::Result<Vec<Finished>> {
    let here = this_host().as_str();
    let held = repo::processes::held_here(&shared.db, &shared.worker_id, here).await?;
    let mut lost = Vec::new();
    for attempt in held {
        if !recovery::holder_is_dead(&attempt, &shared.worker_id, here, host::still_running) {
            continue;
        }
        let group = recovery::group_here(&attempt, here).map(|(pgid, start)| Group { pgid, start });
        if end_group(group).await {
            lost.push((attempt.attempt_id, attempt.job_run_id, attempt.number));
        }
    }
    Ok(repo::dispatch::lost(lost, now()))
}
