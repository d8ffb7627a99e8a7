//! Failure notifications: a run that ends `failed` is posted as JSON to
//! `notify.webhook_url` (with a Slack-compatible `text`), retried with backoff on a task of
//! its own, so a slow or dead webhook never holds up the scheduler. Only the daemon that
//! recorded the run's end posts it, so several daemons do not post the same failure twice.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Shared;

/// Notifications waiting to be sent, at most; more are dropped with a log line.
const QUEUE: usize = 256;

/// Sends queued notifications until `stop` is cancelled.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Value>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let url = shared.all_settings.notify.webhook_url.clone();
    let attempts = shared.all_settings.notify.max_attempts.unwrap_or(5).max(1);
    loop {
        let body = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            b = rx.recv() => match b { Some(b) => b, None => return Ok(()) },
        };
        if url.is_empty() {
            continue;
        }
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=attempts {
            let sent = shared
                .http
                .post(&url)
                .timeout(Duration::from_secs(10))
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    info!(run_id = %body["run_id"], "failure notification sent");
                    break;
                }
                other => {
                    let why = match other {
                        Ok(r) => format!("HTTP {}", r.status()),
                        Err(e) => e.to_string(),
                    };
                    if attempt == attempts {
                        warn!(error = why, run_id = %body["run_id"], "failure notification dropped after {attempts} attempts");
                        break;
                    }
                    warn!(error = why, retry_in = ?delay, "failure notification not delivered");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

/// A channel for [`run`].
pub(super) fn channel() -> (mpsc::Sender<Value>, mpsc::Receiver<Value>) {
    mpsc::channel(QUEUE)
}

/// Queues a notification for each failed run among `runs` (never waits).
pub(super) async fn runs_failed(shared: &Shared, runs: &[i64]) {
    if shared.all_settings.notify.webhook_url.is_empty() || runs.is_empty() {
        return;
    }
    for &run_id in runs {
        let detail = crate::db::repo::runs::show(&shared.db, &shared.specs, run_id).await;
        let body = match detail {
            Ok(d) => {
                let failed: Vec<String> = d
                    .jobs
                    .iter()
                    .filter(|(j, _)| j.state == crate::db::entities::JobState::Failed)
                    .map(|(j, _)| {
                        format!(
                            "{} after {} attempts ({})",
                            j.job_name,
                            j.attempts,
                            j.error.as_deref().unwrap_or("no error recorded")
                        )
                    })
                    .collect();
                let pipeline = d.pipeline;
                json!({
                    "event": "run_failed",
                    "run_id": run_id,
                    "pipeline": pipeline,
                    "failed_jobs": failed,
                    "worker_id": shared.worker_id,
                    "text": format!(
                        ":red_circle: patron: run {run_id} of `{pipeline}` failed: {}",
                        if failed.is_empty() { "see `patron runs show`".to_owned() } else { failed.join("; ") }
                    ),
                })
            }
            Err(e) => json!({
                "event": "run_failed",
                "run_id": run_id,
                "text": format!(":red_circle: patron: run {run_id} failed ({e})"),
            }),
        };
        if shared.notifications.try_send(body).is_err() {
            warn!(run_id, "failure notification queue is full; dropped");
        }
    }
}

/// Reports runs past their pipeline's `sla`, once each (the daemon that marks the run
/// posts it). Returns how many were reported.
pub(super) async fn sla_misses(shared: &Shared) -> crate::db::Result<usize> {
    let now = crate::db::now();
    let mut reported = 0;
    for (run_id, version, created) in crate::db::repo::runs::unfinished(&shared.db).await? {
        let spec = shared.specs.get(&shared.db, version).await?;
        let Some(sla) = spec.spec.sla else { continue };
        let age = (now - created).to_std().unwrap_or_default();
        if age < sla || !crate::db::repo::runs::mark_sla_missed(&shared.db, run_id).await? {
            continue;
        }
        reported += 1;
        let pipeline = spec.spec.name.clone();
        warn!(run_id, pipeline, ?sla, "run is past its SLA");
        let body = json!({
            "event": "sla_missed",
            "run_id": run_id,
            "pipeline": pipeline,
            "sla_seconds": sla.as_secs_f64(),
            "age_seconds": age.as_secs_f64(),
            "worker_id": shared.worker_id,
            "text": format!(
                ":warning: patron: run {run_id} of `{pipeline}` is past its SLA of {} (running for {})",
                humantime::format_duration(sla),
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
        });
        if shared.notifications.try_send(body).is_err() {
            warn!(run_id, "notification queue is full; SLA miss dropped");
        }
    }
    Ok(reported)
}
