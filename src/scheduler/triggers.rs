//! Cron triggers. tokio-cron-scheduler is the timer; the fire instants come from
//! `pipeline::Schedule` (DST-correct in the pipeline's zone) and each is scheduled as a
//! one-shot job, then stored in UTC as the pipeline's `next_fire_at`. tokio-cron-scheduler's
//! own cron jobs are not used because they freeze a job's UTC offset when created and would
//! drift by an hour across a DST change (DEPENDENCIES.md).
//!
//! Every daemon plans every schedule; the unique run key (the tick's UTC instant) makes the
//! run once however many daemons fire it.

use std::{collections::HashMap, sync::Arc, time::Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{Backoff, Shared};
use crate::{
    db::{
        entities::Trigger,
        repo::{
            self,
            pipelines::PipelineView,
            runs::{NewRun, tick_key},
        },
    },
    pipeline::Schedule,
};

/// A one-shot timer went off.
#[derive(Debug, Clone)]
struct Fire {
    pipeline_id: i64,
    version_id: i64,
    at: DateTime<Utc>,
}

struct Planned {
    version_id: i64,
    at: DateTime<Utc>,
    timer: Uuid,
}

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) -> anyhow::Result<()> {
    let mut timers = JobScheduler::new()
        .await
        .context("starting the cron timer")?;
    timers.start().await.context("starting the cron timer")?;
    let (fire_tx, mut fire_rx) = mpsc::unbounded_channel::<Fire>();
    let mut planned: HashMap<i64, Planned> = HashMap::new();
    let mut fingerprint = None;
    let mut reload = tokio::time::interval(shared.settings.reload_interval);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Only the warnings back off: a reload is one cheap query per `reload_interval`.
    let mut trouble = Backoff::steady(
        "checking for pipeline changes",
        shared.settings.reload_interval,
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = reload.tick() => {
                match repo::pipelines::fingerprint(&shared.db).await {
                    Ok(current) if fingerprint.as_ref() != Some(&current) => {
                        trouble.succeeded();
                        match sync(&shared, &timers, &fire_tx, &mut planned).await {
                            Ok(()) => fingerprint = Some(current),
                            Err(e) => {
                                trouble.failed(&e);
                            }
                        }
                    }
                    Ok(_) => trouble.succeeded(),
                    Err(e) => {
                        trouble.failed(&e);
                    }
                }
            }
            Some(fire) = fire_rx.recv() => {
                if let Err(e) = on_fire(&shared, &timers, &fire_tx, &mut planned, fire.clone()).await {
                    warn!(error = %e, pipeline_id = fire.pipeline_id, "planning a cron run failed; retrying at the next reload");
                    planned.remove(&fire.pipeline_id);
                    fingerprint = None;
                }
            }
        }
    }
    // Our own shutdown sequence owns signals; this only stops the timer loop.
    if let Err(e) = timers.shutdown().await {
        debug!(error = %e, "cron timer shutdown");
    }
    Ok(())
}

/// Brings the timers in line with the applied, unpaused, scheduled pipelines.
async fn sync(
    shared: &Shared,
    timers: &JobScheduler,
    fire_tx: &mpsc::UnboundedSender<Fire>,
    planned: &mut HashMap<i64, Planned>,
) -> anyhow::Result<()> {
    let views = repo::pipelines::list_for_triggers(&shared.db, &shared.specs).await?;
    let active: HashMap<i64, &PipelineView> = views
        .iter()
        .filter(|v| !v.pipeline.paused && v.spec.spec.schedule.is_some())
        .map(|v| (v.pipeline.id, v))
        .collect();
    let gone: Vec<i64> = planned
        .iter()
        .filter(|(id, p)| active.get(id).is_none_or(|v| v.version.id != p.version_id))
        .map(|(id, _)| *id)
        .collect();
    for id in gone {
        if let Some(p) = planned.remove(&id) {
            let _ = timers.remove(&p.timer).await;
        }
    }
    for (id, view) in active {
        if planned.contains_key(&id) {
            continue;
        }
        let next = plan(shared, view, view.pipeline.next_fire_at).await?;
        if let Some(next) = next {
            let timer = arm(timers, fire_tx, id, view.version.id, next).await?;
            planned.insert(
                id,
                Planned {
                    version_id: view.version.id,
                    at: next,
                    timer,
                },
            );
        }
    }
    Ok(())
}

/// Works out the next tick after `resume_from` (the stored next fire time, if any), creating
/// runs for ticks missed while no daemon was up as `catchup` says, and stores the result.
async fn plan(
    shared: &Shared,
    view: &PipelineView,
    resume_from: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let spec = &view.spec.spec;
    let Some(schedule_spec) = &spec.schedule else {
        return Ok(None);
    };
    let schedule = schedule_spec
        .compile()
        .map_err(|e| anyhow::anyhow!("pipeline {}: {e}", spec.name))?;
    let now = Utc::now();
    if let Some(at) = resume_from
        && at <= now
    {
        let cap = shared.settings.max_catchup_runs.max(1) as usize;
        let chosen = missed_ticks(&schedule, at, now, spec.catchup, cap);
        if spec.catchup && chosen.len() == cap {
            warn!(pipeline = %spec.name, planned = cap, "catching up at most scheduler.max_catchup_runs missed ticks (the latest ones)");
        }
        for tick in &chosen {
            create_tick_run(shared, view, *tick).await?;
        }
        if !chosen.is_empty() {
            info!(pipeline = %spec.name, runs = chosen.len(), catchup = spec.catchup, "planned runs for missed ticks");
        }
    }
    let next = next_tick(&schedule, now);
    repo::pipelines::set_next_fire(&shared.db, view.pipeline.id, next).await?;
    Ok(next)
}

fn next_tick(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.next_after(now)
}

/// The ticks to run after downtime, given the first missed one (`at`): with `catchup`, the
/// latest `cap` ticks in `[at, now]`; without, only the latest.
fn missed_ticks(
    schedule: &Schedule,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    catchup: bool,
    cap: usize,
) -> Vec<DateTime<Utc>> {
    if !catchup {
        let latest = schedule
            .last_at_or_before(now, now - at)
            .filter(|t| *t >= at)
            .unwrap_or(at);
        return vec![latest];
    }
    // A ring of the latest `cap`; the walk is bounded so a per-second schedule after months
    // of downtime cannot stall the daemon.
    let mut ring = std::collections::VecDeque::with_capacity(cap);
    ring.push_back(at);
    let mut cursor = at;
    for _ in 0..1_000_000 {
        match schedule.next_after(cursor) {
            Some(t) if t <= now => {
                if ring.len() == cap {
                    ring.pop_front();
                }
                ring.push_back(t);
                cursor = t;
            }
            _ => break,
        }
    }
    ring.into()
}

async fn create_tick_run(
    shared: &Shared,
    view: &PipelineView,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (run_id, created) = repo::runs::create(
        &shared.db,
        view.pipeline.id,
        view.version.id,
        &view.spec,
        NewRun {
            run_key: tick_key(at),
            trigger: Trigger::Cron,
            logical_time: at,
            params: Default::default(),
        },
    )
    .await?;
    if created {
        info!(pipeline = %view.spec.spec.name, run_id, tick = %tick_key(at), "cron run created");
        shared.kick();
    }
    Ok(())
}

async fn on_fire(
    shared: &Shared,
    timers: &JobScheduler,
    fire_tx: &mpsc::UnboundedSender<Fire>,
    planned: &mut HashMap<i64, Planned>,
    fire: Fire,
) -> anyhow::Result<()> {
    let current = planned.get(&fire.pipeline_id);
    if current.is_none_or(|p| p.version_id != fire.version_id || p.at != fire.at) {
        return Ok(()); // a timer from before a re-plan
    }
    let Some(view) = repo::pipelines::list_for_triggers(&shared.db, &shared.specs)
        .await?
        .into_iter()
        .find(|v| v.pipeline.id == fire.pipeline_id)
    else {
        planned.remove(&fire.pipeline_id);
        return Ok(());
    };
    if view.pipeline.paused || view.version.id != fire.version_id {
        planned.remove(&fire.pipeline_id);
        return Ok(()); // the next reload re-plans it
    }
    if Utc::now() < fire.at {
        // The monotonic timer ran ahead of the wall clock (clock adjusted): wait again.
        let timer = arm(timers, fire_tx, fire.pipeline_id, fire.version_id, fire.at).await?;
        planned.insert(
            fire.pipeline_id,
            Planned {
                version_id: fire.version_id,
                at: fire.at,
                timer,
            },
        );
        return Ok(());
    }
    // Creates this tick's run, and any ticks missed meanwhile (a suspended machine).
    let next = plan(shared, &view, Some(fire.at)).await?;
    match next {
        Some(next) => {
            let timer = arm(timers, fire_tx, fire.pipeline_id, fire.version_id, next).await?;
            planned.insert(
                fire.pipeline_id,
                Planned {
                    version_id: fire.version_id,
                    at: next,
                    timer,
                },
            );
        }
        None => {
            planned.remove(&fire.pipeline_id);
        }
    }
    Ok(())
}

/// Schedules a one-shot timer at `at` that reports back on `fire_tx`.
async fn arm(
    timers: &JobScheduler,
    fire_tx: &mpsc::UnboundedSender<Fire>,
    pipeline_id: i64,
    version_id: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<Uuid> {
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    let instant = Instant::now()
        .checked_add(wait)
        .ok_or_else(|| anyhow::anyhow!("fire time {at} is too far away"))?;
    let tx = fire_tx.clone();
    let fire = Fire {
        pipeline_id,
        version_id,
        at,
    };
    let job = Job::new_one_shot_at_instant_async(instant, move |_id, _lock| {
        let tx = tx.clone();
        let fire = fire.clone();
        Box::pin(async move {
            // The trigger loop owns the receiver; if it is gone the daemon is stopping.
            let _ = tx.send(fire);
        })
    })
    .context("creating a cron timer")?;
    timers.add(job).await.context("adding a cron timer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn missed_ticks_catch_up_the_latest_or_only_the_last() {
        let minutely = Schedule::parse("0 * * * * *", "UTC").unwrap();
        let at = utc("2026-01-01T00:00:00Z");
        let now = utc("2026-01-01T00:05:30Z");
        let all = missed_ticks(&minutely, at, now, true, 100);
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], at);
        assert_eq!(all[5], utc("2026-01-01T00:05:00Z"));
        let capped = missed_ticks(&minutely, at, now, true, 2);
        assert_eq!(
            capped,
            vec![utc("2026-01-01T00:04:00Z"), utc("2026-01-01T00:05:00Z")]
        );
        assert_eq!(
            missed_ticks(&minutely, at, now, false, 100),
            vec![utc("2026-01-01T00:05:00Z")]
        );
        // Only the first missed tick itself.
        let just = utc("2026-01-01T00:00:10Z");
        assert_eq!(missed_ticks(&minutely, at, just, false, 100), vec![at]);
    }
}
