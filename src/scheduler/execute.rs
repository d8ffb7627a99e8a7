//! One attempt: build the job's context, run it under its timeout and cancellation, and
//! report how it ended to the recorder.

use std::{
    collections::BTreeMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::FutureExt as _;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, info_span, warn};

use super::{RunningAttempt, Shared, StopReason, recorder::Record};
use crate::{
    db::{
        now,
        repo::dispatch::{Claimed, Finished, Outcome},
    },
    jobs::{GroupSink, JobContext, JobError, LogSink, apply_run_params},
};

/// After a timeout or a cancel, how long the job gets to stop before it is dropped (and,
/// for `command`, its process group killed).
const STOP_GRACE: Duration = Duration::from_secs(10);

pub(super) async fn attempt(shared: Arc<Shared>, job: Claimed, permit: OwnedSemaphorePermit) {
    let span =
        info_span!("attempt", run_id = job.run.id, job = %job.job_name, attempt = job.number);
    async move {
        let token = shared.hard_stop.child_token();
        let reason = Arc::new(Mutex::new(None));
        if let Ok(mut map) = shared.running.lock() {
            map.insert(
                job.attempt_id,
                RunningAttempt {
                    run_id: job.run.id,
                    token: token.clone(),
                    reason: reason.clone(),
                },
            );
        }
        let records = shared.records.clone();
        // The recorder outlives every attempt task; a failed send means the daemon is gone.
        let log = LogSink::new(
            job.attempt_id,
            Arc::new(move |line| drop(records.send(Record::Log(line)))),
        );
        let (records, attempt_id) = (shared.records.clone(), job.attempt_id);
        let groups = GroupSink::new(Arc::new(move |group| {
            drop(records.send(Record::Group { attempt_id, group }))
        }));
        log.info(format!(
            "attempt {} of {} on worker {}",
            job.number, job.job_name, shared.worker_id
        ));
        let began = std::time::Instant::now();
        let outcome = match prepare(&shared, &job, token.clone(), log.clone(), groups).await {
            Ok(ctx) => run_job(&shared, &job, ctx).await,
            Err(message) => Outcome::Failed {
                error: message,
                retryable: false,
            },
        };
        let outcome = match outcome {
            Outcome::Cancelled if shared.hard_stop.is_cancelled() => Outcome::Interrupted,
            Outcome::Cancelled => match reason.lock().ok().and_then(|r| *r) {
                Some(StopReason::LeaseLost) => Outcome::Lost,
                _ => Outcome::Cancelled,
            },
            other => other,
        };
        shared
            .metrics
            .attempt_ended(&job.kind, outcome_name(&outcome), began.elapsed());
        log.info(match &outcome {
            Outcome::Succeeded => "succeeded".to_owned(),
            Outcome::Failed { error, .. } => format!("failed: {error}"),
            Outcome::TimedOut { error } => error.clone(),
            Outcome::Cancelled => "cancelled".to_owned(),
            Outcome::Interrupted => "interrupted by daemon shutdown".to_owned(),
            Outcome::Lost => "stopped: this worker lost the lease".to_owned(),
        });
        // Held until the recorder has written the outcome (`Shared::recording`); it enters
        // `recording` before it leaves `running`, so it is never in neither.
        if let Ok(mut recording) = shared.recording.lock() {
            recording.insert(job.attempt_id);
        }
        if let Ok(mut map) = shared.running.lock() {
            map.remove(&job.attempt_id);
        }
        // The recorder outlives every attempt task, so this only fails if the daemon is
        // already gone; then the lease expires and another daemon retries the job.
        let _ = shared.records.send(Record::Outcome(Finished {
            attempt_id: job.attempt_id,
            job_run_id: job.job_run_id,
            number: job.number,
            outcome,
            at: now(),
        }));
        drop(permit);
        shared.wake.notify_one();
    }
    .instrument(span)
    .await
}

/// The outcome's name in metrics (as the attempt states are stored).
fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed { .. } => "failed",
        Outcome::TimedOut { .. } => "timed_out",
        Outcome::Cancelled => "cancelled",
        Outcome::Interrupted => "interrupted",
        Outcome::Lost => "lost",
    }
}

async fn prepare(
    shared: &Shared,
    job: &Claimed,
    cancel: tokio_util::sync::CancellationToken,
    log: LogSink,
    groups: GroupSink,
) -> Result<JobContext, String> {
    let run = &job.run;
    let spec = shared
        .specs
        .get(&shared.db, run.pipeline_version_id)
        .await
        .map_err(|e| format!("loading pipeline version {}: {e}", run.pipeline_version_id))?;
    let job_spec = spec.spec.job(&job.job_name).ok_or_else(|| {
        format!(
            "job {} is not in pipeline version {}",
            job.job_name, run.pipeline_version_id
        )
    })?;
    let run_params: BTreeMap<String, String> = serde_json::from_str(&run.params)
        .map_err(|e| format!("run {} has unreadable params: {e}", run.id))?;
    let params = apply_run_params(&job_spec.params, &run_params)?;
    Ok(JobContext {
        run_id: run.id,
        pipeline: spec.spec.name.clone(),
        job: job.job_name.clone(),
        attempt: job.number,
        logical_time: run.logical_time,
        run_params,
        params,
        timeout: job_spec.timeout,
        shard: job_spec.shard,
        reruns: run.reruns,
        cancel,
        log,
        groups,
        db: shared.jobs_db.clone(),
        http: shared.http.clone(),
        settings: shared.all_settings.clone(),
    })
}

async fn run_job(shared: &Shared, job: &Claimed, ctx: JobContext) -> Outcome {
    let Some(kind) = shared.registry.get(&job.kind) else {
        return Outcome::Failed {
            error: format!("this daemon has no job kind `{}`", job.kind),
            retryable: false,
        };
    };
    let timeout = ctx.timeout;
    let token = ctx.cancel.clone();
    // A panicking job fails its attempt instead of taking the daemon down.
    let mut fut = AssertUnwindSafe(async { kind.run(&ctx).await })
        .catch_unwind()
        .boxed();
    let deadline = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = &mut fut => r,
        _ = deadline => {
            token.cancel();
            if tokio::time::timeout(STOP_GRACE, &mut fut).await.is_err() {
                warn!("job did not stop within {STOP_GRACE:?} of its timeout; abandoning it");
            }
            return Outcome::TimedOut {
                error: format!(
                    "timed out after {}",
                    humantime::format_duration(timeout.unwrap_or_default())
                ),
            };
        }
        _ = token.cancelled() => {
            // Jobs that watch the token stop by themselves; others get a grace period.
            match tokio::time::timeout(STOP_GRACE, &mut fut).await {
                Ok(r) => r,
                Err(_) => {
                    warn!("job did not stop within {STOP_GRACE:?} of being cancelled; abandoning it");
                    return Outcome::Cancelled;
                }
            }
        }
    };
    match result {
        Ok(Ok(())) => Outcome::Succeeded,
        Ok(Err(JobError::Failed(error))) => Outcome::Failed {
            error,
            retryable: true,
        },
        Ok(Err(JobError::Fatal(error))) => Outcome::Failed {
            error,
            retryable: false,
        },
        Ok(Err(JobError::Cancelled)) => Outcome::Cancelled,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Outcome::Failed {
                error: format!("job panicked: {message}"),
                retryable: true,
            }
        }
    }
}
