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
